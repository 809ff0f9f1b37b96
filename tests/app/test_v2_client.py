"""The official Triton client (``tritonclient[http]``), used as a user would, against a live
gridscore: readiness, metadata, and batches of 1, 100 and 10,000 readings over JSON and over
binary tensors, scored exactly as ``/predict`` scores them. Then the malformed-request
catalogue over a real socket, and schemathesis over the v2 routes of the served schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest
import tritonclient.http as tritonclient_http
from tritonclient.utils import InferenceServerException

from app.contract.api import ModelResponse
from app.dashboard.readings import ReadingSampler
from tests.support.catalogue import LIMITS
from tests.support.fuzzing import schemathesis_run
from tests.support.servers import RunningServer, gridscore_serve
from tests.support.v2_catalogue import CASES, NAME, V2Case

pytestmark = pytest.mark.slow


KEY = "v2-client-key"


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with gridscore_serve(
        model_dir,
        tmp_path_factory.mktemp("v2"),
        command="api",
        WORKERS="2",
        API_KEY=KEY,
        MAX_BODY_BYTES=str(8 * 1024 * 1024),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[Any]:
    # The client wants host:port without a scheme.
    with tritonclient_http.InferenceServerClient(server.url.removeprefix("http://")) as c:
        yield c


def auth() -> dict[str, str]:
    # A new dict each time: tritonclient adds its own headers to the one it is given.
    return {"Authorization": f"Bearer {KEY}"}


def readings_of(server: RunningServer, count: int) -> tuple[list[str], np.ndarray, Any]:
    model = msgspec.json.decode(httpx.get(f"{server.url}/model").content, type=ModelResponse)
    sampler = ReadingSampler(model.features, seed=count)
    batch = sampler.batch(count, 0.05)
    names = [f.name for f in model.features]
    matrix = np.array([[r[n] for n in names] for r in batch], dtype=np.float32)
    return names, matrix, batch


def predict(server: RunningServer, batch: list[dict[str, float]]) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{server.url}/predict", json={"readings": batch}, headers=auth(), timeout=30
    )
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"])


def test_readiness_and_metadata(client: Any, server: RunningServer) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(NAME)
    assert not client.is_model_ready("another-model")
    server_meta = client.get_server_metadata()
    assert "binary_tensor_data" in server_meta["extensions"]
    meta = client.get_model_metadata(NAME)
    features = [f["name"] for f in httpx.get(f"{server.url}/model").json()["features"]]
    assert meta["inputs"] == [{"name": "readings", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["properties"]["features"].split(",") == features
    assert {o["name"] for o in meta["outputs"]} == {
        "score",
        "anomaly",
        "out_of_range",
        "attribution",
    }


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("rows", [1, 100, 10_000])
def test_scores_equal_predicts_exactly(
    client: Any, server: RunningServer, rows: int, binary: bool
) -> None:
    _, matrix, batch = readings_of(server, rows)
    given = tritonclient_http.InferInput("readings", list(matrix.shape), "FP32")
    given.set_data_from_numpy(matrix, binary_data=binary)
    asked = [
        tritonclient_http.InferRequestedOutput(name, binary_data=binary)
        for name in ("score", "anomaly", "out_of_range")
    ]
    result = client.infer(NAME, [given], outputs=asked, request_id=f"r{rows}", headers=auth())
    expected = predict(server, batch)
    scores = result.as_numpy("score")
    assert scores.dtype == np.float32
    assert scores.tolist() == [p["score"] for p in expected]  # exactly, not approximately
    assert result.as_numpy("anomaly").tolist() == [p["anomaly"] for p in expected]
    breaches = result.as_numpy("out_of_range")
    columns = client.get_model_metadata(NAME)["properties"]["out_of_range"].split(",")
    named = [[columns[i] for i in np.flatnonzero(row)] for row in breaches]
    assert named == [p.get("out_of_range", []) for p in expected]
    answer = result.get_response()
    assert answer["id"] == f"r{rows}"
    assert answer["model_name"] == NAME


def test_default_request_gets_every_output_as_binary(client: Any, server: RunningServer) -> None:
    """No outputs named: tritonclient asks for all of them as binary."""
    _, matrix, batch = readings_of(server, 50)
    given = tritonclient_http.InferInput("readings", list(matrix.shape), "FP32")
    given.set_data_from_numpy(matrix)
    result = client.infer(NAME, [given], headers=auth())
    expected = predict(server, batch)
    shares = result.as_numpy("attribution")
    assert shares.shape == (50, 3)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-5)
    flagged = [i for i, p in enumerate(expected) if p["anomaly"]]
    assert flagged == np.flatnonzero(result.as_numpy("anomaly")).tolist()
    for i in flagged:  # /predict explains the flagged readings: the same shares
        np.testing.assert_allclose(shares[i], list(expected[i]["attribution"].values()), rtol=1e-5)


def test_errors_reach_the_client_with_their_message(client: Any) -> None:
    matrix = np.zeros((2, 4), dtype=np.float32)
    given = tritonclient_http.InferInput("readings", [2, 4], "FP32")
    given.set_data_from_numpy(matrix)
    with pytest.raises(InferenceServerException) as wrong_shape:
        client.infer(NAME, [given], headers=auth())
    assert wrong_shape.value.status() == "400"
    assert "[N, 3]" in wrong_shape.value.message()
    with pytest.raises(InferenceServerException) as no_key:
        client.infer(NAME, [given])
    assert no_key.value.status() == "401"
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("another-model", [given], headers=auth())
    assert unknown.value.status() == "404"
    with pytest.raises(InferenceServerException) as wrong_version:
        client.infer(NAME, [given], model_version="000000000000", headers=auth())
    assert wrong_version.value.status() == "404"


def test_pinned_version_is_served(client: Any, server: RunningServer) -> None:
    version = client.get_model_metadata(NAME)["versions"][0]
    _, matrix, _ = readings_of(server, 3)
    given = tritonclient_http.InferInput("readings", [3, 3], "FP32")
    given.set_data_from_numpy(matrix)
    result = client.infer(NAME, [given], model_version=version, headers=auth())
    assert result.get_response()["model_version"] == version
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'path="/v2/models/{model}/versions/{version}/infer",status="200"' in metrics


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_malformed_request_over_a_socket(
    model_dir: Path, catalogue_server: RunningServer, case: V2Case
) -> None:
    response = httpx.post(
        f"{catalogue_server.url}{case.path}", content=case.body, headers=dict(case.headers)
    )
    assert response.status_code == case.status, response.text
    assert case.says in response.json()["error"]
    assert catalogue_server.process.poll() is None
    assert httpx.get(f"{catalogue_server.url}/v2/health/ready").status_code == 200


@pytest.fixture(scope="module")
def catalogue_server(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with gridscore_serve(
        model_dir, tmp_path_factory.mktemp("v2-catalogue"), command="api", **LIMITS
    ) as running:
        yield running


def test_schemathesis_over_the_v2_routes(model_dir: Path, tmp_path: Path) -> None:
    """Generated requests for every v2 operation of /schema/openapi.json: no 5xx, and every
    answer matches the schema. One check is left out: that every schema-valid request is
    accepted. An infer request is valid only when ``data`` holds rows x columns numbers,
    which JSON Schema cannot state, so generated requests the schema admits get a 400 (the
    catalogue above checks those answers)."""
    with gridscore_serve(model_dir, tmp_path, command="api", MAX_BATCH="200") as server:
        generated, passed, output = schemathesis_run(
            server.url,
            tmp_path,
            "--include-path-regex",
            "^/v2",
            "--max-examples",
            "150",
            "--exclude-checks",
            "positive_data_acceptance",
        )
    assert generated >= 500
    assert generated == passed
    assert "/v2/models/{model}/infer" in output
