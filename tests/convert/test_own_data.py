"""Training on recorded readings: three file formats, any feature set, served as trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient

from app.model import artifact
from app.service.factory import create_api_app
from convert.__main__ import main as convert_main
from tests.support import datasets
from tests.support.config import settings_from

OLD_READING = {"voltage": 230.0, "current": 10.0, "frequency": 50.0}


def _convert(tmp_path: Path, data: Path, *extra: str) -> Path:
    out = tmp_path / "models"
    status = convert_main(
        [
            "--data",
            str(data),
            "--model-dir",
            str(out),
            "--units",
            datasets.UNITS,
            "--parity-points",
            "2000",
            *extra,
        ]
    )
    assert status == 0
    (path,) = out.glob("*.onnx")
    return path


def _reading(row: np.ndarray) -> dict[str, float]:
    return dict(zip(datasets.FEATURES, row.tolist(), strict=True))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_each_format_with_extra_columns_trains_publishes_and_serves(
    tmp_path: Path, suffix: str
) -> None:
    columns = datasets.table(6_000, seed=3, anomaly_share=0.01)
    path = _convert(tmp_path, datasets.write(columns, tmp_path / f"feeder{suffix}"))
    meta = artifact.load(path).metadata
    # The timestamp, site and label columns are not features; the rest are, in file order.
    assert meta.features == list(datasets.FEATURES)
    assert meta.units == ["V", "V", "V", "A", "1"]
    assert meta.data.format == suffix[1:]
    assert meta.data.rows_read == 6_000
    assert meta.data.label_column == "label"
    assert meta.data.timestamp_column == "timestamp"
    labelled = sum(columns["label"])  # type: ignore[arg-type]
    assert meta.data.labelled_anomalies == labelled
    normal = datasets.matrix_of(columns)[np.asarray(columns["label"]) == 0]
    summary = meta.data.features["v_l2"]
    assert summary.count == len(normal)
    assert summary.mean == pytest.approx(normal[:, 1].mean(), rel=1e-9)
    assert summary.std == pytest.approx(normal[:, 1].std(), rel=1e-9)
    assert summary.min == normal[:, 1].min()
    assert meta.nominal.voltage == {"v_l1": 230.0, "v_l2": 230.0, "v_l3": 230.0}
    calibration_json, calibration_svg = artifact.calibration_paths(path)
    assert calibration_json.exists()
    assert calibration_svg.read_bytes().lstrip().startswith(b"<?xml")

    with TestClient(create_api_app(settings_from(path.parent))) as client:
        good = client.post("/predict", json={"readings": [_reading(normal[0])]})
        old = client.post("/predict", json={"readings": [OLD_READING]})
        schema = client.get("/schema/openapi.json").json()
        health = client.get("/health").json()
        model = client.get("/model").json()
    assert good.status_code == 200, good.text
    assert good.json()["predictions"][0]["anomaly"] is False
    reading_schema = schema["components"]["schemas"]["Reading"]
    assert set(reading_schema["required"]) == set(datasets.FEATURES)
    assert set(reading_schema["properties"]) == {*datasets.FEATURES, "timestamp"}
    assert old.status_code == 422
    assert old.json()["field"] == "$.readings[0].v_l1"
    assert "missing required field `v_l1`" in old.json()["detail"]
    assert health["features"] == list(datasets.FEATURES)
    assert set(health["envelope"]["bounds"]) == set(datasets.FEATURES)
    assert health["calibration"]["method"] == "contamination"
    assert [f["name"] for f in model["features"]] == list(datasets.FEATURES)
    assert model["features"][3]["unit"] == "A"


def test_only_the_named_features_are_used(tmp_path: Path) -> None:
    columns = datasets.table(3_000, seed=4)
    data = datasets.write(columns, tmp_path / "feeder.csv")
    out = tmp_path / "models"
    argv = ["--data", str(data), "--model-dir", str(out), "--parity-points", "1000"]
    assert convert_main([*argv, "--features", "current,v_l1", "--label-column", "label"]) == 0
    (path,) = out.glob("*.onnx")
    assert artifact.load(path).metadata.features == ["current", "v_l1"]


def test_a_file_is_read_in_bounded_chunks_with_exact_statistics(tmp_path: Path) -> None:
    """Tiny chunks and a tiny sample: the statistics still cover every row exactly."""
    from convert.ingest import IngestOptions, ingest

    columns = datasets.table(20_000, seed=5, anomaly_share=0.02)
    path = datasets.write(columns, tmp_path / "feeder.parquet")
    got = ingest(path, IngestOptions(chunk_rows=1_000, sample_rows=2_000, min_rows=100))
    normal = datasets.matrix_of(columns)[np.asarray(columns["label"]) == 0]
    assert got.report.rows_read == 20_000
    assert len(got.normal) == 2_000  # the sample, not the file
    for index, name in enumerate(datasets.FEATURES):
        summary = got.report.features[name]
        assert summary.count == len(normal)
        assert summary.max == normal[:, index].max()
        assert summary.mean == pytest.approx(normal[:, index].mean(), rel=1e-12)
        assert summary.std == pytest.approx(normal[:, index].std(), rel=1e-9)
    # Uniform: every quarter of the file holds about a quarter of the sample (500 expected,
    # binomial sd ~19), and the sample comes back in file order.
    index = {row.tobytes(): i for i, row in enumerate(normal)}
    positions = np.array([index[row.tobytes()] for row in got.normal])
    assert (np.diff(positions) > 0).all()
    quarters = np.bincount(positions * 4 // len(normal), minlength=4)
    assert quarters.min() > 420


def test_the_synthetic_default_gives_the_same_bytes_in_every_process(tmp_path: Path) -> None:
    """Two processes with different string hashing (skl2onnx once listed the opsets in set
    order, which changed the bytes from one process to the next)."""
    import os
    import subprocess
    import sys

    for hash_seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-m", "convert", "--model-dir", str(tmp_path / hash_seed),
             "--parity-points", "500"],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True,
            capture_output=True,
        )  # fmt: skip
    (first,), (second,) = (list((tmp_path / h).glob("*.onnx")) for h in ("1", "2"))
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()
    meta = artifact.load(first).metadata
    assert meta.data.source == "synthetic"
    assert meta.calibration.method == "contamination"


def _north_american_feeder(rows: int, seed: int) -> dict[str, list[object]]:
    """A 120 V / 60 Hz service: three phase voltages, a current and the frequency."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 0.8, rows)
    columns: dict[str, list[object]] = {
        f"v_{phase}": np.round(120.0 + common + rng.normal(0.0, 0.6, rows), 3).tolist()
        for phase in ("a", "b", "c")
    }
    columns["current"] = np.round(rng.normal(30.0, 4.0, rows), 3).tolist()
    columns["frequency"] = np.round(rng.normal(60.0, 0.015, rows), 4).tolist()
    return columns


