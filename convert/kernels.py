"""The large-batch graphs published beside the served one, and their checks before publishing.

From ``SORT_FROM_ROWS`` rows a batch is scored with its rows sorted (convert/sorted_rows.py),
which on varied readings takes 0.55-0.75 of the time (docs/benchmarks.md):

- ``served-sorted``: the served graph (score, attribution, envelope breaches) with the rows
  sorted; its attribution and breaches must equal the served graph's bit for bit, its score to
  the rounding of float32;
- ``score-sorted``: the score and the breaches only (one target per leaf: the path lengths
  folded in), for batches whose attribution is needed for a few rows (the flagged ones, by
  default), held to scikit-learn like the served graph;
- ``attribution-sorted``: the attribution alone, run on those few rows; it must equal the
  served graph's attribution bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from app.contract.metadata import KernelInfo, KernelsInfo, ParityReport
from app.model import artifact
from convert import parity
from convert.envelope_guard import add_envelope_guard
from convert.folded_converter import to_folded_onnx
from convert.graph_names import (
    ATTRIBUTION_OUTPUT,
    BREACH_OUTPUT,
    ENVELOPE_HIGH,
    ENVELOPE_LOW,
    INPUT_NAME,
    OUTPUT_NAME,
)
from convert.sorted_rows import kd_key_attributes, pruned, with_sorted_rows

# Measured on this kind of machine: the sorted served graph is as fast as the plain one at 32
# rows and faster beyond; below, the cost of the sort (7-9 µs a call) is not won back.
SORT_FROM_ROWS = 32
SERVED, SCORE, ATTRIBUTION = "served-sorted", "score-sorted", "attribution-sorted"
CHUNK = 1_000  # the batch size the checks run at, as a large request would
SCORE_ROUNDING = 1e-6  # a score in (0, 1] in float32 is good to about 6e-8


def build(
    model: IsolationForest, training_rows: np.ndarray, n_features: int
) -> dict[str, tuple[bytes, list[str]]]:
    """Each large-batch graph's bytes and outputs, from the fitted forest."""
    key = kd_key_attributes(training_rows)
    served = add_envelope_guard(
        with_sorted_rows(to_folded_onnx(model, attribution=True), key), n_features
    )
    score = add_envelope_guard(
        with_sorted_rows(to_folded_onnx(model, attribution=False), key), n_features
    )
    attribution = with_sorted_rows(
        pruned(to_folded_onnx(model, attribution=True), [ATTRIBUTION_OUTPUT]), key
    )
    return {
        SERVED: (served.SerializeToString(), [OUTPUT_NAME, ATTRIBUTION_OUTPUT, BREACH_OUTPUT]),
        SCORE: (score.SerializeToString(), [OUTPUT_NAME, BREACH_OUTPUT]),
        ATTRIBUTION: (attribution.SerializeToString(), [ATTRIBUTION_OUTPUT]),
    }


def check(
    model: IsolationForest,
    served_bytes: bytes,
    graphs: dict[str, tuple[bytes, list[str]]],
    parity_set: parity.ParitySet,
    bounds: tuple[np.ndarray, np.ndarray],
    session: Any,
) -> tuple[dict[str, str], ParityReport]:
    """Hold each graph to the served one (and the score-only one to scikit-learn) on the
    parity points, batch by batch; raises ParityError on any difference it must not have.
    ``session``: bytes -> onnxruntime session, opened as the server opens it."""
    low, high = (np.asarray(b, dtype=np.float32) for b in bounds)
    served = session(served_bytes)
    opened = {name: session(graph) for name, (graph, _) in graphs.items()}
    points = parity_set.points
    guard = {ENVELOPE_LOW: low, ENVELOPE_HIGH: high}
    names = [OUTPUT_NAME, ATTRIBUTION_OUTPUT, BREACH_OUTPUT]
    score_diff = 0.0
    for start in range(0, len(points), CHUNK):
        rows = points[start : start + CHUNK]
        want = served.run(names, {INPUT_NAME: rows, **guard})
        got = opened[SERVED].run(names, {INPUT_NAME: rows, **guard})
        # The attribution and the breaches are the same numbers; the score, the exponential of
        # their row sum, may differ in its last bit (a vectorised sum over rows laid out in
        # another order), so it is held to the rounding of float32 instead.
        score_diff = max(score_diff, float(np.abs(want[0] - got[0]).max(initial=0.0)))
        for name, a, b in zip(names[1:], want[1:], got[1:], strict=True):
            if not np.array_equal(a, b):
                raise parity.ParityError(f"{SERVED}: {name} differs from the served graph's")
        attribution = opened[ATTRIBUTION].run([ATTRIBUTION_OUTPUT], {INPUT_NAME: rows})[0]
        if not np.array_equal(attribution, want[1]):
            raise parity.ParityError(f"{ATTRIBUTION}: attribution differs from the served graph's")
        breach = opened[SCORE].run([BREACH_OUTPUT], {INPUT_NAME: rows, **guard})[0]
        if not np.array_equal(breach, want[2]):
            raise parity.ParityError(f"{SCORE}: breaches differ from the served graph's")

    if score_diff > SCORE_ROUNDING:
        raise parity.ParityError(
            f"{SERVED}: score {score_diff:.2e} from the served graph's (over {SCORE_ROUNDING:g})"
        )
    open_low = np.full(len(low), -np.inf, dtype=np.float32)
    open_high = np.full(len(low), np.inf, dtype=np.float32)

    def score_only(rows: np.ndarray) -> np.ndarray:
        parts = [
            opened[SCORE]
            .run(
                [OUTPUT_NAME],
                {INPUT_NAME: rows[i : i + CHUNK], ENVELOPE_LOW: open_low, ENVELOPE_HIGH: open_high},
            )[0]
            .ravel()
            for i in range(0, len(rows), CHUNK)
        ]
        return np.concatenate(parts)

    report = parity.measure(model, score_only, parity_set)
    parity.require(report)
    return {
        SERVED: (
            f"attribution and breaches equal to the served graph's, bit for bit; score "
            f"{score_diff:.1e} from it at most"
        ),
        SCORE: (
            f"score {report.max_abs_score_diff:.2e} from scikit-learn at most, "
            f"{report.label_mismatches_outside_band} label mismatches outside the band; "
            "breaches equal to the served graph's"
        ),
        ATTRIBUTION: "attribution equal to the served graph's, bit for bit",
    }, report


def info(
    stem: str, graphs: dict[str, tuple[bytes, list[str]]], checked: dict[str, str]
) -> KernelsInfo:
    folder = f"{stem}.kernels"
    return KernelsInfo(
        from_rows=SORT_FROM_ROWS,
        graphs=[
            KernelInfo(
                name=name,
                file=f"{folder}/{name}.onnx",
                sha256=artifact.sha256_hex(graph),
                outputs=outputs,
            )
            for name, (graph, outputs) in graphs.items()
        ],
        parity=checked,
    )
