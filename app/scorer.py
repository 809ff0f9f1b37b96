"""The onnxruntime session: one per process, threads pinned, warmed up before serving."""

from __future__ import annotations

import numpy as np
import onnxruntime

from app.artifact import Artifact
from app.envelope import Envelope


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
        self._input = meta.input_name
        self._outputs = [meta.output_name, meta.envelope.breach_output]
        # The graph compares in float32, so the bounds go in as float32 (230 V stays 230 V;
        # a bound like 49.88 Hz rounds to its nearest float32, as the readings do).
        self._feeds = {
            meta.envelope.low_input: np.array(envelope.low, dtype=np.float32),
            meta.envelope.high_input: np.array(envelope.high, dtype=np.float32),
        }
        self.features: tuple[str, ...] = tuple(meta.features)

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score per row [N] and envelope breaches [N, 2F] for ``matrix`` (float32, N x F).

        ``breaches[:, i]``: feature i below its lower bound; ``breaches[:, F + i]``: above its
        upper bound.
        """
        scores, breaches = self._session.run(self._outputs, {self._input: matrix, **self._feeds})
        return scores.ravel(), breaches

    def warm_up(self) -> None:
        """Run a few batch sizes once so the first real request pays no first-run costs."""
        for rows in (1, 64, 1024):
            self.score(np.zeros((rows, len(self.features)), dtype=np.float32))
