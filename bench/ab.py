"""Two checkouts of gridscore side by side: /predict requests/s at a few batch sizes.

    python -m bench.ab <before> <after> --title "..."      # batches 1 and 1,000, 3 rounds of 10 s
    python -m bench.ab <before> <after> --title "..." --batches 1 100 --rounds 5 --out FILE

For a change that should cost nothing, such as issue 23's move of ``app/`` into packages
(``git worktree add`` of e93eb35 and of 5369825 give the pair): each round serves the same
bodies from one checkout, then the other, so both see the same machine; a checkout serves the
artifact its own convert step publishes (the format changes between commits). One worker,
wrk closed loop (8 connections). Prints the medians per checkout and batch size, the ratio
after/before, and each round's ratio; ``--out`` also writes them as JSON (a file in
bench/results whose name starts with ``ab-`` becomes a section of docs/benchmarks.md, titled
``--title``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.service import _describe_checkout, body_files, server, wrk


def measure(
    checkouts: dict[str, Path], batches: list[int], seconds: float, rounds: int, workdir: Path
) -> dict[str, Any]:
    """{batch: {name: [requests/s per round]}} with the checkouts taken in turn each round."""
    bodies = body_files(workdir, batches)
    rates: dict[int, dict[str, list[float]]] = {b: {n: [] for n in checkouts} for b in batches}
    for round_no in range(rounds):
        # Alternate which goes first, so neither always meets a machine still busy with the other.
        order = list(checkouts.items()) if round_no % 2 == 0 else list(checkouts.items())[::-1]
        for name, source in order:
            with server(Path("."), 1, source=source) as (_, port, _):
                for batch, body in bodies.items():
                    run = wrk(f"http://127.0.0.1:{port}/predict", seconds, body=body)
                    if run["errors"]:
                        raise RuntimeError(f"{name} failed {run['errors']} requests at {batch}")
                    rates[batch][name].append(run["requests_per_s"])
                    print(
                        f"  round {round_no + 1} {name} batch {batch}: "
                        f"{run['requests_per_s']:,.0f} requests/s",
                        flush=True,
                    )
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("before", type=Path, help="a checkout of gridscore (the baseline)")
    parser.add_argument("after", type=Path, help="another checkout, compared with it")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 1_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--title", default="Two checkouts", help="the section's title")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    for path in (args.before, args.after):
        if not (path / "app" / "__main__.py").is_file():
            print(f"{path} is not a checkout of gridscore (no app/__main__.py)", file=sys.stderr)
            return 2
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    with tempfile.TemporaryDirectory(prefix="gridscore-ab-") as tmp:
        rates = measure(checkouts, args.batches, args.seconds, args.rounds, Path(tmp))
    report: dict[str, Any] = {
        "title": args.title,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "command": "python -m bench.ab <before> <after> --batches "
        + " ".join(str(b) for b in args.batches),
        "before": _describe_checkout(args.before),
        "after": _describe_checkout(args.after),
        "seconds": args.seconds,
        "batches": {},
    }
    for batch, by_name in rates.items():
        before, after = by_name["before"], by_name["after"]
        report["batches"][str(batch)] = {
            "before_requests_per_s": statistics.median(before),
            "after_requests_per_s": statistics.median(after),
            "ratio": round(statistics.median(after) / statistics.median(before), 3),
            "ratio_rounds": [round(a / b, 3) for a, b in zip(after, before, strict=True)],
        }
        row = report["batches"][str(batch)]
        print(
            f"batch {batch}: before {row['before_requests_per_s']:,.0f}, after "
            f"{row['after_requests_per_s']:,.0f} requests/s (medians of {args.rounds}); "
            f"after/before {row['ratio']:.3f} (rounds: {row['ratio_rounds']})"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
