"""The stream worker's app: the worker consuming JetStream, beside ``/health``, ``/live`` and
``/metrics`` on ``PORT``, with the same model lifecycle as the API (swaps, SIGHUP,
MODEL_WATCH, shadow, drift)."""

from __future__ import annotations

from litestar.router import Router

from app.config import Settings
from app.model.holder import ModelHolder
from app.observe.metrics import Metrics
from app.runtime.signals import on_stop_signal
from app.service.lifecycle import ServedModel
from app.serving.parts import Part
from app.serving.probes import live, metrics_handler
from app.stream.health import stream_health_handler
from app.stream.worker import StreamWorker


def stream_part(settings: Settings, holder: ModelHolder, metrics: Metrics, served_by: str) -> Part:
    served = ServedModel(settings, holder, metrics)
    worker = StreamWorker(
        settings.stream, served.plane, holder, metrics, settings.limits.max_batch, served_by
    )

    def drain() -> None:
        served.drain()  # readiness 503 at once
        worker.stopping = True  # no new cycle; the ones on their way settle at shutdown
        worker.arrived.set()

    async def started() -> None:
        await served.start()
        worker.start()
        on_stop_signal(drain, delay=settings.server.drain_seconds)

    async def stopped() -> None:
        await worker.stop()
        await served.stop()

    return Part(
        routers=[
            Router(
                path="/",
                route_handlers=[
                    stream_health_handler(holder, worker, served_by),
                    live,
                    metrics_handler(metrics, settings.server.instance_name()),
                ],
            )
        ],
        on_startup=[started],
        on_shutdown=[stopped],
    )
