"""The convert step as stages: data, train, compile, verify, publish."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn

from app import artifact
from convert import data, parity, train
from convert.envelope_guard import (
    BREACH_LAYOUT,
    TRAINED_MARGIN,
    add_envelope_guard,
    trained_envelope,
)
from convert.folded_converter import to_folded_onnx
from convert.graph_names import (
    BREACH_OUTPUT,
    ENVELOPE_HIGH,
    ENVELOPE_LOW,
    INPUT_NAME,
    OUTPUT_NAME,
    TARGET_OPSET,
)
from convert.publish import publish

DEFAULT_NAME = "gridscore-iforest"
DEFAULT_PARITY_POINTS = 100_000

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class Result:
    path: Path
    metadata: artifact.Metadata
    seconds: dict[str, float]


def onnx_scorer(model_bytes: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """Score float32 rows with onnxruntime, one thread, as the server does."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    # Open bounds: the guard flags nothing and the score output is the forest's alone.
    width = len(data.FEATURES)
    low = np.full(width, -np.inf, dtype=np.float32)
    high = np.full(width, np.inf, dtype=np.float32)
    return lambda rows: session.run(
        [OUTPUT_NAME], {INPUT_NAME: rows, ENVELOPE_LOW: low, ENVELOPE_HIGH: high}
    )[0].ravel()


def library_versions() -> dict[str, str]:
    """Versions that decide the artifact's bytes and its scores."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _stamp(model_proto: Any, props: dict[str, str]) -> bytes:
    # skl2onnx names the graph with a random UUID; a fixed name keeps the bytes reproducible.
    model_proto.graph.name = "gridscore_isolation_forest"
    onnx.helper.set_model_props(model_proto, props)
    onnx.checker.check_model(model_proto)
    return bytes(model_proto.SerializeToString())


def run(
    model_dir: Path,
    name: str = DEFAULT_NAME,
    parity_points: int = DEFAULT_PARITY_POINTS,
    progress: Progress | None = None,
) -> Result:
    """Train, compile, verify and publish; raises ParityError (publishing nothing) on mismatch."""
    say = progress or (lambda stage, text: None)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    matrix = data.training_data()
    data_hash = data.data_sha256(matrix)
    seconds["data"] = time.perf_counter() - started
    say("data", f"{len(matrix)} rows, sha256 {data_hash[:12]}")

    started = time.perf_counter()
    model = train.fit(matrix)
    threshold = train.trained_threshold(model)
    seconds["train"] = time.perf_counter() - started
    say("train", f"IsolationForest {train.MODEL_PARAMS}, threshold {threshold:.6f}")

    started = time.perf_counter()
    props = {
        "gridscore.features": ",".join(data.FEATURES),
        "gridscore.threshold": repr(threshold),
        "gridscore.training_sha256": data_hash,
        "gridscore.score": "2^(-E[h(x)]/c(psi)) = -score_samples; higher is more anomalous",
    }
    envelope = trained_envelope(matrix, data.FEATURES)
    graph = add_envelope_guard(to_folded_onnx(model), len(data.FEATURES))
    model_bytes = _stamp(graph, props)
    digest = artifact.sha256_hex(model_bytes)
    seconds["compile"] = time.perf_counter() - started
    say(
        "compile",
        f"one TreeEnsembleRegressor node + Exp, envelope guard, {len(model_bytes)} bytes, "
        f"sha256 {digest[:12]}",
    )

    started = time.perf_counter()
    report = parity.measure(model, onnx_scorer(model_bytes), parity.build_set(model, parity_points))
    seconds["verify"] = time.perf_counter() - started
    say(
        "verify",
        f"{report.points} points, max |score diff| {report.max_abs_score_diff:.2e}, "
        f"label mismatches {report.label_mismatches} "
        f"({report.label_mismatches_outside_band} outside the +/-{report.decision_band:g} band)",
    )
    parity.require(report)

    started = time.perf_counter()
    metadata = artifact.Metadata(
        format_version=artifact.FORMAT_VERSION,
        name=name,
        digest=digest,
        file=f"{artifact.artifact_stem(name, digest)}.onnx",
        graph="folded-tree-ensemble",
        features=list(data.FEATURES),
        units=list(data.UNITS),
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        threshold=threshold,
        envelope=artifact.EnvelopeInfo(
            bounds=envelope,
            derivation=f"training range widened by {TRAINED_MARGIN:.0%} of its width per side",
            breach_layout=BREACH_LAYOUT,
            low_input=ENVELOPE_LOW,
            high_input=ENVELOPE_HIGH,
            breach_output=BREACH_OUTPUT,
        ),
        model={"type": "IsolationForest", **train.MODEL_PARAMS, "max_samples": model._max_samples},
        opset=dict(TARGET_OPSET),
        training=artifact.TrainingInfo(
            rows=len(matrix),
            seed=data.SEED,
            data_sha256=data_hash,
            distributions=data.describe_distributions(),
            ranges={
                feature: [float(matrix[:, i].min()), float(matrix[:, i].max())]
                for i, feature in enumerate(data.FEATURES)
            },
        ),
        parity=report,
        histograms={
            feature: artifact.FeatureHistogram(edges=edges, counts=counts)
            for feature, (edges, counts) in data.histograms(matrix).items()
        },
        versions=library_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    path = publish(model_dir, model_bytes, metadata)
    seconds["publish"] = time.perf_counter() - started
    say("publish", str(path))
    return Result(path=path, metadata=metadata, seconds=seconds)
