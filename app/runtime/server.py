"""Run the app under uvicorn with gridscore's process settings (the HTTP protocol it runs is
app.runtime.http_protocol's)."""

from __future__ import annotations

import logging.config
import os
from typing import Any

import uvicorn

from app.config import Settings
from app.observe import logs
from app.runtime import http_protocol, tls
from app.runtime.supervisor import Supervisor


def uvicorn_options(settings: Settings, app: str) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` serving the factory ``app`` in one process."""
    return {
        "app": app,
        "factory": True,
        "host": settings.server.host,
        "port": settings.server.port,
        "http": http_protocol.PROTOCOLS[settings.server.request_order],
        "loop": "uvloop",
        "lifespan": "on",
        "log_config": logs.uvicorn_log_config(settings.server.log_level),
        "access_log": False,
        "server_header": False,
        # Open SSE streams would otherwise hold shutdown forever.
        "timeout_graceful_shutdown": settings.server.graceful_timeout,
        "timeout_keep_alive": 5,
        **tls.uvicorn_tls_options(settings.security),
    }


def serve(settings: Settings, app: str = "app.service.factory:create_served_app") -> int:
    """Serve until SIGINT/SIGTERM (blocks); returns the process exit code.

    One worker runs uvicorn in this process; several run under gridscore's supervisor, one
    SO_REUSEPORT socket each (see app.runtime.supervisor for why not ``uvicorn --workers``).
    """
    options = uvicorn_options(settings, app)
    if settings.server.workers == 1:
        uvicorn.run(**options)
        return 0
    logging.config.dictConfig(options["log_config"])
    return Supervisor(
        settings.server.host,
        settings.server.port,
        settings.server.workers,
        options,
        settings.server.graceful_timeout,
        os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
        settings.server.drain_seconds,
    ).run()
