"""Readings to a float32 matrix, scores to a response: the vectorised middle of /predict."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from app.schemas import Prediction, PredictResponse


def feature_matrix(readings: list[Any], features: tuple[str, ...]) -> np.ndarray:
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
    name_breaches: Callable[[np.ndarray], list[str]],
    served_by: str,
) -> PredictResponse:
    """Predictions in request order: ``anomaly`` is ``score > threshold`` or any breach.

    ``breaches`` is the graph's bool matrix [N, columns]; ``name_breaches(row)`` names the
    columns set in one of its rows (only rows with a breach are named).
    """
    # A float64 threshold, so the comparison happens in float64 as in the parity check
    # (against a Python float, NumPy 2 would round the threshold to float32 instead).
    flags = scores > np.float64(threshold)
    breached = breaches.any(axis=1)
    if breached.any():
        flags |= breached
    # map() over C callables: no Python bytecode runs per reading.
    predictions = list(map(Prediction, flags.tolist(), scores.tolist()))
    for row in np.flatnonzero(breached).tolist():  # out-of-range readings only: rare
        predictions[row] = Prediction(True, predictions[row].score, name_breaches(breaches[row]))
    return PredictResponse(
        predictions=predictions,
        anomalies=int(np.count_nonzero(flags)),
        total=len(predictions),
        served_by=served_by,
    )


def breach_counts(
    breaches: np.ndarray, columns: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """How many rows breached each (feature, low|high) column; only non-zero entries."""
    counts = np.count_nonzero(breaches, axis=0).tolist()
    return {column: n for column, n in zip(columns, counts, strict=True) if n}
