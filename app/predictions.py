"""Readings to a float32 matrix, scores to a response: the vectorised middle of /predict."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from operator import attrgetter

import numpy as np

from app.schemas import Prediction, PredictResponse, Reading


def feature_matrix(readings: list[Reading], features: tuple[str, ...]) -> np.ndarray:
    """Rows of ``features`` (in that order) as float32, built without a Python-level loop."""
    values: Iterable[float]
    if len(features) == 1:  # attrgetter of one name yields scalars, not tuples
        values = map(attrgetter(features[0]), readings)
    else:
        values = chain.from_iterable(map(attrgetter(*features), readings))
    flat = np.fromiter(values, dtype=np.float32, count=len(readings) * len(features))
    return flat.reshape(len(readings), len(features))


def build_response(
    scores: np.ndarray,
    breaches: np.ndarray,
    threshold: float,
    breach_names: list[list[str]],
    served_by: str,
) -> PredictResponse:
    """Predictions in request order: ``anomaly`` is ``score > threshold`` or any breach."""
    # A float64 threshold, so the comparison happens in float64 as in the parity check
    # (against a Python float, NumPy 2 would round the threshold to float32 instead).
    flags = (scores > np.float64(threshold)) | (breaches != 0)
    # map() over C callables: no Python bytecode runs per reading.
    names = map(breach_names.__getitem__, breaches.tolist())
    predictions = list(map(Prediction, flags.tolist(), scores.tolist(), names))
    return PredictResponse(
        predictions=predictions,
        anomalies=int(np.count_nonzero(flags)),
        total=len(predictions),
        served_by=served_by,
    )


def breach_counts(breaches: np.ndarray, features: tuple[str, ...]) -> dict[tuple[str, str], int]:
    """How many rows breached each (feature, low|high); only non-zero entries."""
    counts = {}
    for index, feature in enumerate(features):
        for bit, direction in ((2 * index, "low"), (2 * index + 1, "high")):
            count = int(np.count_nonzero(breaches & (1 << bit)))
            if count:
                counts[(feature, direction)] = count
    return counts
