"""Normal operation of the synthetic supply point, the one place that says what it looks like.

When no recorded readings are given, gridscore trains on, simulates and load-tests this: a
healthy low-voltage feeder at 230 V / 10 A / 50 Hz, each feature an independent normal. Voltage
stays a few volts around nominal (EN 50160 allows +/-10 %, normal operation stays far inside),
the load current varies by ~15 %, and grid frequency is held within a few tens of millihertz.
Pure Python: the dashboard imports it too, and carries no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the synthetic supply point: a normal distribution and its display."""

    name: str
    unit: str
    mean: float
    sd: float
    decimals: int  # digits a simulated reading is rounded to

    def describe(self) -> str:
        return f"normal(mean={self.mean}, sd={self.sd})"


SYNTHETIC: tuple[FeatureSpec, ...] = (
    FeatureSpec("voltage", "V", 230.0, 3.0, 3),
    FeatureSpec("current", "A", 10.0, 1.5, 3),
    FeatureSpec("frequency", "Hz", 50.0, 0.02, 4),
)
