"""Names and opsets the compiled graphs share with the server (recorded in the metadata)."""

from typing import Any

INPUT_NAME = "readings"
OUTPUT_NAME = "score"
ENVELOPE_LOW = "envelope_low"
ENVELOPE_HIGH = "envelope_high"
BREACH_OUTPUT = "breach"
ATTRIBUTION_OUTPUT = "attribution"
# skl2onnx would pick ai.onnx.ml 4 by default, which it cannot emit for this model.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}


def require_opset(model: Any, version: int) -> None:
    """Declare at least ``version`` of the default ONNX domain.

    skl2onnx declares the lowest opset its own nodes need (6 for Exp), below the 7 that
    onnxruntime guarantees, and too low for the guard's Less/Greater on float.
    """
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, version)
