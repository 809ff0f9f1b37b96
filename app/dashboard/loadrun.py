"""Load runs against the scorer: closed loop, open loop, or waves; bounded in count and time.

Closed loop: ``connections`` clients each send, wait for the answer, send again.
Open loop: requests are due at a fixed ``rate``; latency counts from the time a request was
due, not when a free connection finally sent it, so queueing shows up instead of hiding
(the coordinated-omission trap).
Waves: ``cycles`` rounds of ``connections`` requests fired together; a round starts when the
previous one has finished (the dashboard's sustained bursts).

Pure Python (no numpy), so the dashboard process can run it; ``bench.loadgen`` wraps it in a
command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app.contract.api import FeatureInfo
from app.dashboard import v2_requests
from app.dashboard.http1 import (
    Connection,
    ProtocolError,
    Response,
    StaleConnection,
    Target,
    build_request,
)
from app.dashboard.readings import ReadingSampler, synthetic_features
from app.dashboard.v2_requests import PROTOCOLS, Body

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
    cycles: int | None = None  # waves of `connections` requests; None = not waves
    new_connection: bool = False
    method: str = "POST"
    timeout: float = 10.0  # seconds for one request: taking a connection to its last byte
    seed: int = 0
    anomaly_rate: float = 0.02
    bodies: int = 64
    headers: tuple[tuple[str, str], ...] = ()  # extra request headers, e.g. an API key
    features: tuple[FeatureInfo, ...] | None = None  # the model's (GET /model); None: synthetic
    protocol: str = "predict"  # wire format of the bodies: one of v2_requests.PROTOCOLS

    def __post_init__(self) -> None:
        if not 0 < self.duration <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S}] s")
        if self.requests is not None and not 0 < self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be in (0, {MAX_REQUESTS}]")
        if self.connections < 1 or self.batch < 1:
            raise ValueError("connections and batch must be >= 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.cycles is not None and not 0 < self.cycles * self.connections <= MAX_REQUESTS:
            raise ValueError(f"cycles x connections must be in (0, {MAX_REQUESTS}]")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")

    @property
    def planned(self) -> int | None:
        """Requests the run will send if no time bound cuts it short (None: time-bound only)."""
        if self.cycles is not None:
            return self.cycles * self.connections
        return self.requests


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass
class LoadResult:
    spec: LoadSpec
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    finished: list[float] = field(default_factory=list)  # when each of those finished (perf)
    # How late the generator sent each of those (from its due time to its first byte written):
    # the part of its latency that a generator short of CPU or connections added itself.
    send_delays: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors by kind
    served_by: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)  # which model scored (its digest)
    connections_opened: int = 0
    elapsed: float = 0.0
    cycles_done: int = 0

    @property
    def completed(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    def summary(self) -> dict[str, Any]:
        ok = len(self.latencies)
        lat = sorted(x * 1000 for x in self.latencies)
        sent = self.completed
        elapsed = self.elapsed or 1e-9

        def ms(q: float) -> float:
            return round(percentile(lat, q), 3)

        return {
            "mode": "open" if self.spec.rate else ("waves" if self.spec.cycles else "closed"),
            "batch": self.spec.batch,
            "connections": self.spec.connections,
            "rate_target": self.spec.rate,
            "cycles": self.spec.cycles,
            "new_connection": self.spec.new_connection,
            "protocol": self.spec.protocol,
            "requests": sent,
            "ok": ok,
            "elapsed_s": round(self.elapsed, 3),
            "requests_per_s": round(sent / elapsed, 1),
            "rows_per_s": round(ok * self.spec.batch / elapsed, 1),
            "p50_ms": ms(50),
            "p90_ms": ms(90),
            "p95_ms": ms(95),
            "p99_ms": ms(99),
            "max_ms": round(lat[-1], 3) if lat else float("nan"),
            "send_delay_p99_ms": round(
                percentile(sorted(x * 1000 for x in self.send_delays), 99), 3
            ),
            "mean_ms": round(statistics.fmean(lat), 3) if lat else float("nan"),
            "errors_by_status": {str(k): v for k, v in sorted(self.statuses.items()) if k >= 400},
            "transport_errors": dict(self.errors),
            "served_by": dict(self.served_by.most_common()),
            "models": dict(self.models.most_common()),
            "connections_opened": self.connections_opened,
        }


def make_bodies(
    batch: int,
    count: int,
    seed: int,
    anomaly_rate: float,
    features: list[FeatureInfo] | None = None,
    protocol: str = "predict",
) -> list[Body]:
    """``count`` distinct request bodies of ``batch`` readings in ``protocol``'s wire format,
    drawn like the model's training data (``features``, from GET /model; the synthetic
    supply point's without), some pushed far out."""
    features = features or synthetic_features()
    sampler = ReadingSampler(features, seed)
    names = [f.name for f in features]
    return [
        v2_requests.body(protocol, sampler.batch(batch, anomaly_rate), names) for _ in range(count)
    ]


