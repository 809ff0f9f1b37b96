"""Service benchmark: cold start, single-connection latency, throughput, memory per worker.

Starts ``gridscore api`` (artifact present) as a fresh process for each measurement, on
127.0.0.1, and drives it with bench.loadgen. Writes bench/results/service.json.

    python -m bench.service            # full run (~2 minutes)
    python -m bench.service --quick    # smoke run for the tests (~20 s)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import loadgen, procs, serving

RESULTS = Path(__file__).parent / "results"


@contextmanager
def server(
    model_dir: Path, workers: int, command: list[str] | None = None, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], int, float]]:
    """A running server; yields (process, port, seconds from spawn to the first 200 /health)."""
    with tempfile.TemporaryDirectory(prefix="gridscore-bench-") as tmp:
        if command is None:
            # `gridscore api`: the scorer as deployed (the dashboard runs in its own process).
            with serving.gridscore_serve(
                model_dir,
                Path(tmp),
                command="api",
                WORKERS=str(workers),
                LOG_LEVEL="warning",
                **env,
            ) as running:
                yield running.process, running.port, running.ready_s
            return
        # A raw uvicorn command needs the port and a metrics folder spelled out.
        port = serving.free_port()
        environment = {
            **os.environ,
            "MODEL_DIR": str(model_dir),
            "PROMETHEUS_MULTIPROC_DIR": tmp,
            "LOG_LEVEL": "warning",
            **env,
        }
        environment.pop("WORKERS", None)
        with serving.run_server(
            [*command, "--port", str(port)], environment, port, Path(tmp)
        ) as running:
            yield running.process, running.port, running.ready_s


def cold_start(model_dir: Path, workers: int, runs: int) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        with server(model_dir, workers) as (_, _, ready):
            times.append(ready)
    return {
        "workers": workers,
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }


def single_connection(port: int, requests: int, batch: int = 1) -> dict[str, Any]:
    spec = loadgen.LoadSpec(
        f"http://127.0.0.1:{port}/predict", batch=batch, requests=requests, duration=60
    )
    return loadgen.run(spec).summary()


def nagle_comparison(model_dir: Path, requests: int) -> dict[str, Any]:
    """uvicorn --workers 2 on the plain asyncio loop, stock protocol vs gridscore's."""
    base = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.factory:create_served_app",
        "--factory",
        "--workers",
        "2",
        "--loop",
        "asyncio",
        "--log-level",
        "warning",
    ]
    result = {}
    for name, http in (
        ("stock_httptools", "httptools"),
        ("gridscore_nodelay", "app.server:NoDelayHttpToolsProtocol"),
    ):
        with server(model_dir, 2, [*base, "--http", http]) as (_, port, _):
            summary = single_connection(port, requests)
        result[name] = {k: summary[k] for k in ("requests", "p50_ms", "p99_ms", "requests_per_s")}
    return result


def throughput(port: int, batches: list[int], connections: int, duration: float) -> list[Any]:
    rows = []
    for batch in batches:
        spec = loadgen.LoadSpec(
            f"http://127.0.0.1:{port}/predict",
            batch=batch,
            connections=connections,
            duration=duration,
        )
        rows.append(loadgen.run(spec).summary())
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models"))
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for the test suite")
    parser.add_argument("--out", type=Path, default=RESULTS / "service.json")
    args = parser.parse_args(argv)
    quick = args.quick
    requests = 300 if quick else 5_000
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "command": "python -m bench.service" + (" --quick" if quick else ""),
    }
    report["cold_start"] = [cold_start(args.model_dir, w, 1 if quick else 5) for w in (1, 2)]
    with server(args.model_dir, 2) as (process, port, _):
        report["single_connection_2_workers"] = {
            str(b): single_connection(port, requests, b) for b in ((1,) if quick else (1, 100))
        }
        report["throughput_2_workers"] = throughput(
            port, [1, 100] if quick else [1, 100, 1000], 4 if quick else 16, 2 if quick else 10
        )
        report["generator_ceiling"] = loadgen.ceiling(
            f"http://127.0.0.1:{port}", 4 if quick else 16, 2 if quick else 5
        )
        report["memory_per_worker_after_load"] = [
            {"pid": pid, **procs.memory_mib(pid)} for pid in procs.worker_pids(process.pid)
        ]
    report["nagle"] = nagle_comparison(args.model_dir, 100 if quick else 300)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


def print_table(report: dict[str, Any]) -> None:
    print(f"service benchmark, {report['date']}, {report['machine']}")
    for row in report["cold_start"]:
        print(
            f"  start to first 200 /health, {row['workers']} worker(s): "
            f"median {row['median_s'] * 1000:.0f} ms over {row['runs']} runs"
        )
    for batch, row in report["single_connection_2_workers"].items():
        print(
            f"  one keep-alive connection, 2 workers, batch {batch}: p50 {row['p50_ms']:.3f} ms,"
            f" p99 {row['p99_ms']:.3f} ms, {row['requests_per_s']:.0f} req/s"
        )
    for row in report["throughput_2_workers"]:
        print(
            f"  {row['connections']} connections, batch {row['batch']}: "
            f"{row['requests_per_s']:.0f} req/s, {row['rows_per_s']:.0f} rows/s, "
            f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
            f"errors {row['errors_by_status'] or 0}"
        )
    ceiling = report["generator_ceiling"]
    print(f"  generator ceiling (GET /live): {ceiling['requests_per_s']:.0f} req/s")
    for row in report["memory_per_worker_after_load"]:
        print(f"  worker {row['pid']}: RSS {row['rss_mib']} MiB, PSS {row.get('pss_mib')} MiB")
    for name, row in report["nagle"].items():
        print(f"  asyncio loop, 2 workers, {name}: p50 {row['p50_ms']:.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
