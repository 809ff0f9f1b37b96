"""Formatting the report sections share."""

from __future__ import annotations

from typing import Any


def us(value: float) -> str:
    return f"{value / 1000:.1f} ms" if value >= 1000 else f"{value:.1f} µs"


def served_backend(report: dict[str, Any]) -> str:
    """The kernel backend that is the served graph (with attribution since format 4)."""
    names = {b["backend"] for b in report["backends"]}
    return "onnx-gridscore-served" if "onnx-gridscore-served" in names else "onnx-gridscore-guarded"
