"""The protocol benchmark's quick mode, end to end: every format at every batch size, no
errors, the same scores in every format, and a decode share per format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import require_tool


@pytest.mark.slow
@pytest.mark.system
def test_quick_protocol_benchmark_reports_every_cell(model_dir: Path, tmp_path: Path) -> None:
    require_tool("wrk", "wrk")
    out = tmp_path / "protocols.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.protocols", "--quick", "--model-dir", str(model_dir),
         "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    cells = {(row["protocol"], row["batch"]) for row in report["table"]}
    assert cells == {
        (protocol, batch)
        for protocol in ("predict", "v2-json", "v2-binary")
        for batch in (1, 100, 1_000, 10_000)
    }
    assert all(row["errors"] == 0 and row["requests_per_s"] > 0 for row in report["table"])
    assert all(report["same_scores"].values())
    binary = next(
        r for r in report["table"] if r["protocol"] == "v2-binary" and r["batch"] == 10_000
    )
    assert binary["body_bytes"] < 10_000 * 3 * 4 + 1_000  # the floats, and a short JSON part
    for figures in report["decode_10000"].values():
        assert 0 <= figures["decode_share"] < 1
    assert (
        report["decode_10000"]["v2-binary"]["decode_ms"]
        < report["decode_10000"]["v2-json"]["decode_ms"]
        < report["decode_10000"]["predict"]["decode_ms"]
    )
