"""Fake scorers and holders for tests that must control what the model does."""

from __future__ import annotations

import math

import numpy as np

from app.contract import metadata as artifact_meta
from app.model.envelope import resolve
from app.model.holder import LoadedModel, ModelHolder, Status

FEATURES = ("voltage", "current", "frequency")
UNITS = ("V", "A", "Hz")
OPEN = {name: [-math.inf, math.inf] for name in FEATURES}


class ExplodingScorer:
    """Raises inside inference, as a corrupted session would."""

    features = FEATURES

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise RuntimeError("simulated onnxruntime failure")

    def score_only(self, matrix: np.ndarray) -> None:
        raise RuntimeError("simulated onnxruntime failure")


class EchoScorer:
    """Scores each row with its voltage / 1000, reports no breach and puts all attribution on
    the voltage, so tests know the answer."""

    features = FEATURES

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores = (matrix[:, 0] / 1000.0).astype(np.float32)
        attribution = np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), (len(matrix), 1))
        return scores, np.zeros((len(matrix), 2 * len(FEATURES)), dtype=bool), attribution

    def score_only(self, matrix: np.ndarray) -> None:
        return None  # one graph for every batch size, as an artifact without large-batch graphs

    def attribute(self, matrix: np.ndarray) -> np.ndarray:
        return self.score(matrix)[2]


def fake_metadata(threshold: float) -> artifact_meta.Metadata:
    """Metadata of a model that never existed, complete enough for /health and /model."""
    summary = artifact_meta.FeatureSummary(count=1, min=0.0, max=1.0, mean=0.5, std=0.1)
    return artifact_meta.Metadata(
        format_version=artifact_meta.FORMAT_VERSION,
        name="fake",
        digest="0" * 64,
        file="fake-000000000000.onnx",
        graph="fake",
        features=list(FEATURES),
        units=list(UNITS),
        input_name="readings",
        output_name="score",
        threshold=threshold,
        envelope=artifact_meta.EnvelopeInfo(
            bounds={name: [-1e30, 1e30] for name in FEATURES},
            derivation="open",
            low_input="envelope_low",
            high_input="envelope_high",
            breach_output="breach",
            breach_layout="",
        ),
        nominal=artifact_meta.NominalInfo(voltage={}, frequency={}, derivation="none"),
        model={},
        opset={},
        data=artifact_meta.DataReport(
            source="fake",
            format="synthetic",
            file_sha256="",
            rows_read=1,
            rows_usable=1,
            rows_dropped={},
            labelled_anomalies=0,
            timestamp_column="",
            label_column="",
            features=dict.fromkeys(FEATURES, summary),
            sample_rows=1,
            seed=0,
        ),
        training=artifact_meta.TrainingInfo(
            rows=1, seed=0, data_sha256="", distributions={}, ranges={}
        ),
        calibration=artifact_meta.CalibrationSummary(
            method="contamination",
            target="fixed",
            threshold=threshold,
            holdout_normal_rows=0,
            holdout_anomaly_rows=0,
            false_alarm_rate=None,
            false_alarm_rate_upper_95=None,
            expected_alarms_per_hour=None,
            reading_rate_per_s=None,
            precision=None,
            recall=None,
            f1=None,
            roc_auc=None,
            pr_auc=None,
        ),
        attribution=artifact_meta.AttributionInfo(
            output="attribution", definition="fake", levels=3, offsets=[0.0] * len(FEATURES)
        ),
        parity=artifact_meta.ParityReport(
            points=0,
            max_abs_score_diff=0.0,
            score_tolerance=0.0,
            label_mismatches=0,
            label_mismatches_outside_band=0,
            decision_band=0.0,
            by_kind={},
        ),
        histograms={},
        drift={},
        kernels=artifact_meta.KernelsInfo(from_rows=32, graphs=[], parity={}),
        versions={},
        created_at="",
    )


def holder_with(scorer: object, threshold: float = 0.5) -> ModelHolder:
    holder = ModelHolder(FEATURES)
    envelope = resolve(FEATURES, OPEN, "trained")
    holder.model = LoadedModel(
        scorer=scorer,  # type: ignore[arg-type]
        name="fake",
        digest="0" * 64,
        features=FEATURES,
        threshold=threshold,
        envelope=envelope,
        name_breaches=envelope.breach_namer(),
        breach_columns=envelope.breach_columns(),
        metadata=fake_metadata(threshold),
    )
    holder.status = Status.OK
    holder.reason = ""
    return holder
