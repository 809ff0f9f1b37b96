"""Live streams: simulated readings scored by the backend, rendered once per tick, fanned out.

A stream is keyed by its parameters, so viewers asking for the same stream share one loop and
one rendered fragment per tick. A stream runs while it has viewers and stops when the last
one leaves (closing the tab closes the SSE request, which removes the viewer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.dashboard.backend import Backend, BackendError, KeySource
from app.dashboard.charts import Point, readings_chart, served_by_bars
from app.dashboard.forms import ParamError, form_flag, form_number
from app.dashboard.loadrun import percentile
from app.dashboard.readings import Injected, ReadingSampler

log = logging.getLogger("gridscore.dashboard")

WINDOW = 200
FLAGGED_SHOWN = 5  # the latest flagged readings listed under the chart, with why


@dataclass(frozen=True)
class Flagged:
    """A flagged reading as the list under the chart shows it."""

    tick: int
    reading: dict[str, float]
    score: float
    out_of_range: list[str]
    top_feature: str
    attribution: dict[str, float]


Render = Callable[[str, Mapping[str, Any]], str]


@dataclass(frozen=True)
class StreamParams:
    batch: int = 10
    interval: float = 0.5
    anomaly_rate: float = 0.02
    new_connection: bool = False

    @classmethod
    def parse(cls, form: Mapping[str, str], max_batch: int) -> StreamParams:
        return cls(
            batch=int(form_number(form, "batch", 10, 1, max_batch)),
            interval=form_number(form, "interval", 0.5, 0.1, 10),
            anomaly_rate=form_number(form, "anomaly_rate", 0.02, 0, 1),
            new_connection=form_flag(form, "new_connection"),
        )

    def query(self) -> str:
        flag = "1" if self.new_connection else "0"
        return (
            f"batch={self.batch}&interval={self.interval:g}"
            f"&anomaly_rate={self.anomaly_rate:g}&new_connection={flag}"
        )


@dataclass
class Stream:
    params: StreamParams
    backend: Backend
    render: Render
    viewers: set[asyncio.Queue[str | None]] = field(default_factory=set)
    window: deque[Point] = field(default_factory=lambda: deque(maxlen=WINDOW))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    served: deque[str] = field(default_factory=lambda: deque(maxlen=WINDOW))
    flagged: deque[Flagged] = field(default_factory=lambda: deque(maxlen=FLAGGED_SHOWN))
    pending: list[Injected] = field(default_factory=list)
    tick: int = 0
    readings_total: int = 0
    anomalies_total: int = 0
    error: str | None = None
    fragment: str = ""
    task: asyncio.Task[None] | None = None
    sampler: ReadingSampler | None = None  # built from the scorer's model description
    digest: str = ""

    def snapshot(self) -> dict[str, Any]:
        lat = sorted(x * 1000 for x in self.latencies)
        flagged = sum(p.anomaly for p in self.window)
        features = [(f.name, f.unit) for f in self.sampler.features] if self.sampler else []
        return {
            "tick": self.tick,
            "params": self.params,
            "chart": readings_chart(list(self.window), WINDOW, features),
            "flagged": list(reversed(self.flagged)),
            "feature_names": [name for name, _ in features],
            "bars": served_by_bars(dict(Counter(self.served))),
            "window_anomaly_rate": flagged / len(self.window) if self.window else 0.0,
            "window_anomalies": flagged,
            "readings_total": self.readings_total,
            "anomalies_total": self.anomalies_total,
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "p99": percentile(lat, 99),
            "error": self.error,
            "connections_opened": self.backend.connections_opened,
        }

    async def _sampler(self) -> ReadingSampler:
        """Readings like the served model's training data; a new model starts a new chart."""
        model = await self.backend.model()
        if self.sampler is None or model.digest != self.digest:
            names = [f.name for f in model.features]
            if self.sampler is not None and names != [f.name for f in self.sampler.features]:
                self.window.clear()
                self.flagged.clear()
            self.sampler = ReadingSampler(model.features)
            self.digest = model.digest
        return self.sampler

    async def step(self) -> None:
        injected, self.pending = self.pending, []
        readings: list[dict[str, float]] = []
        try:
            sampler = await self._sampler()
            readings = sampler.batch(self.params.batch, self.params.anomaly_rate)
            readings.extend(i.reading for i in injected)
            scored = await self.backend.predict(readings, self.params.new_connection)
        except BackendError as exc:
            self.error = str(exc)
            self.pending = injected + self.pending  # shown once the scorer is back
        else:
            self.error = None
            names = [f.name for f in sampler.features]
            for reading, prediction in zip(readings, scored.response.predictions, strict=True):
                self.window.append(
                    Point(
                        tuple(reading.get(name, float("nan")) for name in names),
                        prediction.anomaly,
                        tuple(prediction.out_of_range),
                    )
                )
                if prediction.anomaly:
                    self.flagged.append(
                        Flagged(
                            self.tick,
                            reading,
                            prediction.score,
                            prediction.out_of_range,
                            prediction.top_feature,
                            prediction.attribution,
                        )
                    )
            self.latencies.append(scored.latency_s)
            self.served.append(scored.response.served_by)
            self.readings_total += len(readings)
            self.anomalies_total += scored.response.anomalies
        self.tick += 1
        self.fragment = self.render("_tick.html", self.snapshot())
        for queue in list(self.viewers):
            if queue.full():  # a slow viewer skips a frame rather than holding everyone up
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(self.fragment)

    async def loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self.viewers:
            started = loop.time()
            await self.step()
            await asyncio.sleep(max(0.0, self.params.interval - (loop.time() - started)))


class StreamHub:
    """All streams of this dashboard process."""

    def __init__(
        self,
        backend_url: str,
        render: Render,
        max_streams: int = 16,
        api_key: KeySource = "",
    ) -> None:
        self.backend_url = backend_url
        self.api_key = api_key
        self.render = render
        self.max_streams = max_streams
        self.streams: dict[StreamParams, Stream] = {}
        self.closing = False

    def join(self, params: StreamParams) -> tuple[Stream, asyncio.Queue[str | None]]:
        if self.closing:
            raise ParamError("the dashboard is shutting down")
        stream = self.streams.get(params)
        if stream is None:
            if len(self.streams) >= self.max_streams:
                raise ParamError(f"at most {self.max_streams} different streams at once")
            stream = Stream(params, Backend(self.backend_url, api_key=self.api_key), self.render)
            self.streams[params] = stream
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=2)
        stream.viewers.add(queue)
        if stream.task is None or stream.task.done():
            stream.task = asyncio.create_task(stream.loop())
        log.info("viewer joined", extra={"fields": self.stats()})
        return stream, queue

    def leave(self, stream: Stream, queue: asyncio.Queue[str | None]) -> None:
        stream.viewers.discard(queue)
        if not stream.viewers:
            self.streams.pop(stream.params, None)
            if stream.task is not None:
                stream.task.cancel()
            asyncio.get_running_loop().create_task(stream.backend.close())
        log.info("viewer left", extra={"fields": self.stats()})

    def inject(self, injected: Injected) -> int:
        """Queue an extreme reading into every running stream; returns how many."""
        for stream in self.streams.values():
            stream.pending.append(injected)
        return len(self.streams)

    def close_all(self) -> None:
        """End every viewer's event stream now (server shutdown)."""
        self.closing = True
        for stream in list(self.streams.values()):
            for queue in list(stream.viewers):
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    def stats(self) -> dict[str, int]:
        return {
            "streams": len(self.streams),
            "viewers": sum(len(s.viewers) for s in self.streams.values()),
        }
