"""The error a request cannot get past: an HTTP status, a stable machine-readable code, a
sentence, and the offending field when there is one. Raised at any layer (a model not ready
is a 503); every transport turns it into its own error shape (``ErrorBody`` on HTTP)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.exceptions import HTTPException


class ApiError(HTTPException):
    """An error with a stable machine-readable code, and the offending field when there is one."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status, headers=dict(headers or {}))
        self.code = code
        self.field = field
