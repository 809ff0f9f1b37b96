"""Append the operating-envelope guard to a compiled graph.

An IsolationForest cannot see past its training range: beyond the data every split sends a
reading the same way, so 150 V or 60 A can score like a normal reading. The guard compares each
feature with bounds given as two graph inputs (so operators can change them without
recompiling) and returns one int32 code per row, bit ``2i`` set when feature ``i`` is below its
lower bound and bit ``2i + 1`` when above its upper bound. The forest's score is untouched, and
scoring stays one onnxruntime call per batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from convert.graph_names import BREACH_OUTPUT, ENVELOPE_HIGH, ENVELOPE_LOW, INPUT_NAME

# Bounds derived from training data: the observed range widened on each side by this share of
# its width. For the normal training data that puts each bound more than 5 standard deviations
# from the mean, so nominal traffic is practically never affected.
TRAINED_MARGIN = 0.25


def trained_envelope(matrix: np.ndarray, features: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-feature [low, high]: the training range widened by TRAINED_MARGIN of its width."""
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    margin = (high - low) * TRAINED_MARGIN
    return {
        name: [float(lo), float(hi)]
        for name, lo, hi in zip(features, low - margin, high + margin, strict=True)
    }


def add_envelope_guard(model: Any, n_features: int) -> Any:
    """Add inputs envelope_low/high [n_features] and output breach [N] (int32 bit codes)."""
    graph = model.graph
    low_bits = np.array([2.0 ** (2 * i) for i in range(n_features)], dtype=np.float32)
    high_bits = np.array([2.0 ** (2 * i + 1) for i in range(n_features)], dtype=np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(low_bits, "envelope_low_bits"),
            numpy_helper.from_array(high_bits, "envelope_high_bits"),
        ]
    )
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
            helper.make_node("Cast", ["below"], ["below_f"], to=TensorProto.FLOAT),
            helper.make_node("Cast", ["above"], ["above_f"], to=TensorProto.FLOAT),
            helper.make_node("MatMul", ["below_f", "envelope_low_bits"], ["below_code"]),
            helper.make_node("MatMul", ["above_f", "envelope_high_bits"], ["above_code"]),
            helper.make_node("Add", ["below_code", "above_code"], ["breach_f"]),
            helper.make_node("Cast", ["breach_f"], [BREACH_OUTPUT], to=TensorProto.INT32),
        ]
    )
    graph.output.extend([helper.make_tensor_value_info(BREACH_OUTPUT, TensorProto.INT32, [None])])
    return model