def merged_headers(
    base: tuple[tuple[str, str], ...], body: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """``base`` with the body's own headers (its content type) taking the place of any of
    the same name."""
    names = {name.lower() for name, _ in body}
    return (*(h for h in base if h[0].lower() not in names), *body)


class _ServedBy(msgspec.Struct):
    served_by: str = ""
    model: str = ""


class _V2Answered(msgspec.Struct):
    model_version: str = ""
    parameters: dict[str, str | int | float | bool] = {}


_decode_served_by = msgspec.json.Decoder(_ServedBy).decode
_decode_v2 = msgspec.json.Decoder(_V2Answered).decode


def answered_by(response: Response) -> tuple[str, str]:
    """Which instance and which model (digest prefix) answered a scoring request."""
    body = response.body
    if not body.startswith(b"{"):
        return "", ""
    try:
        if b'"model_name"' not in body[:64]:  # /predict's answer
            answered = _decode_served_by(body)
            return answered.served_by, answered.model
        head = body if response.json_length is None else body[: response.json_length]
        v2 = _decode_v2(head)
    except msgspec.MsgspecError:  # a 2xx this client does not read: counted, not attributed
        return "", ""
    return str(v2.parameters.get("served_by", "")), v2.model_version


class LoadRun:
    """One load run; ``result`` fills in as it goes, so progress can be read while it runs."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.result = LoadResult(spec)
        self.target = Target.parse(spec.url)
        bodies = (
            make_bodies(
                spec.batch,
                spec.bodies,
                spec.seed,
                spec.anomaly_rate,
                list(spec.features) if spec.features else None,
                spec.protocol,
            )
            if spec.method == "POST"
            else [Body(b"", ())]
        )
        self.raw = [
            build_request(
                spec.method,
                self.target,
                b.content,
                spec.new_connection,
                merged_headers(spec.headers, b.headers),
            )
            for b in bodies
        ]
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
            if conn.reusable:
                return conn
            await conn.close()
        return await self._open()

    async def _open(self) -> Connection:
        conn = await Connection.connect(self.target)
        self.result.connections_opened += 1
        return conn

    async def _one(self, ticket: int, due: float) -> None:
        result = self.result
        conn = None
        raw = self.raw[ticket % len(self.raw)]
        try:
            # One deadline for the whole request, on this task: on Python 3.11 wait_for wraps
            # each await in a task of its own, which costs the generator CPU the server lacks.
            async with asyncio.timeout(self.spec.timeout):
                conn = await self._connection()
                sent = time.perf_counter()
                try:
                    response = await conn.request(raw)
                except StaleConnection:  # closed by the server while idle: send it afresh
                    conn = await self._connection()
                    sent = time.perf_counter()
                    response = await conn.request(raw)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
            result.errors[type(exc).__name__] += 1
            if conn is not None:
                await conn.close()
            return
        finished = time.perf_counter()
        result.statuses[response.status] += 1
        if response.status < 400:
            result.latencies.append(finished - due)
            result.finished.append(finished)
            result.send_delays.append(sent - due)
            served_by, model = answered_by(response)
            if served_by:
                result.served_by[served_by] += 1
            if model:
                result.models[model] += 1
        if response.keep_alive and not self.spec.new_connection:
            self.idle.append(conn)
        else:
            await conn.close()

    async def _closed_loop(self) -> None:
        async def client() -> None:
            while (ticket := self._take_ticket()) is not None:
                await self._one(ticket, time.perf_counter())

        await asyncio.gather(*(client() for _ in range(self.spec.connections)))

    async def _preconnect(self) -> None:
        """Open the run's connections before the first request is due, as clients that
        keep their connections alive have them: otherwise the first requests of an open loop
        wait while the pool is built, and a soak's first window measures connection set-up
        (seen: 42 ms of send delay at p99 in a soak's first 5 s). Connections the server
        later closes for idling are opened again when needed, as a client's would be. One
        that cannot be opened is left to the requests, which count the error."""

        async def one() -> None:
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(self.spec.timeout):
                    self.idle.append(await self._open())  # at once: closed by run() if cut short

        wanted = min(self.spec.connections, self.spec.requests or self.spec.connections)
        await asyncio.gather(*(one() for _ in range(wanted)))

    async def _open_loop(self) -> None:
        assert self.spec.rate is not None
        interval = 1.0 / self.spec.rate
        slots = asyncio.Semaphore(self.spec.connections)
        start = time.perf_counter()
        # Only the requests still in flight are held: a list of every task ever sent would
        # grow by the thousand each second, and the collector's full passes over it would
        # stall this loop longer and longer (seen as a p99 rising window after window).
        pending: set[asyncio.Future[None]] = set()

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
            task = asyncio.ensure_future(send(ticket, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            index += 1
        await asyncio.gather(*pending)

    async def _waves(self) -> None:
        assert self.spec.cycles is not None
        for _ in range(self.spec.cycles):
            tickets = [t for t in (self._take_ticket() for _ in range(self.spec.connections)) if t]
            if not tickets:
                break
            now = time.perf_counter()
            await asyncio.gather(*(self._one(ticket, now) for ticket in tickets))
            self.result.cycles_done += 1

    async def run(self) -> LoadResult:
        """Run to completion; stops at ``requests``/``cycles`` or ``duration``."""
        started = time.perf_counter()
        try:
            if self.spec.rate and not self.spec.new_connection:
                await self._preconnect()
                started = time.perf_counter()  # the run times requests, not the set-up
            self.deadline = started + self.spec.duration
            if self.spec.rate:
                await self._open_loop()
            elif self.spec.cycles:
                await self._waves()
            else:
                await self._closed_loop()
        finally:
            self.result.elapsed = time.perf_counter() - started
            for conn in self.idle:
                await conn.close()
            self.idle.clear()
        return self.result


async def run_async(spec: LoadSpec) -> LoadResult:
    return await LoadRun(spec).run()


def run(spec: LoadSpec) -> LoadResult:
    """Run one load test to completion (blocks); stops at ``requests`` or ``duration``."""
    return asyncio.run(run_async(spec))
