"""Append the operating-envelope guard to a compiled graph.

An IsolationForest cannot see past its training range: beyond the data every split sends a
reading the same way, so 150 V or 60 A can score like a normal reading. The guard compares each
feature with bounds given as two graph inputs (so operators can change them without
recompiling) and outputs ``breach``, a bool matrix [N, 2 * features]: column ``i`` is "feature
``i`` below its lower bound", column ``features + i`` "above its upper bound". Three nodes
(Less, Greater, Concat); the forest's score is untouched, and scoring stays one onnxruntime
call per batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

from convert.graph_names import (
    BREACH_OUTPUT,
    ENVELOPE_HIGH,
    ENVELOPE_LOW,
    INPUT_NAME,
    require_opset,
)

# Bounds derived from training data: the observed range widened on each side by this share of
# its width. For the normal training data that puts each bound more than 5 standard deviations
# from the mean, so nominal traffic is practically never affected.
TRAINED_MARGIN = 0.25
BREACH_LAYOUT = "bool [N, 2F]: column i = feature i below min, column F + i = feature i above max"


def trained_envelope(matrix: np.ndarray, features: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-feature [low, high]: the training range widened by TRAINED_MARGIN of its width."""
    return widened(matrix.min(axis=0), matrix.max(axis=0), features)


def widened(low: np.ndarray, high: np.ndarray, features: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-feature [low, high] widened by TRAINED_MARGIN of the width on each side."""
    margin = (high - low) * TRAINED_MARGIN
    return {
        name: [float(lo), float(hi)]
        for name, lo, hi in zip(features, low - margin, high + margin, strict=True)
    }


def add_envelope_guard(model: Any, n_features: int) -> Any:
    """Add inputs envelope_low/high [n_features] and the bool output breach [N, 2 n_features]."""
    graph = model.graph
    require_opset(model, 13)  # the oldest opset with all three guard nodes as written
    graph.input.extend(
        [
            helper.make_tensor_value_info(ENVELOPE_LOW, TensorProto.FLOAT, [n_features]),
            helper.make_tensor_value_info(ENVELOPE_HIGH, TensorProto.FLOAT, [n_features]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Less", [INPUT_NAME, ENVELOPE_LOW], ["below"], name="EnvelopeBelow"),
            helper.make_node(
                "Greater", [INPUT_NAME, ENVELOPE_HIGH], ["above"], name="EnvelopeAbove"
            ),
            helper.make_node(
                "Concat", ["below", "above"], [BREACH_OUTPUT], axis=1, name="EnvelopeBreach"
            ),
        ]
    )
    graph.output.extend(
        [helper.make_tensor_value_info(BREACH_OUTPUT, TensorProto.BOOL, [None, 2 * n_features])]
    )
    return model
