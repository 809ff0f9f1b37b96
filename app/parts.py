"""What each side of the service adds to an app; the factory assembles the sides it is asked for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar.di import Provide
from litestar.router import Router


@dataclass
class Part:
    routers: list[Router]
    dependencies: dict[str, Provide] = field(default_factory=dict)
    on_startup: list[Callable[..., Any]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Any]] = field(default_factory=list)
    app_options: dict[str, Any] = field(default_factory=dict)


def constant(value: object) -> Provide:
    """A dependency that always hands out the same object (no per-request work)."""
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)
