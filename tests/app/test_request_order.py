"""The order a worker starts the requests it reads in one poll of its event loop
(``REQUEST_ORDER``, app/runtime/http_protocol.py): least recently served connection first."""

from __future__ import annotations

import asyncio
import http.client
import os
import sys
from pathlib import Path

import pytest

from app.config import Settings
from app.runtime.http_protocol import _StartQueue
from app.runtime.server import uvicorn_options
from tests.support.servers import free_port, run_server

CONNECTIONS = "ABCD"


def _start_order(tmp_path: Path, request_order: str) -> list[str]:
    """Serve A, B, C, D one request each, D first and A last; then, while the worker holds
    its loop, send one request on each, A first. Returns the connections in the order the
    worker started those four requests."""
    protocol = uvicorn_options(Settings.from_env({"REQUEST_ORDER": request_order}), "")["http"]
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "tests.support.start_order_app:app", "--port",
        str(port), "--loop", "uvloop", "--http", protocol, "--log-level", "warning",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "REQUEST_ORDER"}
    with run_server(argv, env, port, tmp_path):
        connections = {name: http.client.HTTPConnection("127.0.0.1", port) for name in "ABCDE"}
        try:
            for name in reversed(CONNECTIONS):
                connections[name].request("GET", "/")
                connections[name].getresponse().read()
            held = connections["E"]
            held.request("GET", "/hold?1.0")
            holding = held.getresponse()  # its headers are in: the worker's loop is held now
            for name in CONNECTIONS:
                connections[name].request("GET", "/")
            holding.read()
            started = {name: int(connections[name].getresponse().read()) for name in CONNECTIONS}
        finally:
            for connection in connections.values():
                connection.close()
    return sorted(started, key=started.__getitem__)


@pytest.mark.slow
def test_fair_order_starts_the_least_recently_served_connection_first(tmp_path: Path) -> None:
    # D was answered longest ago, A most recently: so D's request starts first, though A's
    # socket was ready first.
    assert _start_order(tmp_path, "fair") == ["D", "C", "B", "A"]


@pytest.mark.slow
def test_poll_order_starts_requests_in_the_order_the_loop_reports_their_sockets(
    tmp_path: Path,
) -> None:
    # uvicorn's own order, which the fair order changes: the sockets as epoll listed them.
    assert _start_order(tmp_path, "poll") == ["A", "B", "C", "D"]


class _Connection:
    def __init__(self, last_served: int, started: list[int], fails: bool = False) -> None:
        self.last_served = last_served
        self._started = started
        self._fails = fails

    def start_now(self, cycle: object, app: object) -> None:
        if self._fails:
            raise RuntimeError("cannot start")
        self._started.append(self.last_served)


def test_a_request_that_cannot_start_does_not_hold_back_the_others_of_its_poll() -> None:
    loop = asyncio.new_event_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    queue = _StartQueue(loop)
    started: list[int] = []
    for stamp, fails in ((3, False), (1, True), (2, False)):
        queue.add(_Connection(stamp, started, fails), None, None)  # type: ignore[arg-type]
    assert started == []  # nothing starts before the loop's next pass
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    assert started == [2, 3]
    assert reported == ["could not start a request"]
