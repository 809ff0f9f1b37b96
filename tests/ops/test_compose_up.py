"""ops/compose.yaml brought up for real with the commands docs/deploying.md gives (podman and
podman-compose): two scorer replicas, the dashboard reaching them by service name, Prometheus
scraping each with the project's rules. A burst from the dashboard is served by every replica,
the rules evaluate, and ``down`` leaves nothing running."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from tests.support.servers import free_port
from tests.support.stream import wait_for_verdicts
from tests.support.tools import require_tool

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "ops"))
import images  # noqa: E402  (ops/images.py, the build script the README documents)

PROJECT = "gridscore-compose-test"


def documented_compose(subcommand: str) -> list[str]:
    """The Compose command docs/deploying.md gives for ``subcommand`` (``up`` or ``down``), as
    argv: the test runs what a user pastes, not a command of its own."""
    text = (ROOT / "docs" / "deploying.md").read_text()
    section = text.split("## Compose", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv and argv[0].endswith("podman-compose") and subcommand in argv:
            return argv
    raise AssertionError(f"docs/deploying.md gives no podman-compose {subcommand} command")


def compose_runner(
    project: str, env: dict[str, str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs a documented podman-compose command under ``project`` with ``env``; raises with
    its output when it fails, unless ``check=False``."""

    def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(ROOT / argv[0]), "-p", project, *argv[1:]]
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=600, check=False, cwd=ROOT
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv}: {done.stdout}\n{done.stderr}")
        return done

    return run


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    require_tool("podman", "podman")
    require_tool("debootstrap", "debootstrap")
    up = documented_compose("up")
    if not (ROOT / up[0]).exists():
        pytest.fail(f"{up[0]} is missing: make ops-tools (or make test) installs it")
    images.make_base()  # python3 ops/images.py all, as the docs say
    images.build(["scorer", "dashboard", "prometheus", "nats"])
    # The two host ports are the documented variables; the project name keeps a stack of the
    # user's own out of the test's way. Nothing else: no containers.conf, no limits of its own.
    ports = {
        name: str(free_port())
        for name in ("DASHBOARD_PORT", "PROMETHEUS_PORT", "NATS_PORT", "MQTT_PORT")
    }
    run = compose_runner(PROJECT, {**os.environ, **ports})
    down = [*documented_compose("down"), "-t", "10"]
    wipe = [*down, "-v"]  # the test's own clean-up also removes the broker's volume
    run(wipe, check=False)  # a stack left by an interrupted run
    try:
        run(up)
        yield {
            "dashboard": f"http://127.0.0.1:{ports['DASHBOARD_PORT']}",
            "prometheus": f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}",
            "nats": f"nats://127.0.0.1:{ports['NATS_PORT']}",
            "down": lambda: run(down),
        }
    finally:
        run(wipe, check=False)


def _wait(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.TransportError as exc:
            last = exc
        time.sleep(1.0)
    raise TimeoutError(f"{what}: {last}")


def _running() -> list[str]:
    done = subprocess.run(
        [*images.PODMAN, "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
         "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.split()


def test_burst_from_the_dashboard_reaches_every_replica(stack: dict[str, Any]) -> None:
    dashboard = stack["dashboard"]
    _wait(lambda: httpx.get(f"{dashboard}/", timeout=2).status_code == 200, "dashboard up")
    with httpx.Client(base_url=dashboard, timeout=10) as browser:
        page = browser.get("/")
        token = page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]
        # Readiness first: the dashboard's status reaches a scorer through the service name.
        _wait(
            lambda: 'id="backend-ok"' in browser.get("/dashboard/status").text,
            "the dashboard reaching a scorer through the service name",
        )
        started = browser.post(
            "/dashboard/bursts/concurrent",
            data={"requests": "300", "concurrency": "8", "batch": "10", "new_connection": "1"},
            headers={"x-csrftoken": token},
        )
        assert started.status_code == 200, started.text
        fragment = _wait(
            lambda: (
                (text := browser.get("/dashboard/bursts/current").text)
                and 'data-state="done"' in text
                and text
            ),
            "burst done",
        )
    assert '<dd id="burst-errors">0</dd>' in fragment
    served = set(re.findall(r'data-instance="([^"]+)"', fragment))
    hosts = {name.rsplit(":", 1)[0] for name in served}
    assert len(hosts) == 2, served  # both replicas (their container hostnames) answered


def test_prometheus_scrapes_every_replica_and_its_rules_evaluate(stack: dict[str, Any]) -> None:
    prometheus = stack["prometheus"]

    def targets() -> list[dict[str, Any]] | None:
        active = httpx.get(f"{prometheus}/api/v1/targets", timeout=2).json()["data"]
        up = [t for t in active["activeTargets"] if t["labels"]["job"] == "gridscore"]
        return up if len(up) == 2 and all(t["health"] == "up" for t in up) else None

    up = _wait(targets, "two scorer targets up")
    assert len({t["labels"]["instance"] for t in up}) == 2

    def rules() -> list[dict[str, Any]] | None:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=2).json()["data"]["groups"]
        evaluated = [r for g in groups for r in g["rules"]]
        done = all(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20")
                   for r in evaluated)  # fmt: skip
        return evaluated if evaluated and done else None

    evaluated = _wait(rules, "every rule evaluated without error")
    assert any(r["type"] == "recording" for r in evaluated)
    assert any(r["type"] == "alerting" for r in evaluated)

    def training_shares() -> list[Any] | None:
        query = {"query": "gridscore:drift_training_share:max"}
        found = httpx.get(f"{prometheus}/api/v1/query", params=query, timeout=2).json()
        return found["data"]["result"] or None

    assert _wait(training_shares, "a recorded series from the scorers' metrics")


def test_the_stream_worker_scores_readings_published_to_the_stacks_broker(
    stack: dict[str, Any],
) -> None:
    async def publish_and_collect() -> list[Any]:
        deadline = time.monotonic() + 120
        while True:  # the worker creates the streams once it is up
            try:
                nc = await nats.connect(stack["nats"], connect_timeout=2)
                js = nc.jetstream(timeout=5)
                await js.stream_info("GRID")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
        for i in range(20):
            reading = {"voltage": 230.0 + i % 3, "current": 10.0, "frequency": 50.0}
            await js.publish("grid.readings.compose.pmu1", json.dumps(reading).encode())
        verdicts = await wait_for_verdicts(js, 20, timeout=60)
        await nc.close()
        return verdicts

    verdicts = asyncio.run(publish_and_collect())
    assert {v.sensor for v in verdicts} == {"compose.pmu1"}


def test_down_leaves_nothing_running(stack: dict[str, Any]) -> None:
    # Two scorers, the dashboard, Prometheus, NATS, the stream worker.
    assert len(_running()) == 6
    stack["down"]()
    assert _running() == []
