"""Load generator for the scoring service: closed or open loop, bounded in count and time.

Closed loop: ``connections`` clients each send, wait for the answer, send again.
Open loop: requests are due at a fixed ``rate``; latency counts from the time a request was
due, not when a free connection finally sent it, so queueing shows up instead of hiding
(the coordinated-omission trap).

Use as a library (``run``) or from the command line (``python -m bench.loadgen --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from bench.http1 import Connection, Target, build_request

MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 600.0


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how hard, and when to stop (whichever bound comes first)."""

    url: str
    batch: int = 1
    connections: int = 1
    requests: int | None = None
    duration: float = 10.0
    rate: float | None = None  # requests/s; None = closed loop
    new_connection: bool = False
    method: str = "POST"
    timeout: float = 10.0
    seed: int = 0
    anomaly_rate: float = 0.02
    bodies: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.duration <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S}] s")
        if self.requests is not None and not 0 < self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be in (0, {MAX_REQUESTS}]")
        if self.connections < 1 or self.batch < 1:
            raise ValueError("connections and batch must be >= 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0")


@dataclass
class LoadResult:
    spec: LoadSpec
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors by kind
    served_by: Counter[str] = field(default_factory=Counter)
    connections_opened: int = 0
    elapsed: float = 0.0

    def summary(self) -> dict[str, Any]:
        ok = len(self.latencies)
        lat = np.array(self.latencies) * 1000 if ok else np.array([math.nan])
        sent = sum(self.statuses.values()) + sum(self.errors.values())
        return {
            "mode": "open" if self.spec.rate else "closed",
            "batch": self.spec.batch,
            "connections": self.spec.connections,
            "rate_target": self.spec.rate,
            "new_connection": self.spec.new_connection,
            "requests": sent,
            "ok": ok,
            "elapsed_s": round(self.elapsed, 3),
            "requests_per_s": round(sent / self.elapsed, 1) if self.elapsed else 0.0,
            "rows_per_s": round(ok * self.spec.batch / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p90_ms": round(float(np.percentile(lat, 90)), 3),
            "p95_ms": round(float(np.percentile(lat, 95)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "max_ms": round(float(lat.max()), 3),
            "errors_by_status": {str(k): v for k, v in sorted(self.statuses.items()) if k >= 400},
            "transport_errors": dict(self.errors),
            "served_by": dict(self.served_by.most_common()),
            "connections_opened": self.connections_opened,
        }


def make_bodies(batch: int, count: int, seed: int, anomaly_rate: float) -> list[bytes]:
    """``count`` distinct /predict bodies of ``batch`` readings (nominal, some far out)."""
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        rows = rng.normal([230.0, 10.0, 50.0], [3.0, 1.5, 0.02], (batch, 3))
        far = rng.random(batch) < anomaly_rate
        rows[far] *= rng.choice([0.6, 1.5], (int(far.sum()), 3))
        readings = [
            {"voltage": round(v, 3), "current": round(c, 3), "frequency": round(f, 4)}
            for v, c, f in rows.tolist()
        ]
        bodies.append(msgspec.json.encode({"readings": readings}))
    return bodies


class _ServedBy(msgspec.Struct):
    served_by: str = ""


_decode_served_by = msgspec.json.Decoder(_ServedBy).decode


class _Runner:
    def __init__(self, spec: LoadSpec, result: LoadResult) -> None:
        self.spec = spec
        self.result = result
        self.target = Target.parse(spec.url)
        if spec.method == "POST":
            bodies = make_bodies(spec.batch, spec.bodies, spec.seed, spec.anomaly_rate)
        else:
            bodies = [b""]
        self.raw = [build_request(spec.method, self.target, b, spec.new_connection) for b in bodies]
        self.sent = 0
        self.deadline = 0.0
        self.idle: list[Connection] = []

    def _take_ticket(self) -> int | None:
        if self.spec.requests is not None and self.sent >= self.spec.requests:
            return None
        if time.perf_counter() >= self.deadline:
            return None
        self.sent += 1
        return self.sent

    async def _connection(self) -> Connection:
        while self.idle:
            conn = self.idle.pop()
            if conn.open:
                return conn
        conn = await Connection.connect(self.target)
        self.result.connections_opened += 1
        return conn

    async def _one(self, ticket: int, due: float) -> None:
        result = self.result
        conn = None
        try:
            conn = await asyncio.wait_for(self._connection(), self.spec.timeout)
            response = await asyncio.wait_for(
                conn.request(self.raw[ticket % len(self.raw)]), self.spec.timeout
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            result.errors[type(exc).__name__] += 1
            if conn is not None:
                await conn.close()
            return
        finished = time.perf_counter()
        result.statuses[response.status] += 1
        if response.status < 400:
            result.latencies.append(finished - due)
            if response.body.startswith(b"{"):
                served = _decode_served_by(response.body).served_by
                if served:
                    result.served_by[served] += 1
        if response.keep_alive and not self.spec.new_connection:
            self.idle.append(conn)
        else:
            await conn.close()

    async def closed_loop(self) -> None:
        async def client() -> None:
            while (ticket := self._take_ticket()) is not None:
                await self._one(ticket, time.perf_counter())

        await asyncio.gather(*(client() for _ in range(self.spec.connections)))

    async def open_loop(self) -> None:
        assert self.spec.rate is not None
        interval = 1.0 / self.spec.rate
        slots = asyncio.Semaphore(self.spec.connections)
        start = time.perf_counter()
        tasks = []

        async def send(ticket: int, due: float) -> None:
            async with slots:
                await self._one(ticket, due)

        index = 0
        while True:
            due = start + index * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ticket = self._take_ticket()
            if ticket is None:
                break
            tasks.append(asyncio.ensure_future(send(ticket, due)))
            index += 1
        await asyncio.gather(*tasks)

    async def run(self) -> None:
        started = time.perf_counter()
        self.deadline = started + self.spec.duration
        try:
            await (self.open_loop() if self.spec.rate else self.closed_loop())
        finally:
            self.result.elapsed = time.perf_counter() - started
            for conn in self.idle:
                await conn.close()


async def run_async(spec: LoadSpec) -> LoadResult:
    result = LoadResult(spec)
    await _Runner(spec, result).run()
    return result


def run(spec: LoadSpec) -> LoadResult:
    """Run one load test to completion (blocks); stops at ``requests`` or ``duration``."""
    return asyncio.run(run_async(spec))


def ceiling(base_url: str, connections: int, duration: float = 3.0) -> dict[str, Any]:
    """The generator's own limit: the same loop against the trivial ``GET /live``."""
    spec = LoadSpec(f"{base_url}/live", method="GET", connections=connections, duration=duration)
    return run(spec).summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--batch", type=int, default=1, help="readings per request")
    parser.add_argument("--connections", "-c", type=int, default=1)
    parser.add_argument("--requests", "-n", type=int, help="stop after this many requests")
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="stop after seconds")
    parser.add_argument("--rate", type=float, help="open loop at this many requests/s")
    parser.add_argument("--new-connection", action="store_true", help="one connection per request")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the /live ceiling run")
    args = parser.parse_args(argv)
    spec = LoadSpec(
        f"{args.url.rstrip('/')}/predict",
        batch=args.batch,
        connections=args.connections,
        requests=args.requests,
        duration=args.duration,
        rate=args.rate,
        new_connection=args.new_connection,
    )
    report: dict[str, Any] = {"load": run(spec).summary()}
    if not args.no_ceiling:
        report["ceiling"] = ceiling(args.url.rstrip("/"), args.connections)
        limit = report["ceiling"]["requests_per_s"]
        achieved = report["load"]["requests_per_s"]
        # Within 80% of what the generator manages against a no-op: it may be the bottleneck.
        report["generator_bound"] = bool(limit and achieved >= 0.8 * limit)
    json.dump(report, sys.stdout, indent=2)
    print()
    if report.get("generator_bound"):
        print(
            "note: throughput is within 80% of the generator's own ceiling; the load "
            "generator, not the server, may be the bottleneck",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
