"""The scoring API's routes: /predict, /health, /live, /model, /metrics, and the v2 routes.

The handlers are built per app by ``api_part``: the request schema follows the artifact's
features, and what every request needs (the holder, the metrics, the limits) is bound once in
a closure instead of being resolved per request. ``POST /predict`` is the scoring endpoint
(``app/endpoint.py``); the others are Litestar handlers under the metrics middleware.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from litestar import MediaType, Response, asgi, get
from litestar.openapi import ResponseSpec
from litestar.router import Router
from litestar.types import Receive, Scope, Send

from app.admin import admin_router
from app.admission import Admission
from app.decoding import RequestCodec
from app.drift import DriftRecorder
from app.endpoint import ScoringEndpoint, ScoringProtocol, scoring_executor
from app.gctune import GcPauses
from app.holder import LoadedModel, ModelHolder, Status
from app.infer_v2 import INFER_PATH, VERSIONED_INFER_PATH, InferV2
from app.metrics import Metrics, middleware_factory
from app.openapi import predict_operation
from app.parts import Part, ScoringRoute
from app.predict_json import PredictJson
from app.schemas import (
    EnvelopeState,
    ErrorBody,
    FeatureInfo,
    HealthResponse,
    ModelRef,
    ModelResponse,
    SwapInfo,
)
from app.settings import Settings
from app.shadow import Shadow
from app.signals import on_stop_signal
from app.swap import ModelSwitcher, SwapRefused
from app.v2_routes import V2Handlers, infer_operations, infer_route

log = logging.getLogger("gridscore.api")

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


def predict_route(endpoint: ScoringEndpoint) -> Any:
    """``POST /predict``: Litestar routes to the scoring endpoint, which does the rest."""

    async def predict(scope: Scope, receive: Receive, send: Send) -> None:
        await endpoint(scope, receive, send)

    return asgi("/predict", name="predict", is_mount=False, copy_scope=False)(predict)


def _health_body(
    model: LoadedModel, served_by: str, switcher: ModelSwitcher | None
) -> HealthResponse:
    previous = last = shadow = None
    if switcher is not None:
        holder = switcher.holder
        if holder.previous is not None:
            previous = ModelRef(name=holder.previous.name, digest=holder.previous.digest)
        if switcher.last is not None:
            last = SwapInfo(**dataclasses.asdict(switcher.last))
        if switcher.shadow.model is not None:
            shadow = switcher.shadow.model.digest
    return HealthResponse(
        status="ok",
        served_by=served_by,
        features=list(model.features),
        model=ModelRef(name=model.name, digest=model.digest),
        previous=previous,
        shadow=shadow,
        last_swap=last,
        threshold=model.threshold,
        envelope=EnvelopeState(source=model.envelope.source, bounds=model.envelope.bounds()),
        calibration=model.metadata.calibration,
    )


def health_handler(
    holder: ModelHolder, served_by: str, switcher: ModelSwitcher | None = None
) -> Any:
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
            return Response(_health_body(model, served_by, switcher), status_code=200)
        body = HealthResponse(status=holder.status.value, served_by=served_by, reason=holder.reason)
        return Response(body, status_code=503, headers={"Retry-After": "1"})

    return health


def model_profile(model: LoadedModel, v2_name: str = "") -> ModelResponse:
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
                drift=meta.drift.get(name),
            )
            for name, unit in zip(meta.features, meta.units, strict=True)
        ],
        envelope_source=model.envelope.source,
        calibration=meta.calibration,
        training_rows=meta.training.rows,
        data_source=meta.data.source,
        v2_name=v2_name,
    )


def model_handler(holder: ModelHolder, v2_name: str) -> Any:
    @get(
        "/model",
        summary="The served model: features, units, training distribution, calibration",
        sync_to_thread=False,
        responses={503: ResponseSpec(data_container=ErrorBody, description="No model loaded.")},
    )
    def model_info() -> ModelResponse:
        return model_profile(holder.ready(), v2_name)

    return model_info


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


def api_part(
    settings: Settings,
    holder: ModelHolder,
    metrics: Metrics,
    served_by: str,
    codec: RequestCodec,
) -> Part:
    """The scoring API: its routes (with the metrics middleware), model loading, draining."""

    def note_model(model: LoadedModel) -> None:
        """What follows the served model: its training shares, its expected anomaly rate."""
        drift.export_training(model)
        calibration = model.metadata.calibration
        expected = calibration.false_alarm_rate
        if expected is None:
            expected = float(model.metadata.model.get("contamination", 0.0))
        metrics.expected_anomaly_rate.set(expected)

    def load_model() -> None:
        if holder.status is Status.LOADING:
            holder.load(settings)
        if holder.model is not None:
            metrics.model_info.labels(holder.model.name, holder.model.digest).set(1)
            note_model(holder.model)
        metrics.ready.set(1 if holder.status is Status.OK else 0)

    def drain() -> None:
        holder.drain()
        metrics.ready.set(0)

    async def stopped() -> None:
        drain()
        gc_pauses.remove()
        await switcher.stop()
        drift.stop()

    limits = settings.limits
    admission = Admission(limits.api_keys, limits.max_in_flight, limits.request_timeout)
    shadow = Shadow(metrics, limits.inline_rows)
    drift = DriftRecorder(metrics)
    switcher = ModelSwitcher(holder, settings, metrics, shadow, on_activate=[note_model])
    executor = scoring_executor()

    def scoring(protocol: ScoringProtocol) -> ScoringEndpoint:
        """An endpoint of the one scoring path: same admission, model, metrics, executor."""
        return ScoringEndpoint(
            protocol, holder, metrics, limits, admission, shadow, drift, executor
        )

    predict = scoring(PredictJson(codec, served_by))
    served_name = settings.model.served_name
    infer = scoring(InferV2(INFER_PATH, served_name, holder, codec.features, served_by))
    infer_version = scoring(
        InferV2(VERSIONED_INFER_PATH, served_name, holder, codec.features, served_by)
    )
    v2_paths, v2_components = infer_operations(served_name, len(codec.features), limits.max_batch)
    predict_item, predict_components = predict_operation(
        codec.request_type, PREDICT_ERRORS, PREDICT_DESCRIPTION
    )

    gc_pauses = GcPauses(metrics.gc_pause)

    async def started() -> None:
        gc_pauses.install()
        load_model()
        if settings.model.shadow_digest and holder.model is not None:
            try:
                await switcher.set_shadow(settings.model.shadow_digest, publish=False)
            except SwapRefused as exc:
                log.error("SHADOW_DIGEST refused: %s", exc.reason)
        switcher.start()
        # SIGTERM: readiness 503 now, listener closed DRAIN_SECONDS later.
        on_stop_signal(drain, delay=settings.server.drain_seconds)

    return Part(
        # Only the API's own routes are measured: dashboard pages and streams are not scoring.
        # The scoring endpoint counts its own requests, refusals included.
        routers=[
            Router(
                path="/",
                route_handlers=[predict_route(predict), infer_route(infer, served_name)],
            ),
            Router(
                path="/",
                route_handlers=[
                    health_handler(holder, served_by, switcher),
                    live,
                    model_handler(holder, served_name),
                    metrics_handler(metrics, settings.server.instance_name()),
                    admin_router(switcher, limits.admin_keys, limits.api_keys, served_by),
                    *V2Handlers(holder, served_name).routes(),
                ],
                middleware=[middleware_factory(metrics)],
            ),
        ],
        on_startup=[started],
        on_shutdown=[stopped],
        scoring_routes=[
            ScoringRoute(
                "/predict",
                predict,
                predict_item,
                predict_components,
                front_door=("/predict",),
            ),
            ScoringRoute(
                INFER_PATH,
                infer,
                v2_paths[INFER_PATH],
                v2_components,
                front_door=(f"/v2/models/{served_name}/infer",),
            ),
            ScoringRoute(VERSIONED_INFER_PATH, infer_version, v2_paths[VERSIONED_INFER_PATH], {}),
        ],
    )
