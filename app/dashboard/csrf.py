"""CSRF tokens for the dashboard's forms, signed with a secret that may rotate while serving.

Double submit: a page load gives the browser a cookie (HttpOnly, SameSite strict) holding a
random nonce and its HMAC, and the page carries the same token, which htmx sends back as
``x-csrftoken`` on every post. A post passes when header and cookie hold the same token and one
of the current secrets signed it. Another site can make a browser post, but cannot read the
token to put it in a header.

The secrets come from a ``KeyRing``: ``DASHBOARD_SECRET_FILE`` (its first line signs, every line
is accepted, so a rotation can keep the old secret a while), else ``DASHBOARD_SECRET``. Litestar's
own CSRF middleware signs with one fixed secret and keeps a browser's cookie as long as the
browser sends it, so after a rotation that browser could never post again; here a page load
replaces a cookie no current secret signed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from litestar.exceptions import PermissionDeniedException
from litestar.utils.scope.state import ScopeState

COOKIE = "csrftoken"
HEADER = b"x-csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NONCE_HEX = 32  # 16 random bytes


def sign(nonce: str, secret: bytes) -> str:
    return nonce + hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()


def signed_by_one_of(token: str, current: list[bytes]) -> bool:
    nonce = token[:NONCE_HEX]
    if len(nonce) != NONCE_HEX:
        return False
    return any(hmac.compare_digest(sign(nonce, secret), token) for secret in current)


class CsrfMiddleware:
    """ASGI middleware checking the double-submitted token on unsafe methods."""

    def __init__(
        self,
        app: Any,
        secrets_now: Callable[[], list[bytes]],
        exclude: str = "",
        cookie_secure: bool = False,
    ) -> None:
        self.app = app
        self.secrets_now = secrets_now  # the signing secret first
        self.exclude = re.compile(exclude) if exclude else None
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (self.exclude and self.exclude.search(scope["path"])):
            await self.app(scope, receive, send)
            return
        current = self.secrets_now()
        cookie = _cookie(scope)
        if scope["method"] in SAFE_METHODS:
            if cookie and signed_by_one_of(cookie, current):
                ScopeState.from_scope(scope).csrf_token = cookie
                await self.app(scope, receive, send)
                return
            token = sign(secrets.token_hex(NONCE_HEX // 2), current[0])
            ScopeState.from_scope(scope).csrf_token = token
            await self.app(scope, receive, self._setting_cookie(send, token))
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == HEADER), "")
        if not (
            cookie
            and header
            and hmac.compare_digest(header, cookie)
            and signed_by_one_of(cookie, current)
        ):
            # Inside Litestar's exception middleware: the usual 403 error body.
            raise PermissionDeniedException("CSRF token verification failed")
        ScopeState.from_scope(scope).csrf_token = cookie
        await self.app(scope, receive, send)

    def _setting_cookie(self, send: Any, token: str) -> Any:
        attributes = "; Path=/; HttpOnly; SameSite=Strict"
        if self.cookie_secure:
            attributes += "; Secure"

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", f"{COOKIE}={token}{attributes}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        return sending


def _cookie(scope: Any) -> str:
    for key, value in scope["headers"]:
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header: as if there were none
                return ""
            if COOKIE in jar:
                return jar[COOKIE].value
    return ""
