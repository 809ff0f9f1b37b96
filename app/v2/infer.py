"""``POST /v2/models/{model}[/versions/{version}]/infer``: the Open Inference Protocol's wire
format on gridscore's scoring path (``app/serving/endpoint.py``).

Decoding lands in the same float32 matrix ``/predict`` builds, so everything after it (the
model call, the verdicts, the metrics, drift, shadow) is shared. Two encodings of the input:

- JSON ``data``, flat or nested row-major: msgspec decodes the array by its declared shape
  (``list[float]`` or ``list[list[float]]``, strict: no strings, booleans or nulls) and numpy
  copies it into the matrix; no Python bytecode runs per number.
- The binary tensor extension: the request's JSON is ``Inference-Header-Content-Length``
  bytes long and the tensor's little-endian float32 bytes follow it; the matrix is a view of
  the request body (no copy) when the bytes sit 4-byte aligned, a single copy otherwise.

Outputs go back as JSON ``data`` or, when asked for (``parameters.binary_data`` per output,
or ``binary_data_output`` for all), as raw bytes after the JSON, in the order listed.
Everything a request can get wrong is a 400 with the protocol's ``{"error": ...}`` body;
an unknown model or version is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from app.contract.errors import ApiError
from app.contract.v2 import (
    HEADER_LENGTH,
    INPUT,
    OUTPUTS,
    InferRequest,
    InferResponse,
    Parameters,
    RequestInput,
    ResponseOutput,
    V2Error,
)
from app.model.verdicts import Verdicts, attribution_shares
from app.serving.endpoint import Headers

if TYPE_CHECKING:
    from app.model.holder import LoadedModel, ModelHolder

HEADER_LENGTH_BYTES = HEADER_LENGTH.encode()
JSON_TYPE = (b"content-type", b"application/json")
BINARY_TYPE = (b"content-type", b"application/octet-stream")
INFER_PATH = "/v2/models/{model}/infer"
VERSIONED_INFER_PATH = "/v2/models/{model}/versions/{version}/infer"

_decode_request = msgspec.json.Decoder(InferRequest).decode
_decode_flat = msgspec.json.Decoder(list[float]).decode
_decode_nested = msgspec.json.Decoder(list[list[float]]).decode
_encode = msgspec.json.Encoder().encode


def bad(detail: str) -> ApiError:
    return ApiError(400, "bad_request", detail)


def check_served(name: str, version: str, served_name: str, model: LoadedModel | None) -> None:
    """Raise the 404 for a model ``name`` other than the served one, or for a ``version``
    (when one is given and a model is loaded) other than the loaded model's."""
    if name != served_name:
        raise ApiError(
            404, "not_found", f"unknown model {name!r}; this server serves {served_name!r}"
        )
    if version and model is not None and not version_matches(version, model.digest):
        raise ApiError(
            404,
            "not_found",
            f"model version {version!r} is not served; the version is {version_of(model.digest)!r}",
        )


def version_of(digest: str) -> str:
    """A model's version on the v2 routes: its digest's first 12 characters."""
    return digest[:12]


def version_matches(version: str, digest: str) -> bool:
    """The version given in a path names ``digest``: its 12-character prefix or longer."""
    return len(version) >= 12 and digest.startswith(version)


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``encode`` needs: the request's id and the outputs asked for, in order."""

    id: str | None
    outputs: tuple[tuple[str, bool], ...]  # (name, as binary)


def _flag(parameters: Parameters | None, name: str, where: str) -> bool:
    value = (parameters or {}).get(name, False)
    if not isinstance(value, bool):
        raise bad(f"{where}.parameters.{name} must be true or false")
    return value


