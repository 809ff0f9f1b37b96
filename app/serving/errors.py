"""Every error of a Litestar route leaves as the same JSON shape, ``ErrorBody``, with a stable
``error`` code (the scoring endpoint writes its own, in the same shape)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from app.contract.api import ErrorBody
from app.contract.errors import ApiError

log = logging.getLogger("gridscore.errors")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_field",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    body = msgspec.json.encode(ErrorBody(status=status, error=code, detail=detail, field=field))
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Turn any exception into an ErrorBody response; log one line per error."""
    if isinstance(exc, ApiError):
        status, code, detail, field = exc.status_code, exc.code, exc.detail, exc.field
        headers = exc.headers
    elif isinstance(exc, ValidationException):
        # Litestar's own validation of a handler's parameters (a dashboard form, say).
        status, code, field, headers = 400, "bad_request", None, None
        detail = _validation_detail(exc)
    elif isinstance(exc, HTTPException):
        status, field, headers = exc.status_code, None, exc.headers
        code = _CODES.get(status, "http_error")
        detail = exc.detail
    else:
        status, code, field, headers = 500, "internal_error", None, None
        detail = "internal error; the server log has the details"
    route = request.scope.get("path_template", request.url.path)
    fields = {"status": status, "error": code, "method": request.method, "path": route}
    if status >= 500:
        log.error("request failed", extra={"fields": fields}, exc_info=status == 500)
    else:
        log.info("request rejected: %s", detail, extra={"fields": {**fields, "field": field}})
    return error_response(status, code, detail, field, headers)


def _validation_detail(exc: ValidationException) -> str:
    """Litestar's validation errors in words: what was wrong, with which part."""
    extras = [e for e in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(e, dict)]
    if any(e.get("key") == "data" and e.get("message") == "'data'" for e in extras):
        return "request body is empty"
    parts = [f"{e.get('message')} ({e.get('key')})" for e in extras if e.get("message")]
    return "; ".join(parts) if parts else str(exc.detail)
