"""Does one client over its limit slow another? A quiet client beside a noisy one.

    python -m bench.ratelimit            # 5 rounds of 3 runs of 20 s (about 6 min)
    python -m bench.ratelimit --rounds 10  # a tighter estimate (about 12 min)
    python -m bench.ratelimit --quick    # short, for the test suite

One worker (``gridscore api``) with two API keys and the rate limits on. The quiet client, an
operator's service, posts one reading at a time at a steady 200 requests/s (open loop: each
latency counts from the request's due time, so queueing is not hidden). The noisy one, a batch
job with a valid key of its own, offers 100 requests/s of 1,000 readings (100,000 readings/s)
against its limit of 2,000 readings/s (``--readings-limit``: a service of 40 PMUs at 50 Hz),
and ignores ``Retry-After``. Each round runs, in turn:
the quiet client alone; beside the noisy one with the limits on (most of its requests are
refused, 429, before their bodies are decoded); beside it with the limits off (all of its
requests scored), which is what the limits are for. Each
client runs in a process of its own (the batch job would be on another machine; in one process
its sending delayed the quiet client's own loop), all on the server's two cores.

Beside the clients' view, the server's: its CPU seconds a second over each run (from /proc),
how many ``/predict`` answers took it over 2.5 ms by its own clock (``request_latency_seconds``;
the noisy client's scored batches among them), and its ``rate_limited_total`` counter by
client label and limit (the keys never appear: labels are a short hash).
Results: bench/results/ratelimit.json; tables: python -m bench.report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.harness import LoadResult, LoadSpec, find_artifact, percentile, run_load_async
from bench import procs
from bench.service import server

RESULTS = Path(__file__).parent / "results"
QUIET_KEY, NOISY_KEY = "quiet-ops-service-7d41c2", "noisy-batch-job-93be05"
QUIET_RATE, NOISY_RATE, NOISY_BATCH = 200.0, 100.0, 1_000
LIMITS = {"RATE_LIMIT_REQUESTS": "200", "RATE_LIMIT_READINGS": "2000", "RATE_LIMIT_BURST": "1"}
SCENARIOS = ("alone", "noisy_limited", "noisy_unlimited")
BESIDE = SCENARIOS[1:]


def _spec(url: str, key: str, rate: float, batch: int, seconds: float, seed: int) -> LoadSpec:
    return LoadSpec(
        url,
        batch=batch,
        connections=8,
        rate=rate,
        duration=seconds,
        requests=int(rate * seconds),
        seed=seed,
        headers=(("x-api-key", key),),
    )


def _noisy(url: str, seconds: float, ready: Any, out: Any) -> None:
    """The batch job, in a process of its own (as it would be on a machine of its own): its
    sending and reading never delay the quiet client's loop, so the quiet client's latency is
    the server's doing (and the shared cores')."""
    spec = _spec(url, NOISY_KEY, NOISY_RATE, NOISY_BATCH, seconds, 2)
    ready.set()
    out.put(asyncio.run(run_load_async(spec)).summary())


def _clients(url: str, seconds: float, noisy: bool) -> tuple[LoadResult, dict[str, Any] | None]:
    quiet = _spec(url, QUIET_KEY, QUIET_RATE, 1, seconds, 1)
    if not noisy:
        return asyncio.run(run_load_async(quiet)), None
    context = multiprocessing.get_context("spawn")
    ready, out = context.Event(), context.Queue()
    job = context.Process(target=_noisy, args=(url, seconds, ready, out), daemon=True)
    job.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the noisy client's process did not start")
        result = asyncio.run(run_load_async(quiet))
        summary: dict[str, Any] = out.get(timeout=seconds + 30)
    finally:
        job.join(5)
        if job.is_alive():
            job.kill()
    return result, summary


def _limited(metrics: str) -> dict[str, float]:
    """rate_limited_total by ``client/limit`` (the server's count of its 429s)."""
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("rate_limited_total{"):
            inside = line[line.index("{") + 1 : line.index("}")]
            labels = {k: v.strip('"') for k, v in (p.split("=", 1) for p in inside.split(","))}
            name = f"{labels['client']}/{labels['limit']}"
            counts[name] = counts.get(name, 0.0) + float(line.split()[-1])
    return counts


SLOW_BUCKET = 'request_latency_seconds_bucket{le="0.0025",method="POST",path="/predict"}'
ALL_SERVED = 'request_latency_seconds_count{method="POST",path="/predict"}'


def _served_slowly(metrics: str) -> float:
    """``/predict`` answers the server took over 2.5 ms to give (its histogram's count less
    its 2.5 ms bucket)."""
    values = {}
    for line in metrics.splitlines():
        name, _, value = line.rpartition(" ")
        if name in (SLOW_BUCKET, ALL_SERVED):
            values[name] = float(value)
    return values.get(ALL_SERVED, 0.0) - values.get(SLOW_BUCKET, 0.0)


def one_run(
    model_dir: Path, seconds: float, scenario: str, limits: dict[str, str]
) -> dict[str, Any]:
    env = {"API_KEY": f"{QUIET_KEY},{NOISY_KEY}"}
    if scenario != "noisy_unlimited":
        env |= limits
    with server(model_dir, 1, **env) as (process, port, _):
        url = f"http://127.0.0.1:{port}/predict"
        pids = procs.worker_pids(process.pid)
        before, started = sum(procs.cpu_seconds(p) for p in pids), time.perf_counter()
        quiet, noisy = _clients(url, seconds, scenario != "alone")
        elapsed = time.perf_counter() - started
        used = sum(procs.cpu_seconds(p) for p in pids) - before
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
    q = quiet.summary()
    if q["errors_by_status"] or q["transport_errors"]:
        raise RuntimeError(f"the quiet client failed ({scenario}): {q['errors_by_status']}")
    run: dict[str, Any] = {
        "quiet": {k: q[k] for k in ("requests", "ok", "p50_ms", "p99_ms", "send_delay_p99_ms")},
        "server_cpu": round(used / elapsed, 3),
        "rate_limited": _limited(metrics),
        "server_over_2_5ms": _served_slowly(metrics),
        # Every round's latencies pooled give a steadier p99 than any one round's (in ms).
        "quiet_latencies_ms": [x * 1000 for x in quiet.latencies],
    }
    if noisy is not None:
        n = noisy
        run["noisy"] = {
            "requests": n["requests"],
            "scored": n["ok"],
            "refused_429": n["errors_by_status"].get("429", 0),
            "readings_scored_per_s": n["rows_per_s"],
        }
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the three runs")
    parser.add_argument(
        "--readings-limit", type=float, default=2_000, help="RATE_LIMIT_READINGS per key"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "ratelimit.json")
    args = parser.parse_args(argv)
    limits = LIMITS | {"RATE_LIMIT_READINGS": f"{args.readings_limit:g}"}
    if find_artifact(args.model_dir) is None:
        print(f"no artifact in {args.model_dir}: run python -m convert first", file=sys.stderr)
        return 2
    seconds, rounds = (3.0, 1) if args.quick else (20.0, args.rounds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
    for _ in range(rounds):
        for scenario in SCENARIOS:
            run = one_run(args.model_dir, seconds, scenario, limits)
            runs[scenario].append(run)
            noisy = run.get("noisy")
            print(
                f"  {scenario}: quiet p50 {run['quiet']['p50_ms']:.3f} ms, "
                f"p99 {run['quiet']['p99_ms']:.3f} ms (sent late by up to "
                f"{run['quiet']['send_delay_p99_ms']:.3f} ms, p99); server "
                f"{run['server_cpu']:.2f} CPU"
                + (
                    f"; noisy {noisy['scored']} scored, {noisy['refused_429']} refused"
                    if noisy
                    else ""
                ),
                flush=True,
            )
    pooled = {
        name: sorted(x for r in rs for x in r.pop("quiet_latencies_ms"))
        for name, rs in runs.items()
    }
    medians = {
        name: {
            "quiet_p50_ms": round(statistics.median(r["quiet"]["p50_ms"] for r in rs), 3),
            "quiet_p99_ms": round(statistics.median(r["quiet"]["p99_ms"] for r in rs), 3),
            "quiet_p99_rounds": [r["quiet"]["p99_ms"] for r in rs],
            "quiet_pooled": {
                "requests": len(pooled[name]),
                "p50_ms": round(percentile(pooled[name], 50), 3),
                "p99_ms": round(percentile(pooled[name], 99), 3),
            },
            # The generator's own lag (how late it sent, p99): the client's share of the p99.
            "quiet_send_delay_p99_ms": round(
                statistics.median(r["quiet"]["send_delay_p99_ms"] for r in rs), 3
            ),
            "server_cpu": round(statistics.median(r["server_cpu"] for r in rs), 3),
            "server_over_2_5ms": statistics.median(r["server_over_2_5ms"] for r in rs),
        }
        | (
            {
                "noisy_scored": statistics.median(r["noisy"]["scored"] for r in rs),
                "noisy_refused": statistics.median(r["noisy"]["refused_429"] for r in rs),
                "noisy_readings_scored_per_s": statistics.median(
                    r["noisy"]["readings_scored_per_s"] for r in rs
                ),
            }
            if name != "alone"
            else {}
        )
        | {"rate_limited_last_round": rs[-1]["rate_limited"]}
        for name, rs in runs.items()
    }
    alone = medians["alone"]["quiet_p99_ms"]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "command": "python -m bench.ratelimit"
        + (f" --readings-limit {args.readings_limit:g}" if args.readings_limit != 2_000 else "")
        + (" --quick" if args.quick else "")
        + (f" --rounds {args.rounds}" if args.rounds != 5 and not args.quick else ""),
        "seconds": seconds,
        "limits": limits,
        "quiet": {"rate": QUIET_RATE, "batch": 1},
        "noisy": {"rate": NOISY_RATE, "batch": NOISY_BATCH},
        "scenarios": medians,
        "quiet_p99_ratio": {
            name: round(medians[name]["quiet_p99_ms"] / alone, 3) for name in BESIDE
        },
        # The same ratio from the pooled latencies, and round by round (each round's runs
        # are minutes apart at most, so a pair shares the machine's mood).
        "quiet_p99_ratio_pooled": {
            name: round(
                medians[name]["quiet_pooled"]["p99_ms"]
                / medians["alone"]["quiet_pooled"]["p99_ms"],
                3,
            )
            for name in BESIDE
        },
        "quiet_p99_ratio_rounds": {
            name: [
                round(r["quiet"]["p99_ms"] / a["quiet"]["p99_ms"], 3)
                for r, a in zip(runs[name], runs["alone"], strict=True)
            ]
            for name in BESIDE
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in report if k.startswith("quiet_p99_ratio")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
