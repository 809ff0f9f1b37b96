"""The scoring API's routes: /predict, /health, /live, /metrics."""

from __future__ import annotations

import time

import anyio.to_thread
from litestar import MediaType, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.router import Router

from app.admission import admission_factory
from app.decoding import PredictRequestDTO
from app.errors import ApiError
from app.holder import ModelHolder, Status
from app.metrics import Metrics, middleware_factory
from app.parts import Part, constant
from app.predictions import breach_counts, build_response, feature_matrix
from app.schemas import (
    EnvelopeState,
    ErrorBody,
    HealthResponse,
    ModelRef,
    PredictRequest,
    PredictResponse,
)
from app.settings import Settings
from app.signals import on_stop_signal


@post(
    "/predict",
    name="predict",
    dto=PredictRequestDTO,
    return_dto=None,
    status_code=200,
    summary="Score a batch of readings",
    responses={
        status: ResponseSpec(data_container=ErrorBody, description=text)
        for status, text in {
            400: "Empty batch, empty body, or malformed JSON.",
            401: "API_KEY is set and the request carries no valid key.",
            408: "The request body did not arrive within REQUEST_TIMEOUT.",
            413: "More than MAX_BATCH readings, or a body over MAX_BODY_BYTES.",
            415: "Content type is not JSON.",
            422: "Wrong type, missing, unknown or non-finite field (named in `field`).",
            503: "No model loaded, too many requests in flight, or over the time budget "
            "(with Retry-After).",
        }.items()
    },
    description=(
        "Scores each reading with the IsolationForest. `score` is the paper's anomaly score "
        "2^(-E[h(x)]/c(psi)) in (0, 1], higher is more anomalous. `anomaly` is true when "
        "`score > threshold` (the trained threshold unless ANOMALY_THRESHOLD overrides it) OR "
        "a feature lies outside the operating envelope; `out_of_range` then lists those "
        "features with their direction (`voltage_low`, `current_high`, ...) and is omitted "
        "when empty. The envelope in force is reported by /health. Every error has the "
        "ErrorBody shape; the statuses are listed below."
    ),
)
async def predict(
    data: JSONBody[PredictRequest],
    holder: NamedDependency[ModelHolder],
    metrics: NamedDependency[Metrics],
    settings: NamedDependency[Settings],
    served_by: NamedDependency[str],
) -> PredictResponse:
    readings = data.readings  # at least one: the decoder answers an empty batch with 400
    count = len(readings)
    if count > settings.limits.max_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"{count} readings; at most {settings.limits.max_batch} per request",
        )
    model = holder.ready()
    matrix = feature_matrix(readings, model.features)
    started = time.perf_counter()
    if count <= settings.limits.inline_rows:
        scores, breaches = model.scorer.score(matrix)
    else:
        # Big batches run off the event loop so /live and /health stay quick meanwhile;
        # one at a time, as onnxruntime is pinned to one thread per worker.
        scores, breaches = await anyio.to_thread.run_sync(
            model.scorer.score,
            matrix,
            limiter=holder.big_batch_limiter,
            # Past the time budget the request answers 503 at once; the batch still finishes.
            abandon_on_cancel=True,
        )
    metrics.inference_latency.observe(time.perf_counter() - started)
    response = build_response(scores, breaches, model.threshold, model.breach_names, served_by)
    metrics.batch_size.observe(count)
    metrics.readings.inc(count)
    if response.anomalies:
        metrics.anomalies.inc(response.anomalies)
        for (feature, direction), n in breach_counts(breaches, model.breach_columns).items():
            metrics.envelope_breaches.labels(feature, direction).inc(n)
    return response


@get(
    "/health",
    summary="Readiness: 200 only with a verified model loaded",
    sync_to_thread=False,
    responses={
        503: ResponseSpec(
            data_container=HealthResponse,
            description="loading, draining or unavailable (with a reason); Retry-After.",
        )
    },
)
def health(
    holder: NamedDependency[ModelHolder], served_by: NamedDependency[str]
) -> Response[HealthResponse]:
    model = holder.model
    if holder.status is Status.OK and model is not None:
        body = HealthResponse(
            status="ok",
            served_by=served_by,
            features=list(model.features),
            model=ModelRef(name=model.name, digest=model.digest),
            threshold=model.threshold,
            envelope=EnvelopeState(source=model.envelope.source, bounds=model.envelope.bounds()),
        )
        return Response(body, status_code=200)
    body = HealthResponse(status=holder.status.value, served_by=served_by, reason=holder.reason)
    return Response(body, status_code=503, headers={"Retry-After": "1"})


@get("/live", summary="Liveness: the process answers (no model check)", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "alive"}


@get(
    "/metrics",
    summary="Prometheus metrics (sum over all workers)",
    sync_to_thread=False,
    include_in_schema=True,
    media_type=MediaType.TEXT,
)
def metrics_endpoint(metrics: NamedDependency[Metrics]) -> Response[bytes]:
    return Response(metrics.exposition(), media_type=metrics.content_type)


ROUTES = [predict, health, live, metrics_endpoint]


def api_part(settings: Settings, holder: ModelHolder, metrics: Metrics, served_by: str) -> Part:
    """The scoring API: its routes (with the metrics middleware), model loading, draining."""

    def load_model() -> None:
        if holder.status is Status.LOADING:
            holder.load(settings)
        if holder.model is not None:
            metrics.model_info.labels(holder.model.name, holder.model.digest).set(1)
        metrics.ready.set(1 if holder.status is Status.OK else 0)

    def drain() -> None:
        holder.drain()
        metrics.ready.set(0)

    admission = admission_factory(
        settings.limits.api_keys, settings.limits.max_in_flight, settings.limits.request_timeout
    )
    scoring = Router(path="/", route_handlers=[predict], middleware=[admission])

    def started() -> None:
        load_model()
        # SIGTERM: readiness 503 now, listener closed DRAIN_SECONDS later.
        on_stop_signal(drain, delay=settings.server.drain_seconds)

    return Part(
        # Only the API's own routes are measured: dashboard pages and streams are not scoring.
        # The metrics middleware wraps admission, so refusals (401, 503) are counted too.
        routers=[
            Router(
                path="/",
                route_handlers=[scoring, health, live, metrics_endpoint],
                middleware=[middleware_factory(metrics)],
            )
        ],
        dependencies={
            "holder": constant(holder),
            "metrics": constant(metrics),
            "served_by": constant(served_by),
        },
        on_startup=[started],
        on_shutdown=[drain],
    )
