"""A drain answers every request a client sent: keep-alive clients connected straight to the
scorer (no balancer to retry for them) send through a SIGTERM, and each request written is
either answered or was never sent (the connection refused). From SIGTERM on every response
says ``Connection: close``, and the server closes idle connections between requests."""

from __future__ import annotations

import json
import random
import select
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.examples import EXAMPLE_BATCH
from tests.support.servers import gridscore_serve

pytestmark = pytest.mark.slow

BODY = json.dumps(EXAMPLE_BATCH).encode()
REQUEST = (
    b"POST /predict HTTP/1.1\r\nHost: gridscore\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


@dataclass
class Tally:
    """What became of every request: answered, never sent, or sent and dropped unanswered."""

    outcomes: Counter[str] = field(default_factory=Counter)
    # Answers received after the signal, by whether they said "Connection: close".
    after_signal: Counter[bool] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    signalled_at: float = float("inf")

    def add(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1


def _closed_by_peer(sock: socket.socket) -> bool:
    """What an HTTP client checks before reusing an idle connection: has the server closed it?"""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str]] | None:
    """Status and headers of one response (its body read past), or None when the server closed
    the connection or reset it before a whole response arrived."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            body += chunk
        return int(lines[0].split()[1]), headers
    except OSError:
        return None


# A request sent this long after the signal was sent finds the server draining.
SIGNAL_DELIVERED_S = 0.05


def _client(port: int, stop: threading.Event, signalled: threading.Event, tally: Tally) -> None:
    """One keep-alive client sending every 0-40 ms until the server refuses new connections."""
    rng = random.Random()
    sock: socket.socket | None = None
    while not stop.is_set():
        if sock is not None and _closed_by_peer(sock):
            sock.close()
            sock = None
        if sock is None:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                tally.add("refused")  # never sent: the listener is gone
                if signalled.is_set():
                    return
                time.sleep(0.01)
                continue
        sent_at = time.monotonic()
        try:
            sock.sendall(REQUEST)
        except OSError:
            tally.add("dropped")  # written in part, or the write failed: not answered
            sock.close()
            sock = None
            continue
        answer = _read_response(sock)
        if answer is None:
            tally.add("dropped")
            sock.close()
            sock = None
            continue
        status, headers = answer
        tally.add(str(status))
        closing = headers.get("connection") == "close"
        if signalled.is_set() and sent_at > tally.signalled_at + SIGNAL_DELIVERED_S:
            with tally.lock:
                tally.after_signal[closing] += 1
        if closing:
            sock.close()
            sock = None
        time.sleep(rng.uniform(0.0, 0.04))
    if sock is not None:
        sock.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_keepalive_clients_through_sigterm_lose_no_request(
    model_dir: Path, tmp_path: Path, workers: str
) -> None:
    with gridscore_serve(
        model_dir,
        tmp_path,
        command="api",
        WORKERS=workers,
        DRAIN_SECONDS="1",
        GRACEFUL_TIMEOUT="5",
    ) as server:
        tally = Tally()
        stop, signalled = threading.Event(), threading.Event()
        clients = [
            threading.Thread(target=_client, args=(server.port, stop, signalled, tally))
            for _ in range(12)
        ]
        for client in clients:
            client.start()
        time.sleep(1.0)
        tally.signalled_at = time.monotonic()
        signalled.set()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=20)
        stop.set()
        for client in clients:
            client.join(10)
    print(f"outcomes {dict(tally.outcomes)}; after SIGTERM, Connection: close {tally.after_signal}")
    # It stopped by itself (one worker is uvicorn's process, which re-raises the signal).
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert tally.outcomes["200"] > 300
    assert tally.outcomes["dropped"] == 0, tally.outcomes
    assert set(tally.outcomes) <= {"200", "refused"}, tally.outcomes
    # Every answer after the signal told its client the connection closes with it.
    assert tally.after_signal[True] > 0
    assert tally.after_signal[False] == 0, tally.after_signal
