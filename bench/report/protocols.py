"""The wire formats compared (``/predict``, v2 JSON, v2 binary), and the capacity table
docs/deploying.md plans fleets with."""

from __future__ import annotations

from typing import Any


def protocols_section(report: dict[str, Any]) -> list[str]:
    names = {"predict": "`/predict` JSON", "v2-json": "v2 JSON tensor", "v2-binary": "v2 binary"}
    protocols = list(dict.fromkeys(row["protocol"] for row in report["table"]))
    batches = list(dict.fromkeys(row["batch"] for row in report["table"]))
    cell = {(row["protocol"], row["batch"]): row for row in report["table"]}
    lines = [
        "### Protocols",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}. One worker; wrk, "
        f"{report['connections']} connections, closed loop, {report['seconds_per_cell']:g} s per "
        f"cell, median of {report['rounds']} rounds with the formats interleaved; the same "
        "readings in every format (the three answers' scores checked equal first: "
        f"{'equal at every batch size' if all(report['same_scores'].values()) else 'NOT EQUAL'})."
        " The v2 requests ask for `score` and `anomaly`; `/predict` runs with `explain=false`. "
        "Requests/s, rows/s in brackets:",
        "",
        "| format | " + " | ".join(f"batch {b:,}" for b in batches) + " |",
        "|---|" + "---|" * len(batches),
    ]
    for protocol in protocols:
        cells = [
            f"{cell[protocol, b]['requests_per_s']:,.0f} ({cell[protocol, b]['rows_per_s']:,.0f})"
            for b in batches
        ]
        lines.append(f"| {names.get(protocol, protocol)} | " + " | ".join(cells) + " |")
    for protocol in protocols[1:]:
        ratios = [
            cell[protocol, b]["requests_per_s"] / cell[protocols[0], b]["requests_per_s"]
            for b in batches
        ]
        lines.append(
            f"| {names.get(protocol, protocol)} / {names[protocols[0]]} | "
            + " | ".join(f"{r:.2f}x" for r in ratios)
            + " |"
        )
    lines += [
        "",
        "Decoding a 10,000-reading body (each format's `decode`, in-process, median of 30) "
        "against that request's median latency alone (one connection), and what a Python "
        "client holding the readings as a float32 matrix pays to encode the body (median of 10):",
        "",
        "| format | body | decode | request p50 | decode share | client encode |",
        "|---|---|---|---|---|---|",
    ]
    for protocol, figures in report["decode_10000"].items():
        size = cell[protocol, 10_000]["body_bytes"]
        lines.append(
            f"| {names.get(protocol, protocol)} | {size / 1024:,.0f} KiB | "
            f"{figures['decode_ms']:.2f} ms | {figures['request_p50_ms']:.1f} ms | "
            f"{figures['decode_share']:.1%} | "
            f"{figures['client_encode_ms']:.1f} ms |"
        )
    lines.append("")
    return lines


FLEETS = (
    ("PMUs at 30 frames/s", 30.0),
    ("PMUs at 60 frames/s", 60.0),
    ("SCADA points every 2 s", 0.5),
    ("smart meters every 15 min", 1 / 900),
)
PLAN_AT = 0.7  # plan a pod at 70 % of what it can do, as the soak runs it


def capacity_section(report: dict[str, Any]) -> list[str]:
    rows = {
        row["batch"]: row["rows_per_s"]
        for row in report["table"]
        if row["protocol"] == "predict" and row["batch"] in (1, 100, 1_000)
    }
    lines = [
        f"Rows/s of one pod (one scorer process on one core) from `{report['command']}` on "
        f"{report['date'][:10]} (`/predict`, 8 connections), times the HPA's 1 to 5 pods "
        "(pods are independent processes: linear, given a core each):",
        "",
        "| batch | " + " | ".join(f"{n} pod{'s' if n > 1 else ''}" for n in range(1, 6)) + " |",
        "|---|" + "---|" * 5,
    ]
    for batch, per_pod in rows.items():
        lines.append(
            f"| {batch:,} | " + " | ".join(f"{per_pod * n:,.0f}" for n in range(1, 6)) + " |"
        )
    lines += [
        "",
        f"Devices scored in real time at {PLAN_AT:.0%} of that (the headroom the soak keeps), "
        "by how their readings arrive: a phasor data concentrator or a SCADA front end batches "
        "what it gathers, so 100 and 1,000 are the realistic batch sizes; batch 1 is a device "
        "posting each reading on its own.",
        "",
        "| fleet | " + " | ".join(f"batch {b:,}: 1 pod / 5 pods" for b in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for name, rate in FLEETS:
        cells = [
            f"{per_pod * PLAN_AT / rate:,.0f} / {5 * per_pod * PLAN_AT / rate:,.0f}"
            for per_pod in rows.values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines
