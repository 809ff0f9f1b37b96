"""Build the Litestar apps: explicit dependencies in, an app out."""

from __future__ import annotations

import os

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from app import api, logs
from app.errors import handle_exception
from app.metrics import Metrics, middleware_factory
from app.model import ModelHolder, Status
from app.settings import Settings


def served_by(settings: Settings) -> str:
    """``<pod or host>:<pid>``: which instance answered."""
    return f"{settings.instance_name()}:{os.getpid()}"


def create_api_app(
    settings: Settings,
    holder: ModelHolder | None = None,
    metrics: Metrics | None = None,
) -> Litestar:
    """The scoring API. Without ``holder`` the model loads from ``settings`` at start-up."""
    holder = holder or ModelHolder()
    metrics = metrics or Metrics()
    instance = served_by(settings)

    def load_model() -> None:
        if holder.status is Status.LOADING:
            holder.load(settings)
        if holder.model is not None:
            metrics.model_info.labels(holder.model.name, holder.model.digest).set(1)

    return Litestar(
        route_handlers=api.ROUTES,
        dependencies=api.dependencies(holder, metrics, settings, instance),
        middleware=[middleware_factory(metrics)],
        exception_handlers={Exception: handle_exception},
        on_startup=[load_model],
        on_shutdown=[holder.drain],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="gridscore",
            version="0.1.0",
            description="Real-time anomaly scores for power-grid sensor readings.",
            path="/schema",
        ),
        logging_config=None,  # gridscore's JSON logging is set up by the launcher
        debug=False,
    )


def create_served_app() -> Litestar:
    """Entry point for uvicorn (``factory=True``): settings from the environment."""
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    return create_api_app(settings)
