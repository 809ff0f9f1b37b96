"""Write the README's benchmark section from bench/results/*.json.

python -m bench.report     # rewrites the part of README.md between the bench markers
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _us(value: float) -> str:
    return f"{value / 1000:.1f} ms" if value >= 1000 else f"{value:.1f} µs"


def kernel_section(report: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    batches = [t["batch"] for t in report["backends"][0]["timings"]]
    lines = [
        "### Kernel: sklearn vs ONNX",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}; {versions}. "
        f"One thread; each backend in a fresh process; {report['budget_s_per_cell']} s per cell; "
        "every call scores a different batch. Median per call (p99 in brackets); "
        "speed-ups compare medians from the same run; the guard overhead compares the two "
        "gridscore graphs with alternating calls in one process.",
        "",
        "| backend | " + " | ".join(f"batch {b:,}" for b in batches) + " | parity |",
        "|---|" + "---|" * (len(batches) + 1),
    ]
    for backend in report["backends"]:
        cells = [f"{_us(t['median_us'])} ({_us(t['p99_us'])})" for t in backend["timings"]]
        parity = backend["parity"]
        lines.append(
            f"| {backend['backend']} | "
            + " | ".join(cells)
            + f" | max diff {parity['max_abs_score_diff']:.1e}, "
            f"{parity['label_mismatches_outside_band']} label mismatches |"
        )
    for name in ("onnx-gridscore", "onnx-gridscore-guarded"):
        ours = next(b for b in report["backends"] if b["backend"] == name)
        for base in ("sklearn", "onnx-stock"):
            cells = [f"{t[f'speedup_vs_{base}']:,.1f}x" for t in ours["timings"]]
            lines.append(f"| {name} speed-up vs {base} | " + " | ".join(cells) + " | |")
    if "guard_overhead" in report:
        cells = [f"{v:+.1%}" for v in report["guard_overhead"].values()]
        lines.append("| envelope guard overhead | " + " | ".join(cells) + " | |")
    lines += ["", "![latency per call against batch size](bench/results/kernel.svg)", ""]
    return lines


def service_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "### Service",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}, Python "
        f"{report['python']}. `gridscore api` (the scorer as deployed) as a fresh process per "
        "measurement, driven from the same machine by `bench.loadgen` (which shares the two "
        "cores with the workers, so throughput is a floor).",
        "",
        "| measurement | figure |",
        "|---|---|",
    ]
    lines.extend(
        f"| start to first 200 on `/health`, {row['workers']} worker(s), median of "
        f"{row['runs']} | {row['median_s'] * 1000:.0f} ms |"
        for row in report["cold_start"]
    )
    lines.extend(
        f"| one keep-alive connection, 2 workers, batch {batch}: p50 / p99 | "
        f"{row['p50_ms']:.3f} ms / {row['p99_ms']:.3f} ms "
        f"({row['requests_per_s']:,.0f} req/s) |"
        for batch, row in report["single_connection_2_workers"].items()
    )
    for row in report["throughput_2_workers"]:
        errors = sum(row["errors_by_status"].values()) + sum(row["transport_errors"].values())
        lines.append(
            f"| {row['connections']} connections, 2 workers, batch {row['batch']:,} | "
            f"{row['requests_per_s']:,.0f} req/s, {row['rows_per_s']:,.0f} rows/s, "
            f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, {errors} errors, "
            f"split over workers {'/'.join(map(str, row['served_by'].values()))} |"
        )
    ceiling = report["generator_ceiling"]
    lines.append(
        f"| load generator's own ceiling (`GET /live`, {ceiling['connections']} connections) | "
        f"{ceiling['requests_per_s']:,.0f} req/s |"
    )
    rss = [w["rss_mib"] for w in report["memory_per_worker_after_load"]]
    pss = [w.get("pss_mib", 0.0) for w in report["memory_per_worker_after_load"]]
    lines.append(
        "| memory per worker after the load runs: RSS (PSS) | "
        + ", ".join(f"{r} MiB ({p} MiB)" for r, p in zip(rss, pss, strict=True))
        + " |"
    )
    nagle = report["nagle"]
    lines.append(
        "| `uvicorn --workers 2 --loop asyncio`, one keep-alive connection, p50: stock "
        f"protocol / gridscore's TCP_NODELAY protocol | {nagle['stock_httptools']['p50_ms']:.2f} ms"
        f" / {nagle['gridscore_nodelay']['p50_ms']:.2f} ms |"
    )
    lines.append("")
    return lines


def soak_section(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    errors = sum(s["errors_by_status"].values()) + sum(s["transport_errors"].values())
    lines = [
        "### Soak",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}: `gridscore api` "
        f"with 2 workers; capacity measured first ({report['capacity_requests_per_s']:,.0f} "
        f"req/s at batch {report['batch']}, 16 connections), then an open loop at "
        f"{report['rate_requests_per_s']:,.0f} req/s (70 %) for {report['duration_s']:.0f} s, "
        "latency counted from each request's due time.",
        "",
        f"{s['requests']:,} requests, {errors} errors; p50 {s['p50_ms']:.2f} ms, p99 "
        f"{s['p99_ms']:.2f} ms overall. Resident memory per worker "
        f"{report['rss_mib_before']} MiB before, {report['rss_mib_after']} MiB after "
        f"(growth {report['rss_growth_mib']} MiB).",
        "",
        "| window | " + " | ".join(f"{w['from_s']:.0f} s" for w in report["windows"]) + " |",
        "|---|" + "---|" * len(report["windows"]),
        "| p99 (ms) | " + " | ".join(f"{w['p99_ms']:.1f}" for w in report["windows"]) + " |",
        "",
    ]
    return lines


def render() -> str:
    lines = [
        START,
        "",
        "Regenerate with `python -m bench.kernel && python -m bench.service && "
        "python -m bench.soak && python -m bench.report`.",
        "",
    ]
    kernel = RESULTS / "kernel.json"
    service = RESULTS / "service.json"
    if kernel.exists():
        lines += kernel_section(json.loads(kernel.read_text()))
    if service.exists():
        lines += service_section(json.loads(service.read_text()))
    soak = RESULTS / "soak.json"
    if soak.exists():
        lines += soak_section(json.loads(soak.read_text()))
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        print(f"README.md has no {START} ... {END} section", file=sys.stderr)
        return 1
    readme.write_text(pattern.sub(lambda _: render(), text))
    print(
        "README.md benchmark section rewritten from",
        ", ".join(p.name for p in RESULTS.glob("*.json")),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
