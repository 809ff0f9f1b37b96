"""The docs stay true: generated parts current, the module map complete, every path named real,
the README short and its example the one the tests use."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app import docgen
from app.config import reference_markdown
from bench import report
from tests.support.examples import EXAMPLE_BATCH, rounded

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOC_DIR = ROOT / "docs"
DOCS = sorted(DOC_DIR.glob("*.md"))
PAGES = [README, *DOCS]


def _tracked(*patterns: str) -> list[str]:
    done = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in done.stdout.split() if (ROOT / name).exists()]


def test_configuration_reference_is_current() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert docgen.section(page, "settings").strip() == reference_markdown().strip(), (
        "docs/configuration.md is stale: run python -m app.docgen"
    )


def test_every_setting_is_in_the_reference() -> None:
    from dataclasses import fields

    from app.config import SECTIONS

    page = (ROOT / "docs" / "configuration.md").read_text()
    for section in SECTIONS.values():
        for field in fields(section):
            variable = field.metadata["env"].replace("|", "\\|")
            assert f"`{variable}`" in page


def test_benchmark_tables_are_rendered_from_the_results() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert docgen.section(page, "bench").strip() == report.render().strip(), (
        "docs/benchmarks.md is stale: run python -m bench.report"
    )
    headline = docgen.section(README.read_text(), "headline")
    assert headline.strip() == report.render_headline().strip()
    deploying = (ROOT / "docs" / "deploying.md").read_text()
    rolling = json.loads((ROOT / "bench" / "results" / "rolling.json").read_text())
    protocols = json.loads((ROOT / "bench" / "results" / "protocols.json").read_text())
    assert (
        docgen.section(deploying, "rolling").strip()
        == "\n".join(report.rolling_section(rolling)).strip()
    ), "docs/deploying.md is stale: run python -m bench.report"
    assert (
        docgen.section(deploying, "capacity").strip()
        == "\n".join(report.capacity_section(protocols)).strip()
    ), "docs/deploying.md is stale: run python -m bench.report"
    stream = json.loads((ROOT / "bench" / "results" / "stream.json").read_text())
    assert (
        docgen.section((ROOT / "docs" / "stream.md").read_text(), "stream").strip()
        == "\n".join(report.stream_section(stream)).strip()
    ), "docs/stream.md is stale: run python -m bench.report"


def test_module_map_lists_every_module_and_nothing_else() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^- `([\w/]+\.py)`: \S", page, re.M))
    modules = set(_tracked("app/*.py", "convert/*.py", "bench/*.py", "ops/*.py", "tests/support"))
    modules = {m for m in modules if m.endswith(".py")}
    assert modules - mapped == set(), "modules missing from docs/architecture.md's map"
    assert mapped - modules == set(), "docs/architecture.md maps modules that do not exist"


PATH = re.compile(r"(?<![\w/.-])((?:app|convert|bench|ops|tests|docs|static|templates)/[\w./-]*\w)")


def test_every_path_the_docs_and_code_name_exists() -> None:
    sources = [*PAGES, *(ROOT / name for name in _tracked("*.py", "*.html", "*.json", "*.yaml"))]
    missing = []
    for source in sources:
        text = source.read_text(errors="ignore")
        for found in PATH.finditer(text):
            name = found.group(1)
            # Relative links inside docs/ point from there.
            candidates = [ROOT / name, source.parent / name]
            if not any(c.exists() for c in candidates):
                missing.append(f"{source.relative_to(ROOT)}: {name}")
    assert missing == []


def test_no_reference_to_the_old_design_document() -> None:
    offenders = [
        name
        for name in _tracked("*.py", "*.md", "*.html", "*.json", "*.yaml", "*.yml", "Makefile")
        if re.search(
            r"DESIGN(_EXAMPLE|\.md| section| example)", (ROOT / name).read_text(errors="ignore")
        )
        and name != "tests/docs/test_docs.py"
    ]
    assert offenders == []


def test_readme_is_short_and_links_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < 150
    for page in DOCS:
        assert f"(docs/{page.name})" in text, f"README does not link docs/{page.name}"


def test_readme_example_is_the_example_the_tests_use() -> None:
    text = README.read_text()
    body = re.search(r"-d '\n(.*?)'\n```", text, re.S)
    assert body is not None
    assert json.loads(body.group(1)) == EXAMPLE_BATCH


@pytest.mark.parametrize("page", [README, DOC_DIR / "api.md"], ids=lambda p: p.name)
def test_example_response_is_what_the_default_model_answers(
    page: Path, client: TestClient[Litestar]
) -> None:
    shown = re.search(r"```json\n(\{\"predictions\".*?)\n```", page.read_text(), re.S)
    assert shown is not None, f"no example response in {page.name}"
    answered = client.post("/predict", json=EXAMPLE_BATCH).json()
    expected = json.loads(shown.group(1))
    assert answered["served_by"]  # the one field that differs from machine to machine
    answered["served_by"] = expected["served_by"]
    assert rounded(answered) == rounded(expected)
