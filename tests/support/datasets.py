"""Recorded-telemetry files for the convert step's tests: CSV, Parquet, JSON Lines.

A three-phase feeder with five features (three phase voltages, a current, a power factor),
plus columns a real export carries that are not features (a timestamp, a site name), and
optionally a label column with known anomalies: one feature pushed 4 to 8 standard deviations
from normal, inside the trained envelope's reach, so only the forest can see them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURES = ("v_l1", "v_l2", "v_l3", "current", "power_factor")
UNITS = "v_l1=V,v_l2=V,v_l3=V,current=A,power_factor=1"


@dataclass(frozen=True)
class Feeder:
    """Normal operation of one feeder: nominal voltage, current and frequency."""

    voltage: float = 230.0
    voltage_sd: float = 2.0
    current: float = 10.0
    current_sd: float = 1.5
    power_factor: float = 0.95
    power_factor_sd: float = 0.015

    def normal(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        common = rng.normal(0.0, self.voltage_sd * 0.8, rows)  # the supply moves all phases
        phases = [
            self.voltage + common + rng.normal(0.0, self.voltage_sd * 0.6, rows) for _ in range(3)
        ]
        current = rng.normal(self.current, self.current_sd, rows)
        pf = np.clip(rng.normal(self.power_factor, self.power_factor_sd, rows), 0.5, 1.0)
        return np.column_stack([*phases, current, pf])

    def spreads(self) -> np.ndarray:
        return np.array([self.voltage_sd] * 3 + [self.current_sd, self.power_factor_sd])

    def anomalies(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        """Normal rows with one feature pushed 4 to 8 standard deviations away."""
        matrix = self.normal(rows, rng)
        feature = rng.integers(0, len(FEATURES), rows)
        push = rng.choice([-1.0, 1.0], rows) * rng.uniform(4.0, 8.0, rows)
        matrix[np.arange(rows), feature] += push * self.spreads()[feature]
        return matrix


def table(
    rows: int, seed: int, anomaly_share: float = 0.0, feeder: Feeder | None = None
) -> dict[str, list[object]]:
    """Columns of a recorded export: timestamp, site, the five features, and label."""
    feeder = feeder or Feeder()
    rng = np.random.default_rng(seed)
    anomalous = rng.random(rows) < anomaly_share
    matrix = feeder.normal(rows, rng)
    matrix[anomalous] = feeder.anomalies(int(anomalous.sum()), rng)
    start = np.datetime64("2026-01-01T00:00:00")
    stamps = (start + np.arange(rows) * np.timedelta64(100, "ms")).astype(str)
    columns: dict[str, list[object]] = {
        "timestamp": [f"{s}Z" for s in stamps],
        "site": ["feeder-7"] * rows,
    }
    for index, name in enumerate(FEATURES):
        columns[name] = np.round(matrix[:, index], 4).tolist()
    columns["label"] = anomalous.astype(int).tolist()
    return columns


def write(columns: dict[str, list[object]], path: Path) -> Path:
    """Write ``columns`` in the format the extension names (.csv, .parquet, .jsonl)."""
    if path.suffix == ".jsonl":
        names = list(columns)
        with open(path, "w") as handle:
            for values in zip(*columns.values(), strict=True):
                handle.write(json.dumps(dict(zip(names, values, strict=True))) + "\n")
        return path
    import pyarrow as pa

    arrow = pa.table(columns)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(arrow, path)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(arrow, path)
    return path


def matrix_of(columns: dict[str, list[object]], features: tuple[str, ...] = FEATURES) -> np.ndarray:
    return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in features])
