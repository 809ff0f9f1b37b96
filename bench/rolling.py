"""Rolling restart behind a real load balancer: HAProxy in front of several scorers, under load.

HAProxy (Debian's) balances over ``INSTANCES`` ``gridscore api`` processes and health-checks
``GET /health`` the way a Kubernetes Service follows readiness: an instance answering 503 is
taken out after ``FALL`` failed checks, ``INTERVAL_MS`` apart, and put back after ``RISE``
good ones. While an open loop sends ``RATE`` requests/s through HAProxy:

- ``roll``: each instance in turn gets SIGTERM (readiness 503 at once, still answering for
  ``DRAIN_SECONDS``, then finishing what it holds), a replacement starts on the same port,
  and the next waits until HAProxy has the replacement up.
- ``kill``: one instance gets SIGKILL, mid-load, and is started again.

The balancer's retry policy, stated here and in docs/deploying.md: ``retries 3``, ``option
redispatch`` (a retry goes to another server), ``retry-on conn-failure empty-response
response-timeout`` (a connection refused or reset before an answer; a scoring request has no
side effect but metrics, so sending it again is safe), and ``maxconn 16`` per server (what one
instance can hold in flight: the bound on what a SIGKILL can lose).

    python -m bench.rolling          # both scenarios; writes bench/results/rolling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from app.harness import LoadResult, LoadSpec, percentile, run_load
from bench import serving

RESULTS = Path(__file__).parent / "results"
INSTANCES = 3
RATE = 300.0  # requests/s, open loop, batch 1
INTERVAL_MS = 250  # HAProxy's check interval
FALL, RISE = 2, 2
DRAIN_SECONDS = 1.5  # > FALL x INTERVAL plus one check's time: out of rotation before closing
MAXCONN = 16
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


def stable_port() -> int:
    """A free port below the kernel's ephemeral range: while an instance restarts, no
    outgoing connection (the load, the checks) can take its port as a local port."""
    low = 32768
    with suppress(OSError, ValueError, IndexError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 8000), low), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


CONFIG = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 10s
    timeout check 1s
    timeout http-keep-alive 5s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout

frontend scorers_in
    bind 127.0.0.1:{port}
    default_backend scorers

backend scorers
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server check inter {inter}ms fall {fall} rise {rise} maxconn {maxconn}
{servers}
"""


