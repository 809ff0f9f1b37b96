"""Turn a data file into what training needs, in one pass and bounded memory.

Every row is read once, chunk by chunk. Over every usable row the pass keeps exact per-feature
counts, minimum, maximum, mean and standard deviation (Chan's parallel update of Welford's
sums), and a uniform sample of at most ``sample_rows`` normal rows and as many labelled
anomalies (each row gets a random key; the rows with the smallest keys are the sample, which
is uniform whatever the file's order). Memory is one chunk plus the two samples: about
``(chunk_rows + 2 * sample_rows) * (features + 1) * 8`` bytes, whatever the file's size.

A row is usable when every feature holds a finite number and its label (if any) is readable;
otherwise it is dropped and counted under the first reason that applies. The checks that stop
the convert step with exit status 2 (``DataError``) are listed in docs/model.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.contract.metadata import DataReport, FeatureSummary
from convert import columns
from convert.readers import DataError, Reader

FEATURE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
RESERVED = {"timestamp"}  # a request field of its own


@dataclass(frozen=True)
class IngestOptions:
    features: tuple[str, ...] | None = None  # None: every numeric column but timestamp/label
    timestamp_column: str | None = None  # None: "timestamp" if the file has one
    label_column: str | None = None  # None: "label" if the file has one
    format: str | None = None  # None: from the extension
    min_rows: int = 1_000
    max_dropped: float = 0.02  # share of rows read
    sample_rows: int = 1_000_000
    seed: int = 42
    chunk_rows: int = 262_144


@dataclass
class Ingested:
    """The sampled normal rows and labelled anomalies (float64, file order), and the report."""

    features: tuple[str, ...]
    normal: np.ndarray
    anomalies: np.ndarray
    report: DataReport


@dataclass
class RunningStats:
    """Exact count, min, max, mean and variance per column, merged chunk by chunk."""

    width: int
    count: int = 0
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)
    low: np.ndarray = field(init=False)
    high: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.width)
        self.m2 = np.zeros(self.width)
        self.low = np.full(self.width, np.inf)
        self.high = np.full(self.width, -np.inf)

    def update(self, block: np.ndarray) -> None:
        n = len(block)
        if n == 0:
            return
        mean = block.mean(axis=0)
        m2 = ((block - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total
        self.low = np.minimum(self.low, block.min(axis=0))
        self.high = np.maximum(self.high, block.max(axis=0))

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count) if self.count else np.zeros(self.width)

    def summaries(self, features: tuple[str, ...]) -> dict[str, FeatureSummary]:
        """The report's per-feature figures, columns named in order."""
        std = self.std()
        return {
            name: FeatureSummary(
                count=self.count,
                min=float(self.low[i]),
                max=float(self.high[i]),
                mean=float(self.mean[i]),
                std=float(std[i]),
            )
            for i, name in enumerate(features)
        }


