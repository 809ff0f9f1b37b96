"""Lock files with hashes, installed with hash checking everywhere (issue 26's supply chain):
the project's environment, the ops tools' and every image's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_LOCK = ROOT / "requirements.lock"
PIP_LOCK = ROOT / "ops" / "locks" / "pip.lock"  # pip itself, installed first
IMAGE_LOCKS = sorted(p for p in (ROOT / "ops" / "locks").glob("*.lock") if p != PIP_LOCK)
LOCKS = [PROJECT_LOCK, ROOT / "ops" / "requirements-tools.lock", PIP_LOCK, *IMAGE_LOCKS]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """Each package of a lock: its version and how many sha256 hashes it carries."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            name = match.group(1).lower()
            found[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"{lock.name}: a requirement not pinned with ==: {line}")
    return found


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_package_of_a_lock_is_pinned_with_hashes(lock: Path) -> None:
    found = pins(lock)
    assert found, f"{lock} pins nothing"
    unhashed = sorted(name for name, (_, hashes) in found.items() if hashes == 0)
    assert unhashed == [], f"{lock.name}: no hash for {unhashed}"


def test_the_images_install_the_projects_versions() -> None:
    assert {p.stem for p in IMAGE_LOCKS} == {"train", "scorer", "dashboard", "nats"}
    project = pins(PROJECT_LOCK)
    for lock in IMAGE_LOCKS:
        for name, (version, _) in pins(lock).items():
            assert name in project, f"{lock.name}: {name} is not in requirements.lock"
            assert project[name][0] == version, (
                f"{lock.name}: {name} {version} != {project[name][0]}"
            )


def test_every_install_checks_the_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for lock in ("ops/locks/pip.lock", "requirements.lock", "ops/requirements-tools.lock"):
        pattern = rf"pip install [^\n]*--require-hashes [^\n]*-r {re.escape(lock)}"
        assert re.search(pattern, makefile), lock
    assert "--upgrade pip" not in makefile  # an unpinned pip would be the one unchecked install
    for dockerfile in sorted((ROOT / "ops").glob("Dockerfile.*")):
        text = dockerfile.read_text()
        installs = re.findall(r"pip install[^\n]*(?:\\\n[^\n]*)*", text)
        for install in installs:
            assert "--require-hashes" in install, f"{dockerfile.name}: {install}"
            assert re.search(r"-r \S*\w+\.lock", install), install
        assert "-c requirements.lock" not in text, dockerfile.name


def _tiny_lock(tmp_path: Path, tamper: bool) -> Path:
    """idna alone, as requirements.lock pins and hashes it (optionally one hash altered)."""
    text = PROJECT_LOCK.read_text()
    block = re.search(r"^idna==.*?(?=^\S)", text, re.M | re.S)
    assert block is not None
    entry = block.group(0)
    if tamper:
        entry = re.sub(
            r"sha256:([0-9a-f])", lambda m: "sha256:" + ("0" if m.group(1) != "0" else "1"), entry
        )
    lock = tmp_path / ("tampered.lock" if tamper else "idna.lock")
    lock.write_text(entry)
    return lock


@pytest.mark.slow
def test_an_install_with_a_tampered_hash_fails(tmp_path: Path) -> None:
    def download(lock: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
                "--only-binary", ":all:", "-r", str(lock), "-d", str(tmp_path / lock.stem),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )  # fmt: skip

    good = download(_tiny_lock(tmp_path, tamper=False))
    assert good.returncode == 0, good.stderr
    bad = download(_tiny_lock(tmp_path, tamper=True))
    assert bad.returncode != 0
    assert "DO NOT MATCH THE HASHES" in bad.stderr
    assert not list((tmp_path / "tampered").glob("*.whl"))
