"""Start gridscore (or another server command) as a real process on a loopback port.

Shared by the benchmarks, the screenshot script and the tests: spawn, wait for the first 200
on /health (timing it), stop with SIGTERM on the way out.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health_ok(port: int, tls: ssl.SSLContext | None = None) -> bool:
    """Whether ``GET /health`` on the port answers 200 right now (over TLS with ``tls``)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
            sock = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
            with sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM ``process`` if it still runs, and SIGKILL it if it has not exited in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    url: str
    log_path: Path
    ready_s: float

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_server(
    argv: list[str],
    env: dict[str, str],
    port: int,
    log_dir: Path,
    timeout: float = 60.0,
    cwd: Path | None = None,
    tls: ssl.SSLContext | None = None,
) -> Iterator[RunningServer]:
    """Run ``argv`` until the block ends; waits for /health on ``port`` to answer 200 (over
    TLS with the client context ``tls``)."""
    log_path = log_dir / f"server-{port}-{time.monotonic_ns()}.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=cwd)
    scheme = "https" if tls else "http"
    server = RunningServer(process, port, f"{scheme}://127.0.0.1:{port}", log_path, 0.0)
    try:
        while not health_ok(port, tls):
            if process.poll() is not None:
                raise RuntimeError(f"{argv} exited with {process.returncode}:\n{server.log()}")
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{argv} not ready in {timeout} s:\n{server.log()}")
            time.sleep(0.002)
        server.ready_s = time.perf_counter() - started
        yield server
    finally:
        stop(process)


@functools.cache
def own_artifact(source: Path) -> Path:
    """A model folder with the default artifact as the checkout ``source`` publishes it (the
    same synthetic readings and seed). The artifact's format changes between commits, so a
    baseline serves one of its own; the folder goes when this process ends."""
    folder = Path(tempfile.mkdtemp(prefix="gridscore-baseline-models-"))
    atexit.register(shutil.rmtree, folder, True)
    env = {**os.environ, "PYTHONPATH": str(source), "MODEL_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-m", "convert", "--model-dir", str(folder)],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"convert in {source} failed:\n{done.stdout}{done.stderr}")
    return folder


@contextmanager
def gridscore_serve(
    model_dir: Path,
    log_dir: Path | None = None,
    timeout: float = 60.0,
    command: str = "serve",
    port: int | None = None,
    source: Path | None = None,
    tls: ssl.SSLContext | None = None,
    **env: str,
) -> Iterator[RunningServer]:
    """``gridscore <command>`` (serve, api or dashboard) with the artifact in ``model_dir``;
    ``source``: run another checkout of gridscore (a baseline) with this environment, on the
    artifact that checkout publishes (``own_artifact``) instead of ``model_dir``'s."""
    port = port or free_port()
    if source is not None:
        model_dir = own_artifact(source)
    # A metrics folder of this shell's is not the server's (``env`` may name one).
    inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    environment = {
        **inherited,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "MODEL_DIR": str(model_dir.resolve()),
        "TRAIN_IF_MISSING": "0",
        **env,
    }
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    with (
        tempfile.TemporaryDirectory(prefix="gridscore-logs-") as fallback,
        run_server(
            [sys.executable, "-m", "app", command],
            environment,
            port,
            log_dir or Path(fallback),
            timeout,
            cwd=source,
            tls=tls,
        ) as server,
    ):
        yield server
