"""Thresholds set by what operators can live with, checked on rows the model never saw.

Each test converts a generated feeder export, then scores fresh rows from the same feeder
(other seeds) with the published graph and the trained envelope, exactly as served.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model import artifact
from convert import pipeline
from convert.__main__ import main as convert_main
from tests.support import datasets

pytestmark = pytest.mark.slow


def _publish(tmp_path: Path, rows: int, anomaly_share: float, *args: str) -> artifact.Artifact:
    data = datasets.write(
        datasets.table(rows, seed=21, anomaly_share=anomaly_share), tmp_path / "feeder.parquet"
    )
    models = tmp_path / "models"
    argv = ["--data", str(data), "--model-dir", str(models), "--parity-points", "2000"]
    assert convert_main([*argv, "--units", datasets.UNITS, *args]) == 0
    (path,) = models.glob("*.onnx")
    return artifact.load(path)


def _flags(published: artifact.Artifact, matrix: np.ndarray) -> np.ndarray:
    meta = published.metadata
    verdict = pipeline.served_verdict(
        published.model_bytes, meta.envelope.bounds, tuple(meta.features)
    )
    score, breach = verdict(matrix.astype(np.float32))
    flagged: np.ndarray = (score.astype(np.float64) > meta.threshold) | breach.any(axis=1)
    return flagged


def test_an_alarm_budget_holds_on_fresh_normal_rows(tmp_path: Path) -> None:
    """6 false alarms per hour at 10 readings/s is a false alarm rate of 1.67e-4. The
    threshold is set where the 95 % Clopper-Pearson upper bound of the rate on 30,000
    calibration rows fits the budget, so the budget holds with 95 % confidence; 400,000 fresh
    normal rows (11 hours of readings) measure it."""
    published = _publish(tmp_path, 200_000, 0.0, "--alarm-budget", "6/h", "--reading-rate", "10/s")
    calibration = published.metadata.calibration
    assert calibration.method == "alarm_budget"
    budget_rate = 6 / (3600 * 10)
    assert calibration.expected_alarms_per_hour is not None
    assert calibration.expected_alarms_per_hour <= 6
    fresh = np.vstack([datasets.matrix_of(datasets.table(200_000, seed=s)) for s in (31, 32)])
    alarms = int(_flags(published, fresh).sum())
    print(f"{alarms} false alarms on {len(fresh)} fresh normal rows: {alarms / len(fresh):.2e}")
    assert alarms / len(fresh) <= budget_rate  # at most 66 alarms
    assert alarms > 0  # the threshold is not simply above every score: it spends the budget


def test_a_target_precision_holds_on_fresh_labelled_rows(tmp_path: Path) -> None:
    published = _publish(tmp_path, 100_000, 0.02, "--target-precision", "0.9")
    calibration = published.metadata.calibration
    assert calibration.method == "target_precision"
    assert calibration.roc_auc is not None
    assert calibration.roc_auc > 0.9
    for seed in (31, 32):
        columns = datasets.table(200_000, seed=seed, anomaly_share=0.02)
        truth = np.asarray(columns["label"]) == 1
        flagged = _flags(published, datasets.matrix_of(columns))
        precision = (flagged & truth).sum() / flagged.sum()
        recall = (flagged & truth).sum() / truth.sum()
        print(f"seed {seed}: precision {precision:.3f}, recall {recall:.3f}")
        assert precision >= 0.9
        assert recall > 0.2  # not bought by flagging almost nothing


def test_a_target_recall_flags_that_share_of_fresh_anomalies(tmp_path: Path) -> None:
    published = _publish(tmp_path, 100_000, 0.02, "--target-recall", "0.6")
    columns = datasets.table(200_000, seed=33, anomaly_share=0.02)
    truth = np.asarray(columns["label"]) == 1
    flagged = _flags(published, datasets.matrix_of(columns))
    assert (flagged & truth).sum() / truth.sum() >= 0.6


def test_the_calibration_report_and_plot_sit_beside_the_artifact(tmp_path: Path) -> None:
    import json

    published = _publish(tmp_path, 30_000, 0.02)
    report_path, plot_path = artifact.calibration_paths(published.path)
    report = json.loads(report_path.read_text())
    assert report["summary"]["threshold"] == published.metadata.threshold
    assert report["prevalence"] == pytest.approx(0.02, abs=0.003)
    assert sum(report["normal_histogram"]["counts"]) > 0
    assert {"threshold", "false_alarm_rate", "precision", "recall"} <= set(report["curve"])
    svg = plot_path.read_text()
    assert "<svg" in svg
    assert "Precision and recall" in svg
