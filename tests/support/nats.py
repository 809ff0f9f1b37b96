"""Real nats-server processes on loopback (the benchmark's harness, ``bench/natsserver.py``)."""

from bench.natsserver import (
    NatsServer,
    environment,
    nats_cluster,
    nats_server,
    nats_server_binary,
    urls,
)

__all__ = [
    "NatsServer",
    "environment",
    "nats_cluster",
    "nats_server",
    "nats_server_binary",
    "urls",
]
