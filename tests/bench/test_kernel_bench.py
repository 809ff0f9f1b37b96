"""The kernel benchmark's quick mode: the promised fields, and parity for every backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import kernel


@pytest.mark.slow
def test_quick_kernel_benchmark_writes_json_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "kernel.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.kernel", "--quick", "--batches", "1,100", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert {"date", "machine", "versions", "command", "backends"} <= set(report)
    assert {"guard_overhead", "attribution_overhead"} <= set(report)
    names = [b["backend"] for b in report["backends"]]
    assert names == [
        "sklearn",
        "onnx-stock",
        "onnx-gridscore",
        "onnx-gridscore-guarded",
        "onnx-gridscore-served",
        "onnx-gridscore-served-sorted",
        "onnx-gridscore-flagged",
    ]
    for backend in report["backends"]:
        assert backend["parity"]["holds"], backend
        for timing in backend["timings"]:
            assert timing["batch"] in (1, 100)
            assert timing["calls"] >= 5
            assert 0 < timing["median_us"] <= timing["p99_us"]
            assert timing["rows_per_s"] > 0
            assert timing["speedup_vs_sklearn"] > 0
    assert "median us" in done.stdout
    svg = out.with_suffix(".svg").read_text()
    assert svg.startswith("<svg")
    assert svg.count("<polyline") == 7
    for name, base, variant in (
        ("guard", "onnx-gridscore", "onnx-gridscore-guarded"),
        ("attribution", "onnx-gridscore-guarded", "onnx-gridscore-served"),
        ("sorted", "onnx-gridscore-served", "onnx-gridscore-served-sorted"),
        ("flagged", "onnx-gridscore-served", "onnx-gridscore-flagged"),
    ):
        for batch in ("1", "100"):
            pair = report[f"{name}_pair"][batch]
            assert (pair["base"], pair["variant"]) == (base, variant)
            assert pair["pairs"] >= 5
            assert pair["base_median_us"] > 0
            assert pair["variant_median_us"] > 0
            assert report[f"{name}_overhead"][batch] == pair["overhead"]


def test_input_pool_gives_distinct_batches() -> None:
    pool = kernel.input_pool(1)
    assert pool.shape[1:] == (1, 3)
    assert len(pool) >= 1000
    assert len({row.tobytes() for row in pool[:1000]}) == 1000  # no repeated rows to memorise
