"""The calibration report as a picture: where the threshold sits, and what it trades.

Left: the served scores of held-out normal rows and labelled anomalies, with the threshold.
Right: precision against recall with the chosen point (with labels), or the false alarm rate
(alarms per hour when the reading rate is known) against the threshold, with the budget.
"""

from __future__ import annotations

import io
from typing import Any


def render_svg(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "gridscore"  # stable element ids: same report, same file
    summary = report["summary"]
    threshold = summary["threshold"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))

    occupied: list[float] = [threshold]
    for key, label, color in (
        ("normal_histogram", "held-out normal rows", "#1f77b4"),
        ("anomaly_histogram", "labelled anomalies", "#d62728"),
    ):
        histogram = report.get(key)
        if not histogram:
            continue
        edges, counts = histogram["edges"], histogram["counts"]
        beyond = histogram.get("out_of_range", 0)
        if beyond:
            label += f" (+{beyond} out of range)"
        left.stairs(counts, edges, label=label, color=color, fill=True, alpha=0.35)
        left.stairs(counts, edges, color=color)
        occupied += [edges[i] for i, c in enumerate(counts) if c] + [
            edges[i + 1] for i, c in enumerate(counts) if c
        ]
    left.set_xlim(max(0.0, min(occupied) - 0.03), min(1.0, max(occupied) + 0.03))
    left.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4f}")
    left.set_yscale("symlog", linthresh=1)
    left.set_xlabel("score (higher is more anomalous)")
    left.set_ylabel("rows")
    left.set_title("Score distributions")
    left.legend(loc="upper left", fontsize=8)

    curve = report["curve"]
    if "precision" in curve:
        right.plot(curve["recall"], curve["precision"], color="#2ca02c")
        if summary["recall"] is not None:
            right.plot(
                [summary["recall"]],
                [summary["precision"]],
                "o",
                color="black",
                label=f"chosen: precision {summary['precision']:.3f}, "
                f"recall {summary['recall']:.3f}",
            )
        right.set_xlabel("recall")
        right.set_ylabel("precision")
        right.set_xlim(0, 1.02)
        right.set_ylim(0, 1.02)
        right.set_title("Precision and recall (evaluation half)")
    else:
        rate = summary["reading_rate_per_s"]
        scale, unit = (
            (rate * 3600.0, "false alarms per hour") if rate else (1.0, "false alarm rate")
        )
        values = [v * scale for v in curve["false_alarm_rate"]]
        right.plot(curve["threshold"], values, color="#2ca02c")
        if summary["false_alarm_rate"] is not None:
            right.plot(
                [threshold],
                [summary["false_alarm_rate"] * scale],
                "o",
                color="black",
                label=f"chosen: {summary['false_alarm_rate'] * scale:.3g} {unit}",
            )
        budget = report.get("budget_rate_per_reading")
        if budget:
            right.axhline(budget * scale, color="#d62728", linestyle=":", label="budget")
        right.set_yscale(
            "symlog",
            linthresh=max(min(v for v in values if v > 0), 1e-6)
            if any(v > 0 for v in values)
            else 1e-6,
        )
        right.set_xlabel("threshold")
        right.set_ylabel(unit)
        right.set_title("False alarms on held-out normal rows")
    if right.get_legend_handles_labels()[0]:
        right.legend(loc="best", fontsize=8)
    figure.suptitle(
        f"gridscore calibration: {summary['method']} ({summary['target']})", fontsize=10
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()
