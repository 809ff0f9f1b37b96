"""Choose the alarm threshold, and say what it will do, on rows the forest never saw.

Four ways to choose it:

- ``contamination`` (default): the forest's own threshold, ``-offset_``: the share
  ``--contamination`` of the training rows scores above it.
- ``alarm_budget``: at most N false alarms per hour at R readings per second, i.e. a false
  alarm rate of at most ``N / (3600 R)`` per reading. The threshold is the lowest score on the
  calibration half of the held-out normal rows for which the one-sided 95 % Clopper-Pearson
  upper bound of that rate is within the budget (so the budget holds with 95 % confidence, not
  just on average); too few held-out rows to show it is an error, not a guess.
- ``target_precision``: the lowest threshold at and above which precision on the calibration
  half of the held-out rows has a 95 % lower bound of at least P (``precision_lower``).
- ``target_recall``: the highest threshold that still flags a share R of the labelled anomalies
  of the calibration half.

The other half of the held-out rows (the evaluation half) is scored with the served graph,
envelope included, and the report gives the false alarm rate, precision, recall, F1, ROC-AUC and
PR-AUC measured there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from app.contract.metadata import CalibrationSummary
from convert.readers import DataError

METHODS = ("contamination", "alarm_budget", "target_precision", "target_recall")
MIN_LABELLED = 20  # labelled anomalies each half needs for precision or recall targets
MIN_FLAGGED = 30  # flagged rows below which a precision bound is not worth checking

Verdict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""float32 rows -> (served score, envelope breach per row)."""


@dataclass(frozen=True)
class CalibrationSpec:
    method: str = "contamination"
    alarm_budget_per_hour: float | None = None
    reading_rate_per_s: float | None = None
    target_precision: float | None = None
    target_recall: float | None = None
    holdout: float = 0.3  # share of the sampled normal rows held out of training

    def needs_holdout(self, has_labels: bool) -> bool:
        return self.method != "contamination" or has_labels

    def describe(self) -> str:
        if self.method == "alarm_budget":
            return (
                f"at most {self.alarm_budget_per_hour:g} false alarms per hour at "
                f"{self.reading_rate_per_s:g} readings/s"
            )
        if self.method == "target_precision":
            return f"precision at least {self.target_precision:g}"
        if self.method == "target_recall":
            return f"recall at least {self.target_recall:g}"
        return "the forest's contamination share of training rows above the threshold"


@dataclass
class Calibration:
    summary: CalibrationSummary
    report: dict[str, Any]  # the full report with curves, written beside the artifact


def clopper_pearson_upper(alarms: int, rows: int, confidence: float = 0.95) -> float:
    """One-sided upper bound of a rate seen ``alarms`` times in ``rows``."""
    if alarms >= rows:
        return 1.0
    return float(stats.beta.ppf(confidence, alarms + 1, rows - alarms))


def wilson_lower(hits: np.ndarray, total: np.ndarray, z: float = 1.6449) -> np.ndarray:
    """One-sided 95 % Wilson lower bound of hits / total (0 where total is 0)."""
    total_f = np.maximum(total, 1).astype(np.float64)
    p = hits / total_f
    centre = p + z * z / (2 * total_f)
    margin = z * np.sqrt(p * (1 - p) / total_f + z * z / (4 * total_f * total_f))
    bound = (centre - margin) / (1 + z * z / total_f)
    return np.where(total > 0, bound, 0.0)


def precision_at(hit_rate: Any, false_rate: Any, prevalence: float) -> Any:
    """Precision in the stream itself, where a share ``prevalence`` of readings are anomalies.

    The held-out rows do not have the stream's mix: every labelled anomaly is held out, but
    only a share of the normal rows, so precision counted on them would be too high."""
    true_flagged = np.asarray(hit_rate, dtype=np.float64) * prevalence
    total = true_flagged + np.asarray(false_rate, dtype=np.float64) * (1.0 - prevalence)
    return np.where(total > 0, true_flagged / np.maximum(total, 1e-300), 0.0)


def precision_lower(
    hits: np.ndarray, anomalies: int, false: np.ndarray, normal: int, prevalence: float
) -> np.ndarray:
    """A 95 % lower bound of the stream's precision that holds on other rows drawn alike: the
    share of anomalies flagged at its lower bound against the share of normal rows flagged at
    its upper bound (one-sided Clopper-Pearson each). Both vary between samples; near a steep
    threshold the normal tail's count moves most, which a bound on the ratio alone misses."""
    hit_rate = np.where(hits > 0, stats.beta.ppf(0.05, hits, anomalies - hits + 1), 0.0)
    false_rate = np.where(false < normal, stats.beta.ppf(0.95, false + 1, normal - false), 1.0)
    return np.asarray(precision_at(hit_rate, false_rate, prevalence))


