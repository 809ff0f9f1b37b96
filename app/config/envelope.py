"""The operating envelope's bounds as environment variables (``ENVELOPE_<FEATURE>_<MIN|MAX>``).

Read with the other settings, and by the model's envelope (``app.model.envelope``), which
resolves them against the artifact's features."""

from __future__ import annotations

import re
from collections.abc import Mapping

_ENV_BOUND = re.compile(r"^ENVELOPE_(?P<feature>[A-Z0-9_]+)_(?P<side>MIN|MAX)$")


class EnvelopeError(ValueError):
    """The envelope configuration cannot be used."""


def env_overrides(env: Mapping[str, str]) -> tuple[tuple[str, str, float], ...]:
    """``ENVELOPE_<FEATURE>_<MIN|MAX>`` variables as (feature, min|max, value)."""
    found = []
    for name, raw in sorted(env.items()):
        match = _ENV_BOUND.match(name)
        if match is None or not raw.strip():
            continue
        try:
            value = float(raw)
        except ValueError:
            raise EnvelopeError(f"{name} must be a number, got {raw!r}") from None
        found.append((match["feature"].lower(), match["side"].lower(), value))
    return tuple(found)
