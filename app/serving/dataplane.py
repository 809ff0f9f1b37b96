"""The data plane: what every transport does with a batch, whatever carried it.

    float32 matrix -> onnxruntime (the served model) -> verdicts -> counted

A transport (HTTP's ``/predict`` and v2 infer through ``app.serving.endpoint``, the stream
worker) decodes its bytes into a matrix in the model's feature order, asks the data plane for
the verdicts, and encodes them in its own format. The data plane owns the parts that must be
the same for all of them: which model answers (the holder, ready or 503), where the call runs
(on the caller's loop for small batches, on the process's one scoring thread for large ones,
since onnxruntime has one thread), the threshold and envelope folded into the verdicts, and
what is counted (readings, anomalies, breaches, inference time, batch size, drift) and offered
to the shadow model.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.model.holder import LoadedModel, ModelHolder
from app.model.shadow import Shadow
from app.model.verdicts import Verdicts, verdicts_for
from app.observe.drift import DriftRecorder
from app.observe.metrics import Metrics


def scoring_executor() -> ThreadPoolExecutor:
    """The one thread a process scores big batches on, off the event loop."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridscore-score")


def _judged(model: LoadedModel, matrix: np.ndarray, explain: str) -> Verdicts:
    """Verdicts with the attribution ``explain`` asks for. A large batch that needs only some
    rows' attribution (the flagged ones, say) is scored without it, then those rows are
    attributed alone: the attribution costs as much as the score again (docs/benchmarks.md)."""
    scorer = model.scorer
    if explain != "all":
        scored = scorer.score_only(matrix)
        if scored is not None:
            scores, breaches = scored
            attribution = np.full((len(matrix), len(model.features)), np.nan, dtype=np.float32)
            verdicts = verdicts_for(model, scores, breaches, attribution)
            if explain == "flagged" and verdicts.anomalies:
                rows = np.flatnonzero(verdicts.flags)
                attribution[rows] = scorer.attribute(matrix[rows])
            return verdicts
    scores, breaches, attribution = scorer.score(matrix)
    return verdicts_for(model, scores, breaches, attribution)


class DataPlane:
    """Scores matrices with the served model for every transport of one process."""

    def __init__(
        self,
        holder: ModelHolder,
        metrics: Metrics,
        inline_rows: int,
        shadow: Shadow | None = None,
        drift: DriftRecorder | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        self.inline_rows = inline_rows
        self.shadow = shadow
        self.drift = drift
        # Big batches score off the event loop, one at a time: onnxruntime has one thread
        # (every transport of the process shares this executor).
        self.executor = executor or scoring_executor()

    async def score(self, matrix: np.ndarray, explain: str = "all") -> Verdicts:
        """The served model's verdicts on ``matrix``; raises ApiError 503 with no model ready.
        ``explain``: whose attribution is needed (``all``, ``flagged`` or ``none``; the others'
        is NaN). Up to ``inline_rows`` rows score on the caller's loop, larger batches on the
        scoring thread (a caller cancelled meanwhile leaves the batch to finish there)."""
        if len(matrix) <= self.inline_rows:
            return self.score_now(matrix, explain)
        model = self.holder.ready()
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        verdicts = await loop.run_in_executor(self.executor, _judged, model, matrix, explain)
        self.metrics.inference_latency.observe(time.perf_counter() - started)
        return verdicts

    def score_now(self, matrix: np.ndarray, explain: str = "all") -> Verdicts:
        """``score`` on the caller's thread, for a batch of at most ``inline_rows`` rows (a
        batch-1 request need not pay for a coroutine)."""
        model = self.holder.ready()
        started = time.perf_counter()
        verdicts = _judged(model, matrix, explain)
        self.metrics.inference_latency.observe(time.perf_counter() - started)
        return verdicts

    def count(self, matrix: np.ndarray, verdicts: Verdicts) -> None:
        """What every scored batch adds to the metrics and the drift counts."""
        model: LoadedModel = verdicts.model
        if self.drift is not None:
            self.drift.offer(model, matrix)
        metrics = self.metrics
        metrics.batch_size.observe(len(matrix))
        metrics.readings.inc(len(matrix))
        if verdicts.anomalies:
            metrics.anomalies.inc(verdicts.anomalies)
            if verdicts.breached:
                counts = np.count_nonzero(verdicts.breaches, axis=0).tolist()
                for (feature, direction), n in zip(model.breach_columns, counts, strict=True):
                    if n:
                        metrics.envelope_breaches.labels(feature, direction).inc(n)

    def offer_shadow(self, matrix: np.ndarray, verdicts: Verdicts) -> None:
        """Give the batch to the shadow model, if one is set: call after the answer has left,
        so shadow scoring is never in a response's latency."""
        if self.shadow is not None:
            self.shadow.offer(matrix, verdicts)
