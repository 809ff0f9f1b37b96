"""A small log-log line chart as standalone SVG, for the benchmark figures in docs/benchmarks.md."""

from __future__ import annotations

import math
from html import escape

COLORS = ("#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
WIDTH, HEIGHT = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 80, 200, 40, 60


def _decades(low: float, high: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def loglog(
    series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str, title: str
) -> str:
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    xticks, yticks = _decades(min(xs), max(xs)), _decades(min(ys), max(ys))
    lx0, lx1 = math.log10(xticks[0]), math.log10(xticks[-1])
    ly0, ly1 = math.log10(yticks[0]), math.log10(yticks[-1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - lx0) / (lx1 - lx0 or 1) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - (math.log10(y) - ly0) / (ly1 - ly0 or 1) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="24" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in xticks:
        x = px(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{tick:g}</text>'
        )
    for tick in yticks:
        y = py(tick)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>'
    )
    middle = 'text-anchor="middle"'
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 18}" {middle}>{escape(xlabel)}</text>')
    out.append(
        f'<text transform="translate(18 {TOP + plot_h / 2}) rotate(-90)" {middle}>'
        f"{escape(ylabel)}</text>"
    )
    for index, (name, points) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out.extend(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>' for x, y in points
        )
        ly = TOP + 16 + index * 20
        lx = LEFT + plot_w + 14
        out.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 20}" y2="{ly}" stroke="{color}" '
            'stroke-width="2"/>'
        )
        out.append(f'<text x="{LEFT + plot_w + 40}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
