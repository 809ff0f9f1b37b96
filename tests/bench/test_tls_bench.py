"""python -m bench.tls in its quick mode: plain and HTTPS measured in one run, the cost read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.tls import tls_section
from tests.support.tools import require_tool


@pytest.mark.slow
@pytest.mark.system
def test_quick_tls_benchmark_measures_both_and_the_cost(model_dir: Path, tmp_path: Path) -> None:
    require_tool("wrk", "wrk")
    out = tmp_path / "tls.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.tls",
            "--quick",
            "--model-dir",
            str(model_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    plain, tls = report["targets"]["plain"], report["targets"]["tls"]
    for row in (plain, tls):
        assert row["requests_per_s"] > 100
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["server_cpu_us_per_request"] > 0
    cost = report["tls_cost"]
    assert cost["requests_per_s_ratio"] == pytest.approx(
        tls["requests_per_s"] / plain["requests_per_s"], abs=1e-3
    )
    table = "\n".join(tls_section(report))
    assert "this commit, HTTPS" in table
    assert "this commit, plain HTTP" in table
