"""Shadow scoring: a candidate model judges the same batches as the live one, off the path.

After a response has left, the endpoint offers the batch (its matrix and the live verdicts) to
the shadow, which scores it with the candidate and counts the readings where the two verdicts
differ, and how far apart the scores are.

Where it runs: small batches (up to INLINE_ROWS rows, like the live model's) are gathered and
scored together on the event loop every ``FLUSH_S`` (20 ms): one onnxruntime call for a few
dozen requests' rows (sooner once INLINE_ROWS rows are waiting), so the shadow adds a
fraction of a microsecond per request and delays only the requests that arrive during that
one call. Scoring each batch right after its
response was measured first: +37 % on the p50 of batch-1 requests on one connection (the work
lands before the client's next request); a thread of its own was worse, +60 % (it competes
with the loop for the interpreter lock). Larger batches go to a thread, as the live model's
do. Both waits are bounded (``GATHER_LIMIT`` x INLINE_ROWS rows gathered, ``QUEUE_BATCHES``
large batches): a shadow that falls behind drops batches (counted) instead of building a
backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import TYPE_CHECKING

import numpy as np

from app.observe.metrics import Metrics, observe_many

if TYPE_CHECKING:
    from app.model.holder import LoadedModel
    from app.model.verdicts import Verdicts

log = logging.getLogger("gridscore.shadow")

QUEUE_BATCHES = 8
FLUSH_S = 0.02
GATHER_LIMIT = 4  # gathered rows beyond this many INLINE_ROWS are dropped

Job = tuple["LoadedModel", np.ndarray, "Verdicts"]


class Shadow:
    """The shadow model of one process, and where its batches wait."""

    def __init__(
        self, metrics: Metrics, inline_rows: int = 512, queue_batches: int = QUEUE_BATCHES
    ) -> None:
        self.metrics = metrics
        self.model: LoadedModel | None = None
        self.inline_rows = max(inline_rows, 1)
        self.queue_batches = queue_batches
        self._gathered: list[Job] = []
        self._gathered_rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._large: queue.Queue[Job | None] = queue.Queue(queue_batches)
        self._thread: threading.Thread | None = None
        self._score_diff = metrics.shadow_score_difference

    def set(self, model: LoadedModel | None) -> None:
        """Shadow ``model`` from the next batch on (None: stop shadowing)."""
        self.model = model

    def offer(self, matrix: np.ndarray, verdicts: Verdicts) -> None:
        """Queue a scored batch for the shadow, or drop it (counted) if the shadow is behind."""
        model = self.model
        if model is None:
            return
        rows = len(matrix)
        if rows <= self.inline_rows:
            if self._gathered_rows + rows > GATHER_LIMIT * self.inline_rows:
                self.metrics.shadow_dropped.inc()  # the loop has not had a turn to flush
                return
            self._gathered.append((model, matrix, verdicts))
            self._gathered_rows += rows
            loop = asyncio.get_running_loop()
            if self._gathered_rows >= self.inline_rows:  # enough for one call: next turn
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_later(0, self._flush)
            elif self._timer is None:
                self._timer = loop.call_later(FLUSH_S, self._flush)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gridscore-shadow", daemon=True)
            self._thread.start()
        try:
            self._large.put_nowait((model, matrix, verdicts))
        except queue.Full:
            self.metrics.shadow_dropped.inc()

    def _flush(self) -> None:
        """Score every gathered batch in one call per shadow model."""
        jobs, self._gathered, self._gathered_rows, self._timer = self._gathered, [], 0, None
        by_model: dict[int, list[Job]] = {}
        for job in jobs:
            by_model.setdefault(id(job[0]), []).append(job)
        for group in by_model.values():
            try:
                self.compare_many(group)
            except Exception:  # a failing shadow must never touch the live path
                log.exception("shadow scoring failed")

    def _run(self) -> None:
        while True:
            job = self._large.get()
            try:
                if job is None:
                    return
                self.compare_many([job])
            except Exception:
                log.exception("shadow scoring failed")
            finally:
                self._large.task_done()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._gathered, self._gathered_rows = [], 0
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._large.put(None, timeout=5)
            self._thread.join(timeout=5)
            self._thread = None

    def compare_many(self, jobs: list[Job]) -> int:
        """Score the jobs' rows (one shadow model) in one call; count and return the readings
        whose verdicts differ from the live ones."""
        model = jobs[0][0]
        matrix = jobs[0][1] if len(jobs) == 1 else np.concatenate([job[1] for job in jobs])
        live_flags = np.concatenate([job[2].flags for job in jobs])
        live_scores = np.concatenate([job[2].scores for job in jobs])
        scores, breaches, _ = model.scorer.score(matrix)
        flags = scores > model.threshold64
        if breaches.any():
            flags |= breaches.any(axis=1)
        disagreements = int(np.count_nonzero(flags != live_flags))
        metrics = self.metrics
        metrics.shadow_batches.inc(len(jobs))
        metrics.shadow_readings.inc(len(flags))
        if disagreements:
            metrics.shadow_disagreements.inc(disagreements)
        observe_many(self._score_diff, np.abs(scores.astype(np.float64) - live_scores))
        return disagreements
