"""One adapter per scorer, all with the same small interface, for the kernel benchmark.

``load(workdir)`` returns a function from a float32 batch (rows x 3) to the paper's anomaly
score per row. Each adapter is loaded in its own fresh process by bench.kernel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

ScoreFn = Callable[[np.ndarray], np.ndarray]
SORT_FROM_ROWS = 32  # as convert.kernels publishes it
SCORE_ONLY_FROM = 1_000  # as app.model.scorer uses it


def _ort_session(path: Path):  # type: ignore[no-untyped-def]
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        path.read_bytes(), options, providers=["CPUExecutionProvider"]
    )


def load_sklearn(workdir: Path) -> ScoreFn:
    """scikit-learn's own scorer, default settings: ``-score_samples``."""
    from convert import data, train

    model = train.fit(data.training_data())
    return lambda rows: -model.score_samples(rows)


def load_onnx_stock(workdir: Path) -> ScoreFn:
    """skl2onnx's stock IsolationForest graph; it outputs decision_function."""
    session = _ort_session(workdir / "stock.onnx")
    offset = json.loads((workdir / "model.json").read_text())["offset"]
    return lambda rows: -(session.run(["scores"], {"readings": rows})[0][:, 0] + offset)


def load_onnx_gridscore(workdir: Path) -> ScoreFn:
    """gridscore's one-node graph without the envelope guard."""
    session = _ort_session(workdir / "folded.onnx")
    return lambda rows: session.run(["score"], {"readings": rows})[0].ravel()


def _guarded(workdir: Path, graph: str, outputs: list[str]) -> ScoreFn:
    session = _ort_session(workdir / graph)
    bounds = json.loads((workdir / "model.json").read_text())["envelope"]
    low = np.array([b[0] for b in bounds.values()], dtype=np.float32)
    high = np.array([b[1] for b in bounds.values()], dtype=np.float32)

    def score(rows: np.ndarray) -> np.ndarray:
        fetched = session.run(
            outputs, {"readings": rows, "envelope_low": low, "envelope_high": high}
        )
        return fetched[0].ravel()

    return score


def load_onnx_gridscore_guarded(workdir: Path) -> ScoreFn:
    """One node plus the envelope guard (score and breach code): the served graph before it
    learnt to explain."""
    return _guarded(workdir, "guarded.onnx", ["score", "breach"])


def load_onnx_gridscore_served(workdir: Path) -> ScoreFn:
    """gridscore's served graph: the node scores and attributes each reading in the same
    traversal, plus the envelope guard; all three outputs fetched, as the service does."""
    return _guarded(workdir, "served.onnx", ["score", "attribution", "breach"])


def load_onnx_gridscore_served_sorted(workdir: Path) -> ScoreFn:
    """The served graph with the rows sorted (convert/sorted_rows.py) from 32 rows, as the
    server runs a batch that wants every row's attribution; the plain one below."""
    plain = _guarded(workdir, "served.onnx", ["score", "attribution", "breach"])
    large = _guarded(workdir, "served-sorted.onnx", ["score", "attribution", "breach"])
    return lambda rows: (large if len(rows) >= SORT_FROM_ROWS else plain)(rows)


def load_onnx_gridscore_flagged(workdir: Path) -> ScoreFn:
    """What the service runs by default (attribution for the flagged readings only): from
    1,000 rows the score-only graph with the rows sorted, then the attribution graph on the
    flagged rows; from 32 the served graph with the rows sorted; below, the served graph."""
    plain = load_onnx_gridscore_served_sorted(workdir)
    score = _ort_session(workdir / "score-sorted.onnx")
    attribute = _ort_session(workdir / "attribution-sorted.onnx")
    facts = json.loads((workdir / "model.json").read_text())
    bounds = facts["envelope"]
    low = np.array([b[0] for b in bounds.values()], dtype=np.float32)
    high = np.array([b[1] for b in bounds.values()], dtype=np.float32)
    threshold = np.float64(facts["threshold"])

    def run(rows: np.ndarray) -> np.ndarray:
        if len(rows) < SCORE_ONLY_FROM:
            return plain(rows)
        scores, breach = score.run(
            ["score", "breach"], {"readings": rows, "envelope_low": low, "envelope_high": high}
        )
        flags = (scores.ravel() > threshold) | breach.any(axis=1)
        if flags.any():
            attribute.run(["attribution"], {"readings": rows[flags]})
        return scores.ravel()

    return run


BACKENDS: dict[str, Callable[[Path], ScoreFn]] = {
    "sklearn": load_sklearn,
    "onnx-stock": load_onnx_stock,
    "onnx-gridscore": load_onnx_gridscore,
    "onnx-gridscore-guarded": load_onnx_gridscore_guarded,
    "onnx-gridscore-served": load_onnx_gridscore_served,
    "onnx-gridscore-served-sorted": load_onnx_gridscore_served_sorted,
    "onnx-gridscore-flagged": load_onnx_gridscore_flagged,
}


def prepare(workdir: Path) -> None:
    """Train once and write the four graphs plus the facts the adapters need."""
    from convert import data, envelope_guard, pipeline, stock_converter, train
    from convert.folded_converter import to_folded_onnx

    matrix = data.training_data()
    model = train.fit(matrix)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "stock.onnx").write_bytes(stock_converter.to_stock_onnx(model).SerializeToString())
    (workdir / "folded.onnx").write_bytes(to_folded_onnx(model).SerializeToString())
    guarded = envelope_guard.add_envelope_guard(to_folded_onnx(model), len(data.FEATURES))
    (workdir / "guarded.onnx").write_bytes(guarded.SerializeToString())
    served = envelope_guard.add_envelope_guard(
        to_folded_onnx(model, attribution=True), len(data.FEATURES)
    )
    (workdir / "served.onnx").write_bytes(served.SerializeToString())
    from convert import kernels

    for name, (graph, _) in kernels.build(model, matrix, len(data.FEATURES)).items():
        (workdir / f"{name}.onnx").write_bytes(graph)
    facts = {
        "offset": float(model.offset_),
        "threshold": train.trained_threshold(model),
        "envelope": envelope_guard.trained_envelope(matrix, data.FEATURES),
        "versions": pipeline.library_versions(),
    }
    (workdir / "model.json").write_text(json.dumps(facts))
    # The parity reference: sklearn's scores on a fixed adversarial set.
    from convert import parity

    parity_set = parity.build_set(model, 20_000, matrix, seed=99)
    np.save(workdir / "parity_points.npy", parity_set.points)
    np.save(workdir / "parity_reference.npy", -model.score_samples(parity_set.points))
    np.save(workdir / "parity_decision.npy", model.decision_function(parity_set.points))
