"""Soak: a fixed rate near 70 % of measured capacity for 60 s; p99 over time, memory growth.

    python -m bench.soak              # writes bench/results/soak.json
    python -m bench.soak --quick      # 10 s, for a smoke run

Starts ``gridscore api`` with 2 workers, measures its capacity with a short closed-loop run
(16 connections, batch 10), then drives it open-loop at 70 % of that for the soak duration.
Latency counts from each request's due time; p99 is reported per 5-second window; resident
memory of each worker is read before and after.

Beside each window's p99 as the client saw it, the server's own view of the same window: how
long the workers took (their ``request_latency_seconds`` histogram, read from the multiprocess
files), how busy each worker and the generator were, and how many times the kernel took the
core from a worker's event loop to run something else. A tail the server's histogram does
not show accrued outside the handler: in a socket or the worker's event loop, or in the
generator, which shares the two cores. A separate process reads them, so neither the
generator's loop nor a worker spends a moment on it.

Then the same rate again on the same server from wrk, a C client, its 64 connections paced
by random think times (``paced_wrk``; skipped without wrk). wrk takes less of a core than
the Python generator, but it differs in more than that: it runs after the soak, counts
latency from each write rather than from a due time (a connection still waiting for its
answer sends late, unseen), and spreads its requests over all its connections. Its tail is
a point of comparison, not the soak's measure.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from app.harness import (
    LoadResult,
    LoadSpec,
    freeze_startup_heap,
    make_bodies,
    multiprocess_registry,
    percentile,
)
from app.harness import run_load as run
from bench import procs, serving
from bench.service import wrk

RESULTS = Path(__file__).parent / "results"
WINDOW_S = 5.0
METRICS_FOLDER = "metrics"  # the server's multiprocess files, in the soak's temporary folder
SLOW_MS = (1.0, 2.5, 5.0, 10.0)  # the server-side counts of requests slower than these
CONNECTIONS = 64  # the open loop's, and the paced C client's

Buckets = dict[str, float]  # the histogram's upper bound ("0.001", "+Inf") -> cumulative count


class Sample(NamedTuple):
    """One reading of the server and the generator, taken by the sampling process."""

    at: float  # time.perf_counter()
    buckets: Buckets  # the workers' /predict latency histogram
    cpu: dict[int, float]  # CPU seconds so far, by pid
    preempted: dict[int, int]  # the main thread's involuntary switches so far, by pid
    waited: dict[int, float]  # seconds the main thread has waited for a core so far, by pid


def predict_buckets(metrics_dir: str) -> Buckets:
    """The workers' summed ``request_latency_seconds`` buckets for ``/predict``, read from
    their multiprocess files."""
    buckets: Buckets = {}
    for metric in multiprocess_registry(metrics_dir).collect():
        if metric.name != "request_latency_seconds":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("path") == "/predict":
                bound = sample.labels["le"]
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def sample_at(link: Connection, metrics_dir: str, pids: list[int]) -> None:
    """Runs in a process of its own: says it is ready, receives the times to sample at
    (``time.perf_counter``: CLOCK_MONOTONIC, the same clock in every process), takes the
    /predict buckets and the CPU seconds, preemptions and run-queue waits of each of ``pids``
    at each, and sends them back."""
    link.send("ready")
    times: list[float] = link.recv()
    samples: list[Sample] = []
    for due in times:
        time.sleep(max(0.0, due - time.perf_counter()))
        cpu = {pid: procs.cpu_seconds(pid) for pid in pids}
        preempted = {pid: procs.preemptions(pid) for pid in pids}
        waited = {pid: procs.runqueue_wait_seconds(pid) for pid in pids}
        samples.append(
            Sample(time.perf_counter(), predict_buckets(metrics_dir), cpu, preempted, waited)
        )
    link.send(samples)
    link.close()


class Sampler:
    """The sampling process of one soak (``sample_at``): started, given its times, read, and
    stopped whatever happens to it or to the soak."""

    def __init__(self, metrics_dir: str, pids: list[int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.link, child = context.Pipe()
        self.process = context.Process(
            target=sample_at, args=(child, metrics_dir, pids), daemon=True
        )
        self._child = child

    def __enter__(self) -> Sampler:
        self.process.start()
        self._child.close()  # the sampler's end: if it dies, this end reads end-of-file
        return self

    def begin(self, duration: float) -> float | None:
        """Once the sampler is ready (a fresh interpreter and its imports), the time the soak
        starts; sample k is taken WINDOW_S * k later. None if it never became ready."""
        try:
            if not (self.link.poll(30.0) and self.link.recv() == "ready"):
                return None
            start = time.perf_counter() + 0.1
            self.link.send([start + k * WINDOW_S for k in range(int(duration // WINDOW_S) + 1)])
        except (EOFError, OSError):
            return None
        return start

    def samples(self) -> list[Sample]:
        """What the sampler took; empty if it failed."""
        try:
            if self.link.poll(2 * WINDOW_S):
                taken = self.link.recv()
                return taken if isinstance(taken, list) else []
        except (EOFError, OSError):
            pass
        return []

    def __exit__(self, *_exc: object) -> None:
        self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.link.close()


def server_window(before: Buckets, after: Buckets) -> dict[str, Any]:
    """The requests the workers finished between two readings of their histogram: how many,
    how many took longer than each of SLOW_MS, and the bucket bound their p99 lies under."""

    def delta(bound: str) -> float:
        return after.get(bound, 0.0) - before.get(bound, 0.0)

    requests = delta("+Inf")
    bounds = sorted((float(b), b) for b in after if b != "+Inf")
    p99_under = float("inf")
    for value, bound in bounds:
        if requests and delta(bound) >= 0.99 * requests:
            p99_under = value * 1000
            break
    slower = {}
    for limit in SLOW_MS:
        named = next((b for value, b in bounds if abs(value * 1000 - limit) < 1e-9), None)
        if named is not None:
            slower[f"{limit:g}"] = round(requests - delta(named))
    return {
        "requests": round(requests),
        "p99_under_ms": p99_under if requests else None,
        "slower_than_ms": slower,
    }


def _per_pid(before: dict[int, float], after: dict[int, float], scale: float) -> dict[int, float]:
    return {pid: round(scale * (after[pid] - before[pid]), 1) for pid in after}


def cpu_window(before: Sample, after: Sample) -> dict[int, float]:
    """Per pid, the share of one core it used between two samples (percent)."""
    return _per_pid(before.cpu, after.cpu, 100 / (after.at - before.at))


def wait_window(before: Sample, after: Sample) -> dict[int, float]:
    """Per pid, how long its main thread waited for a core between two samples (ms)."""
    return _per_pid(before.waited, after.waited, 1000)


def windows(result: LoadResult, start: float) -> list[dict[str, Any]]:
    """The soak's successful requests by the 5-second window they finished in: how many,
    their p50 and p99 from their due times, and the p99 of how late the generator sent them."""
    buckets: dict[int, tuple[list[float], list[float]]] = {}
    for done, latency, delay in zip(
        result.finished, result.latencies, result.send_delays, strict=True
    ):
        latencies, delays = buckets.setdefault(int((done - start) // WINDOW_S), ([], []))
        latencies.append(latency * 1000)
        delays.append(delay * 1000)
    return [
        {
            "from_s": index * WINDOW_S,
            "requests": len(latencies),
            "p50_ms": round(percentile(sorted(latencies), 50), 3),
            "p99_ms": round(percentile(sorted(latencies), 99), 3),
            "send_delay_p99_ms": round(percentile(sorted(delays), 99), 3),
        }
        for index, (latencies, delays) in sorted(buckets.items())
    ]


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """The generator's heap frozen and its collector tuned as a worker's are, then restored.

    The generator is the soak's clock: one full collection of its heap (~26 ms here, seen
    once or twice a soak) sends every request due meanwhile late, and the client counts that
    delay as the server's. A heap its caller froze already is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    thresholds = gc.get_threshold()
    freeze_startup_heap()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def paced_wrk(
    url: str, body: Path, rate: float, duration: float, workers: list[int]
) -> dict[str, Any] | None:
    """The soak's rate again from wrk (module docstring): CONNECTIONS connections, each
    waiting a random think time before each request. A connection's cycle is its think time
    plus its request's latency: a 2 s run at the bare think time measures the rest, and the
    think time is shortened by it. None if wrk is not installed, or if the requests alone
    take longer than a cycle (no think time could pace them)."""
    if shutil.which("wrk") is None:
        return None
    cycle_ms = CONNECTIONS / rate * 1000
    trial = wrk(url, 2.0, CONNECTIONS, body, think_ms=cycle_ms)
    think_ms = cycle_ms - (CONNECTIONS / trial["requests_per_s"] * 1000 - cycle_ms)
    if think_ms <= 0:
        return None
    before = {pid: procs.cpu_seconds(pid) for pid in workers}
    started = time.perf_counter()
    measured = wrk(url, duration, CONNECTIONS, body, think_ms=think_ms)
    elapsed = time.perf_counter() - started
    after = {pid: procs.cpu_seconds(pid) for pid in workers}
    worker_cpu = _per_pid(before, after, 100 / elapsed)
    return {
        **measured,
        "think_ms": round(think_ms, 2),
        "worker_cpu_pct": [worker_cpu[pid] for pid in workers],
    }


