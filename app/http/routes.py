"""The scoring API's HTTP routes: ``POST /predict`` (an ASGI route to its scoring endpoint),
``GET /health`` (readiness, with the model, its envelope and the last swap) and ``GET /model``
(what the served model expects and how it was trained). ``api_part`` (``app/service/api.py``)
builds them per app, with what they need bound once."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from litestar import Response, asgi, get
from litestar.openapi import ResponseSpec
from litestar.types import Receive, Scope, Send

from app.contract.api import (
    EnvelopeState,
    ErrorBody,
    FeatureInfo,
    HealthResponse,
    ModelRef,
    ModelResponse,
    SwapInfo,
)
from app.model.holder import LoadedModel, ModelHolder, Status
from app.model.swap import ModelSwitcher
from app.serving.endpoint import ScoringEndpoint

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
