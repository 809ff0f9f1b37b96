"""The Open Inference Protocol's (KServe v2) REST routes beside ``/predict``.

Health and metadata are Litestar handlers under the metrics middleware, like ``/health`` and
``/model``; inference is the scoring endpoint with the v2 wire format (``app/v2/infer.py``),
so it shares admission, limits, the time budget and the metrics with ``/predict``. Errors
carry the protocol's ``{"error": "..."}`` body: 404 for an unknown model or version, 503
while no model is ready, 400 for a bad request.

One model, served under ``V2_MODEL_NAME`` (default ``MODEL_NAME``); its version is the
digest prefix of the artifact in service, so it changes with a hot swap, and a client that
pins a version gets a 404 once another model serves.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any

import msgspec
from litestar import Response, asgi, get
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, Parameter
from litestar.types import Receive, Scope, Send

from app.contract.api import FLOAT32_MAX
from app.contract.errors import ApiError
from app.contract.v2 import (
    BINARY_EXTENSION,
    INPUT,
    OUTPUTS,
    PLATFORM,
    InferResponse,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
    TensorMetadata,
    V2Error,
)
from app.model.holder import LoadedModel, ModelHolder, Status
from app.serving.endpoint import ScoringEndpoint
from app.serving.openapi import REF, scoring_operation
from app.v2.infer import INFER_PATH, VERSIONED_INFER_PATH, check_served, version_of

TAG = "Open Inference Protocol"
try:
    VERSION = package_version("gridscore")
except PackageNotFoundError:  # a source tree that was never installed
    VERSION = "0.0.0"


def _error(status: int, message: str) -> Response[Any]:
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(V2Error(message), status_code=status, headers=headers)


def model_metadata(model: LoadedModel, served_name: str) -> ModelMetadata:
    columns = len(model.features)
    breaches = [f"{feature}_{direction}" for feature, direction in model.breach_columns]
    return ModelMetadata(
        name=served_name,
        versions=[version_of(model.digest)],
        platform=PLATFORM,
        inputs=[TensorMetadata(INPUT, "FP32", [-1, columns])],
        outputs=[
            TensorMetadata("score", "FP32", [-1]),
            TensorMetadata("anomaly", "BOOL", [-1]),
            TensorMetadata("out_of_range", "BOOL", [-1, len(breaches)]),
            TensorMetadata("attribution", "FP32", [-1, columns]),
        ],
        properties={
            "features": ",".join(model.features),
            "units": ",".join(model.metadata.units),
            "out_of_range": ",".join(breaches),
            "threshold": repr(model.threshold),
            "digest": model.digest,
            "artifact": model.name,
        },
    )


class V2Handlers:
    """The v2 health and metadata handlers for one holder and one served name."""

    def __init__(self, holder: ModelHolder, served_name: str) -> None:
        self.holder = holder
        self.served_name = served_name

    def _model(self, name: str, version: str | None) -> LoadedModel | Response[Any]:
        """The served model when ``name`` (and ``version``) name it, else the error answer."""
        model = self.holder.model if self.holder.status is Status.OK else None
        try:  # the version is checked only against a model that is ready
            check_served(name, version or "", self.served_name, model)
        except ApiError as exc:
            return _error(exc.status_code, exc.detail)
        if model is None:
            return _error(503, f"model {name!r} is not ready: {self.holder.status.value}")
        return model

    def metadata(self, name: str, version: str | None) -> Response[Any]:
        model = self._model(name, version)
        if isinstance(model, Response):
            return model
        return Response(model_metadata(model, self.served_name))

    def ready(self, name: str, version: str | None) -> Response[Any]:
        model = self._model(name, version)
        if isinstance(model, Response):
            return model
        return Response(ModelReady(name=name, ready=True))

    def routes(self) -> list[Any]:
        not_found = ResponseSpec(data_container=V2Error, description="Unknown model or version.")
        not_ready = ResponseSpec(
            data_container=V2Error, description="No model ready (loading or draining)."
        )
        errors = {404: not_found, 503: not_ready}
        common: dict[str, Any] = {"sync_to_thread": False, "tags": [TAG]}

        @get(["/v2", "/v2/"], summary="v2 server metadata", **common)
        def server_metadata() -> ServerMetadata:
            return ServerMetadata("gridscore", VERSION, [BINARY_EXTENSION])

        @get("/v2/health/live", summary="v2 server liveness", **common)
        def server_live() -> Live:
            return Live(True)

        @get(
            "/v2/health/ready",
            summary="v2 server readiness: 200 only with a verified model loaded",
            responses={503: not_ready},
            **common,
        )
        def server_ready() -> Response[Any]:
            if self.holder.status is Status.OK and self.holder.model is not None:
                return Response(Ready(True))
            return _error(503, f"not ready: {self.holder.status.value}")

        # The one name served, in the schema too (clients and fuzzers see what exists).
        Model = Annotated[str, Parameter(schema_extra={"enum": [self.served_name]})]
        model_routes = {"responses": errors, "signature_namespace": {"Model": Model}, **common}

        @get("/v2/models/{model:str}", summary="v2 model metadata", **model_routes)
        def metadata(model: Model) -> Response[Any]:
            return self.metadata(model, None)

        @get(
            "/v2/models/{model:str}/versions/{version:str}",
            summary="v2 model metadata, of one version",
            **model_routes,
        )
        def version_metadata(model: Model, version: FromPath[str]) -> Response[Any]:
            return self.metadata(model, version)

        @get("/v2/models/{model:str}/ready", summary="v2 model readiness", **model_routes)
        def model_ready(model: Model) -> Response[Any]:
            return self.ready(model, None)

        @get(
            "/v2/models/{model:str}/versions/{version:str}/ready",
            summary="v2 model readiness, of one version",
            **model_routes,
        )
        def version_ready(model: Model, version: FromPath[str]) -> Response[Any]:
            return self.ready(model, version)

        return [
            server_metadata,
            server_live,
            server_ready,
            metadata,
            version_metadata,
            model_ready,
            version_ready,
        ]


def infer_route(endpoint: ScoringEndpoint, served_name: str) -> Any:
    """The served name's infer route for Litestar (in-process clients). Served, the front
    door (``app/service/factory.py``) sends every ``/v2/models/*/infer`` path, versioned or not, to
    its endpoint without Litestar, which could not route an ASGI handler with path
    parameters here (its router looks their types up under the HTTP method, and ASGI
    routes keep them under "asgi")."""

    async def infer(scope: Scope, receive: Receive, send: Send) -> None:
        await endpoint(scope, receive, send)

    path = f"/v2/models/{served_name}/infer"
    return asgi(path, name="v2-infer", is_mount=False, copy_scope=False)(infer)


INFER_ERRORS = {
    400: "A malformed request: not JSON, wrong input name, datatype or shape, data that do "
    "not match the shape, binary sizes that do not match the body, a non-finite value, an "
    "unknown output.",
    401: "API_KEY is set and the request carries no valid key.",
    404: "Unknown model, or a version other than the one served.",
    405: "Not a POST.",
    408: "The request body did not arrive within REQUEST_TIMEOUT.",
    413: "More than MAX_BATCH rows, or a body over MAX_BODY_BYTES.",
    503: "No model loaded, too many requests in flight, or over the time budget "
    "(with Retry-After).",
}
INFER_DESCRIPTION = (
    "Scores the rows of the `readings` input (FP32 `[N, F]`, the model's features in the "
    "order of its metadata) and answers the outputs asked for (all when `outputs` is "
    "omitted): `score`, `anomaly`, `out_of_range`, `attribution`. With the binary tensor "
    "extension the JSON part is `Inference-Header-Content-Length` bytes long and the tensors' "
    'bytes follow it. Errors have the body `{"error": "..."}`.'
)


def infer_request_schema(columns: int, max_rows: int) -> dict[str, Any]:
    """The infer request as precisely as JSON Schema can say it for the served model: its one
    input's name, datatype and shape, finite float32 numbers, the outputs it has. What the
    schema cannot say (that ``data`` holds rows x columns numbers) the route checks (400)."""
    number = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    flag = {"type": "boolean"}
    return {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {"binary_data_output": flag}},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"enum": [INPUT]},
                        "datatype": {"enum": ["FP32"]},
                        "shape": {
                            "type": "array",
                            "prefixItems": [
                                {"type": "integer", "minimum": 1, "maximum": max_rows},
                                {"enum": [columns]},
                            ],
                            "minItems": 2,
                            "maxItems": 2,
                        },
                        "data": {
                            "description": "rows x columns numbers in row-major order: flat, "
                            "or nested by rows. With the binary tensor extension, omitted "
                            "(parameters.binary_data_size gives the bytes that follow the JSON).",
                            "type": "array",
                            "items": {"anyOf": [number, {"type": "array", "items": number}]},
                        },
                        "parameters": {
                            "type": "object",
                            "properties": {"binary_data_size": {"type": "integer"}},
                        },
                    },
                },
            },
            "outputs": {
                "type": "array",
                "uniqueItems": True,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"enum": list(OUTPUTS)},
                        "parameters": {"type": "object", "properties": {"binary_data": flag}},
                    },
                },
            },
        },
    }


def infer_operations(
    served_name: str, columns: int, max_rows: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenAPI path items of the two infer routes, and the component schemas they refer to."""
    (response, error), components = msgspec.json.schema_components(
        [InferResponse, V2Error], ref_template=REF
    )
    request = infer_request_schema(columns, max_rows)
    model = {
        "name": "model",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [served_name]},
    }
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}

    def item(parameters: list[dict[str, Any]], operation_id: str) -> dict[str, Any]:
        return scoring_operation(
            summary="v2 inference: score a batch of readings",
            description=INFER_DESCRIPTION,
            operation_id=operation_id,
            schemas=(request, response, error),
            errors=INFER_ERRORS,
            ok="The outputs asked for, in that order.",
            parameters=parameters,
            tags=[TAG],
        )

    paths = {
        INFER_PATH: item([model], "V2Infer"),
        VERSIONED_INFER_PATH: item([model, version], "V2InferVersion"),
    }
    return paths, components
