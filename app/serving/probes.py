"""The probes every served process answers, whatever its transport: ``/live`` (the process
answers) and ``/metrics`` (Prometheus, summed over the process's workers)."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get

from app.observe.metrics import Metrics


@get("/live", summary="Liveness: the process answers (no model check)", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "alive"}


def metrics_handler(metrics: Metrics, instance: str) -> Any:
    @get(
        "/metrics",
        summary="Prometheus metrics (sum over all workers)",
        sync_to_thread=False,
        include_in_schema=True,
        media_type=MediaType.TEXT,
    )
    def metrics_endpoint() -> Response[bytes]:
        # X-Instance: which pod's sum this is, for a reader behind a Service that compares
        # one scrape with the next (the dashboard's drift panel).
        return Response(
            metrics.exposition(),
            media_type=metrics.content_type,
            headers={"X-Instance": instance},
        )

    return metrics_endpoint
