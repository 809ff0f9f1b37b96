"""Server-rendered SVG charts: the live readings with anomaly markers, and served_by bars.

Only SVG presentation attributes (no inline ``style``), so a strict Content-Security-Policy
needs no 'unsafe-inline'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 760
LEFT = 64
RIGHT = 12
COLORS = (
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)  # fmt: skip
RED, DARK_RED = "#d62728", "#7f0000"


def panel_height(panels: int) -> int:
    """Tall panels for a few features, shorter ones for many: 8 features stay on one screen."""
    return 120 if panels <= 4 else max(70, 480 // panels)


@dataclass(frozen=True)
class Point:
    """One scored reading as the chart needs it: its values in feature order, and verdict."""

    values: tuple[float, ...]
    anomaly: bool
    out_of_range: tuple[str, ...] = ()


def _triangle(x: float, y: float, size: float, tip: float) -> str:
    """Points of a triangle with its base at ``y`` and its tip ``tip`` pixels above/below."""
    return f"{x - size:.1f},{y:.1f} {x + size:.1f},{y:.1f} {x:.1f},{y + tip:.1f}"


def _label(x: float, y: float, text: str, anchor: str = "end", size: int = 10) -> str:
    return f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}">{text}</text>'


def _panel(
    points: Sequence[Point], index: int, window: int, feature: str, unit: str, height: int
) -> list[str]:
    color = COLORS[index % len(COLORS)]
    top = index * height
    plot_top, plot_bottom = top + 10, top + height - 16
    values: list[float] = [p.values[index] for p in points]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    span_x = WIDTH - LEFT - RIGHT
    step = span_x / max(window - 1, 1)
    offset = window - len(points)  # the newest point sits at the right edge

    def x(i: int) -> float:
        return LEFT + (i + offset) * step

    def y(v: float) -> float:
        return plot_bottom - (v - low) / (high - low) * (plot_bottom - plot_top)

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    out = [
        f'<g class="panel" data-feature="{escape(feature)}">',
        f'<rect x="{LEFT}" y="{plot_top}" width="{span_x}" height="{plot_bottom - plot_top}" '
        'fill="#fafafa" stroke="#ccc"/>',
        f'<text x="{LEFT + 6}" y="{plot_top + 13}" font-size="12" font-weight="bold" '
        f'fill="#444">{escape(feature)}</text>',
        _label(LEFT - 4, plot_top + 10, f"{high:.4g} {escape(unit)}"),
        _label(LEFT - 4, plot_bottom, f"{low:.4g} {escape(unit)}"),
        f'<polyline fill="none" stroke-width="1.5" stroke="{color}" points="{line}"/>',
    ]
    for i, point in enumerate(points):
        if not point.anomaly:
            continue
        px, py = x(i), y(values[i])
        breach = next((n for n in point.out_of_range if n.startswith(f"{feature}_")), None)
        if breach:
            # The feature that left its envelope: a larger triangle pointing the way it went.
            tip = -9 if breach.endswith("_high") else 9
            out.append(
                f'<polygon class="anomaly breach" data-breach="{escape(breach)}" fill="{RED}" '
                f'stroke="{DARK_RED}" points="{_triangle(px, py, 6, tip)}"/>'
            )
        else:
            out.append(
                f'<polygon class="anomaly" fill="{RED}" points="{_triangle(px, py + 4, 4, -8)}"/>'
            )
    out.append("</g>")
    return out


def readings_chart(
    points: Sequence[Point], window: int, features: Sequence[tuple[str, str]]
) -> str:
    """One stacked panel per feature (name, unit), with red triangles on anomalies."""
    each = panel_height(len(features))
    height = each * max(len(features), 1)
    out = [
        f'<svg class="readings-chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="live readings">'
    ]
    if points:
        for index, (feature, unit) in enumerate(features):
            out.extend(_panel(points, index, window, feature, unit, each))
    else:
        out.append(_label(WIDTH / 2, height / 2, "no readings yet", "middle", 14))
    out.append("</svg>")
    return "".join(out)


def served_by_bars(counts: dict[str, int]) -> str:
    """Horizontal bars: how many responses each instance served."""
    if not counts:
        return '<p class="muted">no responses yet</p>'
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    peak = max(counts.values())
    bar, label_width, width = 18, 200, 420
    out = [
        f'<svg class="served-by" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {bar * len(rows) + 4}" width="{width}" role="img" '
        'aria-label="responses per instance">'
    ]
    for i, (name, count) in enumerate(rows):
        length = (width - label_width - 50) * count / peak
        top = i * bar + 2
        out.append(
            f'<g class="bar" data-instance="{escape(name)}" data-count="{count}">'
            + _label(label_width - 6, top + 13, escape(name), size=11)
            + f'<rect x="{label_width}" y="{top + 2}" width="{length:.1f}" height="{bar - 5}" '
            'fill="#1f77b4"/>'
            + _label(round(label_width + length + 4, 1), top + 13, str(count), "start", 11)
            + "</g>"
        )
    out.append("</svg>")
    return "".join(out)


LEVEL_COLORS = {"stable": "#2ca02c", "slight": "#bcbd22", "moderate": "#ff7f0e"}


def psi_bars(rows: Sequence[tuple[str, float | None, str]], marks: Sequence[float]) -> str:
    """Horizontal bars: PSI per feature (name, PSI or None, level), with the thresholds in
    ``marks`` drawn as dashed lines. The scale reaches at least 0.5 so small values look small."""
    if not rows:
        return '<p class="muted">the served model has no drift bins (an older artifact)</p>'
    if all(value is None for _, value, _ in rows):
        # Nothing scored in the window yet: one line, not a "no data" per bar over an axis.
        return '<p class="muted" id="drift-empty">no readings scored in this window yet</p>'
    bar, label_width, width = 20, 130, 520
    span = width - label_width - 60
    peak = max([0.5, *(value for _, value, _ in rows if value is not None)])
    height = bar * len(rows) + 16
    out = [
        f'<svg class="psi-bars" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" role="img" '
        'aria-label="population stability index per feature">'
    ]
    for i, (name, value, level) in enumerate(rows):
        top = i * bar + 2
        shown = "no data" if value is None else f"{value:.3f}"
        exact = "" if value is None else f"{value:.6f}"
        length = 0.0 if value is None else span * value / peak
        out.append(
            f'<g class="psi" data-feature="{escape(name)}" data-psi="{exact}" data-level="{level}">'
            + _label(label_width - 6, top + 14, escape(name), size=12)
            + f'<rect x="{label_width}" y="{top + 3}" width="{length:.1f}" height="{bar - 6}" '
            f'fill="{LEVEL_COLORS.get(level, RED)}"/>'
            + _label(
                round(label_width + length + 4, 1),
                top + 14,
                shown if value is None else f"{shown} {level}",
                "start",
                11,
            )
            + "</g>"
        )
    for mark in marks:
        x = label_width + span * mark / peak
        out.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 14}" stroke="#999" '
            'stroke-dasharray="3,3"/>' + _label(round(x, 1), height - 3, f"{mark:g}", "middle", 9)
        )
    out.append("</svg>")
    return "".join(out)


def share_bar(shares: dict[str, float], features: Sequence[str], width: int = 120) -> str:
    """One small stacked bar: each feature's share of a reading's attribution, in the
    features' chart colours, the title naming each share."""
    if not shares:
        return ""
    out = [
        f'<svg class="share-bar" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 10" '
        f'width="{width}" height="10" role="img" aria-label="attribution">'
    ]
    x = 0.0
    for index, name in enumerate(features):
        share = shares.get(name, 0.0)
        if share <= 0:
            continue
        length = width * share
        out.append(
            f'<rect x="{x:.1f}" y="0" width="{length:.1f}" height="10" '
            f'fill="{COLORS[index % len(COLORS)]}" data-feature="{escape(name)}">'
            f"<title>{escape(name)} {share * 100:.0f} %</title></rect>"
        )
        x += length
    out.append("</svg>")
    return "".join(out)
