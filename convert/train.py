"""Fit the IsolationForest with the parameters docs/model.md states."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

MODEL_PARAMS: dict[str, Any] = {"n_estimators": 200, "contamination": 0.05, "random_state": 42}
"""The defaults (--n-estimators, --contamination, --seed); max_samples stays sklearn's auto."""


def fit(matrix: np.ndarray, **overrides: Any) -> IsolationForest:
    """Fit on ``matrix`` (rows x features); ``overrides`` change the defaults."""
    model = IsolationForest(**{**MODEL_PARAMS, **overrides})
    model.fit(matrix)
    return model


def paper_scores(model: IsolationForest, matrix: np.ndarray) -> np.ndarray:
    """The anomaly score of the original paper, ``-score_samples``, in (0, 1]."""
    scores: np.ndarray = -model.score_samples(matrix)
    return scores


def trained_threshold(model: IsolationForest) -> float:
    """Paper score above which sklearn's ``predict`` gives -1 (``-offset_``)."""
    return float(-model.offset_)
