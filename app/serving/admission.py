"""Who and how much may enter a scoring route: the API key, the in-flight bound, the budget.

- with API_KEY set, a request without a matching key gets 401 (keys compared in constant time);
- beyond MAX_IN_FLIGHT requests in this process, 503 with Retry-After at once, instead of a
  queue that grows without bound (/live and /health never pass through here);
- past REQUEST_TIMEOUT, 408 if the client has not finished sending its body (slow or partial
  bodies), otherwise 503 with Retry-After (the work itself is too slow right now).

The checks run before a byte of the body is read, so a refused request costs no parsing. The
scoring endpoint (``app/serving/endpoint.py``) applies them. The time budget is kept by one
timer for all requests (``Deadlines``), not a timer per request: ``asyncio.timeout`` costs ~5 µs per
request, a quarter of a batch-1 request's scoring, to enforce a budget of seconds that a
50 ms check enforces as well.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from typing import Any

from app.contract.errors import ApiError
from app.serving.keys import KeyRing
from app.serving.ratelimit import RateLimits

CLIENT = "gridscore.client"  # the scope key of the client a request counts against


def key_matches(presented: bytes, keys: Sequence[bytes]) -> bool:
    """Whether ``presented`` equals one of ``keys``, comparing with every key every time."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    return matched


def presented_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The key a request carries: ``X-API-Key``, or ``Authorization: Bearer``."""
    for name, value in headers:
        if name == b"x-api-key":
            return bytes(value)
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return bytes(value[7:].strip())
    return b""


class Deadlines:
    """Cancels the requests that outlive their time budget, checking every ``tick`` seconds.

    ``enter`` registers the running task; past its deadline the task is cancelled and marked
    ``expired``, so its handler can tell the budget's cancellation from any other, take it
    back (``Task.uncancel``) and answer 408 or 503. The timer runs only while requests are in
    flight."""

    def __init__(self, timeout: float, tick: float = 0.05) -> None:
        self.timeout = timeout
        self.tick = min(tick, timeout / 4)
        self.pending: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def enter(self, task: asyncio.Task[Any]) -> None:
        loop = task.get_loop()
        self.pending[task] = loop.time() + self.timeout
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._check, loop)

    def leave(self, task: asyncio.Task[Any]) -> None:
        self.pending.pop(task, None)
        self.expired.discard(task)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in list(self.pending.items()):
            if deadline <= now:
                del self.pending[task]
                self.expired.add(task)
                task.cancel()
        self._timer = loop.call_later(self.tick, self._check, loop) if self.pending else None


class Admission:
    """The key and the in-flight bound of one process's scoring routes."""

    def __init__(
        self,
        api_keys: KeyRing,
        max_in_flight: int,
        timeout: float,
        limits: RateLimits | None = None,
    ) -> None:
        self.keys = api_keys
        self.limits = limits
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.deadlines = Deadlines(timeout)
        self.in_flight = 0

    def check(self, scope: dict[str, Any]) -> None:
        """Raise the 401 or 503 this request gets, or return to let it in."""
        keys = self.keys.current()
        presented = presented_key(scope["headers"]) if keys else b""
        if keys and not key_matches(presented, keys):
            raise ApiError(
                401,
                "unauthorized",
                "a valid API key is required (Authorization: Bearer <key>, or X-API-Key)",
                headers={"www-authenticate": 'Bearer realm="gridscore"'},
            )
        limits = self.limits
        if limits is not None and limits.enabled:
            client = limits.client(scope, presented)
            limits.admit_request(client)
            scope[CLIENT] = client  # for the readings' bucket, once the body is decoded
        if self.in_flight >= self.max_in_flight:
            raise ApiError(
                503,
                "overloaded",
                f"{self.in_flight} requests in progress here; retry shortly",
                headers={"retry-after": "1"},
            )
