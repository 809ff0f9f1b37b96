"""Check the compiled graph against scikit-learn on points chosen to break it.

Four kinds of points, all around the training data: nominal readings (training rows, slightly
jittered), far-out readings, readings bisected onto the decision boundary, and readings sitting
exactly on (and one float32 step above) split thresholds. Scores
must agree within ``SCORE_TOLERANCE``; labels must agree wherever ``|decision_function|`` is at
least ``DECISION_BAND`` (closer than that, float32 rounding of the score may tip either way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest

from app.contract.metadata import ParityReport

SCORE_TOLERANCE = 1e-5
ATTRIBUTION_TOLERANCE = 1e-5
DECISION_BAND = 1e-5
KIND_SHARES = {"nominal": 0.4, "far_out": 0.2, "boundary": 0.2, "on_threshold": 0.2}

OnnxScorer = Callable[[np.ndarray], np.ndarray]
"""Takes float32 rows, returns the paper score per row."""


class ParityError(AssertionError):
    """The compiled graph disagrees with scikit-learn beyond tolerance."""


@dataclass(frozen=True)
class ParitySet:
    points: np.ndarray  # float32, rows x features
    kinds: dict[str, slice]


@dataclass(frozen=True)
class DataShape:
    """Where the training data lie: rows to draw from, their centre and spread per feature."""

    rows: np.ndarray
    center: np.ndarray
    spread: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray) -> DataShape:
        spread = rows.std(axis=0)
        center: np.ndarray = np.median(rows, axis=0)
        return cls(rows, center, np.where(spread > 0, spread, 1.0))

    def nominal(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Training rows drawn with replacement, each jittered by a tenth of the spread."""
        picked = self.rows[rng.integers(0, len(self.rows), count)]
        jittered: np.ndarray = picked + rng.normal(0.0, 0.1, picked.shape) * self.spread
        return jittered