@dataclass
class Reservoir:
    """A uniform sample of at most ``size`` rows: the rows with the smallest random keys.

    Once full, only rows whose key beats the largest key kept can enter, so later chunks add
    few rows; entrants wait in a buffer that is merged when it holds a quarter of ``size``, which
    keeps the copying proportional to what enters, not to the file.
    """

    size: int
    width: int
    rows: np.ndarray = field(init=False)
    keys: np.ndarray = field(init=False)
    order: np.ndarray = field(init=False)  # position in the file, to give the sample back in order
    _pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _pending_rows: int = 0
    _limit: float = np.inf  # keys at or above this cannot enter any more

    def __post_init__(self) -> None:
        self.rows = np.empty((0, self.width))
        self.keys = np.empty(0)
        self.order = np.empty(0, dtype=np.int64)

    def offer(self, block: np.ndarray, keys: np.ndarray, order: np.ndarray) -> None:
        if self._limit < np.inf:
            entering = keys < self._limit
            block, keys, order = block[entering], keys[entering], order[entering]
        if len(keys) == 0:
            return
        self._pending.append((block, keys, order))
        self._pending_rows += len(keys)
        if self._pending_rows >= max(self.size // 4, 1):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        rows = np.concatenate([self.rows, *(p[0] for p in self._pending)])
        keys = np.concatenate([self.keys, *(p[1] for p in self._pending)])
        order = np.concatenate([self.order, *(p[2] for p in self._pending)])
        self._pending, self._pending_rows = [], 0
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            rows, keys, order = rows[keep], keys[keep], order[keep]
        if len(keys) >= self.size:
            self._limit = float(keys.max())
        self.rows, self.keys, self.order = rows, keys, order

    def in_file_order(self) -> np.ndarray:
        self._merge()
        return np.ascontiguousarray(self.rows[np.argsort(self.order, kind="stable")])

    def __len__(self) -> int:
        self._merge()
        return len(self.keys)


def check_feature_names(names: tuple[str, ...]) -> None:
    """Names become JSON fields, metric labels and ENVELOPE_<NAME>_MIN variables."""
    if not names:
        raise DataError("no features: name them with --features a,b,c")
    for name in names:
        if not FEATURE_NAME.match(name):
            raise DataError(
                f"invalid feature name {name!r}: a letter, then letters, digits or _ "
                "(at most 64); rename the column"
            )
        if name.lower() in RESERVED:
            raise DataError(f"{name!r} cannot be a feature: it is a field of its own")
    folded = [n.lower() for n in names]
    for name in names:
        if folded.count(name.lower()) > 1:
            raise DataError(f"feature {name!r} is named twice (names are compared ignoring case)")


def _choose_columns(reader: Reader, options: IngestOptions) -> tuple[tuple[str, ...], str, str]:
    present = reader.columns
    seen = set()
    for name in present:
        if name in seen:
            raise DataError(f"{reader.path.name}: column {name!r} appears twice in the header")
        seen.add(name)
    timestamp = options.timestamp_column
    if timestamp is None:
        timestamp = "timestamp" if "timestamp" in present else ""
    elif timestamp not in present:
        raise DataError(f"timestamp column {timestamp!r} is not in {reader.path.name} ({present})")
    label = options.label_column
    if label is None:
        label = "label" if "label" in present else ""
    elif label not in present:
        raise DataError(f"label column {label!r} is not in {reader.path.name} ({present})")
    if options.features is not None:
        features = options.features
        check_feature_names(features)
        for name in features:
            if name not in present:
                raise DataError(
                    f"feature column {name!r} is not in {reader.path.name}; columns: {present}"
                )
            if name in (timestamp, label):
                raise DataError(f"{name!r} is the timestamp or label column, not a feature")
    else:
        features = tuple(n for n in present if n in reader.numeric and n not in (timestamp, label))
        if not features:
            raise DataError(
                f"{reader.path.name}: no numeric columns besides timestamp and label "
                f"(columns: {present}); name the features with --features"
            )
        check_feature_names(features)
    return features, timestamp, label


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def ingest(path: Path, options: IngestOptions) -> Ingested:
    """Read, validate, summarise and sample ``path``; raises DataError for unusable data."""
    reader = Reader.open(path, options.format, options.chunk_rows)
    features, timestamp, label = _choose_columns(reader, options)
    width = len(features)
    stats = RunningStats(width)
    normal = Reservoir(options.sample_rows, width)
    anomalous = Reservoir(options.sample_rows, width)
    rng = np.random.default_rng(options.seed)
    dropped = dict.fromkeys([*columns.REASONS.values(), "malformed_row"], 0)
    bad_values = dict.fromkeys(features, 0)
    rows_read = usable = labelled = position = 0
    checked_numeric = False
    names = [*features, *([label] if label else [])]
    for chunk in reader.chunks(names):
        dropped["malformed_row"] += chunk.malformed
        rows_read += chunk.rows + chunk.malformed
        if chunk.rows == 0:
            continue
        matrix = np.empty((chunk.rows, width))
        reason = np.zeros(chunk.rows, dtype=np.uint8)
        for index, name in enumerate(features):
            values, why = columns.numbers(chunk.columns[name])
            if not checked_numeric:
                present = why != columns.MISSING
                if present.any() and (why[present] == columns.NOT_A_NUMBER).all():
                    sample = [v for v in _first_values(chunk.columns[name]) if v not in ("", None)]
                    raise DataError(
                        f"feature column {name!r} is not numeric (first values: {sample[:3]})"
                    )
            bad_values[name] += int(np.count_nonzero(why))
            matrix[:, index] = values
            reason = np.where(reason == columns.OK, why, reason)
        checked_numeric = True
        is_anomaly = np.zeros(chunk.rows, dtype=bool)
        if label:
            is_anomaly, why = columns.labels(chunk.columns[label])
            reason = np.where(reason == columns.OK, why, reason)
        for code, count in zip(
            *np.unique(reason[reason != columns.OK], return_counts=True), strict=True
        ):
            dropped[columns.REASONS[int(code)]] += int(count)
        keys = rng.random(chunk.rows)
        order = np.arange(position, position + chunk.rows)
        position += chunk.rows
        ok = reason == columns.OK
        good_normal = ok & ~is_anomaly
        good_anomaly = ok & is_anomaly
        stats.update(matrix[good_normal])
        normal.offer(matrix[good_normal], keys[good_normal], order[good_normal])
        anomalous.offer(matrix[good_anomaly], keys[good_anomaly], order[good_anomaly])
        usable += int(ok.sum())
        labelled += int(good_anomaly.sum())
    total_dropped = sum(dropped.values())
    if rows_read and total_dropped > options.max_dropped * rows_read:
        reasons = ", ".join(f"{k} {v}" for k, v in dropped.items() if v)
        worst = ", ".join(f"{k} {v}" for k, v in bad_values.items() if v)
        raise DataError(
            f"{total_dropped} of {rows_read} rows unusable ({total_dropped / rows_read:.1%}, over "
            f"--max-dropped {options.max_dropped:.1%}): {reasons}"
            + (f"; bad values per feature: {worst}" if worst else "")
        )
    if stats.count < options.min_rows:
        raise DataError(
            f"{stats.count} usable normal rows in {path.name}; at least {options.min_rows} "
            "are needed (--min-rows)"
        )
    for index, name in enumerate(features):
        if stats.high[index] == stats.low[index]:
            raise DataError(
                f"feature {name!r} is constant (every usable row holds {stats.low[index]:g}): it "
                "cannot tell anything apart; leave it out with --features"
            )
    report = DataReport(
        source=path.name,
        format=reader.format,
        file_sha256=file_sha256(path),
        rows_read=rows_read,
        rows_usable=usable,
        rows_dropped={k: v for k, v in dropped.items() if v},
        labelled_anomalies=labelled,
        timestamp_column=timestamp,
        label_column=label,
        features=stats.summaries(features),
        sample_rows=len(normal),
        seed=options.seed,
    )
    return Ingested(features, normal.in_file_order(), anomalous.in_file_order(), report)


def _first_values(column: object) -> list[object]:
    values = column if isinstance(column, list) else column.slice(0, 5).to_pylist()  # type: ignore[attr-defined]
    return list(values[:5])


def synthetic_report(matrix: np.ndarray, features: tuple[str, ...], seed: int) -> DataReport:
    """The report of the built-in synthetic data (no file, nothing dropped)."""
    stats = RunningStats(len(features))
    stats.update(matrix)
    return DataReport(
        source="synthetic",
        format="synthetic",
        file_sha256="",
        rows_read=len(matrix),
        rows_usable=len(matrix),
        rows_dropped={},
        labelled_anomalies=0,
        timestamp_column="",
        label_column="",
        features=stats.summaries(features),
        sample_rows=len(matrix),
        seed=seed,
    )
