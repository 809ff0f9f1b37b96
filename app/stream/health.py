"""``GET /health`` of the stream worker: 200 only with the model loaded and the broker
connected (and the streams usable); 503 with the reason otherwise."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get

from app.model.holder import ModelHolder, Status
from app.stream.worker import StreamWorker


class StreamHealth(msgspec.Struct, omit_defaults=True):
    status: str  # "ok", or what is missing: the model's status, "broker"
    served_by: str
    broker: str  # "connected" or "disconnected"
    # The partitions this process holds; no default, so an empty list is shown, not omitted.
    partitions: list[int]
    model: str | None = None  # the served model's digest
    reason: str | None = None


def stream_health_handler(holder: ModelHolder, worker: StreamWorker, served_by: str) -> Any:
    @get(
        "/health",
        summary="Readiness: the model loaded and the broker connected",
        sync_to_thread=False,
    )
    def health() -> Response[StreamHealth]:
        model = holder.model
        body = StreamHealth(
            status="ok",
            served_by=served_by,
            broker="connected" if worker.connected else "disconnected",
            partitions=sorted(worker.partitions),
            model=model.digest if model is not None else None,
        )
        if holder.status is not Status.OK or model is None:
            body.status, body.reason = holder.status.value, holder.reason or "no model"
        elif not worker.ready:
            body.status, body.reason = "broker", worker.problem or "not connected to the broker"
        if body.status != "ok":
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        return Response(body, status_code=200)

    return health