def _far_out(rows: int, rng: np.random.Generator, shape: DataShape) -> np.ndarray:
    # Half: one feature pushed far out (sags, surges, overcurrents, frequency excursions),
    # half: all features drawn log-uniformly over many decades, including negatives.
    center, spread = shape.center, shape.spread
    single = np.tile(center, (rows // 2, 1))
    feature = rng.integers(0, center.size, rows // 2)
    factor = rng.choice([-1.0, 1.0], rows // 2) * 10 ** rng.uniform(0, 6, rows // 2)
    single[np.arange(rows // 2), feature] = center[feature] + spread[feature] * factor
    wild = rng.choice([-1.0, 1.0], (rows - rows // 2, center.size)) * 10 ** rng.uniform(
        -2, 7, (rows - rows // 2, center.size)
    )
    return np.vstack([single, wild])


def _bisected(
    model: IsolationForest, rows: int, rng: np.random.Generator, shape: DataShape
) -> np.ndarray:
    inside = shape.nominal(rows, rng)
    outside = _far_out(rows, rng, shape)
    lo, hi = np.zeros(rows), np.ones(rows)
    # decision_function is >= 0 at the nominal end; keep pairs that straddle the boundary.
    for _ in range(40):
        mid = (lo + hi) / 2
        points = inside + mid[:, None] * (outside - inside)
        normal = model.decision_function(points.astype(np.float32)) >= 0
        lo = np.where(normal, mid, lo)
        hi = np.where(normal, hi, mid)
    boundary: np.ndarray = inside + lo[:, None] * (outside - inside)
    return boundary


def _on_thresholds(
    model: IsolationForest, rows: int, rng: np.random.Generator, shape: DataShape
) -> np.ndarray:
    splits = []
    for estimator in model.estimators_:
        tree = estimator.tree_
        inner = tree.children_left != -1
        splits.append(np.column_stack([tree.feature[inner], tree.threshold[inner]]))
    table = np.vstack(splits)
    pick = table[rng.integers(0, len(table), rows)]
    points = shape.nominal(rows, rng).astype(np.float32)
    feature = pick[:, 0].astype(int)
    on = pick[:, 1].astype(np.float32)
    # Alternate between the float32 just below-or-at the threshold and the one just above.
    above = np.nextafter(on, np.float32(np.inf))
    value = np.where(np.arange(rows) % 2 == 0, on, above)
    points[np.arange(rows), feature] = value
    return points.astype(np.float64)


def build_set(
    model: IsolationForest, points: int, training_rows: np.ndarray, seed: int = 7
) -> ParitySet:
    """A parity set of ``points`` rows (float32) with the four kinds in fixed shares, drawn
    around ``training_rows`` (the rows the forest was fitted on)."""
    rng = np.random.default_rng(seed)
    shape = DataShape.of(np.asarray(training_rows, dtype=np.float64))
    sizes = {kind: int(points * share) for kind, share in KIND_SHARES.items()}
    sizes["nominal"] += points - sum(sizes.values())
    parts = {
        "nominal": shape.nominal(sizes["nominal"], rng),
        "far_out": _far_out(sizes["far_out"], rng, shape),
        "boundary": _bisected(model, sizes["boundary"], rng, shape),
        "on_threshold": _on_thresholds(model, sizes["on_threshold"], rng, shape),
    }
    kinds, start = {}, 0
    for kind, block in parts.items():
        kinds[kind] = slice(start, start + len(block))
        start += len(block)
    matrix = np.vstack(list(parts.values()))
    # Stay in float32's finite range: the API refuses anything beyond it.
    limit = np.finfo(np.float32).max
    return ParitySet(points=np.clip(matrix, -limit, limit).astype(np.float32), kinds=kinds)


def measure(
    model: IsolationForest,
    score_onnx: OnnxScorer,
    parity_set: ParitySet,
    attribute_onnx: OnnxScorer | None = None,
) -> ParityReport:
    """Compare ``score_onnx`` with sklearn on ``parity_set`` and, given ``attribute_onnx``
    (float32 rows -> raw attribution), the attribution shares with the reference computed from
    sklearn's trees; the figures, pass or fail."""
    x = parity_set.points
    reference = -model.score_samples(x)
    decision = model.decision_function(x)
    sklearn_flag = model.predict(x) == -1
    onnx_score = np.asarray(score_onnx(x), dtype=np.float64)
    onnx_flag = onnx_score > -model.offset_
    diff = np.abs(onnx_score - reference)
    mismatch = onnx_flag != sklearn_flag
    outside = np.abs(decision) >= DECISION_BAND
    by_kind = {
        kind: {
            "points": float(rows.stop - rows.start),
            "max_abs_score_diff": float(diff[rows].max()),
            "label_mismatches": float(mismatch[rows].sum()),
            "anomalies_sklearn": float(sklearn_flag[rows].sum()),
        }
        for kind, rows in parity_set.kinds.items()
    }
    attribution_diff = None
    if attribute_onnx is not None:
        from convert import attribution

        onnx_shares = attribution.shares(attribute_onnx(x))
        reference_shares = attribution.shares(attribution.reference(model, x))
        attribution_diff = float(np.abs(onnx_shares - reference_shares).max())
    return ParityReport(
        points=len(x),
        max_abs_score_diff=float(diff.max()),
        score_tolerance=SCORE_TOLERANCE,
        label_mismatches=int(mismatch.sum()),
        label_mismatches_outside_band=int((mismatch & outside).sum()),
        decision_band=DECISION_BAND,
        by_kind=by_kind,
        max_abs_attribution_diff=attribution_diff,
    )


def require(report: ParityReport) -> None:
    """Raise ParityError unless the report is within tolerance."""
    if report.max_abs_score_diff > report.score_tolerance:
        raise ParityError(
            f"max |score - sklearn| = {report.max_abs_score_diff:.3g} "
            f"exceeds {report.score_tolerance:g}"
        )
    attribution_diff = report.max_abs_attribution_diff
    if attribution_diff is not None and attribution_diff > ATTRIBUTION_TOLERANCE:
        raise ParityError(
            f"max |attribution share - reference| = {attribution_diff:.3g} exceeds "
            f"{ATTRIBUTION_TOLERANCE:g}"
        )
    if report.label_mismatches_outside_band:
        raise ParityError(
            f"{report.label_mismatches_outside_band} labels differ from sklearn where "
            f"|decision_function| >= {report.decision_band:g}"
        )
