"""python -m bench.ab: two checkouts measured in the same rounds, the section rendered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.ab import ab_section
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.system
def test_the_same_checkout_twice_is_measured_in_turn_and_rendered(tmp_path: Path) -> None:
    require_tool("wrk", "wrk")
    out = tmp_path / "ab-same.json"
    command = [sys.executable, "-m", "bench.ab", str(ROOT), str(ROOT), "--title", "Same twice"]
    command += ["--batches", "1", "100", "--rounds", "2", "--seconds", "1", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["before"] == report["after"]
    for batch in ("1", "100"):
        row = report["batches"][batch]
        assert row["before_requests_per_s"] > 0
        assert row["after_requests_per_s"] > 0
        assert len(row["ratio_rounds"]) == 2
        assert row["ratio"] == pytest.approx(
            row["after_requests_per_s"] / row["before_requests_per_s"], abs=1e-3
        )
    table = "\n".join(ab_section(report))
    assert table.startswith("### Same twice")
    assert "| 100 |" in table


def test_a_folder_that_is_no_checkout_is_refused_with_status_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ab", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "is not a checkout of gridscore" in done.stderr
    assert "Traceback" not in done.stderr
