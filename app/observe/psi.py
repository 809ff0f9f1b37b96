"""The Population Stability Index, as the Prometheus recording rules compute it.

    PSI = sum over bins of (served share - training share) * ln(served share / training share)

Both shares are floored at ``FLOOR`` so that a bin no reading fell in counts as rare rather
than infinitely far (ops/prometheus/rules.yml uses the same floor; a test checks the two agree).
The usual reading: under 0.1 the same population, 0.1 to 0.25 a shift worth watching, over
0.25 a significant one; gridscore's alerts speak at 0.2 (moderate) and 0.25 (significant).
Pure Python: the dashboard's process carries no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FLOOR = 1e-4
SLIGHT = 0.1
MODERATE = 0.2  # the alert thresholds of ops/prometheus/rules.yml
SIGNIFICANT = 0.25


def psi(served_counts: Sequence[float], training_shares: Sequence[float]) -> float | None:
    """PSI of readings counted into bins against the training shares of the same bins;
    None when no reading was counted."""
    if len(served_counts) != len(training_shares):
        raise ValueError(
            f"{len(served_counts)} served bins against {len(training_shares)} training bins"
        )
    total = sum(served_counts)
    if total <= 0:
        return None
    value = 0.0
    for count, trained in zip(served_counts, training_shares, strict=True):
        served = max(count / total, FLOOR)
        expected = max(trained, FLOOR)
        value += (served - expected) * math.log(served / expected)
    return value


def level(value: float | None) -> str:
    """A PSI in words, at the alert thresholds: stable, slight, moderate, significant."""
    if value is None:
        return "no data"
    if value > SIGNIFICANT:
        return "significant"
    if value > MODERATE:
        return "moderate"
    return "slight" if value > SLIGHT else "stable"
