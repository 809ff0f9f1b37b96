"""onnxruntime's telemetry stays off: no uploader thread, so nothing resolves or calls a
collector from a scorer on a utility's network, unless an operator asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Import the scorer (and with it onnxruntime and numpy), then count this process's threads.
COUNT_THREADS = "import os, app.model.scorer; print(len(os.listdir('/proc/self/task')))"

# onnxruntime keeps quiet on its own where one of these says "a CI job" (names from its
# binary); the scorer runs where none is set, so the children run without them.
CI_MARKERS = {
    "CI",
    "APPVEYOR",
    "BUILDKITE",
    "CIRCLECI",
    "CODEBUILD_BUILD_ID",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "JENKINS_URL",
    "ORT_RUNNING_UNIT_TESTS",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "TEAMCITY_VERSION",
    "TF_BUILD",
    "TRAVIS",
}


def threads_after_import(setting: str | None) -> int:
    dropped = CI_MARKERS | {"ORT_DISABLE_TELEMETRY"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    if setting is not None:
        env["ORT_DISABLE_TELEMETRY"] = setting
    done = subprocess.run(
        [sys.executable, "-c", COUNT_THREADS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout.strip())


def test_onnxruntime_starts_no_telemetry_thread_by_default() -> None:
    off = threads_after_import("1")
    # Left unset, gridscore turns it off before onnxruntime loads: the same threads as off.
    assert threads_after_import(None) == off
    # An operator who opts in gets onnxruntime's uploader: one thread more. This also
    # shows the count would catch the telemetry if it started.
    assert threads_after_import("0") > off
