"""The kernel benchmark's section: per-call latency of each backend at each batch size."""

from __future__ import annotations

from typing import Any

from bench.report.common import served_backend, us


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
        cells = [f"{us(t['median_us'])} ({us(t['p99_us'])})" for t in backend["timings"]]
        parity = backend["parity"]
        lines.append(
            f"| {backend['backend']} | "
            + " | ".join(cells)
            + f" | max diff {parity['max_abs_score_diff']:.1e}, "
            f"{parity['label_mismatches_outside_band']} label mismatches |"
        )
    for name in ("onnx-gridscore", served_backend(report)):
        ours = next(b for b in report["backends"] if b["backend"] == name)
        for base in ("sklearn", "onnx-stock"):
            cells = [f"{t[f'speedup_vs_{base}']:,.1f}x" for t in ours["timings"]]
            lines.append(f"| {name} speed-up vs {base} | " + " | ".join(cells) + " | |")
    overheads = {
        "guard": "envelope guard overhead (guarded vs onnx-gridscore)",
        "attribution": "attribution overhead (served vs guarded)",
        "sorted": "rows sorted from 32 rows, every attribution (served-sorted vs served)",
        "flagged": "the service's default from 32 rows: score with rows sorted, flagged rows' "
        "attribution (flagged vs served)",
    }
    for pair, title in overheads.items():
        if f"{pair}_overhead" in report:
            cells = [f"{v:+.1%}" for v in report[f"{pair}_overhead"].values()]
            lines.append(f"| {title} | " + " | ".join(cells) + " | |")
    lines += ["", "![latency per call against batch size](../bench/results/kernel.svg)", ""]
    return lines
