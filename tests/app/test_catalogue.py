"""The malformed-request catalogue (tests/support/catalogue.py) against a live server, plus what
only a real socket can send: a slow body, a hang-up mid-body, a chunked body over the limit.
Each gets its documented status and a JSON error, and the server stays healthy."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.catalogue import CASES, JSON, LIMITS, Case, one_reading
from tests.support.examples import NOMINAL
from tests.support.servers import RunningServer, gridscore_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with gridscore_serve(
        model_dir,
        tmp_path_factory.mktemp("catalogue"),
        command="api",
        REQUEST_TIMEOUT="1",
        **LIMITS,
    ) as running:
        yield running


def _healthy(server: RunningServer) -> None:
    assert server.process.poll() is None, server.log()
    assert httpx.get(f"{server.url}/health").status_code == 200
    ok = httpx.post(f"{server.url}/predict", json={"readings": [NOMINAL]})
    assert ok.status_code == 200


def test_catalogue_has_at_least_30_distinct_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES])
def test_malformed_request_gets_its_documented_error(server: RunningServer, case: Case) -> None:
    headers = {"content-type": case.content_type} if case.content_type else {}
    response = httpx.post(f"{server.url}/predict", content=case.body, headers=headers)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["status"] == case.status
    assert error["error"] == case.error
    assert error["detail"]
    assert error.get("field") == case.field
    _healthy(server)


def test_duplicate_keys_take_the_last_value(server: RunningServer) -> None:
    # RFC 8259 leaves duplicate names to the parser; gridscore (msgspec) keeps the last one.
    body = b'{"readings": [{"voltage": 150, "voltage": 230, "current": 10, "frequency": 50}]}'
    response = httpx.post(f"{server.url}/predict", content=body, headers={"content-type": JSON})
    assert response.status_code == 200
    assert response.json()["predictions"][0]["anomaly"] is False  # 230 V, not 150 V


def _raw(server: RunningServer, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(head)
    return sock


def test_slow_body_gets_408(server: RunningServer) -> None:
    body = one_reading()
    sock = _raw(
        server,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10],
    )
    with sock:
        time.sleep(1.5)  # REQUEST_TIMEOUT is 1 s
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in reply
    _healthy(server)


def test_partial_body_then_hang_up_leaves_the_server_healthy(server: RunningServer) -> None:
    body = one_reading()
    for _ in range(20):
        sock = _raw(
            server,
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            + f"\r\nContent-Length: {len(body) * 10}\r\n\r\n".encode()
            + body,
        )
        sock.close()
    time.sleep(0.3)
    _healthy(server)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'status="500"' not in metrics  # a client hanging up is not a server fault
    assert 'path="/predict",status="499"} 20.0' in metrics


def test_chunked_body_over_the_limit_is_413(server: RunningServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"readings": ['
        for _ in range(100):
            yield b" " * 1000
        yield b"]}"

    response = httpx.post(f"{server.url}/predict", content=chunks(), headers={"content-type": JSON})
    assert response.status_code == 413
    _healthy(server)


def test_wrong_method_is_a_json_405(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/predict")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
