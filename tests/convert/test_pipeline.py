"""The convert step: reproducible bytes, parity with sklearn, nothing published on failure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from app.model import artifact
from convert import data, parity, pipeline, train
from convert.publish import publish


def test_converting_twice_gives_the_same_sha256(tmp_path: Path) -> None:
    first = pipeline.run(tmp_path / "a", parity_points=1_000)
    second = pipeline.run(tmp_path / "b", parity_points=1_000)
    assert first.metadata.digest == second.metadata.digest
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path.name == f"gridscore-iforest-{first.metadata.digest[:12]}.onnx"


def test_metadata_records_lineage_threshold_parity_and_histograms(
    artifact_path: Path, trained_model: object
) -> None:
    meta = artifact.load(artifact_path).metadata
    assert meta.features == ["voltage", "current", "frequency"]
    assert meta.threshold == pytest.approx(train.trained_threshold(trained_model))  # type: ignore[arg-type]
    assert meta.training.rows == 5_000
    assert meta.training.data_sha256 == data.data_sha256(data.training_data())
    assert meta.model["n_estimators"] == 200
    assert meta.model["contamination"] == 0.05
    assert meta.parity.points == 5_000
    assert meta.parity.label_mismatches_outside_band == 0
    assert set(meta.parity.by_kind) == {"nominal", "far_out", "boundary", "on_threshold"}
    assert {"scikit-learn", "skl2onnx", "onnxruntime", "numpy"} <= set(meta.versions)
    for feature in meta.features:
        hist = meta.histograms[feature]
        assert len(hist.edges) == len(hist.counts) + 1
        assert sum(hist.counts) == 5_000


def test_graph_is_one_tree_ensemble_node(artifact_path: Path) -> None:
    import onnx

    graph = onnx.load(artifact_path).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("TreeEnsembleRegressor") == 1
    # The ensemble's targets are the attribution, their sum the score's exponent: ReduceSum,
    # Exp; the envelope guard: Less, Greater, Concat.
    assert ops == ["TreeEnsembleRegressor", "ReduceSum", "Exp", "Less", "Greater", "Concat"]
    assert [o.name for o in graph.output] == ["score", "attribution", "breach"]


def test_parity_with_sklearn_on_a_fresh_set(trained_model: object, artifact_path: Path) -> None:
    """Scores within 1e-5 of -score_samples; labels equal where |decision| >= 1e-5."""
    parity_set = parity.build_set(
        trained_model,  # type: ignore[arg-type]
        10_000,
        data.training_data(),
        seed=1234,
    )
    report = parity.measure(
        trained_model,  # type: ignore[arg-type]
        pipeline.onnx_scorer(artifact_path.read_bytes()),
        parity_set,
    )
    assert report.max_abs_score_diff <= 1e-5
    assert report.label_mismatches_outside_band == 0
    # The set really probes the boundary and the split thresholds.
    assert report.by_kind["boundary"]["points"] == 2_000
    assert report.by_kind["far_out"]["anomalies_sklearn"] > 0


def test_threshold_matches_sklearn_predict(trained_model: object) -> None:
    x = data.training_data()
    scores = train.paper_scores(trained_model, x)  # type: ignore[arg-type]
    flagged = scores > train.trained_threshold(trained_model)  # type: ignore[arg-type]
    np.testing.assert_array_equal(flagged, trained_model.predict(x) == -1)  # type: ignore[attr-defined]
    assert 0.04 < flagged.mean() < 0.06  # contamination 0.05


def test_parity_failure_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    honest = pipeline.onnx_scorer

    def off_by_a_bit(model_bytes: bytes):  # type: ignore[no-untyped-def]
        score = honest(model_bytes)
        return lambda rows: score(rows) + np.float32(1e-3)

    monkeypatch.setattr(pipeline, "onnx_scorer", off_by_a_bit)
    with pytest.raises(parity.ParityError, match="exceeds"):
        pipeline.run(tmp_path, parity_points=1_000)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_publish_writes_metadata_before_model_and_leaves_no_temp_files(
    tmp_path: Path, artifact_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = artifact.load(artifact_path).metadata
    renamed: list[str] = []
    real_replace = os.replace

    def recording_replace(src: str, dst: str) -> None:
        renamed.append(Path(dst).suffix)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    path = publish(tmp_path, artifact_path.read_bytes(), meta)
    assert renamed == [".json", ".onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        path.with_suffix(".json").name,
        path.name,
    ]
    assert artifact.load(path).metadata.digest == meta.digest


def test_cli_prints_each_stage_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from convert.__main__ import main

    assert main(["--model-dir", str(tmp_path), "--parity-points", "1000"]) == 0
    out = capsys.readouterr().out
    for stage in ("data", "train", "compile", "verify", "calibrate", "publish"):
        assert f"[{stage:>9}]" in out
    (published,) = tmp_path.glob("*.onnx")
    assert f"published {published.name}" in out
