"""Soak: a fixed rate near 70 % of measured capacity for 60 s; p99 over time, memory growth.

    python -m bench.soak              # writes bench/results/soak.json
    python -m bench.soak --quick      # 10 s, for a smoke run

Starts ``gridscore api`` with 2 workers, measures its capacity with a short closed-loop run
(16 connections, batch 10), then drives it open-loop at 70 % of that for the soak duration.
Latency counts from each request's due time; p99 is reported per 5-second window; resident
memory of each worker is read before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.dashboard.loadrun import LoadSpec, percentile, run
from bench import procs, serving

RESULTS = Path(__file__).parent / "results"
WINDOW_S = 5.0


def windows(finished: list[float], latencies: list[float], start: float) -> list[dict[str, Any]]:
    buckets: dict[int, list[float]] = {}
    for done, latency in zip(finished, latencies, strict=True):
        buckets.setdefault(int((done - start) // WINDOW_S), []).append(latency * 1000)
    return [
        {
            "from_s": index * WINDOW_S,
            "requests": len(values),
            "p50_ms": round(percentile(sorted(values), 50), 3),
            "p99_ms": round(percentile(sorted(values), 99), 3),
        }
        for index, values in sorted(buckets.items())
    ]


def soak_once(model_dir: Path, duration: float, baseline: Path | None) -> dict[str, Any]:
    """One soak on a fresh server: capacity, then 70 % of it, per-window p99, memory."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving.gridscore_serve(
            model_dir,
            Path(tmp),
            command="api",
            source=baseline,
            WORKERS="2",
            LOG_LEVEL="warning",
        ) as server,
    ):
        url = f"{server.url}/predict"
        capacity = run(LoadSpec(url, batch=10, connections=16, duration=3.0)).summary()
        rate = round(0.7 * capacity["requests_per_s"], 1)
        workers = procs.worker_pids(server.process.pid)
        before = {pid: procs.memory_mib(pid)["rss_mib"] for pid in workers}
        soak = run(
            LoadSpec(url, batch=10, connections=64, rate=rate, duration=duration, bodies=256)
        )
        after = {pid: procs.memory_mib(pid)["rss_mib"] for pid in workers}
    start = min(soak.finished) if soak.finished else 0.0
    # The last, partial window holds only the stragglers: left out.
    kept = [
        w
        for w in windows(soak.finished, soak.latencies, start)
        if w["from_s"] + WINDOW_S <= duration
    ]
    return {
        "capacity_requests_per_s": capacity["requests_per_s"],
        "rate_requests_per_s": rate,
        "summary": soak.summary(),
        "windows": kept,
        "worst_window_p99_ms": max((w["p99_ms"] for w in kept), default=float("nan")),
        "rss_mib_before": list(before.values()),
        "rss_mib_after": list(after.values()),
        "rss_growth_mib": [round(after[p] - before[p], 1) for p in workers],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models"))
    )
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    parser.add_argument(
        "--baseline", type=Path, help="soak another checkout of gridscore instead (before/after)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="soaks, each on a fresh server (default 3)"
    )
    args = parser.parse_args(argv)
    duration = 10.0 if args.quick else args.duration
    runs = [
        soak_once(args.model_dir, duration, args.baseline)
        for _ in range(1 if args.quick else args.runs)
    ]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "command": "python -m bench.soak"
        + (" --quick" if args.quick else "")
        + (" --baseline <checkout>" if args.baseline else ""),
        "batch": 10,
        "duration_s": duration,
        "runs": runs,
        # The run whose overall p99 is the median: its windows are the ones shown.
        **sorted(runs, key=lambda r: r["summary"]["p99_ms"])[len(runs) // 2],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for one in runs:
        summary = one["summary"]
        print(
            f"capacity {one['capacity_requests_per_s']:.0f} req/s (batch 10); soak at "
            f"{one['rate_requests_per_s']:.0f} req/s for {duration:.0f} s: "
            f"{summary['requests']} requests, {summary['ok']} ok, p50 {summary['p50_ms']:.2f} ms, "
            f"p99 {summary['p99_ms']:.2f} ms, worst 5 s window p99 "
            f"{one['worst_window_p99_ms']:.2f} ms, RSS growth {one['rss_growth_mib']} MiB"
        )
    print("the median run's windows:")
    for window in report["windows"]:
        print(
            f"  {window['from_s']:>5.0f} s: {window['requests']:>6} requests, "
            f"p99 {window['p99_ms']:.2f} ms"
        )
    print(f"  RSS per worker {report['rss_mib_before']} -> {report['rss_mib_after']} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
