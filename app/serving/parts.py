"""What each side of the service adds to an app; the factory assembles the sides it is asked for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar.di import Provide
from litestar.router import Router


@dataclass(frozen=True)
class ScoringRoute:
    """A scoring route: its ASGI endpoint, and its OpenAPI path item and component schemas
    (Litestar describes only its own handlers)."""

    path: str  # as the OpenAPI document names it (a template for the v2 routes)
    endpoint: Any
    path_item: Any
    components: dict[str, Any]
    # Exact request paths the front door sends straight to ``endpoint``, past Litestar.
    front_door: tuple[str, ...] = ()


@dataclass
class Part:
    routers: list[Router]
    dependencies: dict[str, Provide] = field(default_factory=dict)
    on_startup: list[Callable[..., Any]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Any]] = field(default_factory=list)
    app_options: dict[str, Any] = field(default_factory=dict)
    scoring_routes: list[ScoringRoute] = field(default_factory=list)


def constant(value: object) -> Provide:
    """A dependency that always hands out the same object (no per-request work)."""
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)
