"""How a setting is declared and read: each field names its variable, default, meaning and
parser (``setting``); a parser turns the variable's text into a value or a SettingsError."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

Parser = Callable[[Mapping[str, str], str, Any], Any]


class SettingsError(ValueError):
    """An environment variable holds a value gridscore cannot use."""


# Parsers: (environment, variable, default) -> value. An empty or unset variable is the default.


def text(lower: bool = False) -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        return (raw.lower() if lower else raw) or default

    return parse


def choice(*allowed: str) -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip().lower() or default
        if raw not in allowed:
            raise SettingsError(f"{name} must be {', '.join(allowed)}, got {raw!r}")
        return raw

    return parse


def path_segment() -> Parser:
    """A name that sits in a URL path as one segment (letters, digits, ``.``, ``_``, ``-``)."""

    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        if raw and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", raw):
            raise SettingsError(
                f"{name} must be letters, digits, '.', '_' or '-' (one URL path segment), "
                f"got {raw!r}"
            )
        return raw or default

    return parse


def path() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        return Path(raw) if raw else default

    return parse


def integer(minimum: int = 0) -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


def number(zero_is_default: bool = False, floor: float | None = None) -> Parser:
    """A float; ``zero_is_default``: 0 means the default too; ``floor``: smaller values clamp."""

    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if zero_is_default and value == 0:
            return default
        return value if floor is None else max(floor, value)

    return parse


def flag() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} must be 1/0 (or true/false), got {raw!r}")

    return parse


def comma_list() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())

    return parse


def setting(env: str, default: Any, doc: str, parse: Parser, shown: str | None = None) -> Any:
    """A field read from the variable ``env``; ``doc`` is its line in the reference, ``shown``
    what the reference prints as its default when the value itself would not say it."""
    return field(default=default, metadata={"env": env, "doc": doc, "parse": parse, "shown": shown})
