"""Service benchmark: the HTTP floor, cold start, latency, throughput, memory per worker.

Starts ``gridscore api`` (artifact present) as a fresh process for each measurement, on
127.0.0.1. Writes bench/results/service.json.

- One worker against wrk (a C load generator from Debian's packages, so the generator does
  not share the bottleneck it measures): a bare ASGI app under the same uvicorn, loop and
  protocol (the floor of the HTTP stack), ``GET /live``, and ``POST /predict`` at batch 1 and
  100, closed loop with 8 connections; requests/s and p50/p99/p99.9, the median of 3 rounds
  (the targets interleaved in each round).
- One worker with ``REQUEST_ORDER=poll`` (uvicorn's start order) against ``fair``, the same
  rounds: the tail each gives at batch 1 and 100.
- Two workers against bench.loadgen: single-connection latency, throughput by batch, memory.

    python -m bench.service            # full run (~15 minutes)
    python -m bench.service --quick    # smoke run for the tests (~30 s)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.harness import find_artifact
from bench import loadgen, procs, serving

RESULTS = Path(__file__).parent / "results"


@contextmanager
def server(
    model_dir: Path,
    workers: int,
    command: list[str] | None = None,
    source: Path | None = None,
    tls: ssl.SSLContext | None = None,
    **env: str,
) -> Iterator[tuple[subprocess.Popen[bytes], int, float]]:
    """A running server; yields (process, port, seconds from spawn to the first 200 /health).
    ``source``: another checkout of gridscore to run instead (a baseline); ``tls``: the client
    context its /health is asked with (a server with TLS_CERT_FILE)."""
    with tempfile.TemporaryDirectory(prefix="gridscore-bench-") as tmp:
        if command is None:
            # `gridscore api`: the scorer as deployed (the dashboard runs in its own process).
            with serving.gridscore_serve(
                model_dir,
                Path(tmp),
                command="api",
                source=source,
                tls=tls,
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


WRK_SCRIPT = Path(__file__).parent / "wrk" / "report.lua"
BATCHES = (1, 100, 1_000, 10_000)


def wrk(
    url: str,
    seconds: float,
    connections: int = 8,
    body: Path | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    think_ms: float | None = None,
) -> dict[str, Any]:
    """One closed-loop wrk run (one thread); requests/s, latency percentiles in ms (from each
    request's write), and the share of a core wrk itself used. ``headers`` (a Content-Type
    among them) go with every request; ``think_ms``: each connection waits a random 0 to
    twice that many milliseconds before each request (report.lua's pacing)."""
    env = {**os.environ, "WRK_METHOD": "POST" if body else "GET"}
    if think_ms is not None:
        env["WRK_THINK_MS"] = f"{think_ms:g}"
    if body:
        env["WRK_BODY_FILE"] = str(body)
    for name, value in headers:
        if name.lower() == "content-type":
            env["WRK_CONTENT_TYPE"] = value
        else:
            env["WRK_HEADERS"] = env.get("WRK_HEADERS", "") + f"{name}: {value}\n"
    out, cpu_seconds = procs.run_timed(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(WRK_SCRIPT), url],
        env,
        timeout=seconds + 30,
    )
    raw = json.loads(out.strip().splitlines()[-1])
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    return {
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "requests": raw["requests"],
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "client_cpu_pct": round(100 * cpu_seconds / (raw["duration_us"] / 1e6), 1),
        "errors": errors,
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the median over the rounds; errors summed."""
    result = {
        key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0] if key != "errors"
    }
    result["errors"] = sum(r["errors"] for r in runs)
    result["rounds"] = len(runs)
    return result


def body_files(workdir: Path, batches: Iterable[int]) -> dict[int, Path]:
    """One /predict body per batch size, written to ``workdir`` for wrk (the same readings,
    seed 7, none pushed out, in every benchmark that compares runs)."""
    bodies = {}
    for batch in batches:
        bodies[batch] = workdir / f"batch-{batch}.json"
        bodies[batch].write_bytes(loadgen.make_bodies(batch, 1, 7, 0.0)[0].content)
    return bodies


def http_floor(
    model_dir: Path,
    seconds: float,
    rounds: int,
    workdir: Path,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """One worker each: the bare ASGI app, /live and /predict (batch 1, 100) under wrk; with
    ``baseline`` (another checkout), its /live and /predict too, interleaved in each round."""
    bodies = body_files(workdir, BATCHES)
    bare = [
        sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--loop", "uvloop",
        "--http", "app.runtime.http_protocol:FairHttpProtocol", "--log-level", "warning",
    ]  # fmt: skip
    measured: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        with server(model_dir, 1, bare) as (_, port, _):
            measured.setdefault("bare_asgi", []).append(wrk(f"http://127.0.0.1:{port}/", seconds))
        for prefix, source in (("", None), ("baseline_", baseline)):
            if prefix and source is None:
                continue
            with server(model_dir, 1, source=source) as (_, port, _):
                url = f"http://127.0.0.1:{port}"
                measured.setdefault(f"{prefix}live", []).append(wrk(f"{url}/live", seconds))
                for batch, body in bodies.items():
                    run = wrk(f"{url}/predict", seconds, body=body)
                    run["rows_per_s"] = round(run["requests_per_s"] * batch, 1)
                    measured.setdefault(f"{prefix}predict_batch_{batch}", []).append(run)
    return _medians(measured)


def _medians(measured: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The median run per target; refused when any request failed (a 503 from a server
    without a model measures nothing)."""
    failed = {name: n for name, runs in measured.items() if (n := sum(r["errors"] for r in runs))}
    if failed:
        raise RuntimeError(f"requests failed while measuring: {failed}")
    return {name: _median_run(runs) for name, runs in measured.items()}


GC_SERIES = re.compile(
    r'^gc_pause_seconds_(?P<kind>count|sum)\{generation="(?P<gen>\d)"\} (?P<value>\S+)$', re.M
)


def _gc_pauses(exposition: bytes) -> dict[str, dict[str, float]]:
    """{generation: {"count": n, "sum": seconds}} from a /metrics exposition."""
    pauses: dict[str, dict[str, float]] = {}
    for match in GC_SERIES.finditer(exposition.decode()):
        pauses.setdefault(match["gen"], {})[match["kind"]] = float(match["value"])
    return pauses


def gc_comparison(model_dir: Path, seconds: float) -> dict[str, Any]:
    """One worker, GC_FREEZE=0 (Python's defaults) against GC_FREEZE=1, under wrk at batch 1
    and 100: collections, their total and longest-bucket pause, p99, and resident memory."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gridscore-gc-") as tmp:
        bodies = {}
        for batch in (1, 100):
            bodies[batch] = Path(tmp) / f"batch-{batch}.json"
            bodies[batch].write_bytes(loadgen.make_bodies(batch, 1, 7, 0.0)[0].content)
        for freeze in ("0", "1"):
            with serving.gridscore_serve(
                model_dir, Path(tmp), command="api", WORKERS="1", GC_FREEZE=freeze
            ) as running:
                url = running.url
                before = procs.memory_mib(running.process.pid)
                start = _gc_pauses(urllib.request.urlopen(f"{url}/metrics", timeout=5).read())
                runs = {b: wrk(f"{url}/predict", seconds, body=body) for b, body in bodies.items()}
                after = procs.memory_mib(running.process.pid)
                end = _gc_pauses(urllib.request.urlopen(f"{url}/metrics", timeout=5).read())
                frozen = [
                    json.loads(line)
                    for line in running.log().splitlines()
                    if '"start-up heap frozen"' in line
                ]
            # Only what happened under load: the start-up collections are left out.
            pauses = {
                gen: {kind: end[gen][kind] - start.get(gen, {}).get(kind, 0.0) for kind in end[gen]}
                for gen in end
            }
            result[f"gc_freeze_{freeze}"] = {
                "collections": {g: int(v.get("count", 0)) for g, v in pauses.items()},
                "pause_total_ms": {g: round(v.get("sum", 0) * 1000, 2) for g, v in pauses.items()},
                "p99_ms": {str(b): run["p99_ms"] for b, run in runs.items()},
                "p50_ms": {str(b): run["p50_ms"] for b, run in runs.items()},
                "rss_mib_before": before.get("rss_mib"),
                "rss_mib_after": after.get("rss_mib"),
            }
            if frozen:
                result[f"gc_freeze_{freeze}"]["startup"] = {
                    k: frozen[0][k]
                    for k in (
                        "objects_frozen",
                        "full_collection_ms_before",
                        "full_collection_ms_after",
                    )
                }
    return result


def interleaved_settings(
    model_dir: Path,
    variants: dict[str, dict[str, str]],
    cells: dict[str, tuple[Path, int]],
    seconds: float,
    rounds: int,
) -> dict[str, dict[str, Any]]:
    """One worker per variant (its settings as environment), the variants interleaved in each
    round, each running every cell (a body for ``POST /predict``, a connection count) under
    wrk; the median over the rounds per ``<variant>_<cell>``."""
    measured: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for name, settings in variants.items():
            with server(model_dir, 1, **settings) as (_, port, _):
                url = f"http://127.0.0.1:{port}/predict"
                for cell, (body, connections) in cells.items():
                    run = wrk(url, seconds, connections=connections, body=body)
                    measured.setdefault(f"{name}_{cell}", []).append(run)
    return _medians(measured)


def shadow_comparison(model_dir: Path, seconds: float, rounds: int) -> dict[str, Any]:
    """One worker, batch 1: the client's latency with a shadow model and without, the rounds
    interleaved; one keep-alive connection (latency) and 8 connections (saturation). The
    shadow is the synthetic model with another forest seed, published beside the live one."""
    import shutil

    from convert import pipeline

    live = find_artifact(model_dir)
    if live is None:
        raise RuntimeError(f"no artifact in {model_dir}")
    with tempfile.TemporaryDirectory(prefix="gridscore-shadow-") as tmp:
        models = Path(tmp) / "models"
        candidate = pipeline.run(
            models,
            parity_points=2_000,
            options=pipeline.ConvertOptions(forest=pipeline.ForestParams(seed=2)),
        ).metadata.digest
        for path in model_dir.glob(f"{live.stem}.*"):  # the large-batch graphs' folder too
            if path.is_dir():
                shutil.copytree(path, models / path.name)
            else:
                shutil.copy(path, models)
        body = Path(tmp) / "batch-1.json"
        body.write_bytes(loadgen.make_bodies(1, 1, 7, 0.0)[0].content)
        pinned = live.stem.rsplit("-", 1)[-1]
        return interleaved_settings(
            models,
            {
                "shadow_off": {"MODEL_DIGEST": pinned, "SHADOW_DIGEST": ""},
                "shadow_on": {"MODEL_DIGEST": pinned, "SHADOW_DIGEST": candidate[:12]},
            },
            {"c1": (body, 1), "c8": (body, 8)},
            seconds,
            rounds,
        )


def request_order_comparison(
    model_dir: Path, seconds: float, rounds: int, quick: bool = False
) -> dict[str, Any]:
    """One worker, closed loop: ``REQUEST_ORDER=poll`` (uvicorn's order) against ``fair``,
    interleaved; batch 1 at 4, 8 and 16 connections and batch 100 at 8."""
    with tempfile.TemporaryDirectory(prefix="gridscore-order-") as tmp:
        bodies = {}
        for batch in (1, 100):
            bodies[batch] = Path(tmp) / f"batch-{batch}.json"
            bodies[batch].write_bytes(loadgen.make_bodies(batch, 1, 7, 0.0)[0].content)
        cells = {f"batch_1_c{c}": (bodies[1], c) for c in ((8,) if quick else (4, 8, 16))}
        cells["batch_100_c8"] = (bodies[100], 8)
        return interleaved_settings(
            model_dir,
            {order: {"REQUEST_ORDER": order} for order in ("poll", "fair")},
            cells,
            seconds,
            rounds,
        )


def _describe_checkout(path: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()[:100] or str(path)


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
        "app.service.factory:create_served_app",
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
        ("gridscore_nodelay", "app.runtime.http_protocol:NoDelayHttpProtocol"),
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
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of gridscore (e.g. a git worktree of an earlier commit) whose "
        "/live and /predict are measured in the same rounds, for before/after ratios",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "service.json")
    args = parser.parse_args(argv)
    quick = args.quick
    requests = 300 if quick else 5_000
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "command": "python -m bench.service"
        + (" --quick" if quick else "")
        + (" --baseline <checkout>" if args.baseline else ""),
    }
    if args.baseline:
        report["baseline"] = _describe_checkout(args.baseline)
    with tempfile.TemporaryDirectory(prefix="gridscore-wrk-") as tmp:
        report["http_floor_1_worker"] = http_floor(
            args.model_dir, 2 if quick else 10, 1 if quick else 3, Path(tmp), args.baseline
        )
    report["gc_1_worker"] = gc_comparison(args.model_dir, 2 if quick else 10)
    report["shadow_1_worker"] = shadow_comparison(
        args.model_dir, 2 if quick else 10, 1 if quick else 3
    )
    report["request_order_1_worker"] = request_order_comparison(
        args.model_dir, 2 if quick else 10, 1 if quick else 3, quick
    )
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
    for name, row in report["http_floor_1_worker"].items():
        print(
            f"  1 worker, wrk -c8, {name}: {row['requests_per_s']:.0f} req/s, p50 "
            f"{row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, p99.9 {row['p999_ms']:.3f} ms"
        )
    for name, row in report["request_order_1_worker"].items():
        print(
            f"  1 worker, REQUEST_ORDER={name.replace('_', ' ', 1)}: "
            f"{row['requests_per_s']:.0f} req/s, p50 {row['p50_ms']:.3f} ms, "
            f"p99 {row['p99_ms']:.3f} ms ({row['p99_ms'] / row['p50_ms']:.2f}x p50)"
        )
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
