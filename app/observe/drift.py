"""Drift: how the served readings spread over fixed bins, against how the training rows did.

Each artifact carries, per feature, nine decile edges of its training rows (ten bins, the
first open below and the last above) and the share of training rows in each bin. The scorer
counts the readings it scores into the same bins (``drift_readings_total{feature,bin,model}``)
and exports the training shares beside them (``drift_training_share{feature,bin,model}``);
Prometheus recording rules turn the two into a Population Stability Index per feature over any
window, summed over every worker and pod (ops/prometheus/rules.yml). Both carry the model's
short digest because each model has its own edges: during a rollout, when pods serve two
models, counts are summed only with counts over the same edges.

Counting costs a request nothing but appending its matrix to a list: once a second (or when
many rows or requests wait) the rows are binned together, one ``searchsorted`` per feature, and
the counts added to the counters. A process that dies loses at most that second of counts,
which a distribution over minutes does not notice.

Why a bound on requests as well as rows: each waiting matrix holds a small allocation of its
own, so a second of small requests kept thousands of them alive, and a worker's heap grew to
the busiest second it had seen (up to 1.2 MiB over a 60 s soak, measured with
``/proc/<pid>/smaps``). Binning every FLUSH_REQUESTS requests caps that at a few hundred KiB.
The binning work is the same per reading; what is added is a few more flushes a second, each
about half a millisecond for 1,024 requests of ten readings.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import numpy as np

from app.contract.metadata import Metadata
from app.observe.metrics import Metrics


class ScoredBy(Protocol):
    """The model that scored a batch, as drift needs it: which one, and its training bins
    (the served model, ``app.model.holder.ScoredBy``, is one)."""

    @property
    def digest(self) -> str: ...

    @property
    def features(self) -> tuple[str, ...]: ...

    @property
    def metadata(self) -> Metadata: ...


FLUSH_S = 1.0
FLUSH_ROWS = 200_000  # bin sooner when this many rows wait
FLUSH_REQUESTS = 1_024  # or when this many requests' matrices wait


class DriftRecorder:
    """The drift counts of one process."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._pending: list[tuple[ScoredBy, np.ndarray]] = []
        self._rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a flush is due at the next turn of the loop
        self._exported: str = ""  # digest whose training shares are exported

    def offer(self, model: ScoredBy, matrix: np.ndarray) -> None:
        """Count ``matrix``'s readings (scored by ``model``) at the next flush."""
        self._pending.append((model, matrix))
        self._rows += len(matrix)
        if self._soon:
            return
        if self._rows >= FLUSH_ROWS or len(self._pending) >= FLUSH_REQUESTS:
            if self._timer is not None:
                self._timer.cancel()
            # After this request's answer, not inside it.
            self._timer = asyncio.get_running_loop().call_later(0, self.flush)
            self._soon = True
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def export_training(self, model: ScoredBy) -> None:
        """Set ``drift_training_share`` to ``model``'s training shares."""
        if model.digest == self._exported:
            return
        share = self.metrics.drift_training_share
        short = model.digest[:12]
        for feature, bins in model.metadata.drift.items():
            for index, value in enumerate(bins.shares):
                share.labels(feature, str(index), short).set(value)
        self._exported = model.digest

    def flush(self) -> None:
        pending, self._pending, self._rows, self._timer = self._pending, [], 0, None
        self._soon = False
        by_model: dict[str, tuple[ScoredBy, list[np.ndarray]]] = {}
        for model, matrix in pending:
            by_model.setdefault(model.digest, (model, []))[1].append(matrix)
        counter = self.metrics.drift_readings
        for model, matrices in by_model.values():
            self.export_training(model)
            short = model.digest[:12]
            rows = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
            for index, feature in enumerate(model.features):
                bins = model.metadata.drift.get(feature)
                if bins is None:
                    continue
                edges = np.asarray(bins.edges, dtype=np.float64)
                slot = np.searchsorted(edges, rows[:, index], side="right")
                counts = np.bincount(slot, minlength=len(edges) + 1).tolist()
                for bin_index, count in enumerate(counts):
                    if count:
                        counter.labels(feature, str(bin_index), short).inc(count)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._soon = False
        if self._pending:
            self.flush()
