"""The convert step on large exports: rows/s, stage times, memory."""

from __future__ import annotations

from typing import Any


def ingest_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "### Convert: large exports",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}: a feeder export "
        "(timestamp, site, three phase voltages, current, power factor, label) converted by "
        "`python -m convert --data` as a fresh process each; peak RSS from the kernel "
        "(`wait4`), stage times from the convert step's summary; 100,000 parity points.",
        "",
        "| file | rows | size | ingest (data stage) | rows/s | train | compile | verify | "
        "calibrate | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        s = run["seconds"]
        lines.append(
            f"| {run['format']} | {run['rows']:,} | {run['file_mib']:,.0f} MiB | "
            f"{s['data']:.1f} s | {run['ingest_rows_per_s']:,} | {s['train']:.1f} s "
            f"({run['training_rows']:,} rows) | {s['compile']:.1f} s | {s['verify']:.1f} s | "
            f"{s['calibrate']:.1f} s | {run['peak_rss_mib']:,.0f} MiB |"
        )
    lines.append("")
    return lines
