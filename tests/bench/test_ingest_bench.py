"""The large-export benchmark runs end to end at a small size and reports every figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import ingest

pytestmark = pytest.mark.slow


def test_small_ingest_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    argv = ["--rows", "30000", "--small-rows", "10000", "--parity-points", "1000"]
    assert ingest.main([*argv, "--workdir", str(tmp_path), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    runs = report["runs"]
    assert [(r["format"], r["rows"]) for r in runs] == [
        ("csv", 10_000),
        ("parquet", 10_000),
        ("csv", 30_000),
        ("parquet", 30_000),
    ]
    for run in runs:
        assert run["ingest_rows_per_s"] > 0
        assert 50 < run["peak_rss_mib"] < 4096
        assert {"data", "train", "compile", "verify", "calibrate", "publish"} <= set(run["seconds"])
    assert list(tmp_path.glob("feeder-*")) == []  # the exports are removed as it goes
