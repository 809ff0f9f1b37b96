"""The dashboard's drift panel: PSI per feature over the last minutes of the scorer's traffic.

The scorer counts every reading it scores into its model's fixed bins
(``drift_readings_total{feature,bin,model}``, app/observe/drift.py). When the panel refreshes,
the dashboard reads those counters from the scorer's ``/metrics`` and keeps the snapshot; the
readings of a window are the difference between the newest snapshot and the last one taken
before the window began, and their PSI against the training shares (from ``GET /model``) is
what the bars show. The same arithmetic as the Prometheus recording rules, over the scorer
this dashboard talks to rather than the fleet: the rules remain the fleet-wide truth.

Snapshots are kept per instance (``/metrics`` names it in ``X-Instance``), because behind a
Kubernetes Service each refresh may reach another pod: differences are taken within one pod
and summed over the pods seen. A counter that went down (the pod restarted) starts that pod's
history again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from app.contract.api import ModelResponse
from app.observe.psi import level, psi

WINDOWS_S = (30, 60, 300, 900)  # the panel's choices
DEFAULT_WINDOW_S = 60
MIN_SPACING_S = 1.0  # refreshes closer together than this keep one snapshot
Counts = dict[str, list[float]]  # feature -> readings per bin


def parse_counts(text: str, model: str, bins: dict[str, int]) -> Counts:
    """The ``drift_readings_total`` counts of ``model`` (short digest) from /metrics text."""
    counts: Counts = {name: [0.0] * size for name, size in bins.items()}
    for family in text_string_to_metric_families(text):
        if family.name != "drift_readings":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total") or sample.labels.get("model") != model:
                continue
            per_bin = counts.get(sample.labels.get("feature", ""))
            try:
                index = int(sample.labels.get("bin", ""))
            except ValueError:
                continue
            if per_bin is not None and 0 <= index < len(per_bin):
                per_bin[index] += sample.value
    return counts


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    psi: float | None
    level: str
    readings: int


@dataclass(frozen=True)
class DriftView:
    model: str
    window_s: int
    covered_s: float  # how much of the window the snapshots span so far
    readings: int
    features: list[FeatureDrift]


@dataclass
class _History:
    snapshots: deque[tuple[float, Counts]] = field(default_factory=deque)


class DriftWatch:
    """Snapshots of one scorer's drift counters, and PSI over a window of them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.model = ""  # short digest the histories belong to
        self.histories: dict[str, _History] = {}

    def observe(self, instance: str, model: ModelResponse, metrics_text: str) -> None:
        short = model.digest[:12]
        if short != self.model:  # another model, other bins: start again
            self.model, self.histories = short, {}
        bins = {f.name: len(f.drift.shares) for f in model.features if f.drift is not None}
        counts = parse_counts(metrics_text, short, bins)
        now = self.clock()
        history = self.histories.setdefault(instance, _History()).snapshots
        if history and _went_down(history[-1][1], counts):
            history.clear()  # the pod restarted: its counters began again
        if history and now - history[-1][0] < MIN_SPACING_S:
            history[-1] = (now, counts)
        else:
            history.append((now, counts))
        horizon = now - max(WINDOWS_S) - 2 * MIN_SPACING_S
        while len(history) > 1 and history[1][0] <= horizon:
            history.popleft()

    def view(self, model: ModelResponse, window_s: int) -> DriftView:
        now = self.clock()
        start = now - window_s
        sums: Counts = {}
        covered = 0.0
        for history in self.histories.values():
            snapshots = history.snapshots
            if len(snapshots) < 2:
                continue
            # The last snapshot at or before the window's start, else the oldest there is.
            base = snapshots[0]
            for snapshot in snapshots:
                if snapshot[0] > start:
                    break
                base = snapshot
            newest = snapshots[-1]
            covered = max(covered, newest[0] - base[0])
            for name, per_bin in newest[1].items():
                before = base[1].get(name, [0.0] * len(per_bin))
                total = sums.setdefault(name, [0.0] * len(per_bin))
                for index, (new, old) in enumerate(zip(per_bin, before, strict=True)):
                    total[index] += new - old
        features = []
        for feature in model.features:
            if feature.drift is None:
                continue
            served = sums.get(feature.name, [0.0] * len(feature.drift.shares))
            value = psi(served, feature.drift.shares)
            features.append(FeatureDrift(feature.name, value, level(value), int(sum(served))))
        readings = max((f.readings for f in features), default=0)
        return DriftView(self.model, window_s, covered, readings, features)


def _went_down(before: Counts, after: Counts) -> bool:
    return any(
        new < old
        for name, per_bin in after.items()
        for new, old in zip(per_bin, before.get(name, per_bin), strict=True)
    )
