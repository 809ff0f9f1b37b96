"""The catalogue of malformed Open Inference Protocol (v2) infer requests, each with the
status it gets and words its ``{"error": ...}`` message must contain. Run in-process
(tests/app/test_v2_protocol.py) and against a live server (tests/app/test_v2_client.py).

The synthetic model's input is ``readings``, FP32 ``[N, 3]``.
"""

from __future__ import annotations

import json
import struct
from typing import Any, NamedTuple

from tests.support.catalogue import MAX_BATCH

NAME = "gridscore-iforest"
PATH = f"/v2/models/{NAME}/infer"
ROW = [230.0, 10.0, 50.0]
HEADER = "Inference-Header-Content-Length"


class V2Case(NamedTuple):
    name: str
    body: bytes
    status: int
    says: str  # a fragment of the error message
    headers: tuple[tuple[str, str], ...] = ()
    path: str = PATH


def tensor(**changes: Any) -> dict[str, Any]:
    return {"name": "readings", "shape": [1, 3], "datatype": "FP32", "data": ROW, **changes}


def request(*inputs: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"inputs": list(inputs or [tensor()]), **top}).encode()


def binary(
    rows: list[list[float]],
    size: int | None = None,
    extra: bytes = b"",
    outputs: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """A binary-extension body: the JSON part, then the floats (``size`` as declared), then
    ``extra``; ``outputs`` as asked for, ``changes`` to the input tensor."""
    values = [v for row in rows for v in row]
    raw = struct.pack(f"<{len(values)}f", *values)
    declared = len(raw) if size is None else size
    request: dict[str, Any] = {
        "inputs": [
            {
                "name": "readings",
                "shape": [len(rows), 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": declared},
                **changes,
            }
        ]
    }
    if outputs is not None:
        request["outputs"] = outputs
    head = json.dumps(request).encode()
    return head + raw + extra, ((HEADER, str(len(head))),)


def _without_data(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in tensor(**changes).items() if k != "data"}


def _binary_case(name: str, status: int, says: str, *args: Any, **kwargs: Any) -> V2Case:
    body, headers = binary(*args, **kwargs)
    return V2Case(name, body, status, says, headers)


_ok_binary, _ok_headers = binary([ROW])

CASES: tuple[V2Case, ...] = (
    # Not an inference request at all.
    V2Case("not JSON", b"{", 400, "not valid JSON"),
    V2Case("empty body", b"", 400, "empty"),
    V2Case("top level array", b"[]", 400, "not an inference request"),
    V2Case("no inputs", b"{}", 400, "inputs"),
    V2Case("empty inputs", b'{"inputs": []}', 400, "inputs"),
    V2Case("unknown top-level field", request(model="x"), 400, "model"),
    V2Case("id not a string", request(id=42), 400, "$.id"),
    # The input tensor is not the model's.
    V2Case("two inputs", request(tensor(), tensor()), 400, "2 inputs"),
    V2Case("wrong input name", request(tensor(name="x")), 400, "unknown input 'x'"),
    V2Case("FP64", request(tensor(datatype="FP64")), 400, "FP32"),
    V2Case("INT32", request(tensor(datatype="INT32", data=[230, 10, 50])), 400, "FP32"),
    V2Case("one-dimensional shape", request(tensor(shape=[3])), 400, "[N, 3]"),
    V2Case("four columns", request(tensor(shape=[1, 4], data=[*ROW, 1.0])), 400, "[N, 3]"),
    V2Case("zero rows", request(tensor(shape=[0, 3], data=[])), 400, "N >= 1"),
    V2Case("negative rows", request(tensor(shape=[-1, 3])), 400, "N >= 1"),
    V2Case("shape of strings", request(tensor(shape=["1", "3"])), 400, "shape"),
    # JSON data that do not fit the shape or are not numbers.
    V2Case("too few numbers", request(tensor(shape=[2, 3])), 400, "needs 6"),
    V2Case("too many numbers", request(tensor(data=[*ROW, *ROW])), 400, "needs 3"),
    V2Case("ragged rows", request(tensor(shape=[2, 3], data=[ROW, [1.0]])), 400, "lengths"),
    V2Case("nested rows not the shape", request(tensor(shape=[2, 3], data=[ROW])), 400, "[1, 3]"),
    V2Case("a string", request(tensor(data=["230", 10, 50])), 400, "numbers"),
    V2Case("a boolean", request(tensor(data=[True, 10, 50])), 400, "numbers"),
    V2Case("a null", request(tensor(data=[None, 10, 50])), 400, "numbers"),
    V2Case("beyond float32", request(tensor(data=[1e39, 10, 50])), 400, "non-finite"),
    V2Case("data not an array", request(tensor(data=5)), 400, "data"),
    V2Case("neither data nor binary", request(_without_data()), 400, "neither data"),
    V2Case("empty data", request(tensor(data=[])), 400, "needs 3"),
    # The binary tensor extension, wrongly sized or framed.
    V2Case("binary without the header", _ok_binary, 400, "not valid JSON"),
    V2Case(
        "binary size declared, no header",
        request(_without_data(parameters={"binary_data_size": 12})),
        400,
        "no inference-header-content-length header",
    ),
    _binary_case("binary size not the shape's", 400, "is 8", [ROW], size=8),
    _binary_case("binary part truncated", 400, "holds 8 bytes", [[230.0, 10.0]], size=12),
    _binary_case("bytes after the binary part", 400, "holds 16 bytes", [ROW], extra=b"\0" * 4),
    _binary_case("binary NaN", 400, "non-finite", [[float("nan"), 10.0, 50.0]]),
    _binary_case("binary infinity", 400, "non-finite", [[float("inf"), 10.0, 50.0]]),
    _binary_case("binary and data both", 400, "both", [ROW], data=ROW),
    _binary_case("binary size a string", 400, "integer", [ROW], size="12"),  # type: ignore[arg-type]
    V2Case(
        "header longer than the body",
        _ok_binary,
        400,
        "the body has",
        ((HEADER, str(len(_ok_binary) + 1)),),
    ),
    V2Case("header not a number", _ok_binary, 400, "not a number", ((HEADER, "x"),)),
    V2Case(
        "JSON part cut short by the header",
        _ok_binary,
        400,
        "JSON part",
        ((HEADER, str(int(_ok_headers[0][1]) - 5)),),
    ),
    V2Case("JSON bytes after a JSON request", request() + b"\0\0\0\0", 400, "not valid JSON"),
    # Outputs asked for wrongly.
    V2Case("unknown output", request(outputs=[{"name": "verdict"}]), 400, "unknown output"),
    V2Case(
        "output asked twice", request(outputs=[{"name": "score"}, {"name": "score"}]), 400, "twice"
    ),
    V2Case(
        "binary_data not a boolean",
        request(outputs=[{"name": "score", "parameters": {"binary_data": "yes"}}]),
        400,
        "true or false",
    ),
    V2Case(
        "binary_data_output not a boolean",
        request(parameters={"binary_data_output": 1}),
        400,
        "true or false",
    ),
    # Not this model, or too much.
    V2Case("unknown model", request(), 404, "unknown model 'other'", path="/v2/models/other/infer"),
    V2Case(
        "unknown version",
        request(),
        404,
        "version '000000000000'",
        path=f"/v2/models/{NAME}/versions/000000000000/infer",
    ),
    V2Case(
        "batch over MAX_BATCH",
        request(tensor(shape=[MAX_BATCH + 1, 3], data=ROW * (MAX_BATCH + 1))),
        413,
        "at most",
    ),
)
