"""Write the benchmark tables of the docs from bench/results/*.json.

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

from app import docgen

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
DEPLOYING = ROOT / "docs" / "deploying.md"


def _us(value: float) -> str:
    return f"{value / 1000:.1f} ms" if value >= 1000 else f"{value:.1f} µs"


def _served_backend(report: dict[str, Any]) -> str:
    """The kernel backend that is the served graph (with attribution since format 4)."""
    names = {b["backend"] for b in report["backends"]}
    return "onnx-gridscore-served" if "onnx-gridscore-served" in names else "onnx-gridscore-guarded"


def kernel_section(report: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    batches = [t["batch"] for t in report["backends"][0]["timings"]]
    lines = [
        "### Kernel: sklearn vs ONNX",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}; {versions}. "
        f"One thread; each backend in a fresh process; {report['budget_s_per_cell']} s per cell; "
        "every call scores a different batch. Median per call (p99 in brackets); "
        "speed-ups compare medians from the same run; the overheads of the envelope guard and "
        "of the attribution targets compare two gridscore graphs with alternating calls in one "
        "process.",
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
    for name in ("onnx-gridscore", _served_backend(report)):
        ours = next(b for b in report["backends"] if b["backend"] == name)
        for base in ("sklearn", "onnx-stock"):
            cells = [f"{t[f'speedup_vs_{base}']:,.1f}x" for t in ours["timings"]]
            lines.append(f"| {name} speed-up vs {base} | " + " | ".join(cells) + " | |")
    overheads = {
        "guard": "envelope guard overhead (guarded vs onnx-gridscore)",
        "attribution": "attribution overhead (served vs guarded)",
    }
    for pair, title in overheads.items():
        if f"{pair}_overhead" in report:
            cells = [f"{v:+.1%}" for v in report[f"{pair}_overhead"].values()]
            lines.append(f"| {title} | " + " | ".join(cells) + " | |")
    lines += ["", "![latency per call against batch size](../bench/results/kernel.svg)", ""]
    return lines


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


def soak_section(report: dict[str, Any], title: str = "Soak") -> list[str]:
    runs = report.get("runs", [report])
    lines = [
        f"### {title}",
        "",
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}: `gridscore api` "
        f"with 2 workers, {len(runs)} run(s), each on a fresh server: capacity measured first "
        "(batch 10, 16 connections, the Python load generator on the same two cores), then an "
        f"open loop at 70 % of it for {report['duration_s']:.0f} s, latency counted from each "
        "request's due time.",
        "",
        "| run | capacity | soak rate | requests | errors | p50 | p99 | worst 5 s window p99 | "
        "RSS growth per worker |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, run in enumerate(runs, 1):
        s = run["summary"]
        errors = sum(s["errors_by_status"].values()) + sum(s["transport_errors"].values())
        worst = run.get("worst_window_p99_ms") or max(w["p99_ms"] for w in run["windows"])
        lines.append(
            f"| {index} | {run['capacity_requests_per_s']:,.0f} req/s | "
            f"{run['rate_requests_per_s']:,.0f} req/s | {s['requests']:,} | {errors} | "
            f"{s['p50_ms']:.2f} ms | {s['p99_ms']:.2f} ms | {worst:.2f} ms | "
            f"{', '.join(f'{g} MiB' for g in run['rss_growth_mib'])} |"
        )
    if all(run.get("paced_wrk") for run in runs):
        lines += [
            "",
            "Each run's rate again on the same server, from wrk (C, one thread): 64 connections, "
            "each waiting a random think time before each request, calibrated so that together "
            "they send about the soak's rate. A point of comparison, not the soak's measure: "
            "wrk takes less of a core than the Python generator, but it also runs after the "
            "soak, counts latency from each write rather than from a due time, and spreads "
            "its requests over all its connections.",
            "",
            "| run | rate | p50 | p99 | p99.9 | max | wrk's CPU | workers' CPU |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for index, run in enumerate(runs, 1):
            paced = run["paced_wrk"]
            lines.append(
                f"| {index} | {paced['requests_per_s']:,.0f} req/s | {paced['p50_ms']:.2f} ms | "
                f"{paced['p99_ms']:.2f} ms | {paced['p999_ms']:.2f} ms | "
                f"{paced['max_ms']:.2f} ms | {paced['client_cpu_pct']:.0f} % | "
                + "/".join(f"{c:.0f}" for c in paced["worker_cpu_pct"])
                + " % |"
            )
    shown = report["windows"]
    lines += [
        "",
        "p99 per 5-second window of the run with the median overall p99:",
        "",
        "| window | " + " | ".join(f"{w['from_s']:.0f} s" for w in shown) + " |",
        "|---|" + "---|" * len(shown),
        "| p99 (ms) | " + " | ".join(f"{w['p99_ms']:.1f}" for w in shown) + " |",
    ]
    if all("send_delay_p99_ms" in w for w in shown):
        lines.append(
            "| of which the generator sent late, p99 (ms) | "
            + " | ".join(f"{w['send_delay_p99_ms']:.1f}" for w in shown)
            + " |"
        )
    if all(w.get("server", {}).get("p99_under_ms") is not None for w in shown):
        rows = {
            "the workers' p99 under (ms)": [f"{w['server']['p99_under_ms']:g}" for w in shown],
            "workers' CPU (% of a core)": [
                "/".join(f"{c:.0f}" for c in w["worker_cpu_pct"]) for w in shown
            ],
            "generator's CPU (% of a core)": [f"{w['generator_cpu_pct']:.0f}" for w in shown],
        }
        if all("worker_preemptions" in w for w in shown):
            rows["workers' event loops preempted"] = [
                "/".join(str(n) for n in w["worker_preemptions"]) for w in shown
            ]
        if all("worker_waited_ms" in w for w in shown):
            rows["workers' event loops waited for a core (ms)"] = [
                "/".join(f"{n:.0f}" for n in w["worker_waited_ms"]) for w in shown
            ]
            rows["the generator's loop waited for a core (ms)"] = [
                f"{w['generator_waited_ms']:.0f}" for w in shown
            ]
        lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
        lines += [
            "",
            "The workers' p99 is the bound of the first bucket of their own "
            "`request_latency_seconds` histogram that holds 99 % of the window's requests: the "
            "time from the start of the handler (after the worker's event loop has read and "
            "parsed the request) to its answer. What the client sees beyond it waited outside "
            "the handler: in a socket or the worker's event loop, or in the generator. "
            "Preempted: how many times the kernel took the core from a worker's event loop "
            "while it could still run (involuntary context switches), to run something else. "
            "Waited for a core: how long, in the window's 5 s, the process's main thread was "
            "ready to run but had no core (the scheduler's run-queue delay, from "
            "`/proc/<pid>/schedstat`). "
            "Sent late: how long after its due time the generator wrote a request's first "
            "byte, the part of the client's latency the generator added itself (waiting for a "
            "core, or for a free connection).",
        ]
    lines.append("")
    return lines


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


def rolling_section(report: dict[str, Any]) -> list[str]:
    roll, kill = report["roll"], report["kill"]
    check = report["check"]
    lines = [
        f"`{report['command']}` on {report['date'][:10]}, {report['machine']}: "
        f"{report['instances']} scorers (one process each, "
        f"`DRAIN_SECONDS={report['drain_seconds']:g}`) "
        f"behind HAProxy checking `/health` every {check['interval_ms']} ms (out after "
        f"{check['fall']} failures, back after {check['rise']} successes), an open loop of "
        f"{report['rate_requests_per_s']:,.0f} requests/s through it. Balancer policy: "
        f"{report['retry_policy']}.",
        "",
        "| instance | SIGTERM to out of rotation | SIGTERM to exit | start to ready | "
        "ready to back in rotation |",
        "|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {step['instance']} | {step['out_of_rotation_s']:.2f} s | "
        f"{step['exited_s']:.2f} s | {step['replacement_ready_s']:.2f} s | "
        f"{step['back_in_rotation_s']:.2f} s |"
        for step in roll["steps"]
    )
    lines.append("")
    for title, part in (("rolling restart (SIGTERM, one at a time)", roll), ("SIGKILL", kill)):
        load = part["load"]
        lines.append(
            f"- **{title}**: {load['sent']:,} requests sent, **{load['failed']} failed**; "
            f"p50 / p99 while it lasted {load['during_p50_ms']:.2f} / "
            f"{load['during_p99_ms']:.2f} ms "
            f"(whole run {load['p50_ms']:.2f} / {load['p99_ms']:.2f} ms); the balancer retried "
            f"{part['balancer']['retries']} and redispatched {part['balancer']['redispatches']}."
        )
    lines.append(
        f"- The SIGKILL's bound: what one instance can hold in flight (`maxconn {kill['bound']}`);"
        f" the checks took it out {kill['out_of_rotation_s']:.2f} s after the kill, and the "
        f"restarted process was back in rotation {kill['replacement_ready_s']:.2f} + "
        f"{kill['back_in_rotation_s']:.2f} s later."
    )
    lines.append("")
    return lines


# Readings a device sends per second (FIELD facts: PMUs 30 frames/s typical, up to 60 and
# more; SCADA points every 2-4 s; smart meters every 15 minutes).
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
    return "\n".join(lines)


def render_headline() -> str:
    """The README's table: the served graph against scikit-learn, and the service's figures."""
    kernel, service, soak = _load("kernel"), _load("service"), _load("soak")
    lines = ["| measurement | figure |", "|---|---|"]
    if kernel:
        sklearn = next(b for b in kernel["backends"] if b["backend"] == "sklearn")
        served = next(b for b in kernel["backends"] if b["backend"] == _served_backend(kernel))
        for ours, theirs in zip(served["timings"], sklearn["timings"], strict=True):
            if ours["batch"] in (1, 100, 10_000):
                lines.append(
                    f"| score a batch of {ours['batch']:,} in-process: gridscore's graph "
                    f"(onnxruntime) / scikit-learn | {_us(ours['median_us'])} / "
                    f"{_us(theirs['median_us'])} "
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
    except ValueError as exc:
        print(f"bench.report: {exc}", file=sys.stderr)
        return 1
    print(
        "docs/benchmarks.md and the README headline rewritten from",
        ", ".join(p.name for p in sorted(RESULTS.glob("*.json"))),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
