"""Run several uvicorn workers, each on its own SO_REUSEPORT socket, and keep them running.

Why not ``uvicorn --workers``: its workers share one listening socket, and whichever worker is
idle when a burst of connections arrives accepts them all, so keep-alive clients pile onto one
process (16 connections split 16/0 was seen here, halving throughput). With one socket per
worker, bound with SO_REUSEPORT, the kernel spreads new connections across workers by hash.
The supervisor keeps every socket open, so while a worker restarts its share of new
connections waits in the backlog instead of being refused. When a worker dies, its
multiprocess metric files are marked dead (live gauges drop it) and a new worker takes its
place; SIGTERM or SIGINT is passed on to every worker, which finishes its in-flight requests,
and SIGHUP to every worker, which swaps to a newer artifact if MODEL_DIR has one.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.context import SpawnProcess
from typing import Any

log = logging.getLogger("gridscore.supervisor")

STARTUP_FAILURE = 3  # uvicorn's exit code when a worker cannot start at all
RESTART_BACKOFF_S = 1.0


def reuseport_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket that other sockets may bind to the same address as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP (not 0): asyncio then sets TCP_NODELAY on every accepted connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _worker_main(sock: socket.socket, options: dict[str, Any]) -> None:
    """Body of one worker process: a uvicorn server on the socket it was handed."""
    import uvicorn

    config = uvicorn.Config(**options)
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts ``workers`` uvicorn processes and replaces any that die, until told to stop."""

    def __init__(
        self,
        host: str,
        port: int,
        workers: int,
        options: dict[str, Any],
        graceful_timeout: float,
        metrics_dir: str | None,
        drain_seconds: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.options = options
        self.graceful_timeout = graceful_timeout
        self.drain_seconds = drain_seconds
        self.metrics_dir = metrics_dir
        self.count = workers
        self.sockets: list[socket.socket] = []
        self.processes: list[SpawnProcess | None] = []
        self.started_at: list[float] = []
        self.stopping = False
        self.workers_signalled = False
        self.exit_code = 0
        self._context = multiprocessing.get_context("spawn")

    def _spawn(self, index: int) -> None:
        process = self._context.Process(
            target=_worker_main,
            args=(self.sockets[index], self.options),
            name=f"gridscore-worker-{index}",
        )
        process.start()
        self.processes[index] = process
        self.started_at[index] = time.monotonic()
        log.info("worker started", extra={"fields": {"worker": index, "worker_pid": process.pid}})

    def _stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("stopping workers", extra={"fields": {"signal": signal.Signals(signum).name}})
            self.stopping = True
            # At once, not at the main loop's next tick: a worker's drain starts with the
            # signal (readiness 503, every response closing its connection).
            self._signal_workers()

    def _signal_workers(self) -> None:
        """SIGTERM to every worker, once (a second one would cut its drain short)."""
        self.workers_signalled = True
        for process in self.processes:
            if process is not None and process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        # Each listener now closes when its worker closes it after the drain: held open here,
        # the kernel would go on completing connections nobody accepts, and reset them all
        # when the supervisor exits.
        for sock in self.sockets:
            sock.close()

    def _forward(self, signum: int, _frame: object) -> None:
        """SIGHUP: every worker looks for a newer artifact (app/model/swap.py)."""
        log.info("passing SIGHUP to the workers")
        for process in self.processes:
            if process is not None and process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    def _reap(self, index: int, process: SpawnProcess) -> None:
        """A worker exited on its own: clean its metrics, then replace it (or give up)."""
        process.join()
        pid, code = process.pid, process.exitcode
        self._mark_dead(pid)
        if code == STARTUP_FAILURE:
            log.error("worker could not start; stopping", extra={"fields": {"worker_pid": pid}})
            self.exit_code = STARTUP_FAILURE
            self.stopping = True
            self.processes[index] = None
            return
        log.error(
            "worker died; replacing it",
            extra={"fields": {"worker": index, "worker_pid": pid, "exitcode": code}},
        )
        if time.monotonic() - self.started_at[index] < RESTART_BACKOFF_S:
            time.sleep(RESTART_BACKOFF_S)  # a worker that dies at once would otherwise spin
        self._spawn(index)

    def _mark_dead(self, pid: int | None) -> None:
        if self.metrics_dir and pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code for the launcher."""
        self.sockets = [reuseport_socket(self.host, self.port) for _ in range(self.count)]
        self.processes = [None] * self.count
        self.started_at = [0.0] * self.count
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._forward)
        log.info("supervisor started", extra={"fields": {"workers": self.count, "port": self.port}})
        try:
            for index in range(self.count):
                self._spawn(index)
            while not self.stopping:
                time.sleep(0.1)
                for index, process in enumerate(self.processes):
                    if process is not None and not process.is_alive() and not self.stopping:
                        self._reap(index, process)
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def _shutdown(self) -> None:
        live = [p for p in self.processes if p is not None and p.is_alive()]
        if not self.workers_signalled:
            self._signal_workers()
        deadline = time.monotonic() + self.drain_seconds + self.graceful_timeout + 5
        for process in live:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error(
                    "worker did not stop in time; killing it",
                    extra={"fields": {"worker_pid": process.pid}},
                )
                process.kill()
                process.join()
        for stopped in self.processes:
            if stopped is not None:
                self._mark_dead(stopped.pid)
        log.info("supervisor stopped")
