"""Readings to a float32 matrix, scores to a response: the vectorised middle of /predict."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from app.contract.api import Prediction, PredictResponse
from app.model.verdicts import attribution_shares

if TYPE_CHECKING:
    from app.model.verdicts import Verdicts


def feature_matrix(readings: list[Any], features: tuple[str, ...]) -> np.ndarray:
    """Rows of ``features`` (in that order) as float32, built without a Python-level loop."""
    values: Iterable[float]
    if len(features) == 1:  # attrgetter of one name yields scalars, not tuples
        values = map(attrgetter(features[0]), readings)
    else:
        values = chain.from_iterable(map(attrgetter(*features), readings))
    flat = np.fromiter(values, dtype=np.float32, count=len(readings) * len(features))
    return flat.reshape(len(readings), len(features))


def build_response(verdicts: Verdicts, served_by: str, explain: str = "flagged") -> PredictResponse:
    """Predictions in request order; ``out_of_range`` named only on rows with a breach, and
    the attribution on the rows ``explain`` asks for (flagged, all or none)."""
    # map() over C callables: no Python bytecode runs per reading.
    predictions = list(map(Prediction, verdicts.flags.tolist(), verdicts.scores.tolist()))
    if verdicts.breached:  # out-of-range readings only: rare
        breaches = verdicts.breaches
        name = verdicts.model.name_breaches
        for row in np.flatnonzero(breaches.any(axis=1)).tolist():
            predictions[row] = Prediction(True, predictions[row].score, name(breaches[row]))
    if explain == "all":
        explained = np.arange(len(predictions))
    elif explain == "flagged" and verdicts.anomalies:
        explained = np.flatnonzero(verdicts.flags)
    else:
        explained = np.empty(0, dtype=np.int64)
    if len(explained):
        features = verdicts.model.features
        shares = attribution_shares(verdicts, explained)
        tops = shares.argmax(axis=1).tolist()
        for row, row_shares, top in zip(explained.tolist(), shares.tolist(), tops, strict=True):
            given = predictions[row]
            predictions[row] = Prediction(
                given.anomaly,
                given.score,
                given.out_of_range,
                dict(zip(features, row_shares, strict=True)),
                features[top],
            )
    return PredictResponse(
        predictions=predictions,
        anomalies=verdicts.anomalies,
        total=len(predictions),
        served_by=served_by,
        model=verdicts.model.digest[:12],
    )


def breach_counts(
    breaches: np.ndarray, columns: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """How many rows breached each (feature, low|high) column; only non-zero entries."""
    counts = np.count_nonzero(breaches, axis=0).tolist()
    return {column: n for column, n in zip(columns, counts, strict=True) if n}
