"""A catalogue of malformed requests against a live server: each gets its documented status
and a JSON error, and the server is healthy afterwards."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.serving import RunningServer, gridscore_serve

pytestmark = pytest.mark.slow

GOOD = {"voltage": 230.0, "current": 10.0, "frequency": 50.0}


def reading(**changes: object) -> bytes:
    return json.dumps({"readings": [{**GOOD, **changes}]}).encode()


JSON = "application/json"
# (id, body, content type, expected status, expected error code)
CASES: list[tuple[str, bytes, str | None, int, str]] = [
    ("invalid JSON", b"{", JSON, 400, "malformed_json"),
    ("truncated JSON", b'{"readings": [{"voltage": 23', JSON, 400, "malformed_json"),
    (
        "invalid UTF-8",
        b'{"readings": [{"voltage": 1, "current": 1, "frequency": 1, "timestamp": "\xff\xfe"}]}',
        JSON,
        400,
        "malformed_json",
    ),
    ("trailing garbage", reading() + b" xyz", JSON, 400, "malformed_json"),
    ("empty body", b"", JSON, 400, "bad_request"),
    ("top level array", b"[]", JSON, 422, "invalid_field"),
    ("top level number", b"5", JSON, 422, "invalid_field"),
    ("empty object", b"{}", JSON, 422, "invalid_field"),
    ("readings null", b'{"readings": null}', JSON, 422, "invalid_field"),
    ("readings a string", b'{"readings": "lots"}', JSON, 422, "invalid_field"),
    ("empty readings", b'{"readings": []}', JSON, 400, "empty_batch"),
    ("reading not an object", b'{"readings": [[230, 10, 50]]}', JSON, 422, "invalid_field"),
    ("string for a number", reading(voltage="230"), JSON, 422, "invalid_field"),
    ("boolean for a number", reading(current=True), JSON, 422, "invalid_field"),
    ("null for a number", reading(frequency=None), JSON, 422, "invalid_field"),
    ("object for a number", reading(voltage={"v": 1}), JSON, 422, "invalid_field"),
    (
        "1e309 overflow",
        b'{"readings": [{"voltage": 1e309, "current": 10, "frequency": 50}]}',
        JSON,
        422,
        "invalid_field",
    ),
    (
        "-1e309 overflow",
        b'{"readings": [{"voltage": 230, "current": -1e309, "frequency": 50}]}',
        JSON,
        422,
        "invalid_field",
    ),
    ("beyond float32", reading(voltage=1e39), JSON, 422, "invalid_field"),
    (
        "NaN literal",
        b'{"readings": [{"voltage": NaN, "current": 10, "frequency": 50}]}',
        JSON,
        422,
        "invalid_field",
    ),
    (
        "Infinity literal",
        b'{"readings": [{"voltage": 230, "current": Infinity, "frequency": 50}]}',
        JSON,
        422,
        "invalid_field",
    ),
    (
        "-Infinity literal",
        b'{"readings": [{"voltage": 230, "current": 1, "frequency": -Infinity}]}',
        JSON,
        422,
        "invalid_field",
    ),
    (
        "missing field",
        b'{"readings": [{"voltage": 230, "current": 10}]}',
        JSON,
        422,
        "invalid_field",
    ),
    ("unknown field", reading(phase=2), JSON, 422, "invalid_field"),
    (
        "unknown top-level field",
        b'{"readings": [{"voltage": 1, "current": 1, "frequency": 1}], "extra": 1}',
        JSON,
        422,
        "invalid_field",
    ),
    ("huge timestamp", reading(timestamp="x" * 20_000), JSON, 422, "invalid_field"),
    ("timestamp a number", reading(timestamp=17), JSON, 422, "invalid_field"),
    (
        "deeply nested",
        b'{"readings": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        JSON,
        422,
        "invalid_field",
    ),
    (
        "batch over MAX_BATCH",
        json.dumps({"readings": [GOOD] * 101}).encode(),
        JSON,
        413,
        "batch_too_large",
    ),
    ("body over the limit", b'{"readings": [' + b" " * 70_000 + b"]}", JSON, 413, "body_too_large"),
    ("text/plain", reading(), "text/plain", 415, "unsupported_media_type"),
    (
        "form encoded",
        b"voltage=230",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    ("no content type", reading(), None, 415, "unsupported_media_type"),
]


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with gridscore_serve(
        model_dir,
        tmp_path_factory.mktemp("catalogue"),
        command="api",
        MAX_BATCH="100",
        MAX_BODY_BYTES="65536",
        REQUEST_TIMEOUT="1",
    ) as running:
        yield running


def _healthy(server: RunningServer) -> None:
    assert server.process.poll() is None, server.log()
    assert httpx.get(f"{server.url}/health").status_code == 200
    ok = httpx.post(f"{server.url}/predict", json={"readings": [GOOD]})
    assert ok.status_code == 200


def test_catalogue_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_malformed_request_gets_its_documented_status(
    server: RunningServer, body: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(f"{server.url}/predict", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["status"] == status
    assert error["error"] == code
    assert error["detail"]
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
    body = reading()
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
    body = reading()
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
