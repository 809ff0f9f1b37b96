"""The convert step as stages: data, train, compile, verify, calibrate, publish."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn

from app.contract import metadata as artifact_meta
from app.model import artifact
from convert import attribution, data, kernels, parity, train
from convert.calibrate import Calibration, CalibrationSpec, calibrate
from convert.envelope_guard import BREACH_LAYOUT, TRAINED_MARGIN, add_envelope_guard, widened
from convert.folded_converter import attribution_offsets, score_scale, to_folded_onnx
from convert.graph_names import (
    ATTRIBUTION_OUTPUT,
    BREACH_OUTPUT,
    ENVELOPE_HIGH,
    ENVELOPE_LOW,
    INPUT_NAME,
    OUTPUT_NAME,
    TARGET_OPSET,
)
from convert.ingest import IngestOptions, ingest, synthetic_report
from convert.nominal_values import nominal_info
from convert.publish import publish
from convert.readers import DataError

DEFAULT_NAME = "gridscore-iforest"
DEFAULT_PARITY_POINTS = 100_000

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class ForestParams:
    n_estimators: int = 200
    max_samples: int | float | str = "auto"
    contamination: float = 0.05
    seed: int = 42

    def sklearn(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "n_estimators": self.n_estimators,
            "contamination": self.contamination,
            "random_state": self.seed,
        }
        if self.max_samples != "auto":  # the default stays out, as in the defaults' artifact
            params["max_samples"] = self.max_samples
        return params


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``python -m convert`` can be told; the defaults train on synthetic data."""

    data: Path | None = None
    ingest: IngestOptions = field(default_factory=IngestOptions)
    units: dict[str, str] = field(default_factory=dict)
    nominal_voltage: float | None = None
    nominal_frequency: float | None = None
    forest: ForestParams = field(default_factory=ForestParams)
    calibration: CalibrationSpec = field(default_factory=CalibrationSpec)


@dataclass(frozen=True)
class Result:
    path: Path
    metadata: artifact_meta.Metadata
    seconds: dict[str, float]
    calibration: Calibration


@dataclass
class Prepared:
    """The data stage's output: features, the normal sample, labelled anomalies, the report."""

    features: tuple[str, ...]
    units: tuple[str, ...]
    normal: np.ndarray
    anomalies: np.ndarray
    report: artifact_meta.DataReport
    distributions: dict[str, str]


def onnx_session(model_bytes: bytes) -> Any:
    """An onnxruntime session with one thread, as the server opens it."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def onnx_scorer(model_bytes: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """Score float32 rows with onnxruntime, as the server does, with the envelope open: the
    guard flags nothing and the score is the forest's alone."""
    session = onnx_session(model_bytes)
    width = session.get_inputs()[0].shape[1]
    low = np.full(width, -np.inf, dtype=np.float32)
    high = np.full(width, np.inf, dtype=np.float32)
    return lambda rows: session.run(
        [OUTPUT_NAME], {INPUT_NAME: rows, ENVELOPE_LOW: low, ENVELOPE_HIGH: high}
    )[0].ravel()


def onnx_attributor(model_bytes: bytes, offsets: list[float]) -> Callable[[np.ndarray], np.ndarray]:
    """Attribution per row (N x F, a positive multiple of A) from the graph, envelope open,
    less the node's base ``offsets`` as the server takes them off (metadata.attribution)."""
    session = onnx_session(model_bytes)
    width = session.get_inputs()[0].shape[1]
    low = np.full(width, -np.inf, dtype=np.float32)
    high = np.full(width, np.inf, dtype=np.float32)
    base = np.asarray(offsets, dtype=np.float32)
    return lambda rows: (
        session.run(
            [ATTRIBUTION_OUTPUT], {INPUT_NAME: rows, ENVELOPE_LOW: low, ENVELOPE_HIGH: high}
        )[0]
        - base
    )


def drift_bins(matrix: np.ndarray, features: tuple[str, ...]) -> dict[str, artifact_meta.DriftBins]:
    """Per feature, the deciles of the training rows as fixed bin edges, and the share of
    training rows in each bin (a value equal to an edge falls in the bin above it)."""
    bins = {}
    for index, name in enumerate(features):
        column = matrix[:, index]
        edges = np.unique(np.quantile(column, np.linspace(0.1, 0.9, 9)))
        counts = np.bincount(np.searchsorted(edges, column, side="right"), minlength=len(edges) + 1)
        bins[name] = artifact_meta.DriftBins(
            edges=[float(e) for e in edges], shares=[float(c) / len(column) for c in counts]
        )
    return bins


