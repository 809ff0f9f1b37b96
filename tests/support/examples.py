"""Request bodies the tests share."""

from __future__ import annotations

from typing import Any

EXAMPLE_BATCH: dict[str, Any] = {
    "readings": [
        {"voltage": 230.1, "current": 9.8, "frequency": 50.02},
        {"voltage": 271.0, "current": 28.5, "frequency": 50.7, "timestamp": "2026-01-01T00:00:00Z"},
    ]
}
"""The API example of the README and docs/api.md: a nominal reading, then a surge (flagged)."""

NOMINAL: dict[str, float] = {"voltage": 230.0, "current": 10.0, "frequency": 50.0}
"""One reading at the synthetic supply point's nominal values."""


def rounded(value: object) -> object:
    """Floats to 6 significant digits, all the way down: the same on every CPU."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value
