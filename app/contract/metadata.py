"""The artifact's metadata: the JSON the convert step writes beside each ``.onnx`` file.

Shared by ``convert`` (which writes it), the model's loader (which verifies and reads it) and
the clients of ``GET /model`` (the dashboard reads its histograms, calibration and drift bins).
"""

from __future__ import annotations

from typing import Any

import msgspec

FORMAT_VERSION = 5


class ParityReport(msgspec.Struct, forbid_unknown_fields=True):
    """How closely the ONNX graph matched scikit-learn before publishing."""

    points: int
    max_abs_score_diff: float
    score_tolerance: float
    label_mismatches: int
    label_mismatches_outside_band: int
    decision_band: float
    by_kind: dict[str, dict[str, float]]
    max_abs_attribution_diff: float | None = None  # attribution shares against the reference


class FeatureHistogram(msgspec.Struct, forbid_unknown_fields=True):
    """Training distribution of one feature: bin edges and the training rows in each bin."""

    edges: list[float]
    counts: list[int]


class FeatureSummary(msgspec.Struct, forbid_unknown_fields=True):
    """Exact statistics of one feature over every usable normal row of the training data."""

    count: int
    min: float
    max: float
    mean: float
    std: float


class DataReport(msgspec.Struct, forbid_unknown_fields=True):
    """What the convert step read and what it kept (printed, and stored for lineage)."""

    source: str  # "synthetic" or the file's name
    format: str  # synthetic, csv, parquet or jsonl
    file_sha256: str  # of the file's bytes ("" for synthetic data)
    rows_read: int
    rows_usable: int
    rows_dropped: dict[str, int]  # reason -> rows: missing, not_a_number, non_finite, ...
    labelled_anomalies: int
    timestamp_column: str  # "" when none
    label_column: str  # "" when none
    features: dict[str, FeatureSummary]  # over usable normal rows
    sample_rows: int  # normal rows kept in the uniform sample (training + held out)
    seed: int


class TrainingInfo(msgspec.Struct, forbid_unknown_fields=True):
    """Lineage of the rows the forest was fitted on."""

    rows: int
    seed: int
    data_sha256: str  # of the training matrix's float64 bytes
    distributions: dict[str, str]
    ranges: dict[str, list[float]]


class NominalInfo(msgspec.Struct, forbid_unknown_fields=True):
    """Nominal values per voltage (V) and frequency (Hz) feature: what the standard envelope
    presets scale from."""

    voltage: dict[str, float]
    frequency: dict[str, float]
    derivation: str


class CalibrationSummary(msgspec.Struct, forbid_unknown_fields=True):
    """How the threshold was chosen and what it is expected to do. The full report, with its
    curves, is ``<stem>.calibration.json`` beside the artifact, plotted in ``.calibration.svg``."""

    method: str  # contamination, alarm_budget, target_precision or target_recall
    target: str  # what was asked, in words
    threshold: float
    holdout_normal_rows: int  # held-out normal rows the threshold was evaluated on
    holdout_anomaly_rows: int  # labelled anomalies the threshold was evaluated on
    false_alarm_rate: float | None
    false_alarm_rate_upper_95: float | None  # one-sided 95 % Clopper-Pearson bound
    expected_alarms_per_hour: float | None  # at reading_rate_per_s
    reading_rate_per_s: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    pr_auc: float | None


class AttributionInfo(msgspec.Struct, forbid_unknown_fields=True):
    """The graph's per-feature attribution output and what it means (convert/attribution.py)."""

    output: str
    definition: str
    levels: int  # the first splits of each path that credit their feature
    # What the output adds to each feature (the node's base values): the output less these is
    # a positive multiple of A, the same for every feature, so its shares are A's shares.
    offsets: list[float]


class KernelInfo(msgspec.Struct, forbid_unknown_fields=True):
    """A graph beside the main one, for large batches (convert/sorted_rows.py): the rows
    scored in an order the CPU can predict, the answers in the caller's order."""

    name: str  # served-sorted | score-sorted | attribution-sorted
    file: str  # beside the .onnx file
    sha256: str
    outputs: list[str]


class KernelsInfo(msgspec.Struct, forbid_unknown_fields=True):
    """The large-batch graphs and from which batch size the server uses them."""

    from_rows: int
    graphs: list[KernelInfo]
    # What each was checked against before publishing, on the parity points.
    parity: dict[str, str]


class DriftBins(msgspec.Struct, forbid_unknown_fields=True):
    """Fixed bins of one feature for drift: the inner edges (deciles of the training rows; the
    first bin is open below, the last above) and the share of training rows in each bin."""

    edges: list[float]
    shares: list[float]


class EnvelopeInfo(msgspec.Struct, forbid_unknown_fields=True):
    """The operating envelope the graph guards, and the names of its inputs and output."""

    bounds: dict[str, list[float]]
    derivation: str
    low_input: str
    high_input: str
    breach_output: str
    breach_layout: str


class _FormatOnly(msgspec.Struct):
    format_version: int


class Metadata(msgspec.Struct, forbid_unknown_fields=True):
    """The JSON written beside each ``.onnx`` file."""

    format_version: int
    name: str
    digest: str
    file: str
    graph: str
    features: list[str]
    units: list[str]
    input_name: str
    output_name: str
    threshold: float
    envelope: EnvelopeInfo
    nominal: NominalInfo
    model: dict[str, Any]
    opset: dict[str, int]
    data: DataReport
    training: TrainingInfo
    calibration: CalibrationSummary
    attribution: AttributionInfo
    parity: ParityReport
    histograms: dict[str, FeatureHistogram]
    drift: dict[str, DriftBins]
    kernels: KernelsInfo
    versions: dict[str, str]
    created_at: str
