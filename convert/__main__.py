"""``python -m convert`` (also ``gridscore convert``): train, compile, verify, calibrate, publish.

Exit status: 0 published; 1 parity with scikit-learn failed; 2 the data or the options cannot
be used (one line on stderr saying why). Nothing is published unless the status is 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from convert import parity, pipeline
from convert.calibrate import CalibrationSpec
from convert.ingest import IngestOptions
from convert.readers import DataError

EXIT_DATA = 2


class UsageError(ValueError):
    pass


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _units(text: str) -> dict[str, str]:
    units = {}
    for part in _names(text):
        name, sep, unit = part.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--units takes name=unit pairs, got {part!r}")
        units[name.strip()] = unit.strip()
    return units


def _rate(text: str, unit: str, flag: str) -> float:
    raw = text.strip()
    if raw.endswith(unit):
        raw = raw[: -len(unit)]
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(
            f"{flag} takes a number (optionally followed by {unit}), got {text!r}"
        ) from None
    if not value > 0:
        raise UsageError(f"{flag} must be positive, got {text!r}")
    return value


def _max_samples(text: str) -> int | float | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise UsageError("--max-samples takes auto, a row count or a share in (0, 1]") from None
    if not 0 < value <= 1:
        raise UsageError("--max-samples as a share must be in (0, 1]")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convert",
        description="Train gridscore's IsolationForest on the synthetic supply point or on your "
        "own readings (--data), compile it to ONNX (all trees in one tree-ensemble node), check "
        "parity with scikit-learn, calibrate the threshold and publish "
        "<model-dir>/<name>-<sha256[:12]>.onnx with its metadata and calibration report. "
        "Exit 0 published, 1 parity failed, 2 unusable data or options; nothing is published "
        "otherwise. Details: docs/model.md.",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("MODEL_DIR") or "models"),
        help="where to publish (default: $MODEL_DIR or ./models)",
    )
    out.add_argument(
        "--name",
        default=os.environ.get("MODEL_NAME") or pipeline.DEFAULT_NAME,
        help="artifact name before the digest (default: $MODEL_NAME or %(default)s)",
    )
    out.add_argument(
        "--parity-points",
        type=int,
        default=pipeline.DEFAULT_PARITY_POINTS,
        help="points in the parity check run before publishing (default %(default)s)",
    )
    out.add_argument("--summary-json", type=Path, help="also write the run's figures here")
    data = parser.add_argument_group("data (default: 5,000 synthetic rows)")
    data.add_argument("--data", type=Path, help="CSV with a header, Parquet, or JSON Lines")
    data.add_argument("--format", choices=["csv", "parquet", "jsonl"], help="default: extension")
    data.add_argument(
        "--features",
        help="comma-separated feature columns (default: every numeric column but the "
        "timestamp and label columns)",
    )
    data.add_argument(
        "--timestamp-column", help="left out of the features (default: 'timestamp' if present)"
    )
    data.add_argument(
        "--label-column",
        help="known anomalies, 1/0 or true/false: left out of training, used to evaluate "
        "(default: 'label' if present)",
    )
    data.add_argument("--units", help="units per feature, e.g. v_l1=V,i=A,f=Hz")
    data.add_argument(
        "--min-rows", type=int, default=1_000, help="fewest usable rows (default %(default)s)"
    )
    data.add_argument(
        "--max-dropped",
        type=float,
        default=0.02,
        help="largest share of unusable rows before giving up (default %(default)s)",
    )
    data.add_argument(
        "--sample-rows",
        type=int,
        default=1_000_000,
        help="normal rows kept in the uniform sample for training and calibration "
        "(default %(default)s); memory is bounded by it, not by the file",
    )
    nominal = parser.add_argument_group("nominal values (for the envelope presets)")
    nominal.add_argument("--nominal-voltage", type=float, help="of every V feature")
    nominal.add_argument("--nominal-frequency", type=float, help="of every Hz feature")
    forest = parser.add_argument_group("forest")
    forest.add_argument("--n-estimators", type=int, default=200)
    forest.add_argument("--max-samples", default="auto", help="auto, a row count or a share")
    forest.add_argument("--contamination", type=float, default=0.05)
    forest.add_argument("--seed", type=int, default=42)
    threshold = parser.add_argument_group("threshold (default: the forest's, from --contamination)")
    how = threshold.add_mutually_exclusive_group()
    how.add_argument(
        "--alarm-budget", help="false alarms per hour, e.g. 6/h (needs --reading-rate)"
    )
    how.add_argument("--target-precision", type=float, help="needs labels")
    how.add_argument("--target-recall", type=float, help="needs labels")
    threshold.add_argument("--reading-rate", help="readings per second scored, e.g. 10/s")
    threshold.add_argument(
        "--holdout",
        type=float,
        default=0.3,
        help="share of normal rows held out to calibrate and evaluate (default %(default)s)",
    )
    return parser


def options_from(args: argparse.Namespace) -> pipeline.ConvertOptions:
    if args.data is None:
        data_only = ("features", "timestamp_column", "label_column", "units", "format")
        given = [f"--{n.replace('_', '-')}" for n in data_only if getattr(args, n)]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --data")
    rate = _rate(args.reading_rate, "/s", "--reading-rate") if args.reading_rate else None
    method, budget = "contamination", None
    if args.alarm_budget:
        budget = _rate(args.alarm_budget, "/h", "--alarm-budget")
        if rate is None:
            raise UsageError("--alarm-budget needs --reading-rate (readings per second)")
        method = "alarm_budget"
    for flag in ("target_precision", "target_recall"):
        value = getattr(args, flag)
        if value is not None:
            if not 0 < value < 1:
                raise UsageError(f"--{flag.replace('_', '-')} must be in (0, 1)")
            method = flag
    if not 0 < args.contamination <= 0.5:
        raise UsageError("--contamination must be in (0, 0.5]")
    if not 0 < args.holdout < 1:
        raise UsageError("--holdout must be in (0, 1)")
    if args.n_estimators < 1 or args.min_rows < 1 or args.sample_rows < 1:
        raise UsageError("--n-estimators, --min-rows and --sample-rows must be positive")
    if not 0 <= args.max_dropped < 1:
        raise UsageError("--max-dropped must be in [0, 1)")
    return pipeline.ConvertOptions(
        data=args.data,
        ingest=IngestOptions(
            features=_names(args.features) if args.features else None,
            timestamp_column=args.timestamp_column,
            label_column=args.label_column,
            format=args.format,
            min_rows=args.min_rows,
            max_dropped=args.max_dropped,
            sample_rows=args.sample_rows,
            seed=args.seed,
        ),
        units=_units(args.units) if args.units else {},
        nominal_voltage=args.nominal_voltage,
        nominal_frequency=args.nominal_frequency,
        forest=pipeline.ForestParams(
            n_estimators=args.n_estimators,
            max_samples=_max_samples(args.max_samples),
            contamination=args.contamination,
            seed=args.seed,
        ),
        calibration=CalibrationSpec(
            method=method,
            alarm_budget_per_hour=budget,
            reading_rate_per_s=rate,
            target_precision=args.target_precision,
            target_recall=args.target_recall,
            holdout=args.holdout,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def progress(stage: str, text: str) -> None:
        print(f"[{stage:>9}] {text}", flush=True)

    try:
        options = options_from(args)
        result = pipeline.run(args.model_dir, args.name, args.parity_points, progress, options)
    except (DataError, UsageError) as exc:
        print(f"convert: {exc}; nothing published", file=sys.stderr)
        return EXIT_DATA
    except parity.ParityError as exc:
        print(f"parity check failed, nothing published: {exc}", file=sys.stderr)
        return 1
    total = sum(result.seconds.values())
    meta = result.metadata
    print(
        f"published {result.path.name} (sha256 {meta.digest}); threshold {meta.threshold:.6f}; "
        f"parity max diff {meta.parity.max_abs_score_diff:.2e} over {meta.parity.points} points; "
        f"{total:.1f} s"
    )
    if args.summary_json:
        args.summary_json.write_text(
            json.dumps(
                {
                    "path": str(result.path),
                    "seconds": result.seconds,
                    "rows_read": meta.data.rows_read,
                    "training_rows": meta.training.rows,
                    "calibration": result.calibration.report["summary"],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
