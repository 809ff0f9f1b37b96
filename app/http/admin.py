"""``/admin/*``: swap the served model, roll it back, set or clear the shadow.

Off unless ADMIN_KEY is set: then every admin route answers 404, as if it did not exist. With
it set, a request needs ``Authorization: Bearer <admin key>`` or ``X-Admin-Key``, compared in
constant time: no key or a wrong one is 401, a scoring key (API_KEY) is 403. A digest that no
artifact in MODEL_DIR has is 404; a candidate that cannot be served, or a swap while another
runs, is 409. Each answer says what is served now.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.router import Router

from app.contract.api import ErrorBody
from app.contract.errors import ApiError
from app.model.swap import ModelSwitcher, SwapRefused
from app.serving.admission import key_matches
from app.serving.keys import KeyRing

_ERRORS = {
    400: 'The body is not {"digest": "<6 to 64 hex characters>"}.',
    401: "No admin key, or a wrong one.",
    403: "A scoring key (API_KEY) is not an admin key.",
    404: "ADMIN_KEY is not set, or no artifact in MODEL_DIR has that digest.",
    409: "The candidate cannot be served here (the reason is given), or a swap is running.",
}


class DigestRequest(msgspec.Struct):
    """An artifact, named by the start of its sha256 (6 to 64 hex characters)."""

    digest: Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{6,64}$")]


class AdminState(msgspec.Struct):
    """What this worker serves after the request (workers follow within a fraction of a
    second)."""

    model: str
    previous: str | None
    shadow: str | None
    served_by: str


def _presented(request: ASGIConnection[Any, Any, Any, Any]) -> bytes:
    admin = request.headers.get("x-admin-key")
    if admin is not None:
        return admin.encode()
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip().encode()
    # A scoring key sent the scoring way is presented too: it gets 403, not 401.
    return request.headers.get("x-api-key", "").encode()


def _client_certificate(request: ASGIConnection[Any, Any, Any, Any]) -> bool:
    tls = request.scope.get("extensions", {}).get("tls") or {}  # type: ignore[union-attr]
    return bool(tls.get("client_cert_chain"))


def _digest(body: DigestRequest) -> str:
    return body.digest.lower()  # the pattern has been checked while decoding


def admin_router(
    switcher: ModelSwitcher,
    admin_keys: KeyRing,
    api_keys: KeyRing,
    served_by: str,
    client_cert_required: bool = False,
) -> Router:

    def guard(request: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """Runs before the body is read (a Litestar guard)."""
        keys = admin_keys.current()
        if not keys:
            raise ApiError(404, "not_found", "not found (admin routes are off: ADMIN_KEY unset)")
        if client_cert_required and not _client_certificate(request):
            # TLS_CLIENT_AUTH=admin: the handshake verified any certificate sent; these routes
            # need one (the other routes do not).
            raise ApiError(403, "forbidden", "the admin routes need a client certificate")
        presented = _presented(request)
        if presented and key_matches(presented, keys):
            return
        scoring_keys = api_keys.current()
        if presented and scoring_keys and key_matches(presented, scoring_keys):
            raise ApiError(403, "forbidden", "a scoring key is not an admin key")
        raise ApiError(
            401,
            "unauthorized",
            "an admin key is required (Authorization: Bearer <key>, or X-Admin-Key)",
            headers={"www-authenticate": 'Bearer realm="gridscore-admin"'},
        )

    def state() -> AdminState:
        holder = switcher.holder
        live = holder.model
        return AdminState(
            model=live.digest if live is not None else "",
            previous=holder.previous.digest if holder.previous is not None else None,
            shadow=switcher.shadow.model.digest if switcher.shadow.model is not None else None,
            served_by=served_by,
        )

    async def act(action: Any) -> AdminState:
        try:
            await action
        except SwapRefused as exc:
            code = "no_such_artifact" if exc.status == 404 else "swap_refused"
            raise ApiError(exc.status, code, exc.reason) from None
        return state()

    responses = {
        s: ResponseSpec(data_container=ErrorBody, description=t) for s, t in _ERRORS.items()
    }

    @post("/admin/model", status_code=200, responses=responses, summary="Serve another model")
    async def swap_model(data: JSONBody[DigestRequest]) -> AdminState:
        return await act(switcher.swap_to(_digest(data), "admin"))

    @post(
        "/admin/model/rollback",
        status_code=200,
        responses=responses,
        summary="Serve the previous model again",
    )
    async def rollback() -> AdminState:
        return await act(switcher.rollback())

    @post("/admin/shadow", status_code=200, responses=responses, summary="Shadow a model")
    async def set_shadow(data: JSONBody[DigestRequest]) -> AdminState:
        return await act(switcher.set_shadow(_digest(data)))

    @post("/admin/shadow/clear", status_code=200, responses=responses, summary="Stop shadowing")
    async def clear_shadow() -> AdminState:
        return await act(switcher.set_shadow(""))

    return Router(
        path="/",
        route_handlers=[swap_model, rollback, set_shadow, clear_shadow],
        guards=[guard],
    )
