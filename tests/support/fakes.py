"""Fake scorers and holders for tests that must control what the model does."""

from __future__ import annotations

import math

import numpy as np

from app.envelope import resolve
from app.holder import LoadedModel, ModelHolder, Status

FEATURES = ("voltage", "current", "frequency")
OPEN = {name: [-math.inf, math.inf] for name in FEATURES}


class ExplodingScorer:
    """Raises inside inference, as a corrupted session would."""

    features = FEATURES

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("simulated onnxruntime failure")


class EchoScorer:
    """Scores each row with its voltage / 1000 and reports no breach, so tests know the answer."""

    features = FEATURES

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = (matrix[:, 0] / 1000.0).astype(np.float32)
        return scores, np.zeros((len(matrix), 2 * len(FEATURES)), dtype=bool)


def holder_with(scorer: object, threshold: float = 0.5) -> ModelHolder:
    holder = ModelHolder()
    envelope = resolve(FEATURES, OPEN, "trained")
    holder.model = LoadedModel(
        scorer=scorer,  # type: ignore[arg-type]
        name="fake",
        digest="0" * 64,
        features=FEATURES,
        threshold=threshold,
        envelope=envelope,
        breach_names=envelope.breach_names(),
        breach_columns=envelope.breach_columns(),
    )
    holder.status = Status.OK
    holder.reason = ""
    return holder
