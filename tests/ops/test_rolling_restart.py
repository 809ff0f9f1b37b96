"""A rolling restart and a SIGKILL behind a real load balancer (HAProxy, health-checking
/health as a Kubernetes Service follows readiness), under a steady open-loop load: nothing
lost in the roll; in the kill, no more than one instance can hold in flight, retried by the
balancer's policy (bench/rolling.py states it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import rolling
from tests.support.tools import require_tool

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("haproxy", "haproxy")
    return tmp_path_factory.mktemp("rolling")


def _replaced(load: dict[str, Any]) -> dict[str, int]:
    """Per instance name, how many processes (pids) answered under it."""
    names: dict[str, int] = {}
    for served_by in load["served_by"]:
        name = served_by.rsplit(":", 1)[0]
        names[name] = names.get(name, 0) + 1
    return names


def test_rolling_restart_under_load_loses_nothing(model_dir: Path, workdir: Path) -> None:
    report = rolling.roll(model_dir, workdir)
    load = report["load"]
    print("roll:", report)
    assert load["sent"] > 3_000
    assert load["failed"] == 0, load
    assert set(load["by_status"]) == {"200"}
    # Every instance was replaced, and both the old and the new process answered.
    assert _replaced(load) == {f"scorer-{i}": 2 for i in range(rolling.INSTANCES)}
    for step in report["steps"]:
        # The balancer takes the instance out before its drain ends and its listener closes.
        assert step["out_of_rotation_s"] < rolling.DRAIN_SECONDS, step
        assert step["exited_s"] >= rolling.DRAIN_SECONDS


def test_sigkill_loses_at_most_what_was_in_flight(model_dir: Path, workdir: Path) -> None:
    report = rolling.kill(model_dir, workdir)
    load = report["load"]
    print("kill:", report)
    assert load["sent"] > 1_500
    assert load["failed"] <= report["bound"], load
    assert set(load["by_status"]) <= {"200", "502", "503", "504"}
    # Requests sent to the dead instance before the checks caught it went elsewhere.
    assert report["balancer"]["redispatches"] > 0
    assert _replaced(load)["scorer-0"] == 2  # killed, started again, serving again
