"""The onnxruntime session: one per process, threads pinned, warmed up before serving.

Small batches, most of the traffic, go through pre-bound buffers: for each batch size up to
``BOUND_ROWS`` an IOBinding holds the input, the envelope bounds and both outputs in arrays
made once, so a call copies the rows in and runs, with no feed dictionary to validate and no
output arrays to allocate (7 µs against 11 µs per call at batch 1, measured in the tight
loop; more in the server, where each saved allocation is a cache line less to miss). Larger
batches take ``session.run``. The bound arrays are reused, so ``score`` returns copies.

From the artifact's ``kernels.from_rows`` rows (32) a batch goes to the graphs published
beside the served one, which score the rows sorted so the CPU can predict the trees' branches
(convert/sorted_rows.py; 0.55-0.75 of the time at 1,000 rows and more): the sorted served graph
when every row's attribution is wanted, else the score-only graph and then the attribution
graph on the rows that need it (``score_only`` and ``attribute``). All give the served graph's
numbers: the convert step checked each before publishing.
"""

from __future__ import annotations

import numpy as np
import onnxruntime

from app.model.artifact import Artifact
from app.model.envelope import Envelope

BOUND_ROWS = 16
# From this many rows a batch that wants only some rows' attribution is scored without it and
# those rows attributed alone; below, the attribution graph's extra call costs more than it
# saves (measured: +8 % at 100 rows, -25 % at 1,000, with 15 % of the rows flagged).
SCORE_ONLY_FROM = 1_000

Scored = tuple[np.ndarray, np.ndarray, np.ndarray]
"""score [N], breaches [N, 2F], attribution [N, F]"""


class _Bound:
    """One batch size's pre-bound input and output arrays."""

    def __init__(self, session: onnxruntime.InferenceSession, scorer: Scorer, rows: int) -> None:
        width = len(scorer.features)
        self.rows_in = np.zeros((rows, width), dtype=np.float32)
        self.scores = np.zeros((rows, 1), dtype=np.float32)
        self.breaches = np.zeros((rows, 2 * width), dtype=np.bool_)
        self.attribution = np.zeros((rows, width), dtype=np.float32)
        binding = session.io_binding()
        binding.bind_cpu_input(scorer.input_name, self.rows_in)
        for name, array in scorer.feeds.items():
            binding.bind_cpu_input(name, array)
        for name, buffer in zip(
            scorer.outputs, (self.scores, self.breaches, self.attribution), strict=True
        ):
            binding.bind_output(
                name, "cpu", 0, buffer.dtype, list(buffer.shape), buffer.ctypes.data
            )
        # The C-level call: the public ``run_with_iobinding`` re-checks the binding and the
        # WebGPU graph-capture state on every call, ~1 µs of Python this call does not need.
        self._run = session._sess.run_with_iobinding
        self._binding = binding._iobinding
        self._options = onnxruntime.RunOptions()

    def score(self, matrix: np.ndarray) -> Scored:
        self.rows_in[...] = matrix
        self._run(self._binding, self._options)
        return self.scores.ravel().copy(), self.breaches.copy(), self.attribution.copy()


class Scorer:
    """Scores a float32 feature matrix: the forest's score and the envelope breaches per row."""

    def __init__(
        self,
        artifact: Artifact,
        envelope: Envelope,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
    ):
        options = onnxruntime.SessionOptions()
        # One worker process per core: onnxruntime must not start thread pools of its own.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            artifact.model_bytes, options, providers=["CPUExecutionProvider"]
        )
        meta = artifact.metadata
        self.input_name = meta.input_name
        self.outputs = [meta.output_name, meta.envelope.breach_output, meta.attribution.output]
        # The graph compares in float32, so the bounds go in as float32 (230 V stays 230 V;
        # a bound like 49.88 Hz rounds to its nearest float32, as the readings do).
        self.feeds = {
            meta.envelope.low_input: np.array(envelope.low, dtype=np.float32),
            meta.envelope.high_input: np.array(envelope.high, dtype=np.float32),
        }
        self.features: tuple[str, ...] = tuple(meta.features)
        self._bound = [_Bound(self._session, self, rows) for rows in range(1, BOUND_ROWS + 1)]
        kernels = {
            name: onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
            for name, graph in artifact.kernels.items()
        }
        self.sort_from = meta.kernels.from_rows if kernels else None
        self._served_sorted = kernels.get("served-sorted")
        self._score_sorted = kernels.get("score-sorted")
        self._attribute_sorted = kernels.get("attribution-sorted")
        self._score_outputs = [meta.output_name, meta.envelope.breach_output]
        self._attribution_output = [meta.attribution.output]

    def _large(self, rows: int) -> bool:
        return self.sort_from is not None and rows >= self.sort_from

    def score(self, matrix: np.ndarray) -> Scored:
        """Score per row [N], envelope breaches [N, 2F] and raw attribution [N, F] for
        ``matrix`` (float32, N x F), from one onnxruntime call.

        ``breaches[:, i]``: feature i below its lower bound; ``breaches[:, F + i]``: above its
        upper bound. ``attribution``: convert/attribution.py's A per feature (not yet shares).
        Two calls with the same number of rows (up to BOUND_ROWS) must not run at once: the
        server scores each size either on its event loop or in its one worker thread.
        """
        rows = len(matrix)
        if 0 < rows <= BOUND_ROWS:
            return self._bound[rows - 1].score(matrix)
        session = self._served_sorted if self._large(rows) else None
        scores, breaches, attribution = (session or self._session).run(
            self.outputs, {self.input_name: matrix, **self.feeds}
        )
        return scores.ravel(), breaches, attribution

    def score_only(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Score and breaches without the attribution, for a batch of SCORE_ONLY_FROM rows
        or more (None for a smaller one: ``score`` is as quick there, with the attribution)."""
        if self._score_sorted is None or len(matrix) < max(SCORE_ONLY_FROM, self.sort_from or 0):
            return None
        scores, breaches = self._score_sorted.run(
            self._score_outputs, {self.input_name: matrix, **self.feeds}
        )
        return scores.ravel(), breaches

    def attribute(self, matrix: np.ndarray) -> np.ndarray:
        """The raw attribution of ``matrix``'s rows (some rows of a large batch)."""
        if self._attribute_sorted is not None:
            return np.asarray(
                self._attribute_sorted.run(self._attribution_output, {self.input_name: matrix})[0]
            )
        return self.score(matrix)[2]

    def warm_up(self) -> None:
        """Run a few batch sizes once so the first real request pays no first-run costs."""
        for rows in (*range(1, BOUND_ROWS + 1), 64, SCORE_ONLY_FROM):
            empty = np.zeros((rows, len(self.features)), dtype=np.float32)
            self.score(empty)
            self.score_only(empty)
            self.attribute(empty[:3])
