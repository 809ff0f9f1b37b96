"""Both images build with podman from a local base; the containers run as promised."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.examples import EXAMPLE_BATCH
from tests.support.servers import free_port
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "ops"))
import images  # noqa: E402  (ops/images.py, the build script the README documents)

pytestmark = [pytest.mark.system, pytest.mark.slow]
HARDENED = [
    "--read-only",
    "--tmpfs",
    "/tmp:size=64m",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "host",
    *images.ULIMITS,
]


def _podman(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*images.PODMAN, *argv], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def fresh_base() -> Iterator[str]:
    """The base image made from nothing, under a tag no machine has yet.

    Creating the base only happens where it does not exist, so a machine that built it once
    would never run that path again; a fresh tag runs it on every machine, every time. Where
    the shared base is missing (a new machine), the fresh one becomes it: one debootstrap.
    """
    require_tool("podman", "podman")
    require_tool("debootstrap", "debootstrap")
    tag = f"localhost/gridscore-base:test-{uuid.uuid4().hex[:12]}"
    images.make_base(tag)
    try:
        if not images.exists(images.BASE):
            assert _podman("tag", tag, images.BASE).returncode == 0
        yield tag
    finally:
        _podman("rmi", tag)  # only the test tag: the image stays if BASE names it too


def test_fresh_base_has_a_python_that_makes_venvs(fresh_base: str) -> None:
    done = _podman(
        "run",
        "--rm",
        *images.ULIMITS,
        "--network",
        "none",
        fresh_base,
        "sh",
        "-c",
        "python3 -m venv /tmp/v && /tmp/v/bin/python -c 'import ssl, sqlite3; print(\"ok\")'",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.fixture(scope="module")
def built(fresh_base: str) -> dict[str, int]:
    images.build(list(images.IMAGES))
    return images.sizes()


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


@pytest.fixture
def container() -> Iterator[object]:
    started: list[str] = []

    def run(image: str, *args: str, env: dict[str, str]) -> str:
        flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        done = subprocess.run(
            [*images.PODMAN, "run", "-d", "--rm", *HARDENED, *flags, image, *args],
            capture_output=True,
            text=True,
            check=True,
        )
        started.append(done.stdout.strip())
        return started[-1]

    yield run
    for name in started:
        subprocess.run(
            [*images.PODMAN, "rm", "-f", "-t", "5", name], capture_output=True, check=False
        )


def _exec(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*images.PODMAN, "exec", name, *argv], capture_output=True, text=True, check=False
    )


def test_scorer_runs_hardened_and_has_no_sklearn(built: dict[str, int], container) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    name = container(images.IMAGES["scorer"][0], "api", env={"PORT": str(port), "WORKERS": "2"})
    _wait(f"http://127.0.0.1:{port}/health")
    health = httpx.get(f"http://127.0.0.1:{port}/health").json()
    assert health["status"] == "ok"
    predict = httpx.post(f"http://127.0.0.1:{port}/predict", json=EXAMPLE_BATCH)
    assert predict.status_code == 200
    assert [p["anomaly"] for p in predict.json()["predictions"]] == [False, True]
    assert _exec(name, "id", "-u").stdout.strip() == "10001"
    no_sklearn = _exec(name, "python3", "-c", "import sklearn")
    assert no_sklearn.returncode != 0
    assert "No module named 'sklearn'" in no_sklearn.stderr
    read_only = _exec(name, "touch", "/srv/written")
    assert read_only.returncode != 0
    assert "Read-only file system" in read_only.stderr
    assert built["scorer"] > 0


def test_dashboard_serves_its_page_against_the_scorer(built: dict[str, int], container) -> None:  # type: ignore[no-untyped-def]
    scorer_port, ui_port = free_port(), free_port()
    container(images.IMAGES["scorer"][0], "api", env={"PORT": str(scorer_port)})
    _wait(f"http://127.0.0.1:{scorer_port}/health")
    name = container(
        images.IMAGES["dashboard"][0],
        "dashboard",
        env={"PORT": str(ui_port), "BACKEND_URL": f"http://127.0.0.1:{scorer_port}"},
    )
    _wait(f"http://127.0.0.1:{ui_port}/health")
    page = httpx.get(f"http://127.0.0.1:{ui_port}/")
    assert page.status_code == 200
    assert "gridscore dashboard" in page.text
    status = httpx.get(f"http://127.0.0.1:{ui_port}/dashboard/status")
    assert "scorer ready" in status.text
    no_onnx = _exec(name, "python3", "-c", "import onnxruntime")
    assert no_onnx.returncode != 0
    assert _exec(name, "id", "-u").stdout.strip() == "10001"
    print(f"image sizes (MiB): { {k: round(v / 2**20) for k, v in built.items()} }")


def _lock_pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / "ops" / "locks" / f"{name}.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")) and "==" in line:
            package, version = line.split(" ", 1)[0].split("==")
            pins[package.lower()] = version
    return pins


@pytest.mark.parametrize("name", list(images.IMAGES))
def test_each_image_carries_a_valid_sbom_and_oci_labels(built: dict[str, int], name: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    tag = images.IMAGES[name][0]
    done = _podman("run", "--rm", *images.ULIMITS, "--entrypoint", "cat", tag, images.SBOM_PATH)
    assert done.returncode == 0, done.stderr
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(done.stdout)
    assert errors is None, f"{name}: not valid CycloneDX 1.5: {errors}"
    bom = json.loads(done.stdout)
    purls = {c["purl"] for c in bom["components"]}
    # Every package of the image's lock, at its locked version (the images built from locks).
    lock = {"scorer": "scorer", "dashboard": "dashboard", "nats": "nats"}.get(name)
    if lock:
        missing = {
            f"{p}=={v}" for p, v in _lock_pins(lock).items() if f"pkg:pypi/{p}@{v}" not in purls
        }
        assert missing == set(), f"{name}: SBOM lacks {sorted(missing)}"
    debian = {c["name"] for c in bom["components"] if c["purl"].startswith("pkg:deb/debian/")}
    assert {"libc6", "base-files"} <= debian
    if name == "prometheus":
        assert "prometheus" in debian
    # The same SBOM is written beside the images (make sbom).
    assert json.loads((ROOT / "sbom" / f"{name}.cdx.json").read_text())["components"]
    labels = json.loads(_podman("image", "inspect", tag).stdout)[0]["Labels"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == head
    assert labels["org.opencontainers.image.created"].startswith("20")
    assert labels["org.opencontainers.image.source"]
