"""Settings of the server process: address, workers, shutdown, logs, names."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from app.config.fields import choice, flag, integer, number, setting, text


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The server process: where it listens, how many workers, how it stops, logs, names."""

    host: str = setting("HOST", "127.0.0.1", "listen address (`0.0.0.0` in containers)", text())
    port: int = setting("PORT", 8000, "TCP port", integer(minimum=0))
    workers: int = setting(
        "WORKERS", 1, "server processes (one per pod in Kubernetes)", integer(minimum=1)
    )
    graceful_timeout: float = setting(
        "GRACEFUL_TIMEOUT",
        10.0,
        "seconds to finish in-flight requests and close streams on SIGTERM",
        number(zero_is_default=True),
    )
    drain_seconds: float = setting(
        "DRAIN_SECONDS",
        0.0,
        "after SIGTERM, answer `/health` 503 this long before closing the listener "
        "(8 in `ops/k8s`, docs/deploying.md)",
        number(floor=0.0),
    )
    request_order: str = setting(
        "REQUEST_ORDER",
        "fair",
        "`fair`: the requests read in one pass of the event loop start least recently served "
        "connection first, so none waits two rounds (docs/benchmarks.md); `poll`: in the order "
        "the loop reports their sockets (uvicorn's)",
        choice("fair", "poll"),
    )
    metrics_dir: str = setting(
        "PROMETHEUS_MULTIPROC_DIR",
        "",
        "shared folder for the workers' metrics (the launcher makes a temporary one if unset)",
        text(),
        shown="(temporary)",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "info",
        "`debug`, `info`, `warning` or `error`; `debug` adds one JSON line per request "
        "(reading values are never logged)",
        choice("debug", "info", "warning", "error"),
    )
    pod_name: str = setting(
        "POD_NAME", "", "instance name, first half of `served_by`", text(), shown="(host name)"
    )
    node_name: str = setting(
        "NODE_NAME", "", "node the pod runs on (shown by the dashboard)", text()
    )
    control_dir: str = setting(
        "CONTROL_DIR",
        "",
        "folder where workers share the model every worker should serve (after an admin "
        "swap); the launcher makes a temporary one if unset",
        text(),
        shown="(temporary)",
    )
    gc_freeze: bool = setting(
        "GC_FREEZE",
        True,
        "`1`: after start-up, exempt the start-up heap from garbage collection and collect the "
        "young generation less often, so no full collection pauses a request "
        "(docs/benchmarks.md); `0`: Python's defaults",
        flag(),
    )

    def instance_name(self) -> str:
        """The pod name, else the host name: the first half of ``served_by``."""
        return self.pod_name or socket.gethostname()
