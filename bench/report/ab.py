"""The A/B sections: two checkouts' /predict requests/s in the same rounds (bench/ab.py)."""

from __future__ import annotations

from typing import Any


def _commit(described: str) -> str:
    """The commit of a checkout's description (``<hash> <subject>``; the subject is cut)."""
    return described.split(" ", 1)[0]


def ab_section(report: dict[str, Any]) -> list[str]:
    rounds = len(next(iter(report["batches"].values()))["ratio_rounds"])
    lines = [
        f"### {report['title']}",
        "",
        f"`{report['command']}`, {report['date'][:10]}, {report['machine']}. Before: "
        f"{_commit(report['before'])}, after: {_commit(report['after'])}. One worker each, wrk "
        f"(one thread, 8 connections, {report['seconds']:g} s) per batch size; medians of "
        f"{rounds} rounds, the checkouts taken in turn (each round's after/before in brackets).",
        "",
        "| batch | before requests/s | after requests/s | after/before |",
        "|---|---|---|---|",
    ]
    for batch, row in report["batches"].items():
        each = ", ".join(f"{r:.3f}" for r in row["ratio_rounds"])
        lines.append(
            f"| {int(batch):,} | {row['before_requests_per_s']:,.0f} "
            f"| {row['after_requests_per_s']:,.0f} | {row['ratio']:.3f} ({each}) |"
        )
    return [*lines, ""]
