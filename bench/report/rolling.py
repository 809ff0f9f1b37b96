"""The rolling restart and SIGKILL behind HAProxy: failures and timings."""

from __future__ import annotations

from typing import Any


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
