"""The soak's section: capacity, the open loop at 70 % of it, windows, memory, CPU."""

from __future__ import annotations

from typing import Any


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
