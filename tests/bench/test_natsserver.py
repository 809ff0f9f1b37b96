"""bench/natsserver.py: a nats-server that cannot start says why instead of timing out."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.natsserver import NatsServer, ServerExited, distinct_ports


def test_a_server_whose_port_is_taken_fails_at_once_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # The monitoring port: a taken client port would answer the readiness check itself.
        server = NatsServer(tmp_path, http_port=taken.getsockname()[1])
        try:
            with pytest.raises(ServerExited, match="address already in use"):
                server.start()
        finally:
            server.stop()


def test_distinct_ports_never_repeat() -> None:
    ports = distinct_ports(9)
    assert len(set(ports)) == 9
