"""The Open Inference Protocol's (KServe v2) REST objects as msgspec Structs.

Only the JSON objects: the numbers of an inference request are decoded in
``app/v2/infer.py``, straight into a float32 matrix. No numpy here, so the dashboard (which
sends v2 requests in its bursts) can import this module.

Names and shapes follow the protocol (docs/v2.md has the whole mapping):

    input   readings      FP32 [-1, F]   the artifact's features, in its order
    output  score         FP32 [-1]      the forest's anomaly score
    output  anomaly       BOOL [-1]      score over the threshold, or out of the envelope
    output  out_of_range  BOOL [-1, 2F]  envelope breaches: every feature low, then every high
    output  attribution   FP32 [-1, F]   each feature's share of the isolation (sums to 1)
"""

from __future__ import annotations

from typing import Annotated

import msgspec

INPUT = "readings"
OUTPUTS = ("score", "anomaly", "out_of_range", "attribution")
PLATFORM = "onnx_onnxv1"  # the protocol's name for "an ONNX model for ONNX Runtime"
BINARY_EXTENSION = "binary_tensor_data"
HEADER_LENGTH = "inference-header-content-length"  # bytes of JSON before the binary tensors

Parameter = str | int | float | bool
Parameters = dict[str, Parameter]


TensorData = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        description="The tensor's numbers in row-major order: flat, or nested by rows. "
        "Absent when the tensor is sent as binary (parameters.binary_data_size).",
        extra_json_schema={
            "type": "array",
            "items": {
                "anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]
            },
        },
    ),
]


class RequestInput(msgspec.Struct, forbid_unknown_fields=True):
    """One input tensor: JSON ``data`` (flat or nested, row-major), or with the binary
    extension ``parameters.binary_data_size`` bytes after the JSON."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    # Kept raw (empty when absent): the numbers are decoded by shape into a float32 matrix.
    data: TensorData = msgspec.field(default_factory=msgspec.Raw)


class RequestOutput(msgspec.Struct, forbid_unknown_fields=True):
    """An output asked for; ``parameters.binary_data`` asks for it as binary."""

    name: str
    parameters: Parameters | None = None


class InferRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v2/models/{model}/infer``. No ``outputs``: every output, as JSON unless
    ``parameters.binary_data_output`` is true."""

    inputs: Annotated[list[RequestInput], msgspec.Meta(min_length=1)]
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[RequestOutput] | None = None


class ResponseOutput(msgspec.Struct, omit_defaults=True):
    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | None = None  # binary_data_size, when sent as binary
    data: list[float | bool] | None = None  # row-major, flat


class InferResponse(msgspec.Struct, omit_defaults=True):
    """The answer: ``model_version`` is the digest prefix of the model that scored the
    batch; ``parameters`` name the instance (``served_by``) as ``/predict`` does."""

    model_name: str
    outputs: list[ResponseOutput]
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None


class TensorMetadata(msgspec.Struct):
    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(msgspec.Struct):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(msgspec.Struct):
    """``GET /v2/models/{model}``; ``properties`` (strings, as the protocol allows) name the
    features, their units, the out-of-range columns and the digest."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    properties: dict[str, str]


class Live(msgspec.Struct):
    live: bool


class Ready(msgspec.Struct):
    ready: bool


class ModelReady(msgspec.Struct):
    name: str
    ready: bool


class V2Error(msgspec.Struct):
    """Every v2 error: the protocol's shape, one message."""

    error: str
