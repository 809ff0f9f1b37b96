"""Synthetic training data: the supply point of app.contract.nominal in normal operation."""

from __future__ import annotations

import hashlib

import numpy as np

from app.contract.nominal import SYNTHETIC

FEATURES = tuple(spec.name for spec in SYNTHETIC)
UNITS = tuple(spec.unit for spec in SYNTHETIC)
SEED = 42
ROWS = 5_000


def describe_distributions() -> dict[str, str]:
    return {spec.name: spec.describe() for spec in SYNTHETIC}


def normal_points(rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` readings drawn from the normal operating distribution, float64, feature order."""
    columns = [rng.normal(spec.mean, spec.sd, rows) for spec in SYNTHETIC]
    return np.column_stack(columns)


def training_data(rows: int = ROWS, seed: int = SEED) -> np.ndarray:
    """The training matrix: ``rows`` normal points from ``default_rng(seed)``."""
    return normal_points(rows, np.random.default_rng(seed))


def data_sha256(matrix: np.ndarray) -> str:
    """Hash of the matrix's float64 bytes (C order), recorded as lineage."""
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype=np.float64).tobytes()).hexdigest()


def histograms(
    matrix: np.ndarray, features: tuple[str, ...], bins: int = 20
) -> dict[str, tuple[list[float], list[int]]]:
    """Per-feature histogram of the training data, for drift checks at serving time."""
    result = {}
    for index, name in enumerate(features):
        counts, edges = np.histogram(matrix[:, index], bins=bins)
        result[name] = ([float(e) for e in edges], [int(c) for c in counts])
    return result
