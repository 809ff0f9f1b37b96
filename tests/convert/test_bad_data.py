"""A catalogue of unusable data files and options: each stops the convert step with exit
status 2 and one clear line saying why, and nothing is published."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from convert.__main__ import main as convert_main
from tests.support import datasets


class BadData(NamedTuple):
    name: str
    make: Callable[[Path], Path]  # writes the file into the folder given, returns its path
    args: tuple[str, ...]
    message: str  # what the one line on stderr must say


def _table(rows: int = 2_000, **changes: list[object]) -> dict[str, list[object]]:
    columns = datasets.table(rows, seed=11)
    columns.update(changes)
    return columns


def _csv(name: str, columns: dict[str, list[object]]) -> Callable[[Path], Path]:
    return lambda folder: datasets.write(columns, folder / name)


def _text(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return make


def _unreadable(folder: Path) -> Path:
    # Permission bits do not stop root, which CI runs as; reading this file fails for anyone.
    path = folder / "telemetry.csv"
    os.symlink("/proc/self/mem", path)
    return path


def _with_bad_values(share: float) -> dict[str, list[object]]:
    columns = _table()
    values = [str(value) for value in columns["v_l1"]]
    for index in range(0, len(values), int(1 / share)):
        values[index] = "n/a?"
    columns["v_l1"] = values
    return columns


def _random_bytes(name: str) -> Callable[[Path], Path]:
    # Fixed bytes (a seeded generator), so the case is the same on every run.
    return _text(name, random.Random(7).randbytes(20_000))


def _utf16(folder: Path) -> Path:
    path = datasets.write(_table(), folder / "export.csv")
    path.write_text(path.read_text(), encoding="utf-16")
    return path


def _truncated_parquet(folder: Path) -> Path:
    path = datasets.write(_table(), folder / "feeder.parquet")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _undecodable_row_deep(folder: Path) -> Path:
    # Past the head the reader checks: a malformed row (three fields) that is not UTF-8.
    path = datasets.write(_table(20_000), folder / "feeder.csv")
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(15_000, b"\xff\xfe\x80,\xc3\x28,x\n")
    path.write_bytes(b"".join(lines))
    return path


CATALOGUE = [
    BadData("random bytes as CSV", _random_bytes("garbage.csv"), (), "not UTF-8 text"),
    BadData("random bytes as JSON Lines", _random_bytes("garbage.jsonl"), (), "not UTF-8 text"),
    BadData("UTF-16 CSV", _utf16, (), "UTF-16 text"),
    BadData("truncated Parquet", _truncated_parquet, (), "not a readable parquet file"),
    BadData("a malformed row that is not UTF-8", _undecodable_row_deep, (), "not UTF-8 text"),
    BadData("missing file", lambda folder: folder / "nowhere.csv", (), "no such file"),
    BadData("unreadable file", _unreadable, (), "cannot read"),
    BadData("a folder, not a file", lambda folder: folder, (), "not a file"),
    BadData("unknown format", _text("readings.xlsx", b"PK\x03\x04"), (), "unknown format"),
    BadData("empty file", _text("empty.csv", ""), (), "not a readable csv file"),
    BadData(
        "header only",
        _text("header.csv", "timestamp,v_l1,current\n"),
        ("--features", "v_l1,current"),
        "0 usable normal rows",
    ),
    BadData("not Parquet", _text("fake.parquet", b"this is text"), (), "not a readable parquet"),
    BadData("no JSON on any line", _text("junk.jsonl", "{\nnot json\n"), (), "no numeric"),
    BadData(
        "named column absent",
        _csv("feeder.csv", _table()),
        ("--features", "v_l1,phase_angle"),
        "feature column 'phase_angle' is not in",
    ),
    BadData(
        "non-numeric feature column",
        _csv("feeder.csv", _table()),
        ("--features", "v_l1,site"),
        "feature column 'site' is not numeric",
    ),
    BadData(
        "too few rows",
        _csv("small.csv", datasets.table(300, seed=2)),
        (),
        "300 usable normal rows",
    ),
    BadData(
        "constant feature",
        _csv("flat.csv", _table(current=[10.0] * 2_000)),
        (),
        "feature 'current' is constant",
    ),
    BadData(
        "too many dropped rows",
        _csv("gappy.csv", _with_bad_values(0.05)),
        (),
        "over --max-dropped",
    ),
    BadData(
        "duplicate feature names",
        _csv("feeder.csv", _table()),
        ("--features", "v_l1,current,v_l1"),
        "named twice",
    ),
    BadData(
        "invalid feature name",
        _csv("spaces.csv", {**_table(), "power factor": _table()["power_factor"]}),
        (),
        "invalid feature name 'power factor'",
    ),
    BadData(
        "label column absent",
        _csv("feeder.csv", _table()),
        ("--label-column", "verdict"),
        "label column 'verdict' is not in",
    ),
    BadData(
        "target precision without labels",
        _csv("feeder.csv", {k: v for k, v in _table().items() if k != "label"}),
        ("--target-precision", "0.9"),
        "needs labelled anomalies",
    ),
    BadData(
        "alarm budget beyond what the data can show",
        _csv("feeder.csv", _table()),
        ("--alarm-budget", "1/h", "--reading-rate", "50/s"),
        "held-out normal rows",
    ),
    BadData(
        "units for a column that is not a feature",
        _csv("feeder.csv", _table()),
        ("--units", "site=V"),
        "--units names ['site']",
    ),
    BadData(
        "an alarm budget with no reading rate",
        _csv("feeder.csv", _table()),
        ("--alarm-budget", "6/h"),
        "needs --reading-rate",
    ),
]


def test_the_catalogue_has_at_least_12_distinct_cases() -> None:
    assert len(CATALOGUE) >= 12
    assert len({case.name for case in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CATALOGUE])
def test_bad_data_exits_2_with_one_clear_line_and_publishes_nothing(
    case: BadData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    data = case.make(folder)
    models = tmp_path / "models"
    status = convert_main(
        ["--data", str(data), "--model-dir", str(models), "--parity-points", "500", *case.args]
    )
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert case.message in lines[0]
    assert lines[0].endswith("nothing published")
    assert not models.exists() or list(models.iterdir()) == []


def test_a_nul_byte_in_one_row_makes_that_row_unusable(tmp_path: Path) -> None:
    path = datasets.write(_table(), tmp_path / "feeder.csv")
    lines = path.read_text().splitlines(keepends=True)
    row = lines[6]
    cut = row.index(",", row.index(",") + 1) + 3  # inside the v_l1 value
    lines[6] = row[:cut] + "\0" + row[cut:]
    path.write_text("".join(lines))
    summary = tmp_path / "summary.json"
    models = tmp_path / "models"
    status = convert_main(
        ["--data", str(path), "--model-dir", str(models), "--parity-points", "500",
         "--summary-json", str(summary)]
    )  # fmt: skip
    assert status == 0
    found = json.loads(summary.read_text())
    assert found["rows_read"] == 2_000
    assert found["training_rows"] == 1_999  # the row with the NUL byte, and only it, dropped


@pytest.mark.slow
@pytest.mark.parametrize(
    "maker",
    [_random_bytes("garbage.csv"), _utf16, _undecodable_row_deep],
    ids=["random bytes", "UTF-16", "a malformed row not UTF-8"],
)
def test_the_command_prints_one_line_for_a_bad_file_and_no_traceback(
    tmp_path: Path, maker: Callable[[Path], Path]
) -> None:
    """As a user runs it: what Python prints itself ("Exception ignored ...") counts too."""
    data = maker(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "convert", "--data", str(data), "--model-dir",
         str(tmp_path / "models")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
