"""All of gridscore's settings, one frozen object per process, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from app.config.dashboard import DashboardSettings
from app.config.limits import LimitSettings
from app.config.model import ModelSettings
from app.config.security import SecuritySettings
from app.config.server import ServerSettings
from app.config.stream import StreamSettings


def _read(section: type[Any], env: Mapping[str, str]) -> Any:
    values = {
        f.name: f.metadata["parse"](env, f.metadata["env"], f.default) for f in fields(section)
    }
    return section(**values)


SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "model": ModelSettings,
    "limits": LimitSettings,
    "dashboard": DashboardSettings,
    "stream": StreamSettings,
    "security": SecuritySettings,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about gridscore, one frozen object per process."""

    server: ServerSettings = field(default_factory=ServerSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); raises SettingsError."""
        env = os.environ if env is None else env
        return cls(**{name: _read(section, env) for name, section in SECTIONS.items()})

    def dashboard_backend(self) -> str:
        """The scorer the dashboard uses: BACKEND_URL, else this process."""
        scheme = "https" if self.security.tls else "http"
        return self.dashboard.backend_url or f"{scheme}://127.0.0.1:{self.server.port}"
