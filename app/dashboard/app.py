"""The dashboard side of an app: routes, templates, static files, CSRF, security headers."""

from __future__ import annotations

import math
import secrets
from pathlib import Path
from typing import Any

from litestar.datastructures import ResponseHeader
from litestar.middleware import DefineMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.config import Settings
from app.dashboard import http1, routes
from app.dashboard.alarms import AlarmHub, since
from app.dashboard.backend import Backend
from app.dashboard.bursts import BurstLimits, BurstRunner
from app.dashboard.charts import share_bar
from app.dashboard.csrf import CsrfMiddleware
from app.dashboard.drift import DriftWatch
from app.dashboard.streams import StreamHub
from app.runtime import tls
from app.runtime.signals import on_stop_signal
from app.serving.keys import KeyRing, key_rings
from app.serving.parts import Part, constant

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"

# Only the dashboard's own files run or style the page: no inline script or style, no eval,
# no other origin. htmx is configured (meta tag) to inject no style and to evaluate nothing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


def _ms(value: Any) -> str:
    """Milliseconds for display; a dash when there is nothing to show yet."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else f"{number:.2f} ms"


def _register_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["ms"] = _ms
    engine.engine.globals["share_bar"] = share_bar
    engine.engine.filters["since"] = since


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_register_filters
    )


def dashboard_part(settings: Settings, template: TemplateConfig[JinjaTemplateEngine]) -> Part:
    """Dashboard routes and their state (streams, bursts), talking to the configured scorer."""
    backend_url = settings.dashboard_backend()
    if backend_url.startswith("https://"):
        security = settings.security
        http1.configure_tls(
            security.backend_ca_file,
            security.backend_cert_file,
            security.backend_key_file,
            itself=not settings.dashboard.backend_url,
        )

    def render(name: str, context: Any) -> str:
        return str(template.engine_instance.get_template(name).render(**context))

    # With API_KEY (or API_KEY_FILE) set, the dashboard presents the first key to the scorer,
    # read again as the file changes.
    api_keys, admin_keys = key_rings(settings)
    api_key = api_keys.first
    hub = StreamHub(backend_url, render, api_key=api_key)
    bursts = BurstRunner(
        backend_url,
        BurstLimits(
            max_requests=settings.dashboard.burst_max_requests,
            max_concurrency=settings.dashboard.burst_max_concurrency,
            max_seconds=settings.dashboard.burst_max_seconds,
            max_batch=settings.dashboard.max_batch,
        ),
        api_key=api_key,
    )
    admin_key = admin_keys.first
    backend = Backend(backend_url, api_key=api_key, admin_key=admin_key)
    alarms = AlarmHub(
        settings.stream.nats_urls,
        settings.stream.name,
        render,
        tls.broker_options(settings.stream),
    )

    # Without a secret each process signs its own tokens, which is fine for one process; the
    # launcher shares DASHBOARD_SECRET between its workers, DASHBOARD_SECRET_FILE any number.
    secret_file = settings.security.dashboard_secret_file
    signing = KeyRing(
        () if secret_file else (settings.dashboard.secret or secrets.token_hex(32),),
        secret_file,
        "DASHBOARD_SECRET_FILE",
    )
    csrf = DefineMiddleware(
        CsrfMiddleware,
        secrets_now=signing.current,
        # Scoring clients post JSON with no cookies; only the dashboard's forms need it.
        exclude="^/predict$",
        cookie_secure=settings.security.tls,
    )

    def closing() -> None:
        hub.close_all()
        alarms.close_all()

    def started() -> None:
        on_stop_signal(closing)

    async def stopped() -> None:
        hub.close_all()
        await alarms.stop()
        bursts.cancel()
        await backend.close()

    return Part(
        routers=[
            Router(path="/", route_handlers=routes.ROUTES, response_headers=SECURITY_HEADERS),
            Router(
                path="/",
                route_handlers=[
                    create_static_files_router(
                        path="/static", directories=[STATIC], include_in_schema=False
                    )
                ],
                response_headers=SECURITY_HEADERS,
            ),
        ],
        dependencies={
            "hub": constant(hub),
            "bursts": constant(bursts),
            "backend": constant(backend),
            "drift": constant(DriftWatch()),
            "alarms": constant(alarms),
        },
        on_startup=[started],
        on_shutdown=[stopped],
        app_options={"template_config": template, "middleware": [csrf]},
    )
