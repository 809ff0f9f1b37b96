"""Bytes to a PredictRequest: strict msgspec decoding with contract-shaped errors.

The request Structs are built at start-up for the served artifact's features
(``app.contract.api.request_types``); a ``RequestCodec`` holds them with their prebuilt decoder,
which ``POST /predict``'s protocol (``app/http/predict.py``) calls on the raw body. Decoding
is strict: ``"230"`` is not a number, unknown fields are refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

from app.contract.api import request_types
from app.contract.errors import ApiError

_AT_PATH = re.compile(r"^(?P<message>.*) - at `(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"field `(?P<name>[^`]+)`")


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def decode_predict_request(
    decoder: Any, body: bytes, content_type: str, features: tuple[str, ...] = ()
) -> Any:
    """Decode a /predict body; raises ApiError 415, 400 (malformed JSON) or 422 (bad field).

    ``features``: the required fields of a reading, to name a missing one when msgspec stops
    first at an unknown one (a client still sending another model's features)."""
    if not is_json(content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"content-type must be application/json, got {content_type or 'none'!r}",
        )
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc), body, features) from None
    except UnicodeDecodeError as exc:  # msgspec raises this for bad UTF-8 inside a string
        raise ApiError(
            400, "malformed_json", f"request body is not valid UTF-8 (byte {exc.start})"
        ) from None
    except msgspec.DecodeError as exc:
        path = _non_finite_path(body)
        if path is not None:
            raise ApiError(
                422, "invalid_field", f"non-finite number (NaN or Infinity) - at `{path}`", path
            ) from None
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None


_READING_PATH = re.compile(r"^\$\.readings\[(?P<index>\d+)\]$")


def _missing_feature(body: bytes, path: str, features: tuple[str, ...]) -> str | None:
    """The first required feature absent from the reading at ``path`` (error path only)."""
    at = _READING_PATH.match(path)
    if at is None or not features:
        return None
    try:
        reading = msgspec.json.decode(body)["readings"][int(at["index"])]
    except (msgspec.MsgspecError, KeyError, IndexError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(reading, dict):
        return None
    return next((name for name in features if name not in reading), None)


def _field_error(message: str, body: bytes = b"", features: tuple[str, ...] = ()) -> ApiError:
    # msgspec ends a message with " - at `$.path`", except for errors at the top level.
    match = _AT_PATH.match(message)
    text, path = (match["message"], match["path"]) if match else (message, "$")
    if path == "$.readings" and text.startswith("Expected `array` of length >= 1"):
        return ApiError(400, "empty_batch", "readings must hold at least one reading", path)
    if text.startswith("Object contains unknown field"):
        missing = _missing_feature(body, path, features)
        if missing is not None:  # more useful to a client sending another model's features
            field = f"{path}.{missing}"
            detail = (
                f"Object missing required field `{missing}` ({text[:1].lower()}{text[1:]}); "
                f"a reading has the fields {list(features)} - at `{field}`"
            )
            return ApiError(422, "invalid_field", detail, field)
    named = _NAMED_FIELD.search(text)
    if named is not None:  # missing or unknown field: point at the field itself
        path = f"{path}.{named['name']}"
    detail = f"{text} - at `{path}`" if named or match else message
    if text == "Number out of range":
        detail = f"number out of range (overflows to infinity) - at `{path}`"
    return ApiError(422, "invalid_field", detail, path)


def _non_finite_path(body: bytes) -> str | None:
    """Where a NaN/Infinity literal sits, if the body is otherwise JSON (error path only)."""
    try:
        return _find_non_finite(json.loads(body), "$")
    except (ValueError, RecursionError):
        return None


def _find_non_finite(node: Any, path: str) -> str | None:
    if isinstance(node, float) and not math.isfinite(node):
        return path
    children: Any = ()
    if isinstance(node, dict):
        children = ((f"{path}.{key}", value) for key, value in node.items())
    elif isinstance(node, list):
        children = ((f"{path}[{index}]", value) for index, value in enumerate(node))
    for child_path, child in children:
        found = _find_non_finite(child, child_path)
        if found is not None:
            return found
    return None


class RequestCodec:
    """The request Structs for one feature set and their prebuilt strict decoder."""

    def __init__(self, features: tuple[str, ...], units: tuple[str, ...]) -> None:
        self.features = features
        self.reading_type, self.request_type = request_types(features, units)
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.request_type)

    def decode(self, body: bytes, content_type: str) -> Any:
        return decode_predict_request(self.decoder, body, content_type, self.features)
