"""A scoring route as one ASGI app: admission, body, decode, score, respond, metrics.

Every scoring request takes the same path, whatever its wire format:

    bytes -> protocol.decode -> float32 matrix -> onnxruntime -> verdicts -> protocol.encode

The ``ScoringProtocol`` (``app/http/predict.py`` for ``POST /predict``, ``app/v2/infer.py`` for
the Open Inference Protocol) only turns bytes into a matrix and verdicts into bytes; admission,
the body limit, the time budget, the request metrics and the error responses are this module's,
once for all protocols, and the scoring itself is the data plane's (``app/serving/dataplane.py``),
which every transport shares.

Why one ASGI app instead of a Litestar handler with middleware: a batch-1 request spends
most of its time outside the model (measured in docs/benchmarks.md), and Litestar's handler
machinery (signature model, DTO, response object) plus two middlewares cost more than the
scoring itself. Litestar still routes to it (an ``asgi`` route), and everything this module
does is what the contract (docs/api.md) requires, with nothing resolved per request that can
be bound once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import numpy as np

from app.config import LimitSettings
from app.contract.errors import ApiError
from app.model.verdicts import Verdicts
from app.observe.metrics import Metrics
from app.serving.admission import CLIENT, Admission
from app.serving.dataplane import DataPlane

log = logging.getLogger("gridscore.endpoint")
access = logging.getLogger("gridscore.access")

Headers = list[tuple[bytes, bytes]]


class ClientGone(Exception):
    """The client hung up before its whole body arrived."""


class ScoringProtocol(Protocol):
    """One wire format of the scoring path."""

    path: str  # the route template, as the metrics' ``path`` label shows it

    def decode(self, body: bytes, scope: Any) -> tuple[np.ndarray, Any]:
        """float32 rows in the model's feature order, and what ``encode`` needs to answer
        (``scope`` holds the headers and the query string); raises ApiError (4xx) for a
        request it cannot score."""
        ...

    def encode(self, verdicts: Verdicts, context: Any) -> tuple[bytes, Headers]:
        """The response body and its headers (content type included)."""
        ...

    def error(self, exc: ApiError) -> bytes:
        """An error response body in this protocol's shape."""
        ...

    def explains(self, context: Any) -> str:
        """Whose attribution ``encode`` will show: ``all``, ``flagged`` or ``none``."""
        ...


