"""The HTTP protocol gridscore runs under uvicorn: uvicorn's httptools protocol with two changes.

**TCP_NODELAY on every connection.** asyncio only sets it on accepted sockets whose listener
says IPPROTO_TCP, and a socket bound with protocol 0 (as ``uvicorn --workers`` binds it) does
not; Nagle's algorithm then holds back each keep-alive response until the client's delayed ACK
(~40 ms).

**Requests start least recently served connection first** (``REQUEST_ORDER=fair``). The event
loop's poll (level-triggered epoll) reports ready sockets in the order they sit on the kernel's
ready list, and a socket reported by one poll keeps its place on that list for the next. So a
request that arrives just after a poll queues behind every connection served in the round that
follows, is served last in the round after, and its client's next request again misses the
poll: under a steady load one connection in each round waits two rounds instead of one, and
the p99 is twice the p50. Starting the requests of one poll in the order their connections were
last answered puts that request first, as if they were served in order of arrival. Costs: one
sort of the requests of a poll and one more pass of the loop per poll (docs/benchmarks.md
measures both orders in the same run).

**A drain that answers every request sent** (``begin_drain``, on SIGTERM). uvicorn keeps
connections alive until its listener closes and then closes the idle ones at once, so a client
whose next request was already on its way lost it unanswered. From the signal on, every
response says ``Connection: close`` and closes its connection, so a client learns with an
answer that it must reconnect (to this server while the listener is still open during
``DRAIN_SECONDS``, or to another replica); when the listener closes, an idle connection is
closed only after a short grace with no request arriving (one that arrives is answered).

**The client's certificate in the request's scope** (under TLS with ``TLS_CLIENT_CA_FILE``). The
handshake has verified it; the routes that require one (``TLS_CLIENT_AUTH=admin``: ``/admin/*``)
read it where ASGI's TLS extension puts it, ``scope["extensions"]["tls"]``.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import socket
import ssl
import struct
import termios
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# How long an idle connection stays open once the listener has closed: time for a request a
# client was already sending (or, on a connection accepted just before, its first request) to
# arrive and be answered; an active client sends within it and learns from the answer's
# Connection: close. Shutdown takes at most this much longer.
IDLE_GRACE_S = 0.5
# Stamps of "this connection was last answered (or opened) now"; only their order matters.
_served_stamps = itertools.count()


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """ASGI's TLS extension for a TLS connection (None for plain TCP): the client's verified
    certificate chain as PEM (empty when it sent none) and its subject."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    subject = (ssl_object.getpeercert() or {}).get("subject", ())
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": ",".join(f"{k}={v}" for rdn in subject for k, v in rdn) or None,
        "client_cert_error": None,
        "tls_version": None,
        "cipher_suite": None,
    }


def _bytes_waiting(transport: asyncio.BaseTransport) -> int:
    """How many bytes the kernel holds unread for this connection (0 when it cannot tell)."""
    sock = transport.get_extra_info("socket")
    try:
        answer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError):
        return 0
    return int(struct.unpack("i", answer)[0])


class _Drain:
    """This process's connections, and whether it has begun to drain them."""

    def __init__(self) -> None:
        self.draining = False
        self.connections: weakref.WeakSet[NoDelayHttpProtocol] = weakref.WeakSet()


_drain = _Drain()


def begin_drain() -> None:
    """From now on every response closes its connection (``Connection: close``), responses
    under way included. Idempotent; called on the event loop when SIGTERM arrives."""
    _drain.draining = True
    for connection in list(_drain.connections):
        cycle = connection.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False


class NoDelayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with TCP_NODELAY on each connection and a drain that
    answers every request sent; requests start in the order the event loop reports their
    sockets (``REQUEST_ORDER=poll``)."""

    tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
        _drain.connections.add(self)
        self.tls = tls_extension(transport)

    def on_headers_complete(self) -> None:
        if self.tls is not None:
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions["tls"] = self.tls
        super().on_headers_complete()
        if _drain.draining and self.cycle is not None:
            self.cycle.keep_alive = False  # this response says "Connection: close"

    def shutdown(self) -> None:
        """uvicorn closes its listener and asks each connection to finish. A busy one closes
        after its answer; an idle one is read and answered if a request already waits in its
        socket, else closed after ``IDLE_GRACE_S`` unless a request arrives meanwhile (then
        answered, with ``Connection: close``, instead of being reset unanswered)."""
        _drain.draining = True
        idle = self.cycle is None or self.cycle.response_complete
        if not idle or self.transport.is_closing():
            super().shutdown()
        elif _bytes_waiting(self.transport):
            pass
        else:
            # Idle now, but a client may be writing its next request this very moment (a
            # close then resets it unanswered): give it a moment. A request arriving cancels
            # the timer (uvicorn's data_received) and is answered with Connection: close; a
            # connection still idle then is closed.
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                IDLE_GRACE_S, self.timeout_keep_alive_handler
            )


class _StartQueue:
    """The requests one event loop has read since its last pass, started together in one
    callback, least recently served connection first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[tuple[int, FairHttpProtocol, RequestResponseCycle, Any]] = []

    def add(self, protocol: FairHttpProtocol, cycle: RequestResponseCycle, app: Any) -> None:
        if not self._pending:
            # Runs after every socket of this poll has been read, before the next poll.
            self._loop.call_soon(self._start_all)
        self._pending.append((protocol.last_served, protocol, cycle, app))

    def _start_all(self) -> None:
        pending, self._pending = self._pending, []
        # The stamps are unique, so the sort never compares the protocols behind them.
        pending.sort()
        for _, protocol, cycle, app in pending:
            try:
                protocol.start_now(cycle, app)
            except Exception as exc:  # one request's failure must not drop the others
                self._loop.call_exception_handler(
                    {"message": "could not start a request", "exception": exc}
                )


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _StartQueue] = (
    weakref.WeakKeyDictionary()
)


def _start_queue(loop: asyncio.AbstractEventLoop) -> _StartQueue:
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = _StartQueue(loop)
    return queue


class FairHttpProtocol(NoDelayHttpProtocol):
    """TCP_NODELAY, and the requests of one poll started least recently served connection
    first (``REQUEST_ORDER=fair``, the default)."""

    last_served: int

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.last_served = next(_served_stamps)
        self._starts = _start_queue(self.loop)
        super().connection_made(transport)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn calls this for each request whose headers are in (a pipelined one when the
        # request before it is answered); the task is created by the queue's callback instead.
        self._starts.add(self, cycle, app)

    def start_now(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        self.last_served = next(_served_stamps)
        super().on_response_complete()


PROTOCOLS = {
    "fair": "app.runtime.http_protocol:FairHttpProtocol",
    "poll": "app.runtime.http_protocol:NoDelayHttpProtocol",
}
