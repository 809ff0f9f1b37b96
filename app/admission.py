"""Who and how much may enter /predict: the API key, the in-flight bound, the time budget.

A pure ASGI middleware in front of the route, so a refused request costs no body parsing:
- with API_KEY set, a request without a matching key gets 401 (keys compared in constant time);
- beyond MAX_IN_FLIGHT requests in this process, 503 with Retry-After at once, instead of a
  queue that grows without bound (/live and /health never pass through here);
- past REQUEST_TIMEOUT, 408 if the client has not finished sending its body (slow or partial
  bodies), otherwise 503 with Retry-After (the work itself is too slow right now).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import Any

import anyio
import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import CLIENT_GONE
from app.schemas import ErrorBody

log = logging.getLogger("gridscore.admission")
_encode = msgspec.json.Encoder().encode


def key_matches(presented: bytes, keys: Sequence[bytes]) -> bool:
    """Whether ``presented`` equals one of ``keys``, comparing with every key every time."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    return matched


def _presented_key(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return bytes(value)
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return bytes(value[7:].strip())
    return b""


class Admission:
    """Guards one route: key, capacity, time budget (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, api_keys: Sequence[str], max_in_flight: int, timeout: float
    ) -> None:
        self.app = app
        self.keys = [key.encode() for key in api_keys]
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        if self.keys and not key_matches(_presented_key(scope), self.keys):
            await _reply(
                send,
                401,
                "unauthorized",
                "a valid API key is required (Authorization: Bearer <key>, or X-API-Key)",
                [(b"www-authenticate", b'Bearer realm="gridscore"')],
            )
            return
        if self.in_flight >= self.max_in_flight:
            await _reply(
                send,
                503,
                "overloaded",
                f"{self.in_flight} requests in progress here; retry shortly",
                [(b"retry-after", b"1")],
            )
            return
        body_done = False
        started = False

        async def tracked_receive() -> Any:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.disconnect":
                # Lets the error handler tell a client that hung up from a server fault.
                scope.setdefault("state", {})[CLIENT_GONE] = True
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        self.in_flight += 1
        try:
            with anyio.fail_after(self.timeout):
                await self.app(scope, tracked_receive, tracked_send)
        except TimeoutError:
            if started:
                raise
            if not body_done:
                log.info("request body too slow", extra={"fields": {"timeout_s": self.timeout}})
                await _reply(
                    send,
                    408,
                    "request_timeout",
                    f"request body not received within {self.timeout:g} s",
                    [(b"connection", b"close")],
                )
            else:
                log.warning(
                    "request over its time budget", extra={"fields": {"timeout_s": self.timeout}}
                )
                await _reply(
                    send,
                    503,
                    "timeout",
                    f"not scored within {self.timeout:g} s; retry shortly",
                    [(b"retry-after", b"1")],
                )
        finally:
            self.in_flight -= 1


async def _reply(
    send: Send, status: int, code: str, detail: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = _encode(ErrorBody(status=status, error=code, detail=detail))
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


def admission_factory(api_keys: Sequence[str], max_in_flight: int, timeout: float) -> Any:
    """A Litestar middleware entry for the /predict route."""
    return lambda app: Admission(app, api_keys, max_in_flight, timeout)
