"""The Open Inference Protocol (v2) routes in-process, through the front door as served:
health, metadata, JSON and binary tensors in and out, the malformed-request catalogue, and
the admission and metrics ``/predict`` has."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient

from app.contract.api import FLOAT32_MAX
from app.service.factory import FrontDoor, create_api_app
from tests.support.catalogue import LIMITS
from tests.support.config import settings_from
from tests.support.v2_catalogue import CASES, NAME, PATH, ROW, V2Case, binary, request, tensor

ROWS = [ROW, [300.0, 10.0, 50.0], [230.0, 80.0, 50.0], [230.0, 10.0, 52.5]]


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Iterator[Any]:
    app = FrontDoor(create_api_app(settings_from(model_dir, **LIMITS)))
    with TestClient(app) as test_client:  # type: ignore[arg-type]
        yield test_client


def predict(client: Any, rows: list[list[float]]) -> list[dict[str, Any]]:
    readings = [dict(zip(("voltage", "current", "frequency"), row, strict=True)) for row in rows]
    response = client.post("/predict?explain=true", json={"readings": readings})
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"])


def outputs(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {output["name"]: output for output in answer["outputs"]}


def test_health_and_server_metadata(client: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    for path in ("/v2", "/v2/"):
        server = client.get(path).json()
        assert server["name"] == "gridscore"
        assert "binary_tensor_data" in server["extensions"]
    assert client.get(f"/v2/models/{NAME}/ready").json() == {"name": NAME, "ready": True}


def test_model_metadata_names_the_tensors_in_feature_order(client: Any) -> None:
    meta = client.get(f"/v2/models/{NAME}").json()
    digest = client.get("/model").json()["digest"]
    assert meta["name"] == NAME
    assert meta["versions"] == [digest[:12]]
    assert meta["inputs"] == [{"name": "readings", "datatype": "FP32", "shape": [-1, 3]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == [
        ("score", "FP32", [-1]),
        ("anomaly", "BOOL", [-1]),
        ("out_of_range", "BOOL", [-1, 6]),
        ("attribution", "FP32", [-1, 3]),
    ]
    assert meta["properties"]["features"] == "voltage,current,frequency"
    assert meta["properties"]["out_of_range"].split(",")[0] == "voltage_low"
    assert meta["properties"]["digest"] == digest
    # The version in the path: the served one answers, any other is a 404.
    assert client.get(f"/v2/models/{NAME}/versions/{digest[:12]}").status_code == 200
    assert client.get(f"/v2/models/{NAME}/versions/{digest[:12]}/ready").status_code == 200
    other = client.get(f"/v2/models/{NAME}/versions/0000000000000/ready")
    assert other.status_code == 404
    assert "not served" in other.json()["error"]
    unknown = client.get("/v2/models/other")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": f"unknown model 'other'; this server serves '{NAME}'"}


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_json_tensor_scores_as_predict_does(client: Any, layout: str) -> None:
    data = ROWS if layout == "nested" else [v for row in ROWS for v in row]
    body = request(tensor(shape=[len(ROWS), 3], data=data), id="batch-7")
    response = client.post(PATH, content=body)  # no content type, as tritonclient sends
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["id"] == "batch-7"
    assert answer["model_name"] == NAME
    assert answer["model_version"] == response.headers["x-model-digest"][:12]
    got = outputs(answer)
    expected = predict(client, ROWS)
    assert got["score"]["data"] == [p["score"] for p in expected]
    assert got["anomaly"]["data"] == [p["anomaly"] for p in expected]
    breaches = np.array(got["out_of_range"]["data"]).reshape(got["out_of_range"]["shape"])
    assert breaches[1].tolist() == [False, False, False, True, False, False]  # voltage_high
    shares = np.array(got["attribution"]["data"]).reshape(len(ROWS), 3)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-6)
    for row, p in zip(shares, expected, strict=True):
        np.testing.assert_allclose(row, list(p["attribution"].values()), rtol=1e-6)


def test_binary_tensor_in_and_binary_outputs_back(client: Any) -> None:
    asked = [{"name": "score", "parameters": {"binary_data": True}}, {"name": "anomaly"}]
    body, headers = binary(ROWS, outputs=asked)
    response = client.post(PATH, content=body, headers=dict(headers))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    answer = json.loads(response.content[:length])
    score, anomaly = answer["outputs"]
    assert score["parameters"] == {"binary_data_size": 4 * len(ROWS)}
    assert "data" not in score
    scores = struct.unpack(f"<{len(ROWS)}f", response.content[length:])
    assert len(response.content) == length + 4 * len(ROWS)
    expected = predict(client, ROWS)
    assert list(scores) == [p["score"] for p in expected]
    assert anomaly["data"] == [p["anomaly"] for p in expected]


def test_binary_data_output_returns_every_output_as_bytes(client: Any) -> None:
    response = client.post(PATH, content=request(parameters={"binary_data_output": True}))
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    answer = json.loads(response.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in answer["outputs"]]
    assert sizes == [4, 1, 6, 12]  # score FP32, anomaly BOOL, 6 breach BOOLs, 3 FP32 shares
    assert len(response.content) == length + sum(sizes)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_malformed_request_gets_its_error(client: Any, case: V2Case) -> None:
    response = client.post(case.path, content=case.body, headers=dict(case.headers))
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert list(error) == ["error"]
    assert case.says in error["error"], error


def test_catalogue_is_at_least_fifteen_distinct_cases() -> None:
    assert len(CASES) >= 15
    assert len({case.name for case in CASES}) == len(CASES)


def test_refusals_change_nothing_but_requests_total(client: Any) -> None:
    def counts() -> dict[str, float]:
        text = client.get("/metrics").text
        wanted = ("readings_total ", "batch_size_count ", "anomalies_total ")
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith(wanted)
        }

    before = counts()
    for case in CASES:
        client.post(case.path, content=case.body, headers=dict(case.headers))
    assert counts() == before
    text = client.get("/metrics").text
    assert 'path="/v2/models/{model}/infer",status="400"' in text
    assert 'path="/v2/models/{model}/versions/{version}/infer",status="404"' in text


def test_get_on_infer_is_405_with_the_v2_error(client: Any) -> None:
    response = client.get(PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "use POST" in response.json()["error"]


def test_api_key_guards_infer_not_health(model_dir: Path) -> None:
    app = FrontDoor(create_api_app(settings_from(model_dir, API_KEY="k1")))
    with TestClient(app) as keyed:  # type: ignore[arg-type]
        refused = keyed.post(PATH, content=request())
        assert refused.status_code == 401
        assert list(refused.json()) == ["error"]
        ok = keyed.post(PATH, content=request(), headers={"Authorization": "Bearer k1"})
        assert ok.status_code == 200
        assert keyed.get("/v2/health/ready").status_code == 200
        assert keyed.get(f"/v2/models/{NAME}").status_code == 200


def test_served_name_follows_the_setting(model_dir: Path) -> None:
    app = FrontDoor(create_api_app(settings_from(model_dir, V2_MODEL_NAME="feeder-7")))
    with TestClient(app) as named:  # type: ignore[arg-type]
        assert named.post("/v2/models/feeder-7/infer", content=request()).status_code == 200
        assert named.post(PATH, content=request()).status_code == 404
        assert named.get("/model").json()["v2_name"] == "feeder-7"


finite = st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX, allow_nan=False, width=32)


@given(st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=30), st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_json_and_binary_tensors_score_alike(
    client: Any, rows: list[tuple[float, float, float]], nested: bool
) -> None:
    """Any float32 rows, as JSON (flat or nested) and as binary, get the same scores."""
    matrix = [list(row) for row in rows]
    data = matrix if nested else [v for row in matrix for v in row]
    as_json = client.post(PATH, content=request(tensor(shape=[len(rows), 3], data=data)))
    body, headers = binary(matrix)
    as_binary = client.post(PATH, content=body, headers=dict(headers))
    assert as_json.status_code == as_binary.status_code == 200, as_json.text
    assert outputs(as_json.json())["score"]["data"] == outputs(as_binary.json())["score"]["data"]
