"""The configuration reference (docs/configuration.md, written by ``python -m app.docgen``):
one table per group of settings, from the fields' own declarations."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from app.config.settings import SECTIONS


def _shown_default(f: Any) -> str:
    if f.metadata["shown"] is not None:
        return str(f.metadata["shown"])
    value = f.default
    if value is MISSING or value in ("", (), None):
        return ""
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def reference_markdown() -> str:
    """The configuration reference: one table per section, from the field declarations."""
    lines: list[str] = []
    for name, section in SECTIONS.items():
        summary = (section.__doc__ or "").strip()
        lines += [
            f"### {name}",
            "",
            summary,
            "",
            "| variable | default | meaning |",
            "|---|---|---|",
        ]
        for f in fields(section):
            env = f.metadata["env"].replace("|", "\\|")
            lines.append(f"| `{env}` | {_shown_default(f)} | {f.metadata['doc']} |")
        lines.append("")
    return "\n".join(lines)
