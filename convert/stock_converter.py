"""skl2onnx's own IsolationForest graph, kept for the kernel benchmark's comparison."""

from __future__ import annotations

from typing import Any

from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import IsolationForest

from convert.graph_names import INPUT_NAME, TARGET_OPSET

STOCK_SCORE_OUTPUT = "scores"
"""The stock graph outputs ``label`` and ``scores`` = decision_function (not the paper's score:
it is ``-(scores + offset_)``, as bench/kernel_backends.py computes it)."""


def to_stock_onnx(model: IsolationForest) -> Any:
    """The ModelProto skl2onnx builds with its stock converter."""
    return convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, model.n_features_in_]))],
        target_opset=TARGET_OPSET,
    )
