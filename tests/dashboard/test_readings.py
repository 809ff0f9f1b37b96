"""Simulated readings follow the served model's training data; charts stay readable."""

from __future__ import annotations

import itertools
import random
import re
import statistics

from app.contract.api import FeatureInfo
from app.contract.metadata import FeatureHistogram
from app.dashboard.charts import Point, readings_chart
from app.dashboard.readings import ReadingSampler, synthetic_features


def _skewed_feature() -> FeatureInfo:
    """A power factor: bunched just under 1, a long tail below, never above 1."""
    rng = random.Random(1)
    values = [1 - abs(rng.gauss(0, 0.03)) for _ in range(20_000)]
    edges = [0.8 + i * 0.01 for i in range(21)]
    counts = [sum(e0 <= v < e1 for v in values) for e0, e1 in itertools.pairwise(edges)]
    return FeatureInfo(
        name="power_factor",
        unit="1",
        mean=statistics.fmean(values),
        std=statistics.pstdev(values),
        min=min(values),
        max=max(values),
        envelope=[0.75, 1.05],
        histogram=FeatureHistogram(edges=edges, counts=counts),
    )


def test_readings_are_drawn_from_the_training_histogram() -> None:
    feature = _skewed_feature()
    sampler = ReadingSampler([feature], seed=3)
    drawn = [sampler.reading()["power_factor"] for _ in range(20_000)]
    assert min(drawn) >= 0.8
    assert max(drawn) <= 1.0  # a normal draw around the mean would cross 1 often
    assert abs(statistics.fmean(drawn) - feature.mean) < 0.002
    assert abs(statistics.pstdev(drawn) - feature.std) < 0.002


def test_extremes_leave_the_envelope_in_the_direction_named() -> None:
    features = [
        FeatureInfo("v_l1", "V", 230.0, 2.0, 222.0, 238.0, [218.0, 242.0]),
        FeatureInfo("current", "A", 10.0, 1.5, 4.0, 16.0, [1.0, 19.0]),
    ]
    sampler = ReadingSampler(features, seed=5)
    for _ in range(200):
        injected = sampler.extreme()
        value = injected.reading[injected.feature]
        low, high = next(f.envelope for f in features if f.name == injected.feature)
        assert low is not None
        assert high is not None
        assert value > high if injected.direction == "high" else value < low
        assert value >= 0  # never-negative quantities stay so


def test_the_synthetic_features_stand_in_when_no_model_is_described() -> None:
    reading = ReadingSampler(synthetic_features(), seed=1).reading()
    assert set(reading) == {"voltage", "current", "frequency"}


def test_eight_features_chart_as_eight_readable_panels() -> None:
    names = [(f"f{i}", "V") for i in range(8)]
    points = [Point(tuple(float(i + j) for i in range(8)), j % 7 == 0) for j in range(50)]
    svg = readings_chart(points, 200, names)
    assert svg.count('class="panel"') == 8
    height = int(re.search(r'viewBox="0 0 \d+ (\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert 8 * 60 <= height <= 640  # each panel at least 60 px, all on one screen