class ScoringEndpoint:
    """Serves one scoring route (see the module docstring)."""

    def __init__(
        self,
        protocol: ScoringProtocol,
        plane: DataPlane,
        metrics: Metrics,
        limits: LimitSettings,
        admission: Admission,
    ) -> None:
        self.protocol = protocol
        self.plane = plane
        self.metrics = metrics
        self.admission = admission
        self.max_body = limits.max_body_bytes
        self.max_batch = limits.max_batch
        # Label children bound once, each when its status first occurs (a series appears in
        # /metrics when it has happened, as everywhere else).
        self._counted: dict[int, Any] = {}
        self._latency = metrics.request_latency.labels(protocol.path, "POST")

    def _count(self, status: int) -> None:
        child = self._counted.get(status)
        if child is None:
            child = self._counted[status] = self.metrics.requests.labels(
                self.protocol.path, "POST", str(status)
            )
        child.inc()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        in_flight = self.metrics.in_flight
        in_flight.inc()
        status = 0
        try:
            status = await self._serve(scope, receive, send)
        finally:
            in_flight.dec()
            if status == 0:  # nothing was sent: cancelled or failed before a response
                status = 500
                self._count(status)
            elapsed = time.perf_counter() - started
            if status < 400:
                self._latency.observe(elapsed)
            if access.isEnabledFor(logging.DEBUG):
                access.debug(
                    "request",
                    extra={
                        "fields": {
                            "method": scope["method"],
                            "path": self.protocol.path,
                            "status": status,
                            "ms": round(elapsed * 1000, 3),
                        }
                    },
                )

    async def _serve(self, scope: Any, receive: Any, send: Any) -> int:
        """Answer one request; returns the status sent (0 if none could be)."""
        method = scope["method"]
        if method != "POST":
            return await self._error(
                send,
                ApiError(
                    405,
                    "method_not_allowed",
                    f"{method} is not allowed; use POST",
                    headers={"allow": "POST"},
                ),
                method,
            )
        admission = self.admission
        try:
            admission.check(scope)
        except ApiError as exc:
            return await self._error(send, exc)
        admission.in_flight += 1
        task = asyncio.current_task()
        assert task is not None
        deadlines = admission.deadlines
        deadlines.enter(task)
        body_done = False
        try:
            body = await self._body(scope, receive)
            body_done = True
            payload, headers, matrix, verdicts = await self._score(scope, body)
            # The budget covers the work; the answer, once ready, is sent whatever the time.
            deadlines.leave(task)
            status = await self._send(send, 200, payload, headers)
            self.plane.offer_shadow(matrix, verdicts)  # after the answer has left
            return status
        except asyncio.CancelledError:
            if task not in deadlines.expired:
                raise  # not the time budget: the server is stopping, say
            task.uncancel()
            if body_done:
                log.warning(
                    "request over its time budget",
                    extra={"fields": {"timeout_s": admission.timeout}},
                )
                return await self._error(
                    send,
                    ApiError(
                        503,
                        "timeout",
                        f"not scored within {admission.timeout:g} s; retry shortly",
                        headers={"retry-after": "1"},
                    ),
                )
            log.info("request body too slow", extra={"fields": {"timeout_s": admission.timeout}})
            return await self._error(
                send,
                ApiError(
                    408,
                    "request_timeout",
                    f"request body not received within {admission.timeout:g} s",
                    headers={"connection": "close"},
                ),
            )
        except ClientGone:
            # Nobody reads an answer; counted as 499, not as a server fault.
            log.info("client closed the connection mid-body", extra={"fields": {"status": 499}})
            self._count(499)
            return 499
        except ApiError as exc:
            return await self._error(send, exc)
        except Exception:
            log.exception(
                "request failed", extra={"fields": {"status": 500, "path": self.protocol.path}}
            )
            return await self._error(
                send,
                ApiError(500, "internal_error", "internal error; the server log has the details"),
                logged=True,
            )
        finally:
            deadlines.leave(task)
            admission.in_flight -= 1

    async def _body(self, scope: Any, receive: Any) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise ApiError(400, "bad_request", "Content-Length is not a number") from None
                if declared > self.max_body:
                    raise self._too_large()
                break
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):  # the whole body in one message: most requests
            if len(body) > self.max_body:
                raise self._too_large()
            return body
        parts = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    def _too_large(self) -> ApiError:
        return ApiError(
            413, "body_too_large", f"request body over {self.max_body} bytes (MAX_BODY_BYTES)"
        )

    async def _score(self, scope: Any, body: bytes) -> tuple[bytes, Headers, np.ndarray, Verdicts]:
        if not body:
            raise ApiError(400, "bad_request", "request body is empty")
        matrix, context = self.protocol.decode(body, scope)
        rows = len(matrix)
        if rows > self.max_batch:
            raise ApiError(
                413, "batch_too_large", f"{rows} readings; at most {self.max_batch} per request"
            )
        limits = self.admission.limits
        if limits is not None and limits.enabled:
            limits.admit_readings(scope[CLIENT], rows)
        # Past the time budget the request answers 503 at once; a big batch still finishes.
        plane = self.plane
        explain = self.protocol.explains(context)
        if rows <= plane.inline_rows:
            verdicts = plane.score_now(matrix, explain)
        else:
            verdicts = await plane.score(matrix, explain)
        payload, headers = self.protocol.encode(verdicts, context)
        self.plane.count(matrix, verdicts)
        return payload, [*headers, verdicts.model.digest_header], matrix, verdicts

    async def _send(
        self, send: Any, status: int, payload: bytes, headers: Headers, method: str = "POST"
    ) -> int:
        # Counted before the answer leaves: a client never holds a response that
        # requests_total does not include, even if the process dies a moment later.
        if method == "POST":
            self._count(status)
        else:
            self.metrics.requests.labels(self.protocol.path, method, str(status)).inc()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return status

    async def _error(
        self, send: Any, exc: ApiError, method: str = "POST", logged: bool = False
    ) -> int:
        status = exc.status_code
        if not logged:
            fields = {"status": status, "error": exc.code, "method": method}
            fields["path"] = self.protocol.path
            if status >= 500:
                log.error("request failed: %s", exc.detail, extra={"fields": fields})
            else:
                log.info(
                    "request rejected: %s",
                    exc.detail,
                    extra={"fields": {**fields, "field": exc.field}},
                )
        headers: Headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
        return await self._send(send, status, self.protocol.error(exc), headers, method)