def json_matrix(data: msgspec.Raw, rows: int, columns: int) -> np.ndarray:
    """A JSON tensor of ``rows`` x ``columns`` numbers, flat or nested, as float32."""
    text = bytes(data).lstrip()
    nested = text[:1] == b"[" and text[1:].lstrip()[:1] == b"["
    try:
        if nested:
            nested_rows: list[list[float]] = _decode_nested(text)
            try:  # numpy checks the rows' lengths in C
                with np.errstate(over="ignore"):  # beyond float32: refused as non-finite
                    matrix = np.array(nested_rows, dtype=np.float32)
            except ValueError:
                raise bad("inputs[0].data has rows of different lengths") from None
            if matrix.shape != (rows, columns):
                raise bad(
                    f"inputs[0].data is nested as {list(matrix.shape)}; shape says "
                    f"[{rows}, {columns}]"
                )
            return matrix
        flat: list[float] = _decode_flat(text)
    except msgspec.ValidationError as exc:
        raise bad(f"inputs[0].data must be numbers, flat or nested by rows: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise bad(f"inputs[0].data is not a JSON array of numbers: {exc}") from None
    if len(flat) != rows * columns:
        raise bad(
            f"inputs[0].data holds {len(flat)} numbers; shape [{rows}, {columns}] needs "
            f"{rows * columns}"
        )
    with np.errstate(over="ignore"):  # beyond float32 is infinity: refused as non-finite
        return np.array(flat, dtype=np.float32).reshape(rows, columns)


def binary_matrix(body: memoryview, rows: int, columns: int) -> np.ndarray:
    """``rows`` x ``columns`` little-endian float32 from the request body: a view of it when
    aligned (onnxruntime reads it in place), else one copy."""
    matrix = np.frombuffer(body, dtype="<f4", count=rows * columns).reshape(rows, columns)
    return matrix if matrix.flags.aligned else matrix.copy()


class InferV2:
    """The ScoringProtocol of the v2 infer routes (one instance per route template)."""

    def __init__(
        self,
        path: str,
        served_name: str,
        holder: ModelHolder,
        features: tuple[str, ...],
        served_by: str,
    ) -> None:
        self.path = path
        self.served_name = served_name
        self.served_by = served_by
        self.holder = holder
        self.columns = len(features)
        self._prefix = "/v2/models/"

    # -- decode ---------------------------------------------------------------------------

    def _check_route(self, path: str) -> None:
        """The model named in the path is the served one (and the version, if given)."""
        rest = path[len(self._prefix) : -len("/infer")]
        name, _, version = rest.partition("/versions/")
        check_served(name, version, self.served_name, self.holder.model)

    def decode(self, body: bytes, scope: Any) -> tuple[np.ndarray, Answer]:
        self._check_route(scope["path"])
        header_length = None
        for name, value in scope["headers"]:
            if name == HEADER_LENGTH_BYTES:
                try:
                    header_length = int(value)
                except ValueError:
                    raise bad(f"{HEADER_LENGTH} is not a number") from None
                if not 0 < header_length <= len(body):
                    raise bad(f"{HEADER_LENGTH} is {header_length}; the body has {len(body)} bytes")
                break
        head = body if header_length is None else memoryview(body)[:header_length]
        try:
            request = _decode_request(head)
        except msgspec.ValidationError as exc:
            raise bad(f"not an inference request: {exc}") from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            where = "the JSON part of the body" if header_length is not None else "the body"
            raise bad(f"{where} is not valid JSON: {exc}") from None
        tail = memoryview(body)[header_length:] if header_length is not None else None
        matrix = self._matrix(request.inputs, tail)
        return matrix, self._answer(request)

    def _matrix(self, inputs: list[RequestInput], tail: memoryview | None) -> np.ndarray:
        if len(inputs) != 1:
            raise bad(f"{len(inputs)} inputs; the model has one, {INPUT!r}")
        given = inputs[0]
        if given.name != INPUT:
            raise bad(f"unknown input {given.name!r}; the model's input is {INPUT!r}")
        if given.datatype != "FP32":
            raise bad(f"inputs[0].datatype is {given.datatype!r}; {INPUT!r} is FP32")
        shape = given.shape
        columns = self.columns
        if len(shape) != 2 or shape[1] != columns or shape[0] < 1:
            raise bad(
                f"inputs[0].shape is {shape}; {INPUT!r} is [N, {columns}] with N >= 1 "
                f"(one row per reading, one column per feature)"
            )
        rows = shape[0]
        size = (given.parameters or {}).get("binary_data_size")
        if size is None:
            if not len(given.data):
                raise bad("inputs[0] has neither data nor parameters.binary_data_size")
            if tail is not None and len(tail):
                raise bad(f"{len(tail)} bytes after the JSON part, and no binary input")
            matrix = json_matrix(given.data, rows, columns)
        else:
            matrix = self._binary(given, size, rows, tail)
        if not np.isfinite(matrix).all():
            row, column = np.argwhere(~np.isfinite(matrix))[0].tolist()
            raise bad(
                f"non-finite value (NaN or Infinity, or beyond float32) in row {row}, "
                f"column {column} of {INPUT!r}"
            )
        return matrix

    def _binary(
        self, given: RequestInput, size: object, rows: int, tail: memoryview | None
    ) -> np.ndarray:
        if len(given.data):
            raise bad("inputs[0] has both data and parameters.binary_data_size")
        if tail is None:
            raise bad(f"inputs[0] is binary, and the request has no {HEADER_LENGTH} header")
        if isinstance(size, bool) or not isinstance(size, int):
            raise bad("inputs[0].parameters.binary_data_size must be an integer")
        needed = rows * self.columns * 4
        if size != needed:
            raise bad(
                f"inputs[0].parameters.binary_data_size is {size}; shape [{rows}, "
                f"{self.columns}] of FP32 is {needed} bytes"
            )
        if len(tail) != size:
            raise bad(
                f"the body holds {len(tail)} bytes after the JSON part; the binary input is "
                f"{size} bytes"
            )
        return binary_matrix(tail, rows, self.columns)

    def _answer(self, request: InferRequest) -> Answer:
        binary_default = _flag(request.parameters, "binary_data_output", "request")
        if request.outputs is None:
            return Answer(request.id, tuple((name, binary_default) for name in OUTPUTS))
        outputs: list[tuple[str, bool]] = []
        for index, output in enumerate(request.outputs):
            if output.name not in OUTPUTS:
                raise bad(f"unknown output {output.name!r}; the outputs are {list(OUTPUTS)}")
            if any(output.name == name for name, _ in outputs):
                raise bad(f"output {output.name!r} is asked for twice")
            where = f"outputs[{index}]"
            binary = (
                _flag(output.parameters, "binary_data", where)
                if "binary_data" in (output.parameters or {})
                else binary_default
            )
            outputs.append((output.name, binary))
        return Answer(request.id, tuple(outputs))

    # -- encode ---------------------------------------------------------------------------

    def encode(self, verdicts: Verdicts, context: Any) -> tuple[bytes, Headers]:
        answer: Answer = context
        rows = len(verdicts.scores)
        outputs: list[ResponseOutput] = []
        chunks: list[bytes] = []
        for name, binary in answer.outputs:
            datatype, shape, values = self._output(name, verdicts, rows)
            if binary:
                raw = values.tobytes()
                chunks.append(raw)
                outputs.append(
                    ResponseOutput(name, datatype, shape, {"binary_data_size": len(raw)})
                )
            else:
                outputs.append(ResponseOutput(name, datatype, shape, data=values.ravel().tolist()))
        model = verdicts.model
        head = _encode(
            InferResponse(
                model_name=self.served_name,
                outputs=outputs,
                model_version=version_of(model.digest),
                id=answer.id,
                parameters={"served_by": self.served_by},
            )
        )
        if not chunks:
            return head, [JSON_TYPE]
        return b"".join([head, *chunks]), [
            BINARY_TYPE,
            (HEADER_LENGTH_BYTES, str(len(head)).encode()),
        ]

    @staticmethod
    def _output(name: str, verdicts: Verdicts, rows: int) -> tuple[str, list[int], np.ndarray]:
        if name == "score":
            return "FP32", [rows], verdicts.scores.astype("<f4", copy=False)
        if name == "anomaly":
            return "BOOL", [rows], verdicts.flags
        if name == "out_of_range":
            breaches = verdicts.breaches
            return "BOOL", [rows, breaches.shape[1]], breaches
        shares = attribution_shares(verdicts).astype("<f4")
        return "FP32", [rows, shares.shape[1]], shares

    def explains(self, context: Any) -> str:
        answer: Answer = context
        return "all" if any(name == "attribution" for name, _ in answer.outputs) else "none"

    def error(self, exc: ApiError) -> bytes:
        return _encode(V2Error(exc.detail))
