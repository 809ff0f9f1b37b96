"""The TLS section: batch-1 /predict on kept-alive connections, plain and HTTPS (and a baseline
checkout, plain), with the worker's CPU per request."""

from __future__ import annotations

from typing import Any

LABELS = {
    "baseline_plain": "baseline commit, plain HTTP",
    "plain": "this commit, plain HTTP",
    "tls": "this commit, HTTPS",
}


def tls_section(report: dict[str, Any]) -> list[str]:
    targets = report["targets"]
    rounds = len(targets["plain"]["rounds"])
    lines = [
        f"`{report['command']}`, {report['date'][:10]}, {report['machine']}. One worker, wrk "
        f"(one thread, 8 kept-alive connections, {report['seconds']:g} s) at batch 1; medians of "
        f"{rounds} round{'s' if rounds != 1 else ''} taking the targets in turn (each round's "
        "requests/s in brackets); the worker's CPU per request from /proc.",
        "",
        "| target | requests/s | p50 | p99 | worker CPU per request |",
        "|---|---|---|---|---|",
    ]
    for name, label in LABELS.items():
        row = targets.get(name)
        if row is None:
            continue
        each = ", ".join(f"{r:,.0f}" for r in row["rounds"])
        lines.append(
            f"| {label} | {row['requests_per_s']:,.0f} ({each}) | {row['p50_ms']:.3f} ms "
            f"| {row['p99_ms']:.3f} ms | {row['server_cpu_us_per_request']:.1f} µs |"
        )
    cost = report["tls_cost"]
    lines += [
        "",
        f"HTTPS on a kept-alive connection: {cost['requests_per_s_ratio']:.3f}x the plain "
        f"requests/s, p50 {cost['p50_added_ms']:+.3f} ms, "
        f"{cost['server_cpu_added_us_per_request']:+.1f} µs of the worker's CPU per request.",
    ]
    if "plain_vs_baseline" in report:
        commit = report.get("baseline_commit")
        lines[-1] += (
            f" Plain HTTP against the baseline commit{f' ({commit})' if commit else ''}: "
            f"{report['plain_vs_baseline']:.3f}x requests/s."
        )
    return lines
