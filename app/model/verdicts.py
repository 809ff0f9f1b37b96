"""What the model says about a batch: each reading's score, envelope breaches, anomaly flag
and attribution, as one set of arrays every transport answers from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.model.holder import LoadedModel


@dataclass(slots=True)
class Verdicts:
    """What the model said about each row of one request."""

    scores: np.ndarray  # float32 [N]: the forest's score
    breaches: np.ndarray  # bool [N, 2F]: envelope breaches (low columns, then high)
    flags: np.ndarray  # bool [N]: anomaly = score above the threshold or any breach
    anomalies: int
    breached: bool  # any row out of the envelope
    attribution: np.ndarray  # float32 [N, F], raw; build_response makes shares
    model: LoadedModel


def verdicts_for(
    model: LoadedModel,
    scores: np.ndarray,
    breaches: np.ndarray,
    attribution: np.ndarray,
) -> Verdicts:
    # A float64 threshold, so the comparison happens in float64 as in the parity check
    # (against a Python float, NumPy 2 would round the threshold to float32 instead).
    flags = scores > model.threshold64
    breached = bool(breaches.any())
    if breached:
        flags |= breaches.any(axis=1)
    return Verdicts(
        scores, breaches, flags, int(np.count_nonzero(flags)), breached, attribution, model
    )


def attribution_shares(verdicts: Verdicts, rows: np.ndarray | None = None) -> np.ndarray:
    """The attribution of ``rows`` (all rows when None) as shares that sum to 1 (float64)."""
    # The graph's output less the node's base values is a positive multiple of A.
    offsets = np.asarray(verdicts.model.metadata.attribution.offsets)
    attribution = verdicts.attribution if rows is None else verdicts.attribution[rows]
    raw = attribution.astype(np.float64) - offsets
    totals = raw.sum(axis=1, keepdims=True)
    shares: np.ndarray = np.divide(raw, totals, out=np.zeros_like(raw), where=totals > 0)
    return shares
