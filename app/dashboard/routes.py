"""The dashboard's routes: the page, its htmx fragments, the SSE stream, bursts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template
from litestar.router import Router

from app.config import Settings
from app.dashboard.alarms import AlarmHub
from app.dashboard.backend import Backend, BackendError
from app.dashboard.bursts import BURST_PROTOCOLS, BurstRefused, BurstRunner
from app.dashboard.charts import psi_bars
from app.dashboard.drift import DEFAULT_WINDOW_S, WINDOWS_S, DriftWatch
from app.dashboard.forms import ParamError
from app.dashboard.readings import ReadingSampler
from app.dashboard.streams import StreamHub, StreamParams
from app.observe.psi import MODERATE, SIGNIFICANT, SLIGHT
from app.serving.parts import Part

Form = URLEncodedBody[dict[str, str]]


def _fragment(name: str, status: int = 200, **context: Any) -> Template:
    return Template(template_name=name, context=context, status_code=status)


@get("/", name="dashboard", include_in_schema=False)
async def page(
    settings: NamedDependency[Settings], bursts: NamedDependency[BurstRunner]
) -> Template:
    return Template(
        template_name="dashboard.html",
        context={
            "backend_url": settings.dashboard_backend(),
            "defaults": StreamParams(),
            "limits": bursts.limits,
            "node_name": settings.server.node_name,
            "burst": bursts.current.view() if bursts.current else None,
            "protocols": BURST_PROTOCOLS,
            "drift_windows": WINDOWS_S,
            "drift_window": DEFAULT_WINDOW_S,
        },
    )


@get("/dashboard/status", include_in_schema=False)
async def status(backend: NamedDependency[Backend]) -> Template:
    try:
        health = await backend.health()
    except BackendError as exc:
        return _fragment("_status.html", ok=False, error=str(exc), url=backend.base_url)
    return _fragment("_status.html", ok=True, health=health, url=backend.base_url)


SHADOW_SERIES = (
    "shadow_readings_total",
    "shadow_verdict_disagreements_total",
    "shadow_dropped_batches_total",
    "shadow_batches_total",
)


async def _model_panel(backend: Backend, message: str | None = None) -> Template:
    try:
        health = await backend.health()
        totals = await backend.metric_totals(SHADOW_SERIES)
    except BackendError as exc:
        return _fragment("_model.html", ok=False, error=str(exc), message=message)
    readings = totals["shadow_readings_total"]
    disagreements = totals["shadow_verdict_disagreements_total"]
    return _fragment(
        "_model.html",
        ok=True,
        health=health,
        readings=int(readings),
        disagreements=int(disagreements),
        dropped=int(totals["shadow_dropped_batches_total"]),
        agreement=(1 - disagreements / readings) if readings else None,
        admin=bool(backend.admin_headers),
        message=message,
        error=None,
    )


@get("/dashboard/model", include_in_schema=False)
async def model_panel(backend: NamedDependency[Backend]) -> Template:
    return await _model_panel(backend)


@post("/dashboard/admin/{action:str}", include_in_schema=False, status_code=200)
async def model_action(action: FromPath[str], backend: NamedDependency[Backend]) -> Template:
    """Promote the shadow (serve it, stop shadowing) or roll back, with the admin key."""
    try:
        if action == "promote":
            health = await backend.health()
            if not health.shadow:
                raise BackendError("no shadow model to promote")
            await backend.admin("POST", "/admin/model", {"digest": health.shadow})
            await backend.admin("POST", "/admin/shadow/clear")
            message = f"promoted {health.shadow[:12]}"
        elif action == "rollback":
            await backend.admin("POST", "/admin/model/rollback")
            message = "rolled back to the previous model"
        else:
            return _fragment("_model.html", 404, ok=False, error=f"unknown action {action!r}")
    except BackendError as exc:
        return await _model_panel(backend, f"not done: {exc}")
    return await _model_panel(backend, message)


@get("/dashboard/drift", include_in_schema=False)
async def drift_panel(
    request: Request[Any, Any, Any],
    backend: NamedDependency[Backend],
    drift: NamedDependency[DriftWatch],
) -> Template:
    """PSI per feature of the scorer's readings over the chosen window (see drift.py)."""
    try:
        window = int(request.query_params.get("window", DEFAULT_WINDOW_S))
    except ValueError:
        window = DEFAULT_WINDOW_S
    if window not in WINDOWS_S:
        window = DEFAULT_WINDOW_S
    try:
        model = await backend.model()
        instance, text = await backend.metrics_text()
    except BackendError as exc:
        return _fragment("_drift.html", ok=False, error=str(exc))
    drift.observe(instance or backend.base_url, model, text)
    view = drift.view(model, window)
    rows = sorted(
        ((f.name, f.psi, f.level) for f in view.features),
        key=lambda row: -1.0 if row[1] is None else -row[1],
    )
    bars = psi_bars(rows, (SLIGHT, MODERATE, SIGNIFICANT))
    return _fragment("_drift.html", ok=True, view=view, bars=bars, error=None)


@post("/dashboard/stream/start", include_in_schema=False, status_code=200)
async def stream_start(data: Form, settings: NamedDependency[Settings]) -> Template:
    try:
        params = StreamParams.parse(data, settings.dashboard.max_batch)
    except ParamError as exc:
        return _fragment("_stopped.html", 422, error=str(exc))
    return _fragment("_live.html", params=params, query=params.query())


