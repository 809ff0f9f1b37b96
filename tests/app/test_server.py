"""Several worker processes: metrics summed over all of them, no Nagle delay."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from app.runtime.http_protocol import set_nodelay
from tests.support.examples import EXAMPLE_BATCH
from tests.support.metrics_text import value
from tests.support.servers import gridscore_serve


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> socket.socket | None:
        return self.sock if name == "socket" else None


def test_accepted_connections_get_tcp_nodelay() -> None:
    # A listener bound with proto 0, as uvicorn's supervisor binds it for --workers.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as _client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                set_nodelay(_Transport(accepted))  # type: ignore[arg-type]
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.mark.slow
def test_keep_alive_connections_spread_over_the_workers(model_dir: Path, tmp_path: Path) -> None:
    from bench import loadgen

    with gridscore_serve(model_dir, tmp_path, WORKERS="2") as server:
        # 16 keep-alive connections opened at once: with one shared listening socket the idle
        # worker tends to take them all; with a socket per worker the kernel spreads them.
        spec = loadgen.LoadSpec(f"{server.url}/predict", connections=16, requests=800)
        summary = loadgen.run(spec).summary()
    assert summary["connections_opened"] == 16
    assert summary["ok"] == 800
    assert len(summary["served_by"]) == 2, summary["served_by"]


@pytest.mark.slow
def test_two_workers_metrics_count_every_request_exactly_once(
    model_dir: Path, tmp_path: Path
) -> None:
    requests = 200
    served_by: dict[str, int] = {}
    with gridscore_serve(model_dir, tmp_path, WORKERS="2") as server:
        for _ in range(requests):
            # A new connection each time, so the kernel spreads them over both workers.
            response = httpx.post(f"{server.url}/predict", json=EXAMPLE_BATCH)
            assert response.status_code == 200
            instance = response.json()["served_by"]
            served_by[instance] = served_by.get(instance, 0) + 1
        scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(6)]
    assert len(served_by) == 2, served_by  # both workers answered
    for text in scrapes:  # whichever worker answers the scrape reports the sum
        assert value(text, "requests_total", path="/predict", status="200") == requests
        assert value(text, "anomalies_total") == requests
        assert value(text, "readings_total") == 2 * requests
        assert value(text, "model_info") == 1
