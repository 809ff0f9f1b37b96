"""The convert step on large exports: ingest rows/s, peak memory, training and compile time.

    python -m bench.ingest [--rows 10000000] [--small-rows 1000000] [--workdir DIR]

Writes a feeder export (timestamp, site, three phase voltages, current, power factor, label)
as CSV and as Parquet, at two sizes, and runs ``python -m convert --data`` on each as a fresh
process. Peak resident memory comes from the kernel's accounting of that process
(``wait4``'s ru_maxrss); the stage times from the convert step's own summary. The two sizes,
measured in the same run, show whether memory grows with the file (it should not: the pass
keeps a bounded sample, see docs/model.md). Results go to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
FEATURES = ("v_l1", "v_l2", "v_l3", "current", "power_factor")
UNITS = "v_l1=V,v_l2=V,v_l3=V,current=A,power_factor=1"
CHUNK = 1_000_000


def write_export(path: Path, rows: int, seed: int = 1) -> None:
    """A feeder export of ``rows`` rows, written a million rows at a time."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer: Any = None
    start = np.datetime64("2026-01-01T00:00:00", "ms")
    try:
        for offset in range(0, rows, CHUNK):
            n = min(CHUNK, rows - offset)
            common = rng.normal(0.0, 1.6, n)
            columns: dict[str, Any] = {
                "timestamp": pa.array(start + (offset + np.arange(n)) * np.timedelta64(100, "ms")),
                "site": pa.array(np.full(n, "feeder-7")),
            }
            for name in FEATURES[:3]:
                columns[name] = np.round(230.0 + common + rng.normal(0.0, 1.2, n), 3)
            columns["current"] = np.round(rng.normal(10.0, 1.5, n), 3)
            columns["power_factor"] = np.round(np.clip(rng.normal(0.95, 0.015, n), 0, 1), 4)
            columns["label"] = (rng.random(n) < 0.001).astype(np.int8)
            table = pa.table(columns)
            if writer is None:
                writer = (
                    pq.ParquetWriter(path, table.schema)
                    if path.suffix == ".parquet"
                    else pcsv.CSVWriter(path, table.schema)
                )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def convert(data: Path, workdir: Path, parity_points: int = 100_000) -> dict[str, Any]:
    """``python -m convert --data`` in a fresh process: its summary and its peak RSS."""
    summary = workdir / f"{data.name}.summary.json"
    argv = [
        sys.executable, "-m", "convert", "--data", str(data), "--units", UNITS,
        "--model-dir", str(workdir / f"models-{data.name}"), "--summary-json", str(summary),
        "--parity-points", str(parity_points),
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{argv} exited with {process.returncode}")
    result = json.loads(summary.read_text())
    seconds = result["seconds"]
    return {
        "file": data.name,
        "format": data.suffix[1:],
        "file_mib": round(data.stat().st_size / 2**20, 1),
        "rows": result["rows_read"],
        "training_rows": result["training_rows"],
        "wall_s": round(wall, 2),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "ingest_rows_per_s": round(result["rows_read"] / seconds["data"]),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, help="where the exports go (default: a temp dir)")
    parser.add_argument("--parity-points", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gridscore-ingest-", dir=args.workdir) as tmp:
        work = Path(tmp)
        runs = []
        for rows in (args.small_rows, args.rows):
            for suffix in (".csv", ".parquet"):
                data = work / f"feeder-{rows}{suffix}"
                started = time.perf_counter()
                write_export(data, rows)
                print(f"wrote {data.name} ({rows:,} rows) in {time.perf_counter() - started:.1f} s")
                run = convert(data, work, args.parity_points)
                print(json.dumps(run))
                runs.append(run)
                data.unlink()
    report = {
        "command": "python -m bench.ingest" + (f" --rows {args.rows}" if argv else ""),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "runs": runs,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
