"""The catalogue of malformed /predict requests: each with the status, error code and field
the API documents (docs/api.md). Run in-process (tests/app/test_predict.py, which also checks
that a refusal moves nothing but requests_total) and against a live server
(tests/app/test_catalogue.py, which also checks the server stays healthy)."""

from __future__ import annotations

import json
from typing import NamedTuple

from tests.support.examples import NOMINAL

MAX_BATCH = 100
MAX_BODY_BYTES = 65_536
LIMITS = {"MAX_BATCH": str(MAX_BATCH), "MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
"""The limits the catalogue's servers run with (413 cases depend on them)."""

JSON = "application/json"


class Case(NamedTuple):
    name: str
    body: bytes
    status: int
    error: str
    field: str | None = None
    content_type: str | None = JSON  # None: no content-type header at all


def one_reading(**changes: object) -> bytes:
    """A body of one nominal reading with ``changes`` applied."""
    return json.dumps({"readings": [{**NOMINAL, **changes}]}).encode()


R0 = "$.readings[0]"

CASES: tuple[Case, ...] = (
    # The body is not JSON at all.
    Case("invalid JSON", b"{", 400, "malformed_json"),
    Case("truncated JSON", b'{"readings": [{"voltage": 23', 400, "malformed_json"),
    Case(
        "invalid UTF-8 in a string",
        b'{"readings": [{"voltage": 1, "current": 1, "frequency": 1, "timestamp": "\xff\xfe"}]}',
        400,
        "malformed_json",
    ),
    Case("trailing garbage", one_reading() + b" xyz", 400, "malformed_json"),
    Case("empty body", b"", 400, "bad_request"),
    # JSON of the wrong shape.
    Case("top level array", b"[]", 422, "invalid_field", "$"),
    Case("top level number", b"5", 422, "invalid_field", "$"),
    Case("empty object", b"{}", 422, "invalid_field", "$.readings"),
    Case("readings null", b'{"readings": null}', 422, "invalid_field", "$.readings"),
    Case("readings a string", b'{"readings": "lots"}', 422, "invalid_field", "$.readings"),
    Case(
        "readings an object",
        json.dumps({"readings": NOMINAL}).encode(),
        422,
        "invalid_field",
        "$.readings",
    ),
    Case("empty readings", b'{"readings": []}', 400, "empty_batch", "$.readings"),
    Case("reading not an object", b'{"readings": [[230, 10, 50]]}', 422, "invalid_field", R0),
    Case(
        "deeply nested",
        b'{"readings": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        422,
        "invalid_field",
        R0,
    ),
    # A field of the wrong type, missing or unknown.
    Case("string for a number", one_reading(voltage="230"), 422, "invalid_field", f"{R0}.voltage"),
    Case("boolean for a number", one_reading(current=True), 422, "invalid_field", f"{R0}.current"),
    Case("null for a number", one_reading(frequency=None), 422, "invalid_field", f"{R0}.frequency"),
    Case(
        "object for a number", one_reading(voltage={"v": 1}), 422, "invalid_field", f"{R0}.voltage"
    ),
    Case(
        "missing field",
        b'{"readings": [{"voltage": 230, "current": 10}]}',
        422,
        "invalid_field",
        f"{R0}.frequency",
    ),
    Case("unknown field", one_reading(phase=2), 422, "invalid_field", f"{R0}.phase"),
    Case(
        "unknown top-level field",
        b'{"readings": [{"voltage": 1, "current": 1, "frequency": 1}], "extra": 1}',
        422,
        "invalid_field",
        "$.extra",
    ),
    Case("timestamp a number", one_reading(timestamp=17), 422, "invalid_field", f"{R0}.timestamp"),
    Case(
        "huge timestamp",
        one_reading(timestamp="x" * 20_000),
        422,
        "invalid_field",
        f"{R0}.timestamp",
    ),
    # Numbers that are not finite float32 values.
    Case(
        "NaN literal",
        b'{"readings": [{"voltage": NaN, "current": 10, "frequency": 50}]}',
        422,
        "invalid_field",
        f"{R0}.voltage",
    ),
    Case(
        "Infinity literal",
        b'{"readings": [{"voltage": 230, "current": Infinity, "frequency": 50}]}',
        422,
        "invalid_field",
        f"{R0}.current",
    ),
    Case(
        "-Infinity literal",
        b'{"readings": [{"voltage": 230, "current": 1, "frequency": -Infinity}]}',
        422,
        "invalid_field",
        f"{R0}.frequency",
    ),
    Case(
        "1e309 overflow",
        b'{"readings": [{"voltage": 1e309, "current": 10, "frequency": 50}]}',
        422,
        "invalid_field",
        f"{R0}.voltage",
    ),
    Case(
        "-1e309 overflow",
        b'{"readings": [{"voltage": 230, "current": -1e309, "frequency": 50}]}',
        422,
        "invalid_field",
        f"{R0}.current",
    ),
    Case("beyond float32", one_reading(voltage=1e39), 422, "invalid_field", f"{R0}.voltage"),
    # Over the limits.
    Case(
        "batch over MAX_BATCH",
        json.dumps({"readings": [NOMINAL] * (MAX_BATCH + 1)}).encode(),
        413,
        "batch_too_large",
    ),
    Case(
        "body over MAX_BODY_BYTES",
        b'{"readings": [' + b" " * (MAX_BODY_BYTES + 4_000) + b"]}",
        413,
        "body_too_large",
    ),
    # Not JSON by content type.
    Case("text/plain", one_reading(), 415, "unsupported_media_type", content_type="text/plain"),
    Case(
        "form encoded",
        b"voltage=230",
        415,
        "unsupported_media_type",
        content_type="application/x-www-form-urlencoded",
    ),
    Case("no content type", one_reading(), 415, "unsupported_media_type", content_type=None),
)