@dataclass
class Instance:
    """One ``gridscore api`` process on a fixed port, restartable."""

    name: str
    port: int
    model_dir: Path
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)  # seconds from spawn to first 200

    def start(self) -> float:
        # Only what running Python needs from this environment: an API_KEY or MAX_BATCH set
        # for something else must not change the instances.
        env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
        env |= {
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "MODEL_DIR": str(self.model_dir.resolve()),
            "TRAIN_IF_MISSING": "0",
            "WORKERS": "1",
            "DRAIN_SECONDS": str(DRAIN_SECONDS),
            "GRACEFUL_TIMEOUT": "5",
            "LOG_LEVEL": "warning",
            "POD_NAME": self.name,
        }
        log = open(self.log_dir / f"{self.name}-{len(self.starts)}.log", "wb")  # noqa: SIM115
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "api"], env=env, stdout=log, stderr=log
        )
        log.close()
        while not serving.health_ok(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            if time.perf_counter() - started > 60:
                raise TimeoutError(f"{self.name} not ready in 60 s")
            time.sleep(0.01)
        self.starts.append(time.perf_counter() - started)
        return self.starts[-1]

    def stop(self, how: int = signal.SIGTERM, wait: float = 30.0) -> float:
        """Send ``how``; seconds until the process has exited (killed if it has not)."""
        assert self.process is not None
        started = time.perf_counter()
        self.process.send_signal(how)
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return time.perf_counter() - started

    def ensure_stopped(self) -> None:
        if self.process is not None:
            serving.stop(self.process)


class HAProxy:
    def __init__(self, port: int, workdir: Path, instances: list[Instance]) -> None:
        self.port = port
        self.socket = workdir / "haproxy.sock"
        servers = "\n".join(f"    server {i.name} 127.0.0.1:{i.port}" for i in instances)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(
            CONFIG.format(
                socket=self.socket,
                port=port,
                inter=INTERVAL_MS,
                fall=FALL,
                rise=RISE,
                maxconn=MAXCONN,
                servers=servers,
            )
        )
        self.log = workdir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HAProxy:
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(self.config)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refuses its configuration:\n{check.stdout}{check.stderr}")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        # Its stats socket answers before its frontend listens: wait for both.
        while not (self.states() and all(s == "UP" for s in self.states().values())) or not (
            self._listening()
        ):
            if time.monotonic() > deadline:
                states = self.states()
                self.__exit__()
                raise TimeoutError(f"haproxy: not listening, or servers not up: {states}")
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            serving.stop(self.process, timeout=10)

    def _rows(self) -> list[dict[str, str]]:
        """``show stat`` from HAProxy's stats socket, a dict per proxy and server."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(self.socket))
                sock.sendall(b"show stat\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return []
        lines = b"".join(chunks).decode().splitlines()
        if not lines:
            return []
        header = lines[0].lstrip("# ").split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]

    def states(self) -> dict[str, str]:
        """Each server's status as HAProxy sees it (UP, DOWN, ...)."""
        return {
            row["svname"]: row.get("status", "").split(" ")[0]
            for row in self._rows()
            if row.get("pxname") == "scorers" and row.get("svname") not in {"BACKEND", None}
        }

    def retries(self) -> dict[str, int]:
        """The backend's retries and redispatches so far (``wretr``, ``wredis``)."""
        for row in self._rows():
            if row.get("pxname") == "scorers" and row.get("svname") == "BACKEND":
                return {"retries": int(row["wretr"] or 0), "redispatches": int(row["wredis"] or 0)}
        return {"retries": 0, "redispatches": 0}

    def wait_for(self, name: str, state: str, timeout: float = 30.0) -> float:
        """Seconds until HAProxy reports ``name`` as ``state``."""
        started = time.perf_counter()
        while self.states().get(name) != state:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{name} not {state} after {timeout} s: {self.states()}")
            time.sleep(0.01)
        return time.perf_counter() - started


@dataclass
class Background:
    """A load run in its own thread: when it is due to stop, and its result once it has."""

    until: float
    result: LoadResult | None = None

    def outlasts(self, moment: float, tail: float = 1.0) -> None:
        """Refuse a measurement that ran past the load (too slow a machine for its length)."""
        if moment > self.until - tail:
            raise RuntimeError("the restarts outlasted the load; lengthen its duration")


@contextmanager
def load_in_background(url: str, duration: float) -> Iterator[Background]:
    """An open loop at RATE for ``duration`` seconds in its own thread."""
    spec = LoadSpec(url, batch=1, rate=RATE, connections=64, duration=duration, timeout=10.0)
    background = Background(time.perf_counter() + duration)

    def work() -> None:
        background.result = run_load(spec)

    thread = threading.Thread(target=work)
    thread.start()
    try:
        yield background
    finally:
        thread.join()


def _summary(result: LoadResult, window: tuple[float, float]) -> dict[str, Any]:
    """Counts over the run; latency percentiles over all and within ``window`` (perf times)."""
    during = sorted(
        latency * 1000
        for latency, finished in zip(result.latencies, result.finished, strict=True)
        if window[0] <= finished <= window[1]
    )
    failed = sum(n for status, n in result.statuses.items() if status >= 400) + sum(
        result.errors.values()
    )
    summary = result.summary()
    return {
        "sent": summary["requests"],
        "ok": summary["ok"],
        "failed": failed,
        "by_status": {str(k): v for k, v in sorted(result.statuses.items())},
        "transport_errors": dict(result.errors),
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "during_p50_ms": round(percentile(during, 50), 3),
        "during_p99_ms": round(percentile(during, 99), 3),
        "during_max_ms": round(during[-1], 3) if during else None,
        "served_by": summary["served_by"],
    }


@contextmanager
def balanced(model_dir: Path, workdir: Path) -> Iterator[tuple[list[Instance], HAProxy]]:
    """INSTANCES scorers behind HAProxy; every process stopped on the way out."""
    instances = [
        Instance(f"scorer-{i}", stable_port(), model_dir, workdir) for i in range(INSTANCES)
    ]
    try:
        for instance in instances:
            instance.start()
        with HAProxy(serving.free_port(), workdir, instances) as proxy:
            yield instances, proxy
    finally:
        for instance in instances:
            instance.ensure_stopped()


T = TypeVar("T")


def under_load(
    proxy: HAProxy, duration: float, act: Callable[[], T]
) -> tuple[T, dict[str, Any], dict[str, int], float]:
    """``act`` 3 s into an open loop through ``proxy``: what it returned, the load's summary
    (latency within the act's window), the balancer's retries, and how long the act took."""
    with load_in_background(f"http://127.0.0.1:{proxy.port}/predict", duration) as outcome:
        time.sleep(3.0)  # steady load first
        began = time.perf_counter()
        acted = act()
        ended = time.perf_counter()
        outcome.outlasts(ended)
    assert outcome.result is not None
    return acted, _summary(outcome.result, (began, ended)), proxy.retries(), ended - began


def restart(proxy: HAProxy, instance: Instance) -> dict[str, Any]:
    """SIGTERM, wait for the exit, start a replacement, wait until the balancer has it."""
    assert instance.process is not None
    instance.process.send_signal(signal.SIGTERM)
    sent = time.perf_counter()
    out_after = proxy.wait_for(instance.name, "DOWN")
    instance.process.wait(timeout=30)
    exited = time.perf_counter() - sent
    ready = instance.start()
    up_after = proxy.wait_for(instance.name, "UP")
    return {
        "instance": instance.name,
        "out_of_rotation_s": round(out_after, 3),
        "exited_s": round(exited, 3),
        "replacement_ready_s": round(ready, 3),
        "back_in_rotation_s": round(up_after, 3),
    }


def roll(model_dir: Path, workdir: Path) -> dict[str, Any]:
    """Restart every instance in turn under load; timings per step."""
    with balanced(model_dir, workdir) as (instances, proxy):
        # Long enough for the roll (about 3.5 s an instance here) and a tail after it.
        steps, load, retried, took = under_load(
            proxy, 6.0 + 4.5 * INSTANCES, lambda: [restart(proxy, i) for i in instances]
        )
    return {"roll_s": round(took, 3), "balancer": retried, "steps": steps, "load": load}


def kill(model_dir: Path, workdir: Path) -> dict[str, Any]:
    """SIGKILL one instance under load, then start it again."""
    with balanced(model_dir, workdir) as (instances, proxy):
        victim = instances[0]

        def kill_and_replace() -> tuple[float, float, float]:
            victim.stop(signal.SIGKILL)
            out_after = proxy.wait_for(victim.name, "DOWN")
            ready = victim.start()
            return out_after, ready, proxy.wait_for(victim.name, "UP")

        (out_after, ready, up_after), load, retried, _ = under_load(proxy, 9.0, kill_and_replace)
    return {
        "out_of_rotation_s": round(out_after, 3),
        "replacement_ready_s": round(ready, 3),
        "back_in_rotation_s": round(up_after, 3),
        "bound": MAXCONN,
        "balancer": retried,
        "load": load,
    }


def run(model_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gridscore-rolling-") as tmp:
        workdir = Path(tmp)
        rolled = roll(model_dir, workdir)
        killed = kill(model_dir, workdir)
    return {
        "command": "python -m bench.rolling",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "instances": INSTANCES,
        "rate_requests_per_s": RATE,
        "check": {"interval_ms": INTERVAL_MS, "fall": FALL, "rise": RISE},
        "drain_seconds": DRAIN_SECONDS,
        "retry_policy": "retries 3; option redispatch; "
        "retry-on conn-failure empty-response response-timeout; maxconn "
        f"{MAXCONN} per server",
        "roll": rolled,
        "kill": killed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rolling", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=RESULTS / "rolling.json")
    args = parser.parse_args(argv)
    report = run(args.model_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    rolled, killed = report["roll"]["load"], report["kill"]["load"]
    print(
        f"roll: {rolled['sent']} sent, {rolled['failed']} failed, p99 during the roll "
        f"{rolled['during_p99_ms']} ms (p50 {rolled['during_p50_ms']} ms)"
    )
    for step in report["roll"]["steps"]:
        print("  ", step)
    print(
        f"kill: {killed['sent']} sent, {killed['failed']} failed (bound {report['kill']['bound']}),"
        f" out of rotation after {report['kill']['out_of_rotation_s']} s; the balancer "
        f"retried {report['kill']['balancer']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
