"""Build the Litestar apps: explicit dependencies in, an app out.

Three shapes: the scoring API alone, the dashboard alone (talking to BACKEND_URL over HTTP;
this one never imports onnxruntime or numpy), and both in one process (the local default,
where the dashboard talks to its own API over loopback).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from litestar import Litestar

from app.config import Settings
from app.observe import logs
from app.runtime.gctune import freeze_startup_heap
from app.serving.errors import handle_exception
from app.serving.openapi import ScoringRoutes, openapi_config
from app.serving.parts import Part, constant

if TYPE_CHECKING:
    from app.model.holder import ModelHolder
    from app.observe.metrics import Metrics


SCORING_ENDPOINTS = "gridscore.scoring_endpoints"  # app.state key: (path, endpoint, exact paths)


def served_by(settings: Settings) -> str:
    """``<pod or host>:<pid>``: which instance answered."""
    return f"{settings.server.instance_name()}:{os.getpid()}"


def assemble(settings: Settings, parts: list[Part]) -> Litestar:
    """One Litestar app from the given parts, with gridscore's errors, logging and OpenAPI."""
    options: dict[str, Any] = {}
    dependencies = {"settings": constant(settings)}
    scoring_routes = ScoringRoutes()
    for part in parts:
        options.update(part.app_options)
        dependencies.update(part.dependencies)
        for route in part.scoring_routes:
            scoring_routes.add(route.path, route.path_item, route.components)
    app = Litestar(
        route_handlers=[router for part in parts for router in part.routers],
        dependencies=dependencies,
        exception_handlers={Exception: handle_exception},
        on_startup=[
            *(hook for part in parts for hook in part.on_startup),
            # Last: the model is loaded and warm, the start-up heap complete.
            *([freeze_startup_heap] if settings.server.gc_freeze else []),
        ],
        on_shutdown=[hook for part in parts for hook in part.on_shutdown],
        request_max_body_size=settings.limits.max_body_bytes,
        openapi_config=openapi_config(scoring_routes),
        logging_config=None,  # gridscore's JSON logging is set up by the launcher
        debug=False,
        **options,
    )
    app.state[SCORING_ENDPOINTS] = [
        (route.path, route.endpoint, route.front_door)
        for part in parts
        for route in part.scoring_routes
    ]
    return app


class FrontDoor:
    """The served app: scoring paths straight to their endpoint, everything else to Litestar.

    Litestar routes to some scoring endpoints too (in-process tests use that), but its
    routing and exception middleware cost ~13 µs a request that the endpoints, which answer
    every error themselves, do not need (docs/benchmarks.md). Exact paths (``/predict``, the
    served model's v2 infer path) are one dict lookup; templated ones
    (``/v2/models/{model}/versions/{version}/infer``) a regular expression each, tried only
    for paths under their fixed prefix. Lifespan, every other path and every other scope
    type go to Litestar unchanged.
    """

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.endpoints: dict[str, Any] = {}
        self.templated: list[tuple[str, re.Pattern[str], Any]] = []
        for path, endpoint, exact in app.state.get(SCORING_ENDPOINTS, []):
            for alias in exact:
                self.endpoints[alias] = endpoint
            if "{" in path:
                prefix = path[: path.index("{")]
                # Each {parameter} is one path segment.
                pattern = re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)))
                self.templated.append((prefix, pattern, endpoint))
            else:
                self.endpoints[path] = endpoint

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            endpoint = self.endpoints.get(path)
            if endpoint is None:
                for prefix, pattern, candidate in self.templated:
                    if path.startswith(prefix) and pattern.fullmatch(path):
                        endpoint = candidate
                        break
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def served_features(
    settings: Settings, holder: ModelHolder | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Features and units the request schema is built for: the loaded model's, else those of
    the artifact that will be served, else the synthetic supply point's."""
    from app.contract.nominal import SYNTHETIC
    from app.model import artifact

    if holder is not None and holder.model is not None:
        loaded = holder.model.metadata
        return tuple(loaded.features), tuple(loaded.units)
    meta = artifact.peek_metadata(settings.model.dir, settings.model.name, settings.model.digest)
    if meta is not None and len(meta.units) == len(meta.features):
        return tuple(meta.features), tuple(meta.units)
    return tuple(s.name for s in SYNTHETIC), tuple(s.unit for s in SYNTHETIC)


def _api(settings: Settings, holder: ModelHolder | None, metrics: Metrics | None) -> Part:
    from app.http.decoding import RequestCodec
    from app.model.holder import ModelHolder
    from app.observe.metrics import Metrics
    from app.service.api import api_part

    features, units = served_features(settings, holder)
    return api_part(
        settings,
        holder or ModelHolder(features),
        metrics or Metrics(),
        served_by(settings),
        RequestCodec(features, units),
    )


def _dashboard(settings: Settings) -> Part:
    from app.dashboard.app import dashboard_part, template_config

    return dashboard_part(settings, template_config())


def create_api_app(
    settings: Settings,
    holder: ModelHolder | None = None,
    metrics: Metrics | None = None,
) -> Litestar:
    """The scoring API. Without ``holder`` the model loads from ``settings`` at start-up."""
    return assemble(settings, [_api(settings, holder, metrics)])


def create_dashboard_app(settings: Settings) -> Litestar:
    """The dashboard alone, for its own process; the scorer is at BACKEND_URL."""
    from app.dashboard.routes import probe_routes

    return assemble(settings, [_dashboard(settings), probe_routes()])


def create_combined_app(
    settings: Settings,
    holder: ModelHolder | None = None,
    metrics: Metrics | None = None,
) -> Litestar:
    """API and dashboard in one process; the dashboard scores through this process's API."""
    return assemble(settings, [_api(settings, holder, metrics), _dashboard(settings)])


def _from_env() -> Settings:
    settings = Settings.from_env()
    logs.configure(settings.server.log_level)
    return settings


def create_served_app() -> FrontDoor:
    """uvicorn entry point (``factory=True``) for ``gridscore serve``: API and dashboard."""
    return FrontDoor(create_combined_app(_from_env()))


def create_served_api_app() -> FrontDoor:
    """uvicorn entry point for ``gridscore api``: the scoring API alone."""
    return FrontDoor(create_api_app(_from_env()))


def create_stream_app(
    settings: Settings,
    holder: ModelHolder | None = None,
    metrics: Metrics | None = None,
) -> Litestar:
    """The stream worker: JetStream in and out, with its probes on PORT."""
    from app.model.holder import ModelHolder
    from app.observe.metrics import Metrics
    from app.service.stream import stream_part

    features, _ = served_features(settings, holder)
    part = stream_part(
        settings, holder or ModelHolder(features), metrics or Metrics(), served_by(settings)
    )
    return assemble(settings, [part])


def create_served_stream_app() -> Litestar:
    """uvicorn entry point for ``gridscore stream``."""
    return create_stream_app(_from_env())


def create_served_dashboard_app() -> Litestar:
    """uvicorn entry point for ``gridscore dashboard``: the dashboard alone."""
    return create_dashboard_app(_from_env())
