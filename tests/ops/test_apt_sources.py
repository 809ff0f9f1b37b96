"""The image build takes its Debian mirror from the host's apt configuration, never the code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "ops"))
import images  # noqa: E402  (ops/images.py)

DEB822 = """\
Types: deb
# http://snapshot.example.test/archive/debian/20250520T000000Z
URIs: http://mirror.example.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.test/debian-security
Suites: bookworm-security
Components: main
"""


def _apt(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_deb822_sources_give_the_suite_s_mirror(tmp_path: Path) -> None:
    apt = _apt(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert images.debian_mirror("bookworm", apt) == "http://mirror.example.test/debian"


def test_one_line_sources_with_options_and_comments(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        {
            "sources.list": "# deb http://old.example.test/debian bookworm main\n"
            "deb-src http://src.example.test/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] https://company.example.test/debian/ bookworm "
            "main contrib  # our proxy\n",
        },
    )
    assert images.debian_mirror("bookworm", apt) == "https://company.example.test/debian"


def test_files_apt_ignores_and_disabled_entries_are_skipped(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        {
            "sources.list.d/a.list.disabled": "deb http://no.example.test/debian bookworm main\n",
            "sources.list.d/b.sources": "Enabled: no\nTypes: deb\nURIs: http://off.example.test/d\n"
            "Suites: bookworm\nComponents: main\n",
            "sources.list.d/c.sources": "Types: deb\nURIs: http://other.example.test/d\n"
            "Suites: trixie\nComponents: main\n",
            "sources.list.d/z.sources": DEB822,
        },
    )
    assert images.debian_mirror("bookworm", apt) == "http://mirror.example.test/debian"


def test_no_usable_source_is_a_clear_error(tmp_path: Path) -> None:
    apt = _apt(
        tmp_path,
        {
            "sources.list.d/n.sources": "Types: deb\nURIs: cdrom:/media\nSuites: bookworm\n"
            "Components: main\n"
        },
    )
    with pytest.raises(images.ImageError, match="no apt source for Debian bookworm"):
        images.debian_mirror("bookworm", apt)


def test_no_package_source_address_anywhere_in_the_repository() -> None:
    """The build follows the host's package sources: no mirror or registry address is written
    into the repository (the example hosts above end in .test, a reserved name)."""
    tracked = images.subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    address = re.compile(r"https?://[^/\s\"'<>]*(debian|ubuntu|pypi|pythonhosted|npmjs)", re.I)
    offenders = [
        f"{name}: {found.group(0)}"
        for name in tracked
        if (ROOT / name).is_file() and not name.endswith((".png", ".svg"))
        for found in address.finditer((ROOT / name).read_text(errors="ignore"))
    ]
    assert offenders == []
