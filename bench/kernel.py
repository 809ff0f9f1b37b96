"""Kernel benchmark: sklearn vs the stock skl2onnx graph vs gridscore's graphs, per call.

Each backend runs in a fresh process (no shared caches, no import order effects), warms up,
then scores batches of 1, 10, 100, 1,000 and 10,000 rows for a time budget per size. Every call
gets a different batch drawn from a large pool (a repeated row lets the CPU learn the branches
and flatters small batches). One thread everywhere. Ratios compare medians from the same run.
Paired runs time a graph against its base with alternating calls in one process: the envelope
guard (guarded vs plain), the attribution targets (served vs guarded), and the large-batch
graphs against the served graph (rows sorted with every attribution; the service's default,
the score with the rows sorted and the flagged rows' attribution).

    python -m bench.kernel            # full run (~3 minutes); writes bench/results/kernel.json
    python -m bench.kernel --quick    # smoke run for the tests (~15 s)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import kernel_backends, svgplot

RESULTS = Path(__file__).parent / "results"
BATCHES = (1, 10, 100, 1_000, 10_000)
POOL_ROWS = 400_000  # distinct rows cycled through per batch size
SCORE_TOLERANCE = 1e-5
DECISION_BAND = 1e-5


def input_pool(batch: int, seed: int = 5) -> np.ndarray:
    """Distinct batches: 90 % nominal readings, 10 % far out, float32, shape (n, batch, 3)."""
    count = int(min(4096, max(8, math.ceil(POOL_ROWS / batch))))
    rng = np.random.default_rng(seed)
    rows = rng.normal([230.0, 10.0, 50.0], [3.0, 1.5, 0.02], (count * batch, 3))
    far = rng.random(count * batch) < 0.1
    rows[far] *= rng.uniform(0.5, 1.6, (int(far.sum()), 3))
    return rows.astype(np.float32).reshape(count, batch, 3)


def timed_calls(
    fns: list[kernel_backends.ScoreFn], pool: np.ndarray, budget: float
) -> list[list[int]]:
    """Nanoseconds per call of each of ``fns``, called in turn on the same fresh batches.

    Warm-up first; at least 5 rounds, then as many as ``budget`` seconds allow (20,000 at most).
    With several functions, who goes first swaps each round: the second call of a round runs
    on warmer caches.
    """
    for warm in pool[:3]:
        for fn in fns:
            fn(warm)
    times: list[list[int]] = [[] for _ in fns]
    order = list(zip(fns, times, strict=True))
    deadline = time.perf_counter() + budget
    index = 3
    while len(times[0]) < 5 or (time.perf_counter() < deadline and len(times[0]) < 20_000):
        rows = pool[index % len(pool)]
        index += 1
        for fn, sink in order if index % 2 else order[::-1]:
            started = time.perf_counter_ns()
            fn(rows)
            sink.append(time.perf_counter_ns() - started)
    return times


def time_backend(
    score: kernel_backends.ScoreFn, budget: float, batches: tuple[int, ...]
) -> list[Any]:
    results = []
    for batch in batches:
        (times,) = timed_calls([score], input_pool(batch), budget)
        micros = np.array(times) / 1000
        median = float(np.median(micros))
        results.append(
            {
                "batch": batch,
                "calls": len(times),
                "median_us": round(median, 2),
                "p99_us": round(float(np.percentile(micros, 99)), 2),
                "mean_us": round(float(micros.mean()), 2),
                "rows_per_s": round(batch / (median / 1e6), 1),
                "us_per_row": round(median / batch, 4),
            }
        )
    return results


# Paired comparisons: (base, variant) backends timed with alternating calls in one process.
PAIRS = {
    "guard": ("onnx-gridscore", "onnx-gridscore-guarded"),
    "attribution": ("onnx-gridscore-guarded", "onnx-gridscore-served"),
    # The large-batch graphs against the served graph as it was before them (the same bytes).
    "sorted": ("onnx-gridscore-served", "onnx-gridscore-served-sorted"),
    "flagged": ("onnx-gridscore-served", "onnx-gridscore-flagged"),
}


def paired_overhead(
    pair: str, workdir: Path, budget: float, batches: tuple[int, ...]
) -> dict[str, Any]:
    """What the variant graph costs over its base, with calls alternating in ONE process.

    Separate processes drift on a shared machine by more than a guard or the attribution
    targets cost; alternating calls see the same conditions, so the ratio of their medians
    isolates the difference.
    """
    base_name, variant_name = PAIRS[pair]
    base = kernel_backends.BACKENDS[base_name](workdir)
    variant = kernel_backends.BACKENDS[variant_name](workdir)
    result = {}
    for batch in batches:
        base_ns, variant_ns = timed_calls([base, variant], input_pool(batch), budget)
        ratio = float(np.median(variant_ns) / np.median(base_ns)) - 1
        result[str(batch)] = {
            "base": base_name,
            "variant": variant_name,
            "base_median_us": round(float(np.median(base_ns)) / 1000, 2),
            "variant_median_us": round(float(np.median(variant_ns)) / 1000, 2),
            "overhead": round(ratio, 4),
            "pairs": len(base_ns),
        }
    return result


def parity_figures(
    score: kernel_backends.ScoreFn, workdir: Path, threshold: float
) -> dict[str, Any]:
    points = np.load(workdir / "parity_points.npy")
    reference = np.load(workdir / "parity_reference.npy")
    decision = np.load(workdir / "parity_decision.npy")
    scores = np.concatenate([score(chunk) for chunk in np.array_split(points, 20)]).astype(
        np.float64
    )
    mismatch = (scores > threshold) != (reference > threshold)
    outside = np.abs(decision) >= DECISION_BAND
    return {
        "points": len(points),
        "max_abs_score_diff": float(np.abs(scores - reference).max()),
        "label_mismatches": int(mismatch.sum()),
        "label_mismatches_outside_band": int((mismatch & outside).sum()),
        "holds": bool(
            np.abs(scores - reference).max() <= SCORE_TOLERANCE and not (mismatch & outside).any()
        ),
    }


def worker(backend: str, workdir: Path, budget: float, batches: tuple[int, ...]) -> dict[str, Any]:
    """Runs inside the fresh process of one backend."""
    if backend.endswith("-pair"):
        pair = backend.removesuffix("-pair")
        return {f"{pair}_pair": paired_overhead(pair, workdir, budget, batches)}
    started = time.perf_counter()
    score = kernel_backends.BACKENDS[backend](workdir)
    load_s = time.perf_counter() - started
    threshold = json.loads((workdir / "model.json").read_text())["threshold"]
    return {
        "backend": backend,
        "load_s": round(load_s, 3),
        "timings": time_backend(score, budget, batches),
        "parity": parity_figures(score, workdir, threshold),
    }


def run_backend(
    backend: str, workdir: Path, budget: float, batches: tuple[int, ...]
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.kernel",
        "--worker",
        backend,
        "--workdir",
        str(workdir),
        "--budget",
        str(budget),
        "--batches",
        ",".join(map(str, batches)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def add_ratios(report: dict[str, Any]) -> None:
    """Speed-up of each backend over sklearn and over the stock graph, median vs median."""
    by_name = {b["backend"]: {t["batch"]: t for t in b["timings"]} for b in report["backends"]}
    for backend in report["backends"]:
        for timing in backend["timings"]:
            batch = timing["batch"]
            for base in ("sklearn", "onnx-stock"):
                if base in by_name and batch in by_name[base]:
                    ratio = by_name[base][batch]["median_us"] / timing["median_us"]
                    timing[f"speedup_vs_{base}"] = round(ratio, 2)
    for pair in PAIRS:
        if f"{pair}_pair" in report:
            report[f"{pair}_overhead"] = {
                b: v["overhead"] for b, v in report[f"{pair}_pair"].items()
            }


def print_table(report: dict[str, Any]) -> None:
    print(f"kernel benchmark, {report['date']}, {report['machine']}")
    header = ("backend", "batch", "median us", "p99 us", "rows/s", "x sklearn", "x stock")
    print("{:<24}{:>7}{:>12}{:>12}{:>14}{:>11}{:>9}".format(*header))
    for backend in report["backends"]:
        for t in backend["timings"]:
            sklearn_x = t.get("speedup_vs_sklearn", 0)
            stock_x = t.get("speedup_vs_onnx-stock", 0)
            print(
                f"{backend['backend']:<24}{t['batch']:>7}{t['median_us']:>12.1f}"
                f"{t['p99_us']:>12.1f}{t['rows_per_s']:>14,.0f}{sklearn_x:>11.1f}{stock_x:>9.2f}"
            )
        p = backend["parity"]
        print(
            f"{'':<24}parity: max |score diff| {p['max_abs_score_diff']:.2e}, "
            f"{p['label_mismatches_outside_band']} label mismatches outside the band "
            f"({'holds' if p['holds'] else 'FAILS'})"
        )
    for pair, (base, variant) in PAIRS.items():
        if f"{pair}_overhead" in report:
            parts = ", ".join(f"batch {b}: {v:+.1%}" for b, v in report[f"{pair}_overhead"].items())
            print(f"{variant} over {base} (alternating calls, one process): {parts}")


def plot(report: dict[str, Any], path: Path) -> None:
    series = {
        b["backend"]: [(t["batch"], t["median_us"]) for t in b["timings"]]
        for b in report["backends"]
    }
    path.write_text(
        svgplot.loglog(
            series,
            "rows per call (batch size)",
            "median latency per call (µs)",
            f"IsolationForest scoring, one thread ({report['date'][:10]})",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kernel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short budgets, for the tests")
    parser.add_argument("--budget", type=float, help="seconds per backend and batch size")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--out", type=Path, default=RESULTS / "kernel.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batches = tuple(int(b) for b in args.batches.split(","))
    budget = args.budget or (0.2 if args.quick else 2.5)
    if args.worker:
        json.dump(worker(args.worker, args.workdir, budget, batches), sys.stdout)
        return 0
    with tempfile.TemporaryDirectory(prefix="gridscore-kernel-") as tmp:
        workdir = Path(tmp)
        kernel_backends.prepare(workdir)
        versions = json.loads((workdir / "model.json").read_text())["versions"]
        report: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "versions": versions,
            "command": "python -m bench.kernel" + (" --quick" if args.quick else ""),
            "budget_s_per_cell": budget,
            "backends": [
                run_backend(name, workdir, budget, batches) for name in kernel_backends.BACKENDS
            ],
            **{
                f"{pair}_pair": run_backend(f"{pair}-pair", workdir, budget, batches)[
                    f"{pair}_pair"
                ]
                for pair in PAIRS
            },
        }
    add_ratios(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out.with_suffix(".svg"))
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
