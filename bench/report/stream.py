"""The stream benchmark's section: one worker's readings/s through the broker, publish-to-verdict
at 70 % of it, and /predict on one worker beside it."""

from __future__ import annotations

from typing import Any


def stream_section(report: dict[str, Any]) -> list[str]:
    one, hundred = report["throughput_1_per_message"], report["throughput_100_per_message"]
    latency = report["latency_at_70_pct"]
    predict = report["predict_one_worker"]
    runs = len(one["runs"])
    lines = [
        f"`{report['command']}`, {report['date'][:10]}, {report['machine']}; broker and worker "
        f"on this machine, one worker process; medians of {runs} run"
        f"{'s' if runs != 1 else ''} (every run's figure in brackets).",
        "",
        "| one worker | readings/s | worker CPU | broker CPU |",
        "|---|---|---|---|",
    ]
    for label, row in (("1 reading per message", one), ("100 readings per message", hundred)):
        each = ", ".join(f"{r:,.0f}" for r in row["runs"])
        lines.append(
            f"| {label} | {row['readings_per_s']:,.0f} ({each}) | {row['worker_cpu']:.2f} "
            f"| {row['broker_cpu']:.2f} |"
        )
    for batch in ("1", "100"):
        row = predict[batch]
        lines.append(
            f"| `/predict`, one worker, batch {batch} (wrk, 8 connections) | "
            f"{row['readings_per_s']:,.0f} | | |"
        )
    view = latency["worker_view"]
    p99s = ", ".join(f"{r:.1f}" for r in latency["runs"])
    lines += [
        "",
        f"Publish-to-verdict at {latency['rate_per_s']:,.0f} readings/s (70 % of the first row), "
        f"one reading per message, for {latency['seconds']:.0f} s, as the publishing client saw "
        f"it (its send time in the message id, the verdict's arrival on a subscription):",
        "",
        "| p50 | p99 | worst 5 s window's p99 | max | worker's own p99 (histogram bucket) | "
        "worker CPU | broker CPU | client CPU |",
        "|---|---|---|---|---|---|---|---|",
        f"| {latency['p50_ms']:.1f} ms | {latency['p99_ms']:.1f} ms ({p99s}) | "
        f"{latency['worst_window_p99_ms']:.1f} ms | {latency['max_ms']:.1f} ms | "
        f"<= {view['p99_le_ms']:g} ms | {latency['worker_cpu']:.2f} | "
        f"{latency['broker_cpu']:.2f} | {latency['client_cpu']:.2f} |",
        "",
    ]
    return lines