def served_verdict(
    model_bytes: bytes, bounds: dict[str, list[float]], features: tuple[str, ...]
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Score and envelope breaches per row, with the trained envelope, as served by default."""
    session = onnx_session(model_bytes)
    low = np.array([bounds[f][0] for f in features], dtype=np.float32)
    high = np.array([bounds[f][1] for f in features], dtype=np.float32)

    def verdict(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, breach = session.run(
            [OUTPUT_NAME, BREACH_OUTPUT], {INPUT_NAME: rows, ENVELOPE_LOW: low, ENVELOPE_HIGH: high}
        )
        return score.ravel(), breach

    return verdict


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
    # skl2onnx names the graph with a random UUID, and lists the opsets it imports in the
    # order of a set of domain names (which changes with Python's string hashing, process to
    # process): a fixed name and a sorted list keep the bytes reproducible.
    model_proto.graph.name = "gridscore_isolation_forest"
    opsets = sorted((o.domain, o.version) for o in model_proto.opset_import)
    del model_proto.opset_import[:]
    for domain, version in opsets:
        model_proto.opset_import.add(domain=domain, version=version)
    onnx.helper.set_model_props(model_proto, props)
    onnx.checker.check_model(model_proto)
    return bytes(model_proto.SerializeToString())


def prepare(options: ConvertOptions) -> Prepared:
    """The data stage: the synthetic supply point, or a file read and validated."""
    if options.data is None:
        matrix = data.training_data()
        return Prepared(
            features=data.FEATURES,
            units=data.UNITS,
            normal=matrix,
            anomalies=np.empty((0, len(data.FEATURES))),
            report=synthetic_report(matrix, data.FEATURES, data.SEED),
            distributions=data.describe_distributions(),
        )
    ingested = ingest(options.data, options.ingest)
    unknown = set(options.units) - set(ingested.features)
    if unknown:
        raise DataError(f"--units names {sorted(unknown)}, not features {ingested.features}")
    return Prepared(
        features=ingested.features,
        units=tuple(options.units.get(f, "") for f in ingested.features),
        normal=ingested.normal,
        anomalies=ingested.anomalies,
        report=ingested.report,
        distributions=dict.fromkeys(ingested.features, f"recorded ({ingested.report.source})"),
    )


def split_holdout(normal: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows and held-out rows, both in their original order."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(normal), dtype=bool)
    held[rng.permutation(len(normal))[: round(len(normal) * share)]] = True
    return normal[~held], normal[held]


def run(
    model_dir: Path,
    name: str = DEFAULT_NAME,
    parity_points: int = DEFAULT_PARITY_POINTS,
    progress: Progress | None = None,
    options: ConvertOptions | None = None,
) -> Result:
    """Train, compile, verify, calibrate and publish. Raises DataError for unusable data and
    ParityError on a mismatch with scikit-learn; either way nothing is published."""
    options = options or ConvertOptions()
    say = progress or (lambda stage, text: None)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    prepared = prepare(options)
    features, report = prepared.features, prepared.report
    seconds["data"] = time.perf_counter() - started
    dropped = ", ".join(f"{k} {v}" for k, v in report.rows_dropped.items()) or "none"
    say(
        "data",
        f"{report.source}: {report.rows_read} rows read, {report.rows_usable} usable "
        f"(dropped: {dropped}), {report.labelled_anomalies} labelled anomalies; "
        f"features {list(features)}",
    )
    for feature, summary in report.features.items():
        say(
            "data",
            f"  {feature:>16}: count {summary.count}, min {summary.min:.6g}, "
            f"max {summary.max:.6g}, mean {summary.mean:.6g}, std {summary.std:.4g}",
        )

    started = time.perf_counter()
    spec = options.calibration
    labelled = len(prepared.anomalies) > 0
    if spec.needs_holdout(labelled):
        matrix, holdout = split_holdout(prepared.normal, spec.holdout, options.forest.seed)
    else:
        matrix, holdout = prepared.normal, np.empty((0, len(features)))
    data_hash = data.data_sha256(matrix)
    model = train.fit(matrix, **options.forest.sklearn())
    forest_threshold = train.trained_threshold(model)
    seconds["train"] = time.perf_counter() - started
    say(
        "train",
        f"IsolationForest {options.forest.sklearn()} on {len(matrix)} rows "
        f"({len(holdout)} held out), forest threshold {forest_threshold:.6f}",
    )

    started = time.perf_counter()
    props = {
        "gridscore.features": ",".join(features),
        "gridscore.threshold": repr(forest_threshold),
        "gridscore.training_sha256": data_hash,
        "gridscore.score": "2^(-E[h(x)]/c(psi)) = -score_samples; higher is more anomalous",
    }
    summaries = report.features
    low = np.array([summaries[f].min for f in features])
    high = np.array([summaries[f].max for f in features])
    envelope = widened(low, high, features)
    graph = add_envelope_guard(to_folded_onnx(model, attribution=True), len(features))
    offsets = attribution_offsets(model, score_scale(model))
    model_bytes = _stamp(graph, props)
    digest = artifact.sha256_hex(model_bytes)
    seconds["compile"] = time.perf_counter() - started
    say(
        "compile",
        f"one TreeEnsembleRegressor node (attribution, and through its sum the score) + "
        f"ReduceSum + Exp, envelope guard, {len(model_bytes)} bytes, "
        f"sha256 {digest[:12]}",
    )

    started = time.perf_counter()
    parity_set = parity.build_set(model, parity_points, matrix)
    report_parity = parity.measure(
        model, onnx_scorer(model_bytes), parity_set, onnx_attributor(model_bytes, offsets)
    )
    seconds["verify"] = time.perf_counter() - started
    say(
        "verify",
        f"{report_parity.points} points, max |score diff| "
        f"{report_parity.max_abs_score_diff:.2e}, label mismatches "
        f"{report_parity.label_mismatches} ({report_parity.label_mismatches_outside_band} "
        f"outside the +/-{report_parity.decision_band:g} band), max |attribution share diff| "
        f"{report_parity.max_abs_attribution_diff:.2e}",
    )
    parity.require(report_parity)
    started = time.perf_counter()
    stem = artifact.artifact_stem(name, digest)
    large = kernels.build(model, matrix, len(features))
    trained_bounds = (
        np.array([envelope[f][0] for f in features]),
        np.array([envelope[f][1] for f in features]),
    )
    checked, _ = kernels.check(model, model_bytes, large, parity_set, trained_bounds, onnx_session)
    seconds["verify"] += time.perf_counter() - started
    say(
        "verify",
        f"large-batch graphs (rows sorted, from {kernels.SORT_FROM_ROWS} rows): "
        + "; ".join(f"{name}: {text}" for name, text in checked.items()),
    )

    started = time.perf_counter()
    calibration = calibrate(
        spec,
        forest_threshold,
        served_verdict(model_bytes, envelope, features),
        holdout,
        prepared.anomalies,
        np.random.default_rng(options.forest.seed + 1),
        prevalence=report.labelled_anomalies / max(report.rows_usable, 1),
    )
    seconds["calibrate"] = time.perf_counter() - started
    say("calibrate", describe_calibration(calibration.summary))

    started = time.perf_counter()
    from convert.calibration_plot import render_svg

    nominal = nominal_info(
        features, prepared.units, summaries, options.nominal_voltage, options.nominal_frequency
    )
    metadata = artifact_meta.Metadata(
        format_version=artifact_meta.FORMAT_VERSION,
        name=name,
        digest=digest,
        file=f"{artifact.artifact_stem(name, digest)}.onnx",
        graph="folded-tree-ensemble",
        features=list(features),
        units=list(prepared.units),
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        threshold=calibration.summary.threshold,
        envelope=artifact_meta.EnvelopeInfo(
            bounds=envelope,
            derivation=f"range of every usable normal row widened by {TRAINED_MARGIN:.0%} of "
            "its width per side",
            breach_layout=BREACH_LAYOUT,
            low_input=ENVELOPE_LOW,
            high_input=ENVELOPE_HIGH,
            breach_output=BREACH_OUTPUT,
        ),
        nominal=nominal,
        model={
            "type": "IsolationForest",
            **options.forest.sklearn(),
            "max_samples": model._max_samples,
            "forest_threshold": forest_threshold,
        },
        opset=dict(TARGET_OPSET),
        data=report,
        training=artifact_meta.TrainingInfo(
            rows=len(matrix),
            seed=options.forest.seed,
            data_sha256=data_hash,
            distributions=prepared.distributions,
            ranges={
                feature: [float(matrix[:, i].min()), float(matrix[:, i].max())]
                for i, feature in enumerate(features)
            },
        ),
        calibration=calibration.summary,
        attribution=artifact_meta.AttributionInfo(
            output=ATTRIBUTION_OUTPUT,
            definition=attribution.DEFINITION,
            levels=attribution.LEVELS,
            offsets=offsets,
        ),
        parity=report_parity,
        histograms={
            feature: artifact_meta.FeatureHistogram(edges=edges, counts=counts)
            for feature, (edges, counts) in data.histograms(matrix, features).items()
        },
        drift=drift_bins(matrix, features),
        kernels=kernels.info(stem, large, checked),
        versions=library_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    path = publish(
        model_dir,
        model_bytes,
        metadata,
        kernels={name: graph for name, (graph, _) in large.items()},
        calibration_report=msgspec.json.format(msgspec.json.encode(calibration.report)),
        calibration_plot=render_svg(calibration.report),
    )
    seconds["publish"] = time.perf_counter() - started
    say("publish", str(path))
    return Result(path=path, metadata=metadata, seconds=seconds, calibration=calibration)


def describe_calibration(summary: artifact_meta.CalibrationSummary) -> str:
    parts = [f"{summary.method} ({summary.target}): threshold {summary.threshold:.6f}"]
    if summary.false_alarm_rate is not None:
        parts.append(
            f"false alarm rate {summary.false_alarm_rate:.3g} on {summary.holdout_normal_rows} "
            f"held-out normal rows (95 % upper bound {summary.false_alarm_rate_upper_95:.3g})"
        )
    if summary.expected_alarms_per_hour is not None:
        parts.append(f"expected false alarms {summary.expected_alarms_per_hour:.3g}/h")
    if summary.precision is not None:
        parts.append(
            f"precision {summary.precision:.3f}, recall {summary.recall:.3f}, F1 "
            f"{summary.f1:.3f} on {summary.holdout_anomaly_rows} labelled anomalies"
        )
    if summary.roc_auc is not None:
        parts.append(f"ROC-AUC {summary.roc_auc:.3f}, PR-AUC {summary.pr_auc:.3f}")
    return "; ".join(parts)
