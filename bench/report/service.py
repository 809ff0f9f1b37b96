"""The service benchmark's sections: the HTTP floor, request order, throughput and latency,
and where a batch-1 request's time goes (the profile)."""

from __future__ import annotations

from typing import Any


def http_floor_section(report: dict[str, Any]) -> list[str]:
    floor = report.get("http_floor_1_worker")
    if not floor:
        return []
    rounds = next(iter(floor.values()))["rounds"]
    baseline = report.get("baseline")
    lines = [
        "### Service, one worker: the HTTP floor, `/live` and `/predict`",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}. One worker "
        "(`gridscore api`), driven by wrk (C, one thread, 8 connections, closed loop, 10 s), "
        f"the median of {rounds} rounds with the targets interleaved in each round; the bare "
        "ASGI app (`bench/bare_asgi.py`) runs under the same uvicorn, loop and protocol."
        + (
            f" *baseline* is the commit `{baseline}`, measured in the same rounds."
            if baseline
            else ""
        ),
        "",
        "| target | requests/s | rows/s | p50 | p99 | p99.9 | p99 / p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in floor.items():
        rows = f"{row['rows_per_s']:,.0f}" if "rows_per_s" in row else ""
        lines.append(
            f"| {name.replace('_', ' ')} | {row['requests_per_s']:,.0f} | {rows} | "
            f"{row['p50_ms']:.3f} ms | {row['p99_ms']:.3f} ms | {row['p999_ms']:.3f} ms | "
            f"{row['p99_ms'] / row['p50_ms']:.2f} |"
        )
    lines.append("")
    ratios = []
    for batch in ("1", "100", "1000", "10000"):
        now, before = (
            floor.get(f"predict_batch_{batch}"),
            floor.get(f"baseline_predict_batch_{batch}"),
        )
        if now and before:
            ratios.append(
                f"batch {int(batch):,}: {now['requests_per_s'] / before['requests_per_s']:.2f}x"
            )
    live = floor.get("live")
    one = floor.get("predict_batch_1")
    if ratios:
        lines.append("Requests/s against the baseline, same rounds: " + ", ".join(ratios) + ".")
    if live and one:
        lines.append(
            f"`/predict` at batch 1 runs at {one['requests_per_s'] / live['requests_per_s']:.0%} "
            "of `/live`'s rate."
        )
    lines.append("")
    gc_runs = report.get("gc_1_worker")
    if gc_runs:
        lines += [
            "Garbage collection, one worker, 10 s of wrk at batch 1 then batch 100 each "
            "(`GC_FREEZE=0` is Python's defaults):",
            "",
            "| | collections under load (gen 0/1/2) | their total pause | p99 batch 1 / 100 | "
            "RSS before / after load |",
            "|---|---|---|---|---|",
        ]
        for name, row in gc_runs.items():
            counts = "/".join(str(row["collections"].get(g, 0)) for g in "012")
            pause = sum(row["pause_total_ms"].values())
            lines.append(
                f"| `{name.upper().replace('GC_FREEZE_', 'GC_FREEZE=')}` | {counts} | "
                f"{pause:.1f} ms | {row['p99_ms']['1']:.2f} / {row['p99_ms']['100']:.2f} ms | "
                f"{row['rss_mib_before']} / {row['rss_mib_after']} MiB |"
            )
        startup = gc_runs.get("gc_freeze_1", {}).get("startup")
        shadow = report.get("shadow_1_worker")
        if startup:
            lines += [
                "",
                f"A full collection of a worker's heap after start-up: "
                f"{startup['full_collection_ms_before']:.1f} ms; after freezing its "
                f"{startup['objects_frozen']:,} objects: "
                f"{startup['full_collection_ms_after']:.3f} ms.",
            ]
        lines.append("")
        if shadow:
            off, on = shadow["shadow_off_c1"], shadow["shadow_on_c1"]
            sat_off, sat_on = shadow["shadow_off_c8"], shadow["shadow_on_c8"]
            lines += [
                "Shadow scoring, one worker, batch 1, the same rounds with `SHADOW_DIGEST` off "
                "and on:",
                "",
                "| | one connection: p50 / p99 | 8 connections: requests/s, p50 / p99 |",
                "|---|---|---|",
                f"| shadow off | {off['p50_ms']:.3f} / {off['p99_ms']:.3f} ms | "
                f"{sat_off['requests_per_s']:,.0f}, {sat_off['p50_ms']:.3f} / "
                f"{sat_off['p99_ms']:.3f} ms |",
                f"| shadow on | {on['p50_ms']:.3f} / {on['p99_ms']:.3f} ms | "
                f"{sat_on['requests_per_s']:,.0f}, {sat_on['p50_ms']:.3f} / "
                f"{sat_on['p99_ms']:.3f} ms |",
                "",
                "p50 on one connection, shadow on against off: "
                f"{on['p50_ms'] / off['p50_ms'] - 1:+.1%}.",
                "",
            ]
    return lines + request_order_section(report)


def request_order_section(report: dict[str, Any]) -> list[str]:
    order = report.get("request_order_1_worker")
    if not order:
        return []
    lines = [
        "Start order, one worker, wrk closed loop, the same rounds with `REQUEST_ORDER=poll` "
        "(uvicorn's: the order the event loop reports the sockets) and `fair` (the default: "
        "least recently served connection first; see above):",
        "",
        "| batch, connections | order | requests/s | p50 | p99 | p99.9 | p99 / p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    cells = dict.fromkeys(name.split("_", 1)[1] for name in order)
    for cell in cells:
        _, batch, connections = cell.split("_")
        for name in ("poll", "fair"):
            row = order[f"{name}_{cell}"]
            lines.append(
                f"| {int(batch):,}, {connections[1:]} | `{name}` | {row['requests_per_s']:,.0f} | "
                f"{row['p50_ms']:.3f} ms | {row['p99_ms']:.3f} ms | {row['p999_ms']:.3f} ms | "
                f"{row['p99_ms'] / row['p50_ms']:.2f} |"
            )
    return [*lines, ""]


def service_section(report: dict[str, Any]) -> list[str]:
    lines = [
        *http_floor_section(report),
        "### Service, two workers",
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


def profile_section(report: dict[str, Any]) -> list[str]:
    columns = [name for name in ("baseline", "current") if name in report]
    lines = [
        "### Where a batch-1 request's time goes",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}: one worker "
        "under wrk (batch 1, 8 connections), sampled by py-spy at 500 Hz for 8 s; each "
        "sample is charged to the part of the path its innermost frame belongs to, and a "
        "part's share of the samples times the time per request gives microseconds per request."
        + (f" *baseline* is `{report['baseline_commit']}`." if "baseline_commit" in report else ""),
        "",
        "| part | " + " | ".join(f"{c} (µs)" for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    parts = list(report[columns[-1]]["parts_us"])
    lines.extend(
        f"| {part} | "
        + " | ".join(f"{report[c]['parts_us'].get(part, 0):.1f}" for c in columns)
        + " |"
        for part in parts
    )
    lines.append(
        "| **per request** | "
        + " | ".join(
            f"**{report[c]['per_request_us']:.1f}** ({report[c]['requests_per_s']:,} req/s)"
            for c in columns
        )
        + " |"
    )
    lines.append("")
    return lines