@post("/dashboard/stream/stop", include_in_schema=False, status_code=200)
async def stream_stop() -> Template:
    return _fragment("_stopped.html", error=None)


@get("/dashboard/stream", include_in_schema=False)
async def stream_events(
    request: Request[Any, Any, Any],
    hub: NamedDependency[StreamHub],
    settings: NamedDependency[Settings],
) -> ServerSentEvent:
    params = StreamParams.parse(dict(request.query_params), settings.dashboard.max_batch)
    stream, queue = hub.join(params)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        try:
            if stream.fragment:
                yield ServerSentEventMessage(event="tick", data=stream.fragment)
            while True:
                fragment = await queue.get()
                if fragment is None:  # the server is shutting down
                    return
                yield ServerSentEventMessage(event="tick", data=fragment)
        finally:
            # Runs when the browser goes away too: the request is cancelled on disconnect.
            hub.leave(stream, queue)

    return ServerSentEvent(events(), headers={"Cache-Control": "no-store"})


@get("/dashboard/alarms", include_in_schema=False)
async def alarm_events(alarms: NamedDependency[AlarmHub]) -> ServerSentEvent:
    """The alarms view, sent again whenever it changes (app/dashboard/alarms.py)."""
    queue = alarms.join()

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        try:
            if alarms.fragment:
                yield ServerSentEventMessage(event="alarms", data=alarms.fragment)
            while True:
                fragment = await queue.get()
                if fragment is None:  # the server is shutting down
                    return
                yield ServerSentEventMessage(event="alarms", data=fragment)
        finally:
            alarms.leave(queue)

    return ServerSentEvent(events(), headers={"Cache-Control": "no-store"})


@get("/dashboard/streams", include_in_schema=False, sync_to_thread=False)
def stream_stats(hub: NamedDependency[StreamHub]) -> dict[str, int]:
    return hub.stats()


@post("/dashboard/generate", include_in_schema=False, status_code=200)
async def generate(
    data: Form, backend: NamedDependency[Backend], settings: NamedDependency[Settings]
) -> Template:
    try:
        params = StreamParams.parse(data, settings.dashboard.max_batch)
    except ParamError as exc:
        return _fragment("_batch.html", 422, error=str(exc))
    try:
        model = await backend.model()
        readings = ReadingSampler(model.features).batch(params.batch, params.anomaly_rate)
        scored = await backend.predict(readings, params.new_connection)
    except BackendError as exc:
        return _fragment("_batch.html", 502, error=str(exc))
    rows = list(zip(readings, scored.response.predictions, strict=True))
    features = [f.name for f in model.features]
    return _fragment("_batch.html", rows=rows, scored=scored, features=features, error=None)


@post("/dashboard/inject", include_in_schema=False, status_code=200)
async def inject(backend: NamedDependency[Backend], hub: NamedDependency[StreamHub]) -> Template:
    try:
        model = await backend.model()
    except BackendError as exc:
        return _fragment("_inject.html", 502, injected=None, streams=0, error=str(exc))
    injected = ReadingSampler(model.features).extreme()
    units = {f.name: f.unit for f in model.features}
    streams = hub.inject(injected)
    try:
        scored = await backend.predict([injected.reading])
    except BackendError as exc:
        return _fragment(
            "_inject.html", 502, injected=injected, units=units, streams=streams, error=str(exc)
        )
    return _fragment(
        "_inject.html",
        injected=injected,
        units=units,
        streams=streams,
        error=None,
        prediction=scored.response.predictions[0],
        served_by=scored.response.served_by,
    )


@post("/dashboard/bursts/{kind:str}", include_in_schema=False, status_code=200)
async def burst_start(
    kind: FromPath[str],
    data: Form,
    bursts: NamedDependency[BurstRunner],
    backend: NamedDependency[Backend],
) -> Template:
    if kind not in {"concurrent", "sustained"}:
        return _fragment("_burst_message.html", 404, error=f"unknown burst kind {kind!r}")

    try:
        # The burst's readings look like the served model's training data.
        burst = await bursts.start(kind, data, backend.model)
    except BurstRefused as exc:
        return _fragment("_burst_message.html", 409, error=str(exc))
    except BackendError as exc:
        return _fragment("_burst_message.html", 502, error=str(exc))
    except (ParamError, ValueError) as exc:
        return _fragment("_burst_message.html", 422, error=str(exc))
    return _fragment("_burst_message.html", burst=burst.view(), error=None)


@get("/dashboard/bursts/current", include_in_schema=False)
async def burst_current(bursts: NamedDependency[BurstRunner]) -> Template:
    burst = bursts.current
    return _fragment("_burst.html", burst=burst.view() if burst else None, error=None)


ROUTES = [
    page,
    status,
    model_panel,
    model_action,
    drift_panel,
    stream_start,
    stream_stop,
    stream_events,
    alarm_events,
    stream_stats,
    generate,
    inject,
    burst_start,
    burst_current,
]


@get("/live", include_in_schema=False, sync_to_thread=False)
def dashboard_live() -> dict[str, str]:
    return {"status": "alive"}


@get("/health", include_in_schema=False, sync_to_thread=False)
def dashboard_health() -> dict[str, str]:
    # Ready to serve pages; the scorer's own state is shown on the page, not here, so that a
    # scorer outage does not take the dashboard out of its Service as well.
    return {"status": "ok"}


def probe_routes() -> Part:
    """/live and /health for a dashboard running as its own process."""
    return Part(routers=[Router(path="/", route_handlers=[dashboard_live, dashboard_health])])
