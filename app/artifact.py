"""Find, verify and describe a digest-named model artifact.

An artifact is ``<name>-<sha256 prefix>.onnx`` with ``<name>-<sha256 prefix>.json`` beside it.
The convert step writes both (``convert/publish.py``: metadata first, so an ``.onnx`` file never
appears without its metadata); the server refuses any file whose bytes do not hash to the
digest in its name and metadata.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

DIGEST_PREFIX_LEN = 12
"""Hex characters of the sha256 kept in the file name."""

FORMAT_VERSION = 4


class ArtifactError(RuntimeError):
    """The artifact is missing, incomplete, or fails verification."""


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
    versions: dict[str, str]
    created_at: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """A verified artifact: its bytes (what was hashed is what gets loaded) and metadata."""

    path: Path
    model_bytes: bytes
    metadata: Metadata

    @property
    def short_digest(self) -> str:
        return self.metadata.digest[:DIGEST_PREFIX_LEN]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_stem(name: str, digest: str) -> str:
    """``<name>-<first 12 hex of the sha256>``, the file name without extension."""
    return f"{name}-{digest[:DIGEST_PREFIX_LEN]}"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}-([0-9a-f]{{{DIGEST_PREFIX_LEN}}})\.onnx$")


def find(model_dir: Path, name: str, digest: str = "") -> Path | None:
    """Path of the artifact to serve: the pinned ``digest`` prefix, else the newest published."""
    if not model_dir.is_dir():
        return None
    pattern = _pattern(name)
    found = []
    for entry in os.scandir(model_dir):
        match = pattern.match(entry.name)
        if match and entry.is_file() and match.group(1).startswith(digest):
            found.append((entry.stat().st_mtime_ns, entry.name))
    if not found:
        return None
    # Publishing renames a finished file into place, so mtime orders publications.
    return model_dir / max(found)[1]


def metadata_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".json")


def calibration_paths(onnx_path: Path) -> tuple[Path, Path]:
    """The calibration report (JSON) and its plot (SVG) beside an artifact."""
    stem = onnx_path.with_suffix("")
    return stem.with_suffix(".calibration.json"), stem.with_suffix(".calibration.svg")


def peek_metadata(model_dir: Path, name: str, digest: str = "") -> Metadata | None:
    """The metadata of the artifact that would be served, unverified; None if unreadable.

    For what must be known before the model loads (the request schema's features); loading
    still verifies everything and refuses what does not hold.
    """
    path = find(model_dir, name, digest)
    if path is None:
        return None
    try:
        return msgspec.json.decode(metadata_path(path).read_bytes(), type=Metadata)
    except (OSError, msgspec.MsgspecError):
        return None


def load(path: Path) -> Artifact:
    """Read and verify one artifact; raises ArtifactError saying exactly what is wrong."""
    match = re.match(rf"^(.+)-([0-9a-f]{{{DIGEST_PREFIX_LEN}}})\.onnx$", path.name)
    if match is None:
        raise ArtifactError(f"{path.name}: not a digest-named artifact (<name>-<sha256[:12]>.onnx)")
    try:
        model_bytes = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read model file: {exc.strerror}") from None
    meta_file = metadata_path(path)
    try:
        raw_metadata = meta_file.read_bytes()
        version = msgspec.json.decode(raw_metadata, type=_FormatOnly).format_version
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{meta_file.name}: format_version {version}, this server reads "
                f"{FORMAT_VERSION}; re-run `python -m convert` to publish a current artifact"
            )
        metadata = msgspec.json.decode(raw_metadata, type=Metadata)
    except OSError as exc:
        raise ArtifactError(f"{meta_file}: cannot read metadata: {exc.strerror}") from None
    except msgspec.MsgspecError as exc:
        raise ArtifactError(f"{meta_file}: invalid metadata: {exc}") from None
    actual = sha256_hex(model_bytes)
    if not actual.startswith(match.group(2)):
        raise ArtifactError(
            f"{path.name}: sha256 of the file is {actual[:DIGEST_PREFIX_LEN]}..., "
            f"not the {match.group(2)} in its name (tampered or truncated); refusing to load"
        )
    if actual != metadata.digest:
        raise ArtifactError(
            f"{path.name}: sha256 {actual[:DIGEST_PREFIX_LEN]}... differs from the metadata's "
            f"{metadata.digest[:DIGEST_PREFIX_LEN]}...; refusing to load"
        )
    return Artifact(path=path, model_bytes=model_bytes, metadata=metadata)