def halves(rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Calibration and evaluation halves, split at random."""
    order = rng.permutation(len(rows))
    middle = len(rows) // 2
    return rows[order[:middle]], rows[order[middle:]]


def _above(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of ``sorted_scores`` (ascending) lie strictly above each threshold."""
    return len(sorted_scores) - np.searchsorted(sorted_scores, thresholds, side="right")


def _budget_threshold(spec: CalibrationSpec, normal_scores: np.ndarray) -> tuple[float, float]:
    assert spec.alarm_budget_per_hour is not None
    assert spec.reading_rate_per_s is not None
    rate = spec.alarm_budget_per_hour / (3600.0 * spec.reading_rate_per_s)
    n = len(normal_scores)
    needed = math.ceil(math.log(0.05) / math.log1p(-rate)) if rate < 1 else 1
    if n < needed:
        raise DataError(
            f"an alarm budget of {spec.alarm_budget_per_hour:g}/h at "
            f"{spec.reading_rate_per_s:g} readings/s is a false alarm rate of {rate:.3g} per "
            f"reading; showing it with 95 % confidence needs at least {needed} held-out normal "
            f"rows for calibration, and there are {n}: give more data, a larger --holdout, or "
            "a larger budget"
        )
    descending = np.sort(normal_scores)[::-1]
    alarms = 0
    # The most alarms on n rows whose upper bound still fits the budget.
    while alarms + 1 < n and clopper_pearson_upper(alarms + 1, n) <= rate:
        alarms += 1
    if not np.isfinite(descending[alarms]):
        out_of_range = int(np.isinf(descending).sum())
        raise DataError(
            f"the operating envelope alone flags {out_of_range} of {n} held-out normal rows, "
            f"more than an alarm budget of {spec.alarm_budget_per_hour:g}/h allows; widen the "
            "envelope or raise the budget"
        )
    return float(descending[alarms]), rate


def _precision_threshold(
    target: float, normal_scores: np.ndarray, anomaly_scores: np.ndarray, prevalence: float
) -> float:
    both = np.concatenate([normal_scores, anomaly_scores])
    candidates = np.unique(both[np.isfinite(both)])
    normal_sorted, anomaly_sorted = np.sort(normal_scores), np.sort(anomaly_scores)
    hits = _above(anomaly_sorted, candidates)
    false = _above(normal_sorted, candidates)
    flagged = hits + false
    lower = precision_lower(hits, len(anomaly_scores), false, len(normal_scores), prevalence)
    # Scanning every threshold and taking the lowest that passes favours one that passed by
    # luck; asking the bound to hold at every higher threshold too (where at least
    # MIN_FLAGGED rows are flagged, below which the bound says little) removes that bias.
    steady = np.where(flagged >= MIN_FLAGGED, lower, np.inf)
    steady = np.minimum.accumulate(steady[::-1])[::-1]
    good = np.flatnonzero((lower >= target) & (steady >= target))
    if good.size == 0:
        best = int(np.argmax(lower))
        raise DataError(
            f"no threshold reaches precision {target:g} on the held-out labelled rows with 95 % "
            f"confidence (best lower bound {lower[best]:.3f} at recall "
            f"{hits[best] / max(len(anomaly_scores), 1):.3f}); lower --target-precision"
        )
    return float(candidates[good[0]])  # the lowest such threshold: the most recall


def _recall_threshold(target: float, anomaly_scores: np.ndarray) -> float:
    descending = np.sort(anomaly_scores)[::-1]
    total = len(descending)
    # The fewest flagged anomalies whose 95 % Wilson lower bound of recall reaches the target
    # (all of them when none does), so the recall holds beyond the calibration rows too.
    hits = np.arange(1, total + 1)
    reached = np.flatnonzero(wilson_lower(hits, np.full(total, total)) >= target)
    needed = int(hits[reached[0]]) if reached.size else total
    # Just below the needed-th highest anomaly score, so that one is flagged too (at most 1.0,
    # which no score exceeds: when the envelope alone flags enough, the forest adds nothing).
    return min(float(np.nextafter(descending[needed - 1], -np.inf)), 1.0)


def _histogram(scores: np.ndarray) -> dict[str, Any]:
    """Scores in 100 bins over [0, 1], and how many rows the envelope flagged (no score)."""
    finite = scores[np.isfinite(scores)]
    counts, edges = np.histogram(finite, bins=100, range=(0.0, 1.0))
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "out_of_range": int(len(scores) - len(finite)),
    }


