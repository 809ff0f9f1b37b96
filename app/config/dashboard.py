"""Settings of the dashboard: which scorer it talks to, its CSRF secret, the bounds on bursts."""

from __future__ import annotations

from dataclasses import dataclass

from app.config.fields import integer, number, setting, text


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """The dashboard: which scorer it talks to, its CSRF secret, and the bounds on bursts."""

    backend_url: str = setting(
        "BACKEND_URL",
        "",
        "scorer the dashboard talks to; required by `gridscore dashboard`",
        text(),
        shown="(this process)",
    )
    secret: str = setting(
        "DASHBOARD_SECRET",
        "",
        "signs the CSRF tokens; set it when several dashboard processes serve one site",
        text(),
        shown="(random)",
    )
    burst_max_requests: int = setting(
        "DASHBOARD_MAX_BURST_REQUESTS", 5_000, "most requests in one burst", integer(minimum=1)
    )
    burst_max_concurrency: int = setting(
        "DASHBOARD_MAX_BURST_CONCURRENCY",
        64,
        "most requests in flight in one burst",
        integer(minimum=1),
    )
    burst_max_seconds: float = setting(
        "DASHBOARD_MAX_BURST_SECONDS",
        30.0,
        "a burst stops after this long",
        number(zero_is_default=True),
    )
    max_batch: int = setting(
        "DASHBOARD_MAX_BATCH", 1_000, "most readings per dashboard request", integer(minimum=1)
    )
