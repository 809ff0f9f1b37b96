"""Names and opsets the compiled graphs share with the server (recorded in the metadata)."""

INPUT_NAME = "readings"
OUTPUT_NAME = "score"
ENVELOPE_LOW = "envelope_low"
ENVELOPE_HIGH = "envelope_high"
BREACH_OUTPUT = "breach"
# skl2onnx would pick ai.onnx.ml 4 by default, which it cannot emit for this model.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