def calibrate(
    spec: CalibrationSpec,
    forest_threshold: float,
    verdict: Verdict,
    holdout_normal: np.ndarray,
    anomalies: np.ndarray,
    rng: np.random.Generator,
    prevalence: float = 0.0,
) -> Calibration:
    """``prevalence``: the share of labelled anomalies among the data's usable rows, which
    precision and PR-AUC are stated at (the stream's mix, not the held-out rows')."""
    """Choose the threshold on the calibration halves; measure it on the evaluation halves."""
    labelled = len(anomalies) > 0
    if spec.method in ("target_precision", "target_recall") and len(anomalies) < 2 * MIN_LABELLED:
        raise DataError(
            f"--{spec.method.replace('_', '-')} needs labelled anomalies (--label-column): at "
            f"least {2 * MIN_LABELLED}, and the data hold {len(anomalies)}"
        )
    if spec.method == "contamination":
        calib_normal = calib_anom = np.empty((0, holdout_normal.shape[1]))
        eval_normal, eval_anom = holdout_normal, anomalies
    else:
        calib_normal, eval_normal = halves(holdout_normal, rng)
        calib_anom, eval_anom = halves(anomalies, rng) if labelled else (anomalies, anomalies)

    def scores_of(rows: np.ndarray) -> np.ndarray:
        """Served scores, +inf where the envelope flags the row whatever the threshold: the
        threshold is chosen for the verdict as served (score above it, or out of range)."""
        if len(rows) == 0:
            return np.empty(0)
        score, breach = verdict(rows.astype(np.float32))
        effective = np.asarray(score, dtype=np.float64)
        effective[np.asarray(breach).any(axis=1)] = np.inf
        return effective

    rate_target = None
    if spec.method == "alarm_budget":
        threshold, rate_target = _budget_threshold(spec, scores_of(calib_normal))
    elif spec.method == "target_precision":
        assert spec.target_precision is not None
        threshold = _precision_threshold(
            spec.target_precision, scores_of(calib_normal), scores_of(calib_anom), prevalence
        )
    elif spec.method == "target_recall":
        assert spec.target_recall is not None
        threshold = _recall_threshold(spec.target_recall, scores_of(calib_anom))
    else:
        threshold = forest_threshold

    def flags(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Effective scores (+inf out of range: the served ranking) and the served verdict."""
        if len(rows) == 0:
            return np.empty(0), np.empty(0, dtype=bool)
        score, breach = verdict(rows.astype(np.float32))
        score = np.asarray(score, dtype=np.float64)
        out_of_range = np.asarray(breach).any(axis=1)
        return np.where(out_of_range, np.inf, score), (score > threshold) | out_of_range

    normal_scores, normal_flags = flags(eval_normal)
    anomaly_scores, anomaly_flags = flags(eval_anom)
    n = len(eval_normal)
    false_alarms = int(normal_flags.sum())
    far = false_alarms / n if n else None
    far_upper = clopper_pearson_upper(false_alarms, n) if n else None
    per_hour = (
        far * spec.reading_rate_per_s * 3600.0
        if far is not None and spec.reading_rate_per_s
        else None
    )
    precision = recall = f1 = roc = pr = None
    if labelled and len(eval_anom):
        tp = int(anomaly_flags.sum())
        recall = tp / len(eval_anom)
        if n:
            precision = float(precision_at(recall, far or 0.0, prevalence))
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            truth = np.concatenate([np.zeros(n), np.ones(len(eval_anom))])
            # Out-of-range rows rank above every score (2 > 1 >= any score).
            both = np.minimum(np.concatenate([normal_scores, anomaly_scores]), 2.0)
            roc = float(roc_auc_score(truth, both))
            # Each half weighted to the stream's mix, as precision is.
            weights = np.concatenate(
                [
                    np.full(n, (1 - prevalence) / n),
                    np.full(len(eval_anom), prevalence / len(eval_anom)),
                ]
            )
            pr = float(average_precision_score(truth, both, sample_weight=weights))
    summary = CalibrationSummary(
        method=spec.method,
        target=spec.describe(),
        threshold=threshold,
        holdout_normal_rows=n,
        holdout_anomaly_rows=len(eval_anom) if labelled else 0,
        false_alarm_rate=far,
        false_alarm_rate_upper_95=far_upper,
        expected_alarms_per_hour=per_hour,
        reading_rate_per_s=spec.reading_rate_per_s,
        precision=precision,
        recall=recall,
        f1=f1,
        roc_auc=roc,
        pr_auc=pr,
    )
    report: dict[str, Any] = {
        "summary": msgspec.structs.asdict(summary),
        "forest_threshold": forest_threshold,
        "budget_rate_per_reading": rate_target,
        "prevalence": prevalence,
        "calibration_rows": {"normal": len(calib_normal), "anomalies": len(calib_anom)},
        "normal_histogram": _histogram(normal_scores),
        "anomaly_histogram": _histogram(anomaly_scores) if labelled else None,
        "curve": _curve(normal_scores, anomaly_scores if labelled else None, prevalence),
    }
    return Calibration(summary, report)


def _curve(
    normal: np.ndarray, anomalies: np.ndarray | None, prevalence: float = 0.0
) -> dict[str, list[float]]:
    """False alarm rate (and precision at the stream's mix, recall, with labels) at 200
    thresholds over (0.3, 1)."""
    thresholds = np.linspace(0.3, 1.0, 200)
    normal_sorted = np.sort(normal)
    curve: dict[str, list[float]] = {
        "threshold": thresholds.tolist(),
        "false_alarm_rate": (_above(normal_sorted, thresholds) / max(len(normal), 1)).tolist(),
    }
    if anomalies is not None and len(anomalies):
        anomaly_sorted = np.sort(anomalies)
        recall = _above(anomaly_sorted, thresholds) / len(anomalies)
        far = _above(normal_sorted, thresholds) / max(len(normal), 1)
        curve["precision"] = np.where(
            recall + far > 0, precision_at(recall, far, prevalence), 1.0
        ).tolist()
        curve["recall"] = recall.tolist()
    return curve
