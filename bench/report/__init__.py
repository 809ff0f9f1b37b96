"""Write the benchmark tables of the docs from bench/results/*.json, one module per report.

python -m bench.report     # rewrites docs/benchmarks.md's tables, the README's headline, and
                           # docs/deploying.md's rolling-restart and capacity tables

Both are generated parts (app/docgen.py): the JSON files are the record, the tables are
rendered from them, and a test fails when a page differs from what the JSON gives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from app.harness import docgen
from bench.report.ab import ab_section
from bench.report.common import served_backend, us
from bench.report.ingest import ingest_section
from bench.report.kernel import kernel_section
from bench.report.protocols import capacity_section, protocols_section
from bench.report.ratelimit import ratelimit_section
from bench.report.rolling import rolling_section
from bench.report.service import profile_section, service_section
from bench.report.soak import soak_section
from bench.report.stream import stream_section
from bench.report.tls import tls_section

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
DEPLOYING = ROOT / "docs" / "deploying.md"
STREAM = ROOT / "docs" / "stream.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def render() -> str:
    """docs/benchmarks.md's generated part: every table, from the JSON files present."""
    lines = [
        "Regenerate with `python -m bench.kernel && python -m bench.service && "
        "python -m bench.soak && python -m bench.ingest && python -m bench.protocols && "
        "python -m bench.report`.",
        "",
    ]
    kernel, service, soak = _load("kernel"), _load("service"), _load("soak")
    if kernel:
        lines += kernel_section(kernel)
    if service:
        lines += service_section(service)
    profiled = _load("profile")
    if profiled:
        lines += profile_section(profiled)
    if soak:
        lines += soak_section(soak)
    before = _load("soak-baseline")
    if before:
        lines += soak_section(before, "Soak, the same run on the baseline commit")
    ingest = _load("ingest")
    if ingest:
        lines += ingest_section(ingest)
    protocols = _load("protocols")
    if protocols:
        lines += protocols_section(protocols)
    stream = _load("stream")
    if stream:
        lines += ["### Stream", "", *stream_section(stream)]
    tls = _load("tls")
    if tls:
        lines += ["### TLS", "", *tls_section(tls)]
    ratelimit = _load("ratelimit")
    if ratelimit:
        lines += [
            "",
            "### Rate limits: a quiet client beside a noisy one",
            "",
            *ratelimit_section(ratelimit),
        ]
    for path in sorted(RESULTS.glob("ab-*.json")):
        lines += ["", *ab_section(json.loads(path.read_text()))]
    return "\n".join(lines)


def render_headline() -> str:
    """The README's table: the served graph against scikit-learn, and the service's figures."""
    kernel, service, soak = _load("kernel"), _load("service"), _load("soak")
    lines = ["| measurement | figure |", "|---|---|"]
    if kernel:
        sklearn = next(b for b in kernel["backends"] if b["backend"] == "sklearn")
        served = next(b for b in kernel["backends"] if b["backend"] == served_backend(kernel))
        for ours, theirs in zip(served["timings"], sklearn["timings"], strict=True):
            if ours["batch"] in (1, 100, 10_000):
                lines.append(
                    f"| score a batch of {ours['batch']:,} in-process: gridscore's graph "
                    f"(onnxruntime) / scikit-learn | {us(ours['median_us'])} / "
                    f"{us(theirs['median_us'])} "
                    f"({ours['speedup_vs_sklearn']:,.1f}x) |"
                )
    if service:
        one = service["single_connection_2_workers"]["1"]
        lines.append(
            f"| `/predict` batch 1, one keep-alive connection: p50 / p99 | "
            f"{one['p50_ms']:.3f} ms / {one['p99_ms']:.3f} ms |"
        )
        lines.extend(
            f"| `/predict`, 2 workers, {row['connections']} connections, "
            f"batch {row['batch']:,} | "
            f"{row['requests_per_s']:,.0f} req/s, {row['rows_per_s']:,.0f} rows/s |"
            for row in service["throughput_2_workers"]
        )
    stream = _load("stream")
    if stream:
        for key, label in (
            ("throughput_1_per_message", "1 reading"),
            ("throughput_100_per_message", "100 readings"),
        ):
            lines.append(
                f"| stream, one worker, {label} per message (broker on the same machine) | "
                f"{stream[key]['readings_per_s']:,.0f} readings/s |"
            )
        latency = stream["latency_at_70_pct"]
        lines.append(
            f"| stream at {latency['rate_per_s']:,.0f} readings/s: publish-to-verdict p50 / p99 | "
            f"{latency['p50_ms']:.1f} ms / {latency['p99_ms']:.1f} ms |"
        )
    if soak:
        summary = soak["summary"]
        lines.append(
            f"| soak, {soak['rate_requests_per_s']:,.0f} req/s for {soak['duration_s']:.0f} s: "
            f"p50 / p99 | {summary['p50_ms']:.2f} ms / {summary['p99_ms']:.2f} ms |"
        )
    machine = (kernel or service or {}).get("machine", "")
    lines += ["", f"Medians on {machine}; method and every figure in docs/benchmarks.md."]
    return "\n".join(lines)


def main() -> int:
    try:
        docgen.replace(BENCHMARKS, "bench", render())
        docgen.replace(README, "headline", render_headline())
        rolling, protocols = _load("rolling"), _load("protocols")
        if rolling:
            docgen.replace(DEPLOYING, "rolling", "\n".join(rolling_section(rolling)))
        if protocols:
            docgen.replace(DEPLOYING, "capacity", "\n".join(capacity_section(protocols)))
        stream = _load("stream")
        if stream:
            docgen.replace(STREAM, "stream", "\n".join(stream_section(stream)))
    except ValueError as exc:
        print(f"bench.report: {exc}", file=sys.stderr)
        return 1
    print(
        "docs/benchmarks.md and the README headline rewritten from",
        ", ".join(p.name for p in sorted(RESULTS.glob("*.json"))),
    )
    return 0
