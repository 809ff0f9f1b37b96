"""Bytes to PredictRequest: strict msgspec decoding with contract-shaped errors.

Litestar's default body parsing is lax (``"230"`` would pass as a number), so ``/predict``
declares this DTO: Litestar hands it the raw body and it decodes with a strict, prebuilt
msgspec decoder into the Structs of ``app.schemas``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec
from litestar.dto import MsgspecDTO
from litestar.typing import FieldDefinition

from app.errors import ApiError
from app.schemas import PredictRequest, Reading

_DECODER = msgspec.json.Decoder(PredictRequest)
CLOSED_OBJECTS = {PredictRequest.__name__, Reading.__name__}
_AT_PATH = re.compile(r"^(?P<message>.*) - at `(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"field `(?P<name>[^`]+)`")


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def decode_predict_request(body: bytes, content_type: str) -> PredictRequest:
    """Decode a /predict body; raises ApiError 415, 400 (malformed JSON) or 422 (bad field)."""
    if not is_json(content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"content-type must be application/json, got {content_type or 'none'!r}",
        )
    try:
        return _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc)) from None
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


def _field_error(message: str) -> ApiError:
    # msgspec ends a message with " - at `$.path`", except for errors at the top level.
    match = _AT_PATH.match(message)
    text, path = (match["message"], match["path"]) if match else (message, "$")
    if path == "$.readings" and text.startswith("Expected `array` of length >= 1"):
        return ApiError(400, "empty_batch", "readings must hold at least one reading", path)
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


class PredictRequestDTO(MsgspecDTO[PredictRequest]):
    """Litestar DTO for /predict: the OpenAPI schema from the Structs, strict decoding."""

    def decode_bytes(self, value: bytes) -> Any:
        return decode_predict_request(value, self.asgi_connection.headers.get("content-type", ""))

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Any:
        # Describe the Structs themselves: the DTO's generated transfer model loses the
        # constraint on the optional timestamp, and the Structs are what decoding uses.
        schema = schema_creator.for_field_definition(
            FieldDefinition.from_annotation(
                PredictRequest, kwarg_definition=field_definition.kwarg_definition
            )
        )
        # Litestar does not carry forbid_unknown_fields into the schema; state it, so clients
        # and fuzzers read the request objects as closed, as the decoder enforces.
        for registered in schema_creator.schema_registry:
            if registered.key[-1] in CLOSED_OBJECTS:
                registered.schema.additional_properties = False
        return schema
