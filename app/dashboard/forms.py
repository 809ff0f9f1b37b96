"""Numbers and flags from the dashboard's forms and query strings, checked against bounds.

A browser user can send anything; every value the dashboard acts on passes through here and
leaves as a number within its configured range, or as a ParamError the page shows.
"""

from __future__ import annotations

from collections.abc import Mapping


class ParamError(ValueError):
    """Stream or burst parameters outside what this dashboard allows."""


def form_number(
    form: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    raw = str(form.get(name, "")).strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ParamError(f"{name} must be a number") from None
    if not low <= value <= high:
        raise ParamError(f"{name} must be between {low:g} and {high:g}")
    return value


def form_flag(form: Mapping[str, str], name: str) -> bool:
    return str(form.get(name, "")).lower() in {"1", "true", "on", "yes"}
