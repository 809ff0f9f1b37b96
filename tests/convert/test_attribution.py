"""Which feature made a reading anomalous: the graph's attribution, against its reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient
from sklearn.ensemble import IsolationForest

from app.model import artifact
from app.service.factory import create_api_app
from convert import attribution, data, pipeline
from convert.forest_geometry import average_path_length
from tests.support.config import settings_from

FEATURES = ("voltage", "current", "frequency")


def test_graph_attribution_equals_the_reference_on_fresh_points(
    trained_model: object, artifact_path: Path
) -> None:
    rng = np.random.default_rng(11)
    rows = rng.normal([230, 10, 50], [3, 1.5, 0.02], (5_000, 3))
    rows[::3] *= rng.choice([0.9, 1.1], (len(rows[::3]), 3))
    offsets = artifact.load(artifact_path).metadata.attribution.offsets
    graph = pipeline.onnx_attributor(artifact_path.read_bytes(), offsets)(rows.astype(np.float32))
    reference = attribution.reference(trained_model, rows)  # type: ignore[arg-type]
    assert np.abs(attribution.shares(graph) - attribution.shares(reference)).max() <= 1e-5
    assert np.allclose(attribution.shares(graph).sum(axis=1), 1.0)


def test_attribution_decomposes_the_depth_the_forest_saved(trained_model: object) -> None:
    """sum_f A_f = sum_t C_t - P: the attribution splits exactly what the score measures, so
    the graph can take the score from the attribution's sum."""
    model: IsolationForest = trained_model  # type: ignore[assignment]
    rng = np.random.default_rng(4)
    rows = rng.normal([230, 10, 50], [6, 3, 0.04], (2_000, 3))
    longest = sum(attribution.longest_path(e.tree_) for e in model.estimators_)
    c_psi = float(average_path_length(np.array([model._max_samples]))[0])
    # score = 2 ** (-P / (T c(psi))), so P = -log2(score) T c(psi)
    paths = -np.log2(-model.score_samples(rows)) * len(model.estimators_) * c_psi
    assert np.allclose(attribution.reference(model, rows).sum(axis=1), longest - paths)


@pytest.mark.slow
def test_convert_checks_attribution_parity_on_100000_points(tmp_path: Path) -> None:
    result = pipeline.run(tmp_path, parity_points=100_000)
    parity = result.metadata.parity
    assert parity.points == 100_000
    assert parity.max_abs_attribution_diff is not None
    assert parity.max_abs_attribution_diff <= 1e-5
    assert result.metadata.attribution.output == "attribution"


def test_a_reading_pushed_along_one_feature_names_that_feature(
    artifact_path: Path, model_dir: Path
) -> None:
    """1,000 readings per feature, each nominal but for one feature pushed past the training
    range yet inside the trained envelope: only the forest sees them, and its attribution
    must name the pushed feature in at least 95 % of them."""
    meta = artifact.load(artifact_path).metadata
    rng = np.random.default_rng(3)
    base = data.normal_points(1_000, rng)
    with TestClient(create_api_app(settings_from(model_dir))) as client:
        for index, name in enumerate(FEATURES):
            low, high = meta.training.ranges[name]
            env_low, env_high = meta.envelope.bounds[name]
            up = rng.random(1_000) < 0.5
            # Beyond the training range, well inside the envelope (which is 25 % wider).
            value = np.where(
                up,
                rng.uniform(high, high + 0.6 * (env_high - high), 1_000),
                rng.uniform(low - 0.6 * (low - env_low), low, 1_000),
            )
            rows = base.copy()
            rows[:, index] = value
            readings = [dict(zip(FEATURES, r, strict=True)) for r in rows.tolist()]
            body = client.post("/predict?explain=true", json={"readings": readings}).json()
            assert all("out_of_range" not in p for p in body["predictions"])
            tops = [p["top_feature"] for p in body["predictions"]]
            share = tops.count(name) / len(tops)
            print(f"{name} pushed: top feature named in {share:.1%}")
            assert share >= 0.95
            sums = [sum(p["attribution"].values()) for p in body["predictions"]]
            assert np.allclose(sums, 1.0)


def test_explain_modes(client: TestClient) -> None:  # type: ignore[type-arg]
    readings = [
        {"voltage": 230.0, "current": 10.0, "frequency": 50.0},
        {"voltage": 271.0, "current": 28.5, "frequency": 50.7},
    ]
    flagged = client.post("/predict", json={"readings": readings}).json()["predictions"]
    assert "attribution" not in flagged[0]
    assert set(flagged[1]["attribution"]) == set(FEATURES)
    assert flagged[1]["top_feature"] in FEATURES
    every = client.post("/predict?explain=true", json={"readings": readings}).json()
    assert all("attribution" in p for p in every["predictions"])
    none = client.post("/predict?explain=false", json={"readings": readings}).json()
    assert all("attribution" not in p for p in none["predictions"])
    bad = client.post("/predict?explain=maybe", json={"readings": readings})
    assert bad.status_code == 400
    assert bad.json()["field"] == "explain"