def soak_once(model_dir: Path, duration: float, baseline: Path | None) -> dict[str, Any]:
    """One soak on a fresh server: capacity, then 70 % of it, per-window p99 (the client's and
    the server's) and how late the generator sent, CPU, preemptions and waits for a core per
    process and window, memory."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving.gridscore_serve(
            model_dir,
            Path(tmp),
            command="api",
            source=baseline,
            WORKERS="2",
            LOG_LEVEL="warning",
            PROMETHEUS_MULTIPROC_DIR=str(Path(tmp) / METRICS_FOLDER),
        ) as server,
    ):
        url = f"{server.url}/predict"
        capacity = run(LoadSpec(url, batch=10, connections=16, duration=3.0)).summary()
        rate = round(0.7 * capacity["requests_per_s"], 1)
        workers = procs.worker_pids(server.process.pid)
        before = {pid: procs.memory_mib(pid)["rss_mib"] for pid in workers}
        with (
            frozen_heap(),
            Sampler(str(Path(tmp) / METRICS_FOLDER), [*workers, os.getpid()]) as sampler,
        ):
            begun = sampler.begin(duration)
            if begun is not None:
                time.sleep(max(0.0, begun - time.perf_counter()))
            # Without a sampler the soak still runs, only without the server's view.
            start = time.perf_counter() if begun is None else begun
            soak = run(
                LoadSpec(
                    url,
                    batch=10,
                    connections=CONNECTIONS,
                    rate=rate,
                    duration=duration,
                    bodies=256,
                )
            )
            after = {pid: procs.memory_mib(pid)["rss_mib"] for pid in workers}
            samples = sampler.samples() if begun is not None else []
        body = Path(tmp) / "body.json"
        body.write_bytes(make_bodies(10, 1, seed=0, anomaly_rate=0.02)[0].content)
        paced = paced_wrk(url, body, rate, duration, workers)
    # The last, partial window holds only the stragglers: left out.
    kept = [w for w in windows(soak, start) if w["from_s"] + WINDOW_S <= duration]
    # Sample k was taken at the start of window k.
    spans = list(itertools.pairwise(samples))
    for window in kept:
        index = int(window["from_s"] // WINDOW_S)
        if index >= len(spans):
            continue
        first, last = spans[index]
        cpu, waited = cpu_window(first, last), wait_window(first, last)
        window["server"] = server_window(first.buckets, last.buckets)
        window["worker_cpu_pct"] = [cpu[pid] for pid in workers]
        window["generator_cpu_pct"] = cpu[os.getpid()]
        window["worker_preemptions"] = [last.preempted[p] - first.preempted[p] for p in workers]
        window["worker_waited_ms"] = [waited[pid] for pid in workers]
        window["generator_waited_ms"] = waited[os.getpid()]
    return {
        "capacity_requests_per_s": capacity["requests_per_s"],
        "rate_requests_per_s": rate,
        "summary": soak.summary(),
        "windows": kept,
        "worst_window_p99_ms": max((w["p99_ms"] for w in kept), default=float("nan")),
        "rss_mib_before": list(before.values()),
        "rss_mib_after": list(after.values()),
        "rss_growth_mib": [round(after[p] - before[p], 1) for p in workers],
        "paced_wrk": paced,
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
    print("the median run's windows (client p99; the workers' own p99 bound; CPU % of a core):")
    for window in report["windows"]:
        server = window.get("server")
        beside = (
            f"; server p99 <= {server['p99_under_ms']:g} ms, workers "
            f"{'/'.join(f'{c:.0f}' for c in window['worker_cpu_pct'])} %, generator "
            f"{window['generator_cpu_pct']:.0f} %, workers preempted "
            f"{'/'.join(str(n) for n in window['worker_preemptions'])} times, waited for a "
            f"core {'/'.join(f'{w:.0f}' for w in window['worker_waited_ms'])} ms (generator "
            f"{window['generator_waited_ms']:.0f} ms)"
            if server and server["p99_under_ms"] is not None
            else ""
        )
        print(
            f"  {window['from_s']:>5.0f} s: {window['requests']:>6} requests, "
            f"p99 {window['p99_ms']:.2f} ms (sent late by <= "
            f"{window['send_delay_p99_ms']:.2f} ms at p99){beside}"
        )
    print(f"  RSS per worker {report['rss_mib_before']} -> {report['rss_mib_after']} MiB")
    paced_runs = [one["paced_wrk"] for one in runs if one["paced_wrk"]]
    if paced_runs:
        print("the same rate from wrk, each connection paced by random think times:")
    for paced in paced_runs:
        print(
            f"  {paced['requests_per_s']:.0f} req/s, p50 {paced['p50_ms']:.2f} ms, p99 "
            f"{paced['p99_ms']:.2f} ms, max {paced['max_ms']:.2f} ms; wrk "
            f"{paced['client_cpu_pct']:.0f} % of a core, workers "
            f"{'/'.join(f'{c:.0f}' for c in paced['worker_cpu_pct'])} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
