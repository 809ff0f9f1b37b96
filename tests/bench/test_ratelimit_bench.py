"""python -m bench.ratelimit in its quick mode: the noisy client held to its limit, the quiet
one served in full, the table rendered (the latency figures are the benchmark's to report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.ratelimit import ratelimit_section


@pytest.mark.slow
def test_quick_rate_limit_benchmark_holds_the_noisy_client_to_its_limit(
    model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ratelimit.json"
    command = ["-m", "bench.ratelimit", "--quick", "--model-dir", str(model_dir), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    scenarios, seconds = report["scenarios"], report["seconds"]
    limit = float(report["limits"]["RATE_LIMIT_READINGS"])
    limited, unlimited = scenarios["noisy_limited"], scenarios["noisy_unlimited"]
    # Held to its rate plus one burst (1 s of it) over the run, the rest refused with 429...
    assert limited["noisy_readings_scored_per_s"] <= limit * (1 + 1 / seconds) * 1.05
    assert limited["noisy_refused"] > limited["noisy_scored"]
    # ...and counted by the server under a label that is not the key.
    counted = limited["rate_limited_last_round"]
    assert sum(counted.values()) == pytest.approx(limited["noisy_refused"])
    assert all(name.startswith("key-") for name in counted)
    assert not any("noisy-batch-job" in name for name in counted)
    # Without limits every noisy request is scored: the scenario the limits are for.
    assert unlimited["noisy_refused"] == 0
    assert unlimited["noisy_readings_scored_per_s"] > 2 * limit
    table = "\n".join(ratelimit_section(report))
    assert "beside the noisy client, limits on" in table
