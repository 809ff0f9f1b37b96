"""Load bursts fired from the dashboard: bounded by configuration, one at a time per process."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from app.contract.api import ModelResponse
from app.dashboard.backend import KeySource, key_headers
from app.dashboard.charts import served_by_bars
from app.dashboard.forms import ParamError, form_flag, form_number
from app.dashboard.loadrun import LoadRun, LoadSpec
from app.dashboard.v2_requests import PROTOCOLS, infer_path

# The select on the page: value, label.
BURST_PROTOCOLS = (
    ("predict", "/predict (JSON readings)"),
    ("v2-json", "v2 infer, JSON tensor"),
    ("v2-binary", "v2 infer, binary tensor"),
)


class BurstRefused(RuntimeError):
    """A burst is already running (one at a time per dashboard process)."""


@dataclass(frozen=True)
class BurstLimits:
    """Ceilings a browser user cannot exceed (DASHBOARD_MAX_BURST_* settings)."""

    max_requests: int = 5_000
    max_concurrency: int = 64
    max_seconds: float = 30.0
    max_batch: int = 1_000


@dataclass
class Burst:
    id: int
    kind: str  # "concurrent" or "sustained"
    run: LoadRun
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[Any] | None = None

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    def view(self) -> dict[str, Any]:
        result = self.run.result
        if self.done:
            result.elapsed = result.elapsed or (time.monotonic() - self.started)
        else:
            result.elapsed = time.monotonic() - self.started
        summary = result.summary()
        planned = self.run.spec.planned or 0
        return {
            "id": self.id,
            "kind": self.kind,
            "done": self.done,
            "planned": planned,
            "completed": result.completed,
            "progress": result.completed / planned if planned else 0.0,
            "cycles": self.run.spec.cycles,
            "cycles_done": result.cycles_done,
            "errors": sum(result.statuses[s] for s in result.statuses if s >= 400)
            + sum(result.errors.values()),
            "summary": summary,
            "bars": served_by_bars(summary["served_by"]),
        }


class BurstRunner:
    """Starts bursts against the configured backend only; refuses a second while one runs."""

    def __init__(self, backend_url: str, limits: BurstLimits, api_key: KeySource = "") -> None:
        self.base_url = backend_url.rstrip("/")
        self.api_key = api_key
        self.limits = limits
        self.current: Burst | None = None
        self._ids = itertools.count(1)

    def _spec(self, kind: str, form: Mapping[str, str]) -> LoadSpec:
        limits = self.limits
        protocol = str(form.get("protocol", "") or "predict")
        if protocol not in PROTOCOLS:
            raise ParamError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        # Whatever the form says, the target, the time bound and the key come from here;
        # the v2 path is completed with the served model's name once it is known.
        spec = partial(
            LoadSpec,
            f"{self.base_url}/predict",
            int(form_number(form, "batch", 1, 1, limits.max_batch)),
            duration=limits.max_seconds,
            new_connection=form_flag(form, "new_connection"),
            timeout=5.0,
            headers=key_headers("X-API-Key", self.api_key),
            protocol=protocol,
        )
        if kind == "concurrent":
            requests = int(form_number(form, "requests", 200, 1, limits.max_requests))
            concurrency = int(form_number(form, "concurrency", 10, 1, limits.max_concurrency))
            return spec(concurrency, requests=requests)
        workers = int(form_number(form, "workers", 8, 1, limits.max_concurrency))
        cycles = int(form_number(form, "cycles", 20, 1, limits.max_requests))
        if workers * cycles > limits.max_requests:
            raise ParamError(f"workers x cycles must be at most {limits.max_requests}")
        return spec(workers, cycles=cycles)

    async def start(
        self,
        kind: str,
        form: Mapping[str, str],
        describe: Callable[[], Awaitable[ModelResponse]] | None = None,
    ) -> Burst:
        """Check the form against the limits, then ask ``describe`` for the served model
        (the readings carry its features; the v2 path names it), then start the burst."""
        if self.current is not None and not self.current.done:
            raise BurstRefused(
                f"burst #{self.current.id} is still running; one burst at a time per dashboard"
            )
        spec = self._spec(kind, form)
        if describe is not None:
            model = await describe()
            spec = replace(spec, features=tuple(model.features))
            if spec.protocol != "predict":
                # A scorer older than the v2 routes' name field: its artifact name.
                spec = replace(spec, url=self.base_url + infer_path(model.v2_name or model.name))
        if self.current is not None and not self.current.done:  # started while we asked
            raise BurstRefused(
                f"burst #{self.current.id} is still running; one burst at a time per dashboard"
            )
        burst = Burst(next(self._ids), kind, LoadRun(spec))
        burst.task = asyncio.create_task(burst.run.run())
        self.current = burst
        return burst

    def cancel(self) -> None:
        """Stop a running burst (server shutdown)."""
        if self.current is not None and self.current.task is not None:
            self.current.task.cancel()
