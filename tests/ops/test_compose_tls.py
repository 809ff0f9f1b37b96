"""ops/compose.yaml with ops/compose.tls.yaml brought up for real, as docs/deploying.md says:
certificates made by the test (a CA and a pair for each service), every process on HTTPS only,
the dashboard verifying the scorers against the CA, Prometheus scraping them over HTTPS."""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.ops.test_compose_up import (
    ROOT,
    _wait,
    compose_runner,
    documented_compose,
    images,
)
from tests.support.servers import free_port
from tests.support.tools import require_tool

pytestmark = [pytest.mark.system, pytest.mark.slow]

PROJECT = "gridscore-compose-tls-test"
TLS_FILE = ["-f", "ops/compose.tls.yaml"]


def _certificates(folder: Path) -> trustme.CA:
    """``ca.crt`` and a pair for each service under the names others reach it by; readable by
    the images' user (uid 10001), as the file's comment asks."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.crt"))
    names = {
        "scorer": ["scorer"],
        "dashboard": ["localhost", "127.0.0.1"],
        "stream": ["stream"],
    }
    for service, hosts in names.items():
        leaf = ca.issue_cert(*hosts)
        (folder / f"{service}.crt").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(folder / f"{service}.key"))
    for path in folder.iterdir():
        path.chmod(0o644)
    folder.chmod(0o755)
    return ca


def _with_tls(argv: list[str]) -> list[str]:
    """The documented command with the TLS file after compose.yaml's."""
    at = argv.index("ops/compose.yaml") + 1
    return [*argv[:at], *TLS_FILE, *argv[at:]]


@pytest.fixture(scope="module")
def tls_stack() -> Iterator[dict[str, Any]]:
    require_tool("podman", "podman")
    require_tool("debootstrap", "debootstrap")
    up = documented_compose("up")
    if not (ROOT / up[0]).exists():
        pytest.fail(f"{up[0]} is missing: make ops-tools (or make test) installs it")
    images.make_base()
    images.build(["scorer", "dashboard", "prometheus", "nats"])
    with tempfile.TemporaryDirectory(prefix="gridscore-compose-tls-") as tmp:
        folder = Path(tmp)
        ca = _certificates(folder)
        ports = {
            name: str(free_port())
            for name in ("DASHBOARD_PORT", "PROMETHEUS_PORT", "NATS_PORT", "MQTT_PORT")
        }
        run = compose_runner(PROJECT, {**os.environ, **ports, "TLS_DIR": str(folder)})
        wipe = [*_with_tls(documented_compose("down")), "-t", "10", "-v"]
        run(wipe, check=False)
        try:
            run(_with_tls(up))
            yield {
                "dashboard": f"https://127.0.0.1:{ports['DASHBOARD_PORT']}",
                "plain_dashboard": f"http://127.0.0.1:{ports['DASHBOARD_PORT']}",
                "prometheus": f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}",
                "ca": ca,
            }
        finally:
            run(wipe, check=False)


def test_the_dashboard_serves_https_and_reaches_the_scorers_over_https(
    tls_stack: dict[str, Any],
) -> None:
    verify = ssl.create_default_context()
    tls_stack["ca"].configure_trust(verify)
    dashboard = tls_stack["dashboard"]
    with httpx.Client(base_url=dashboard, timeout=5, verify=verify) as browser:
        _wait(lambda: browser.get("/").status_code == 200, "dashboard up over HTTPS")
        # Its status panel asks a scorer at https://scorer:8000, verified against ca.crt.
        _wait(
            lambda: 'id="backend-ok"' in browser.get("/dashboard/status").text,
            "the dashboard reaching a scorer over HTTPS",
        )
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{tls_stack['plain_dashboard']}/health", timeout=5)  # nothing in clear


def test_prometheus_scrapes_the_scorers_and_the_worker_over_https(
    tls_stack: dict[str, Any],
) -> None:
    prometheus = tls_stack["prometheus"]

    def targets() -> list[dict[str, Any]] | None:
        active = httpx.get(f"{prometheus}/api/v1/targets", timeout=2).json()["data"]
        wanted = [
            t
            for t in active["activeTargets"]
            if t["labels"]["job"] in ("gridscore", "gridscore-stream")
        ]
        healthy = [t for t in wanted if t["health"] == "up"]
        return healthy if len(healthy) == 3 else None

    up = _wait(targets, "two scorers and the stream worker scraped over HTTPS")
    assert all(t["scrapeUrl"].startswith("https://") for t in up)
