"""The OpenAPI document, with the scoring routes Litestar does not describe by itself.

Litestar generates operations from its HTTP route handlers; the scoring routes are ASGI
routes (``app/serving/endpoint.py``), so their operations are written here from msgspec's JSON
schema of the very Structs the decoder enforces (closed objects, finite float32 bounds, at least one
reading) and added to every rendering of the document (JSON, YAML and the browsable pages).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    OpenAPIRenderPlugin,
    RedocRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)

from app.contract.api import ErrorBody, PredictResponse

REF = "#/components/schemas/{name}"


def scoring_operation(
    *,
    summary: str,
    description: str,
    operation_id: str,
    schemas: Sequence[Any],
    errors: dict[int, str],
    ok: str,
    parameters: list[dict[str, Any]] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """A scoring route's POST operation: a JSON request, a JSON answer, and every error
    status with its description and the protocol's error schema."""
    request, response, error = schemas
    responses: dict[str, Any] = {
        "200": {"description": ok, "content": {"application/json": {"schema": response}}}
    }
    for status, text in errors.items():
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": error}},
        }
    operation: dict[str, Any] = {
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": responses,
        "deprecated": False,
    }
    if parameters:
        operation["parameters"] = parameters
    if tags:
        operation["tags"] = tags
    return {"post": operation}


def predict_operation(request_type: type, errors: dict[int, str], description: str) -> Any:
    """``POST /predict``: its path item and the component schemas it refers to."""
    schemas, components = msgspec.json.schema_components(
        [request_type, PredictResponse, ErrorBody], ref_template=REF
    )
    path_item = scoring_operation(
        summary="Score a batch of readings",
        description=description,
        operation_id="Predict",
        schemas=schemas,
        errors=errors,
        ok="Verdicts in request order.",
    )
    return path_item, components


class ScoringRoutes:
    """Path items and components to add to the generated document."""

    def __init__(self) -> None:
        self.paths: dict[str, Any] = {}
        self.components: dict[str, Any] = {}
        self._done: tuple[int, dict[str, Any]] | None = None

    def add(self, path: str, path_item: Any, components: dict[str, Any]) -> None:
        self.paths[path] = path_item
        self.components.update(components)

    def complete(self, generated: dict[str, Any]) -> dict[str, Any]:
        """The generated document with the scoring routes added (computed once per app)."""
        if self._done is not None and self._done[0] == id(generated):
            return self._done[1]
        document = copy.deepcopy(generated)
        document.setdefault("paths", {}).update(self.paths)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(self.components)
        self._done = (id(generated), document)
        return document


def _completing(base: type[OpenAPIRenderPlugin]) -> type[OpenAPIRenderPlugin]:
    """A render plugin class that renders the completed document."""

    def render(self: Any, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        routes: ScoringRoutes = self.scoring_routes
        return base.render(self, request, routes.complete(openapi_schema))

    return type(f"Completing{base.__name__}", (base,), {"render": render})


def openapi_config(routes: ScoringRoutes, path: str = "/schema") -> OpenAPIConfig:
    """gridscore's OpenAPI config: JSON, YAML, Redoc (the root) and Swagger renderings."""
    plugins = []
    for base, kwargs in (
        (RedocRenderPlugin, {}),
        (JsonRenderPlugin, {}),
        (YamlRenderPlugin, {}),
        (SwaggerRenderPlugin, {}),
    ):
        plugin: Any = _completing(base)(**kwargs)
        plugin.scoring_routes = routes
        plugins.append(plugin)
    return OpenAPIConfig(
        title="gridscore",
        version="0.1.0",
        description="Real-time anomaly scores for power-grid sensor readings.",
        path=path,
        render_plugins=plugins,
    )
