"""The scoring API's routes: /predict, /health, /live, /model, /metrics.

The handlers are built per app by ``api_part``: the request schema follows the artifact's
features, and what every request needs (the holder, the metrics, the limits) is bound once in
the closure instead of being resolved per request.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from litestar import MediaType, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.router import Router

from app.admission import admission_factory
from app.decoding import RequestCodec
from app.errors import ApiError
from app.holder import LoadedModel, ModelHolder, Status
from app.metrics import Metrics, middleware_factory
from app.parts import Part
from app.predictions import breach_counts, build_response, feature_matrix
from app.schemas import (
    EnvelopeState,
    ErrorBody,
    FeatureInfo,
    HealthResponse,
    ModelRef,
    ModelResponse,
    PredictResponse,
)
from app.settings import Settings
from app.signals import on_stop_signal

PREDICT_ERRORS = {
    400: "Empty batch, empty body, or malformed JSON.",
    401: "API_KEY is set and the request carries no valid key.",
    408: "The request body did not arrive within REQUEST_TIMEOUT.",
    413: "More than MAX_BATCH readings, or a body over MAX_BODY_BYTES.",
    415: "Content type is not JSON.",
    422: "Wrong type, missing, unknown or non-finite field (named in `field`).",
    503: "No model loaded, too many requests in flight, or over the time budget "
    "(with Retry-After).",
}
PREDICT_DESCRIPTION = (
    "Scores each reading with the IsolationForest. `score` is the paper's anomaly score "
    "2^(-E[h(x)]/c(psi)) in (0, 1], higher is more anomalous. `anomaly` is true when "
    "`score > threshold` (the calibrated threshold unless ANOMALY_THRESHOLD overrides it) OR "
    "a feature lies outside the operating envelope; `out_of_range` then lists those "
    "features with their direction (`voltage_low`, `current_high`, ...) and is omitted "
    "when empty. The readings carry the served model's features (GET /model). Every error "
    "has the ErrorBody shape; the statuses are listed below."
)


def predict_handler(
    codec: RequestCodec, holder: ModelHolder, metrics: Metrics, settings: Settings, served_by: str
) -> Any:
    """``POST /predict`` for the features of ``codec``, bound to this app's state."""
    max_batch = settings.limits.max_batch
    inline_rows = settings.limits.inline_rows

    async def predict(data: Any) -> PredictResponse:
        readings = data.readings  # at least one: the decoder answers an empty batch with 400
        count = len(readings)
        if count > max_batch:
            raise ApiError(
                413, "batch_too_large", f"{count} readings; at most {max_batch} per request"
            )
        model = holder.ready()
        matrix = feature_matrix(readings, model.features)
        started = time.perf_counter()
        if count <= inline_rows:
            scores, breaches = model.scorer.score(matrix)
        else:
            # Big batches run off the event loop so /live and /health stay quick meanwhile;
            # one at a time, as onnxruntime is pinned to one thread per worker.
            scores, breaches = await anyio.to_thread.run_sync(
                model.scorer.score,
                matrix,
                limiter=holder.big_batch_limiter,
                # Past the time budget the request answers 503 at once; the batch finishes.
                abandon_on_cancel=True,
            )
        metrics.inference_latency.observe(time.perf_counter() - started)
        response = build_response(scores, breaches, model.threshold, model.name_breaches, served_by)
        metrics.batch_size.observe(count)
        metrics.readings.inc(count)
        if response.anomalies:
            metrics.anomalies.inc(response.anomalies)
            for (feature, direction), n in breach_counts(breaches, model.breach_columns).items():
                metrics.envelope_breaches.labels(feature, direction).inc(n)
        return response

    # The body's type is this app's request Struct: set on the function before Litestar
    # reads its signature.
    body: Any = JSONBody[codec.request_type]  # type: ignore[misc,name-defined]
    predict.__annotations__ = {"data": body, "return": PredictResponse}
    return post(
        "/predict",
        name="predict",
        dto=codec.dto,
        return_dto=None,
        status_code=200,
        summary="Score a batch of readings",
        responses={
            status: ResponseSpec(data_container=ErrorBody, description=text)
            for status, text in PREDICT_ERRORS.items()
        },
        description=PREDICT_DESCRIPTION,
    )(predict)


def _health_body(model: LoadedModel, served_by: str) -> HealthResponse:
    return HealthResponse(
        status="ok",
        served_by=served_by,
        features=list(model.features),
        model=ModelRef(name=model.name, digest=model.digest),
        threshold=model.threshold,
        envelope=EnvelopeState(source=model.envelope.source, bounds=model.envelope.bounds()),
        calibration=model.metadata.calibration,
    )


def health_handler(holder: ModelHolder, served_by: str) -> Any:
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
    def health() -> Response[HealthResponse]:
        model = holder.model
        if holder.status is Status.OK and model is not None:
            return Response(_health_body(model, served_by), status_code=200)
        body = HealthResponse(status=holder.status.value, served_by=served_by, reason=holder.reason)
        return Response(body, status_code=503, headers={"Retry-After": "1"})

    return health


def model_profile(model: LoadedModel) -> ModelResponse:
    meta = model.metadata
    bounds = model.envelope.bounds()
    return ModelResponse(
        name=model.name,
        digest=model.digest,
        threshold=model.threshold,
        features=[
            FeatureInfo(
                name=name,
                unit=unit,
                mean=meta.data.features[name].mean,
                std=meta.data.features[name].std,
                min=meta.data.features[name].min,
                max=meta.data.features[name].max,
                envelope=bounds[name],
                histogram=meta.histograms.get(name),
            )
            for name, unit in zip(meta.features, meta.units, strict=True)
        ],
        envelope_source=model.envelope.source,
        calibration=meta.calibration,
        training_rows=meta.training.rows,
        data_source=meta.data.source,
    )


def model_handler(holder: ModelHolder) -> Any:
    @get(
        "/model",
        summary="The served model: features, units, training distribution, calibration",
        sync_to_thread=False,
        responses={503: ResponseSpec(data_container=ErrorBody, description="No model loaded.")},
    )
    def model_info() -> ModelResponse:
        return model_profile(holder.ready())

    return model_info


@get("/live", summary="Liveness: the process answers (no model check)", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "alive"}


def metrics_handler(metrics: Metrics) -> Any:
    @get(
        "/metrics",
        summary="Prometheus metrics (sum over all workers)",
        sync_to_thread=False,
        include_in_schema=True,
        media_type=MediaType.TEXT,
    )
    def metrics_endpoint() -> Response[bytes]:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return metrics_endpoint


def api_part(
    settings: Settings,
    holder: ModelHolder,
    metrics: Metrics,
    served_by: str,
    codec: RequestCodec,
) -> Part:
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
    scoring = Router(
        path="/",
        route_handlers=[predict_handler(codec, holder, metrics, settings, served_by)],
        middleware=[admission],
    )

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
                route_handlers=[
                    scoring,
                    health_handler(holder, served_by),
                    live,
                    model_handler(holder),
                    metrics_handler(metrics),
                ],
                middleware=[middleware_factory(metrics)],
            )
        ],
        on_startup=[started],
        on_shutdown=[drain],
    )
