"""Synthetic "normal" operating points around a nominal 230 V / 10 A / 50 Hz supply point."""

from __future__ import annotations

import hashlib

import numpy as np

FEATURES = ("voltage", "current", "frequency")
UNITS = ("V", "A", "Hz")
SEED = 42
ROWS = 5_000

# Independent normals; the spreads are those of a healthy low-voltage feeder: voltage a few volts
# around nominal (EN 50160 allows +/-10%, normal operation stays far inside), a load current
# varying by ~15%, and grid frequency held within a few tens of millihertz.
DISTRIBUTIONS = {
    "voltage": ("normal", 230.0, 3.0),
    "current": ("normal", 10.0, 1.5),
    "frequency": ("normal", 50.0, 0.02),
}


def describe_distributions() -> dict[str, str]:
    return {
        name: f"{kind}(mean={mean}, sd={sd})" for name, (kind, mean, sd) in DISTRIBUTIONS.items()
    }


def normal_points(rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` readings drawn from the normal operating distribution, float64, feature order."""
    columns = [rng.normal(mean, sd, rows) for (_, mean, sd) in DISTRIBUTIONS.values()]
    return np.column_stack(columns)


def training_data(rows: int = ROWS, seed: int = SEED) -> np.ndarray:
    """The training matrix: ``rows`` normal points from ``default_rng(seed)``."""
    return normal_points(rows, np.random.default_rng(seed))


def data_sha256(matrix: np.ndarray) -> str:
    """Hash of the matrix's float64 bytes (C order), recorded as lineage."""
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype=np.float64).tobytes()).hexdigest()


def histograms(matrix: np.ndarray, bins: int = 20) -> dict[str, tuple[list[float], list[int]]]:
    """Per-feature histogram of the training data, for drift checks at serving time."""
    result = {}
    for index, name in enumerate(FEATURES):
        counts, edges = np.histogram(matrix[:, index], bins=bins)
        result[name] = ([float(e) for e in edges], [int(c) for c in counts])
    return result
