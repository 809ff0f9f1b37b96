"""The scoring API assembled: ``/predict`` and the v2 routes on one data plane, with the
probes, ``/health``, ``/model``, the admin routes, model loading, swaps, shadow and drift.

The handlers are built per app by ``api_part``: the request schema follows the artifact's
features, and what every request needs (the holder, the metrics, the limits) is bound once in
a closure instead of being resolved per request.
"""

from __future__ import annotations

import logging

from litestar.router import Router

from app.config import Settings
from app.http.admin import admin_router
from app.http.decoding import RequestCodec
from app.http.predict import PredictJson
from app.http.routes import (
    PREDICT_DESCRIPTION,
    PREDICT_ERRORS,
    health_handler,
    model_handler,
    predict_route,
)
from app.model.holder import ModelHolder
from app.observe.metrics import Metrics, middleware_factory
from app.runtime.signals import on_stop_signal
from app.service.lifecycle import ServedModel
from app.serving.admission import Admission
from app.serving.endpoint import ScoringEndpoint, ScoringProtocol
from app.serving.keys import key_rings
from app.serving.openapi import predict_operation
from app.serving.parts import Part, ScoringRoute
from app.serving.probes import live, metrics_handler
from app.serving.ratelimit import RateLimits
from app.v2.infer import INFER_PATH, VERSIONED_INFER_PATH, InferV2
from app.v2.routes import V2Handlers, infer_operations, infer_route

log = logging.getLogger("gridscore.api")


def api_part(
    settings: Settings,
    holder: ModelHolder,
    metrics: Metrics,
    served_by: str,
    codec: RequestCodec,
) -> Part:
    """The scoring API: its routes (with the metrics middleware), model loading, draining."""

    limits = settings.limits
    api_keys, admin_keys = key_rings(settings)
    security = settings.security
    rate_limits = RateLimits(
        security.rate_requests, security.rate_readings, security.rate_burst_s, metrics.rate_limited
    )
    admission = Admission(api_keys, limits.max_in_flight, limits.request_timeout, rate_limits)
    served = ServedModel(settings, holder, metrics)
    switcher, plane = served.switcher, served.plane

    def scoring(protocol: ScoringProtocol) -> ScoringEndpoint:
        """An endpoint of the one scoring path: same admission, data plane, metrics."""
        return ScoringEndpoint(protocol, plane, metrics, limits, admission)

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

    async def started() -> None:
        await served.start()
        # SIGTERM: readiness 503 now, listener closed DRAIN_SECONDS later.
        on_stop_signal(served.drain, delay=settings.server.drain_seconds)

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
                    admin_router(
                        switcher,
                        admin_keys,
                        api_keys,
                        served_by,
                        client_cert_required=settings.security.admin_needs_client_cert,
                    ),
                    *V2Handlers(holder, served_name).routes(),
                ],
                middleware=[middleware_factory(metrics)],
            ),
        ],
        on_startup=[started],
        on_shutdown=[served.stop],
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
