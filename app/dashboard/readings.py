"""Readings like the served model's training data, for the dashboard and the load generator.

The scorer describes its model at ``GET /model``: per feature, its unit, mean, standard
deviation, range, training histogram and the envelope in force. A ``ReadingSampler`` draws
each feature from its training histogram (a bin by its share of rows, then uniformly inside
it), so simulated traffic looks like what the model was trained on, whatever the features;
without a histogram it draws from a normal distribution. Pure Python: the dashboard's process
carries no numpy.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass

from app.contract.api import FeatureInfo
from app.contract.nominal import SYNTHETIC


def synthetic_features() -> list[FeatureInfo]:
    """The synthetic supply point's features, for when no scorer has described its model."""
    return [
        FeatureInfo(
            name=spec.name,
            unit=spec.unit,
            mean=spec.mean,
            std=spec.sd,
            min=spec.mean - 4 * spec.sd,
            max=spec.mean + 4 * spec.sd,
            envelope=[None, None],
        )
        for spec in SYNTHETIC
    ]


def decimals(feature: FeatureInfo) -> int:
    """Digits to round a simulated value to: three significant digits of its spread."""
    spread = feature.std if feature.std > 0 else 1.0
    return max(1, 3 - math.floor(math.log10(spread)))


@dataclass(frozen=True)
class Injected:
    """An extreme reading and what was pushed out of range."""

    reading: dict[str, float]
    feature: str
    direction: str


class ReadingSampler:
    """Draws readings feature by feature from the training distribution."""

    def __init__(self, features: list[FeatureInfo], seed: int | None = None) -> None:
        self.features = features
        self.rng = random.Random(seed)
        self._cumulative: dict[str, list[float]] = {}
        for feature in features:
            histogram = feature.histogram
            if histogram is not None and sum(histogram.counts) > 0:
                self._cumulative[feature.name] = list(itertools.accumulate(histogram.counts))
        self._decimals = {f.name: decimals(f) for f in features}

    def value(self, feature: FeatureInfo) -> float:
        cumulative = self._cumulative.get(feature.name)
        if cumulative is None or feature.histogram is None:
            drawn = self.rng.gauss(feature.mean, feature.std)
        else:
            edges = feature.histogram.edges
            index = bisect.bisect_right(cumulative, self.rng.random() * cumulative[-1])
            index = min(index, len(edges) - 2)
            drawn = self.rng.uniform(edges[index], edges[index + 1])
        return round(drawn, self._decimals[feature.name])

    def reading(self) -> dict[str, float]:
        return {feature.name: self.value(feature) for feature in self.features}

    def excursion(self, reading: dict[str, float]) -> None:
        """Push one feature of ``reading`` 4 to 8 standard deviations away, in place: a
        milder anomaly than an extreme, for the forest rather than the envelope to catch."""
        feature = self.rng.choice(self.features)
        value = feature.mean + self.rng.choice((-1, 1)) * feature.std * self.rng.uniform(4, 8)
        if feature.min >= 0:  # a quantity that is never negative (an RMS value) stays so
            value = max(value, 0.0)
        reading[feature.name] = round(value, self._decimals[feature.name])

    def batch(self, size: int, anomaly_rate: float) -> list[dict[str, float]]:
        readings = [self.reading() for _ in range(size)]
        for reading in readings:
            if self.rng.random() < anomaly_rate:
                self.excursion(reading)
        return readings

    def extreme(self) -> Injected:
        """A reading with one feature, picked at random, pushed beyond its envelope bound
        (or 20 standard deviations out where the feature has no bound)."""
        choices = [(f, d) for f in self.features for d in ("low", "high")]
        feature, direction = self.rng.choice(choices)
        low, high = feature.envelope
        width = (high - low) if low is not None and high is not None else 20 * feature.std
        if direction == "high":
            value = high + 0.5 * width if high is not None else feature.mean + 20 * feature.std
        elif low is None:
            value = feature.mean - 20 * feature.std
        elif feature.min >= 0 and low - 0.5 * width < 0:
            # Never negative in the data: go to half the bound instead (an open circuit).
            value = low / 2 if low > 0 else low - 0.5 * width
        else:
            value = low - 0.5 * width
        reading = self.reading()
        reading[feature.name] = round(value, self._decimals[feature.name])
        return Injected(reading, feature.name, direction)
