"""Simulated sensor readings for the dashboard: nominal operation with injected anomalies."""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.nominal import SYNTHETIC

# Far outside both the trained envelope and EN 50160: a sag or surge, an open circuit or a
# six-fold overcurrent, a frequency excursion. Each is flagged by the envelope guard.
EXTREMES = {
    ("voltage", "low"): 150.0,
    ("voltage", "high"): 300.0,
    ("current", "low"): 0.0,
    ("current", "high"): 60.0,
    ("frequency", "low"): 48.0,
    ("frequency", "high"): 52.0,
}


@dataclass(frozen=True)
class Injected:
    """An extreme reading and what was pushed out of range."""

    reading: dict[str, float]
    feature: str
    direction: str


class Simulator:
    """Draws readings around 230 V / 10 A / 50 Hz; ``anomaly_rate`` of them pushed far out."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def reading(self) -> dict[str, float]:
        return {
            spec.name: round(self.rng.gauss(spec.mean, spec.sd), spec.decimals)
            for spec in SYNTHETIC
        }

    def batch(self, size: int, anomaly_rate: float) -> list[dict[str, float]]:
        readings = [self.reading() for _ in range(size)]
        for reading in readings:
            if self.rng.random() < anomaly_rate:
                # A milder excursion than an injected extreme: the forest, not only the
                # envelope, should catch it.
                spec = self.rng.choice(SYNTHETIC)
                value = spec.mean + self.rng.choice((-1, 1)) * spec.sd * self.rng.uniform(4, 8)
                reading[spec.name] = round(max(value, 0.0), 4)  # an RMS value is never negative
        return readings

    def extreme(self) -> Injected:
        """A nominal reading with one feature, picked at random, pushed far out of range."""
        (feature, direction), value = self.rng.choice(list(EXTREMES.items()))
        reading = self.reading()
        reading[feature] = value
        return Injected(reading, feature, direction)
