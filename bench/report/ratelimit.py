"""The rate-limit section: a quiet client's latency alone, beside a noisy client held to its
limit, and beside the same client with no limit."""

from __future__ import annotations

from typing import Any

LABELS = {
    "alone": "quiet client alone",
    "noisy_limited": "beside the noisy client, limits on",
    "noisy_unlimited": "beside the noisy client, limits off",
}


def ratelimit_section(report: dict[str, Any]) -> list[str]:
    scenarios = report["scenarios"]
    rounds = len(scenarios["alone"]["quiet_p99_rounds"])
    limits, quiet, noisy = report["limits"], report["quiet"], report["noisy"]
    lines = [
        f"`{report['command']}`, {report['date'][:10]}, {report['machine']}. One worker with "
        f"`RATE_LIMIT_READINGS={limits['RATE_LIMIT_READINGS']}`, "
        f"`RATE_LIMIT_REQUESTS={limits['RATE_LIMIT_REQUESTS']}` per key. The quiet client posts "
        f"batch {quiet['batch']} at {quiet['rate']:g} requests/s; the noisy one (another key) "
        f"batches of {noisy['batch']:,} at {noisy['rate']:g} requests/s and ignores Retry-After "
        f"(open loops, {report['seconds']:g} s, each in a generator process of its own on the "
        f"server's two cores). Medians of {rounds} round{'s' if rounds != 1 else ''} taking the "
        "scenarios in turn (each round's quiet p99 in brackets), and the p99 of every round's "
        "latencies pooled; how late the quiet generator itself sent (p99: the client's share of "
        "its p99); the server's own count of `/predict` answers it took over 2.5 ms to give (the "
        "noisy client's scored batches among them); the worker's CPU from /proc.",
        "",
        "| scenario | quiet p50 | quiet p99 | quiet p99, pooled | quiet sent late (p99) "
        "| noisy requests scored / refused (429) | noisy readings scored/s "
        "| server: answers over 2.5 ms | worker CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in LABELS.items():
        row = scenarios[name]
        each = ", ".join(f"{r:.2f}" for r in row["quiet_p99_rounds"])
        noisy_cells = (
            f"{row['noisy_scored']:,.0f} / {row['noisy_refused']:,.0f} "
            f"| {row['noisy_readings_scored_per_s']:,.0f}"
            if "noisy_scored" in row
            else "- | -"
        )
        lines.append(
            f"| {label} | {row['quiet_p50_ms']:.3f} ms | {row['quiet_p99_ms']:.3f} ms ({each}) "
            f"| {row['quiet_pooled']['p99_ms']:.3f} ms ({row['quiet_pooled']['requests']:,}) "
            f"| {row['quiet_send_delay_p99_ms']:.3f} ms | {noisy_cells} "
            f"| {row['server_over_2_5ms']:,.0f} | {row['server_cpu']:.2f} |"
        )
    ratio, pooled = report["quiet_p99_ratio"], report["quiet_p99_ratio_pooled"]
    each = report["quiet_p99_ratio_rounds"]
    counted = scenarios["noisy_limited"]["rate_limited_last_round"]

    def spread(name: str) -> str:
        return f"{min(each[name]):.2f}-{max(each[name]):.2f}x"

    lines += [
        "",
        f"The quiet client's p99 beside the noisy one, against its p99 alone: with the limits on "
        f"{ratio['noisy_limited']:.2f}x (medians; pooled {pooled['noisy_limited']:.2f}x; round by "
        f"round {spread('noisy_limited')}), with them off {ratio['noisy_unlimited']:.2f}x "
        f"(pooled {pooled['noisy_unlimited']:.2f}x; {spread('noisy_unlimited')}). "
        "The server's "
        "count of its 429s in the last limited round (`rate_limited_total`, by client label and "
        "limit): "
        + (", ".join(f"`{k}` {v:,.0f}" for k, v in sorted(counted.items())) or "none")
        + ".",
    ]
    return lines
