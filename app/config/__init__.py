"""Configuration: environment variables read once at start-up, grouped by concern.

Each field declares its variable, default and meaning in one place (``fields.setting``):
``Settings.from_env`` reads them from that declaration, and ``python -m app.docgen`` writes
the reference page docs/configuration.md from it, so the two cannot drift (a test checks the
page is current). One module per group: ``server``, ``model``, ``limits``, ``dashboard``,
``stream``, ``security``.

Layer: the lowest, beside ``app.contract``; it imports nothing else of ``app``.
"""

from app.config.dashboard import DashboardSettings
from app.config.fields import SettingsError, setting
from app.config.limits import LimitSettings
from app.config.model import ModelSettings
from app.config.reference import reference_markdown
from app.config.security import SecuritySettings
from app.config.server import ServerSettings
from app.config.settings import SECTIONS, Settings
from app.config.stream import StreamSettings

__all__ = [
    "SECTIONS",
    "DashboardSettings",
    "LimitSettings",
    "ModelSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "StreamSettings",
    "reference_markdown",
    "setting",
]