@pytest.mark.slow
def test_a_120_v_60_hz_feeder_scales_the_presets_and_flags_single_extremes(
    tmp_path: Path,
) -> None:
    data = datasets.write(_north_american_feeder(8_000, seed=8), tmp_path / "service.csv")
    models = tmp_path / "models"
    units = "v_a=V,v_b=V,v_c=V,current=A,frequency=Hz"
    argv = ["--data", str(data), "--model-dir", str(models), "--units", units]
    assert convert_main([*argv, "--parity-points", "1000"]) == 0
    (path,) = models.glob("*.onnx")
    meta = artifact.load(path).metadata
    assert meta.nominal.voltage == {"v_a": 120.0, "v_b": 120.0, "v_c": 120.0}
    assert meta.nominal.frequency == {"frequency": 60.0}
    nominal = {"v_a": 120.0, "v_b": 120.0, "v_c": 120.0, "current": 30.0, "frequency": 60.0}
    expected = {
        # EN 50160: +/-10 % voltage, +/-1 % frequency; current keeps its trained bounds.
        "en50160": {"v_a": [108.0, 132.0], "frequency": [59.4, 60.6]},
        # ANSI C84.1 Range A: +/-5 % service voltage; frequency keeps its trained bounds.
        "ansi-c84.1": {"v_a": [114.0, 126.0]},
    }
    # One feature out at a time: inside the trained envelope, outside the preset's.
    extremes = {
        "en50160": [("v_b", 134.0, "v_b_high"), ("frequency", 59.3, "frequency_low")],
        "ansi-c84.1": [("v_c", 113.0, "v_c_low"), ("v_a", 127.0, "v_a_high")],
    }
    for preset, bounds in expected.items():
        settings = settings_from(models, ENVELOPE_PRESET=preset)
        with TestClient(create_api_app(settings)) as client:
            health = client.get("/health").json()
            assert health["envelope"]["source"] == f"preset:{preset}"
            for feature, bound in bounds.items():
                assert health["envelope"]["bounds"][feature] == bound
            assert health["envelope"]["bounds"]["current"] == meta.envelope.bounds["current"]
            readings = [{**nominal, feature: value} for feature, value, _ in extremes[preset]]
            body = client.post("/predict", json={"readings": [nominal, *readings]}).json()
        verdicts = body["predictions"]
        assert verdicts[0]["anomaly"] is False
        for verdict, (_, _, name) in zip(verdicts[1:], extremes[preset], strict=True):
            assert verdict["anomaly"] is True
            assert verdict["out_of_range"] == [name]
