"""Run the app under uvicorn with gridscore's process settings.

asyncio only sets TCP_NODELAY on accepted sockets whose listener says IPPROTO_TCP, and a socket
bound with protocol 0 (as ``uvicorn --workers`` binds it) does not; Nagle's algorithm then holds
back each keep-alive response until the client's delayed ACK (~40 ms). The protocol class
below sets TCP_NODELAY on every accepted connection, whoever bound the socket.
"""

from __future__ import annotations

import asyncio
import logging.config
import os
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app import logs
from app.settings import Settings
from app.supervisor import Supervisor


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with TCP_NODELAY on each connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


def uvicorn_options(settings: Settings, app: str) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` serving the factory ``app`` in one process."""
    return {
        "app": app,
        "factory": True,
        "host": settings.server.host,
        "port": settings.server.port,
        "http": "app.server:NoDelayHttpToolsProtocol",
        "loop": "uvloop",
        "lifespan": "on",
        "log_config": logs.uvicorn_log_config(settings.server.log_level),
        "access_log": False,
        "server_header": False,
        # Open SSE streams would otherwise hold shutdown forever.
        "timeout_graceful_shutdown": settings.server.graceful_timeout,
        "timeout_keep_alive": 5,
    }


def serve(settings: Settings, app: str = "app.factory:create_served_app") -> int:
    """Serve until SIGINT/SIGTERM (blocks); returns the process exit code.

    One worker runs uvicorn in this process; several run under gridscore's supervisor, one
    SO_REUSEPORT socket each (see app.supervisor for why not ``uvicorn --workers``).
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
