"""Large batches take the graphs published beside the served one (rows sorted, attribution
only where asked): the answers are the served graph's, and a tampered graph is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient

from app.model import artifact
from app.service.factory import create_api_app
from tests.support.config import settings_from


def _readings(count: int, seed: int = 3) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    rows = rng.normal([230.0, 10.0, 50.0], [3.0, 1.5, 0.02], (count, 3))
    rows[::9] *= 1.2  # some far out, flagged
    return [{"voltage": float(v), "current": float(c), "frequency": float(f)} for v, c, f in rows]


@pytest.mark.parametrize("explain", ["flagged", "true", "false"])
@pytest.mark.parametrize("count", [300, 1200])  # the sorted served graph; score-only first
def test_a_large_batch_answers_as_small_batches_of_the_served_graph_do(
    client: TestClient, explain: str, count: int
) -> None:
    readings = _readings(count)
    whole = client.post(f"/predict?explain={explain}", json={"readings": readings}).json()
    parts = []
    for start in range(0, len(readings), 10):  # ten rows a call: the served graph, bound
        chunk = {"readings": readings[start : start + 10]}
        parts += client.post(f"/predict?explain={explain}", json=chunk).json()["predictions"]
    assert whole["anomalies"] == sum(p["anomaly"] for p in parts) > 10
    for big, small in zip(whole["predictions"], parts, strict=True):
        assert big["anomaly"] == small["anomaly"]
        assert big["score"] == pytest.approx(small["score"], abs=1e-6)
        assert big.get("out_of_range") == small.get("out_of_range")
        assert big.get("top_feature") == small.get("top_feature")
        if "attribution" in small:
            for feature, share in small["attribution"].items():
                assert big["attribution"][feature] == pytest.approx(share, abs=1e-6)
        else:
            assert "attribution" not in big


def test_v2_attribution_of_a_large_batch_is_every_rows(client: TestClient) -> None:
    readings = _readings(200, seed=4)
    matrix = [[r["voltage"], r["current"], r["frequency"]] for r in readings]
    body = {
        "inputs": [{"name": "readings", "shape": [200, 3], "datatype": "FP32", "data": matrix}],
        "outputs": [{"name": "score"}, {"name": "attribution"}],
    }
    answer = client.post("/v2/models/gridscore-iforest/infer", json=body).json()
    shares = np.asarray(answer["outputs"][1]["data"]).reshape(200, 3)
    assert not np.isnan(shares).any()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-5)


def test_a_tampered_large_batch_graph_is_refused(model_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(model_dir, tmp_path / "models")
    (onnx,) = (tmp_path / "models").glob("*.onnx")
    graph = artifact.kernel_path(onnx, "score-sorted")
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    with pytest.raises(artifact.ArtifactError, match=r"score-sorted\.onnx: sha256 differs"):
        artifact.load(onnx)


def test_without_its_large_batch_graphs_an_artifact_serves_every_batch_as_before(
    model_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(model_dir, tmp_path / "models")
    (onnx,) = (tmp_path / "models").glob("*.onnx")
    shutil.rmtree(onnx.with_name(f"{onnx.stem}.kernels"))
    assert artifact.load(onnx).kernels == {}
    with TestClient(create_api_app(settings_from(tmp_path / "models"))) as client:
        answer = client.post("/predict", json={"readings": _readings(100)})
    assert answer.status_code == 200
    assert answer.json()["total"] == 100
