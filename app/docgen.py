"""The generated parts of the docs, written between markers so the prose around them stays.

    python -m app.docgen      # rewrite docs/configuration.md's reference from app.config

A generated part sits between ``<!-- generated:NAME start -->`` and
``<!-- generated:NAME end -->``; ``python -m bench.report`` fills the benchmark parts the same
way. Tests render each part again and fail when a page on disk differs (a stale page).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- generated:{name} start -->", f"<!-- generated:{name} end -->"


def section(text: str, name: str) -> str:
    """What lies between the markers of ``name`` in ``text`` (ValueError if they are missing)."""
    start, end = markers(name)
    if start not in text or end not in text:
        raise ValueError(f"no {start} ... {end} in the page")
    return text[text.index(start) + len(start) : text.index(end)]


def replace(path: Path, name: str, body: str) -> bool:
    """Put ``body`` between the markers of ``name`` in the file ``path``; True if it changed."""
    text = path.read_text()
    start, _ = markers(name)
    old = section(text, name)
    new = "\n" + body.strip("\n") + "\n"
    head = text.index(start) + len(start)
    path.write_text(text[:head] + new + text[head + len(old) :])
    return new != old


def main() -> int:
    from app.config import reference_markdown

    changed = replace(CONFIGURATION, "settings", reference_markdown())
    print(f"{CONFIGURATION.relative_to(ROOT)}: {'rewritten' if changed else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
