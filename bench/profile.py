"""Where a batch-1 ``POST /predict`` spends its time, by part of the path.

    python -m bench.profile [--baseline CHECKOUT] [--seconds 8]

Runs ``gridscore api`` (one worker) under wrk (batch 1, 8 connections) and samples it with
py-spy (500 Hz, Python frames). Each sample is charged to the part of the path its innermost
gridscore-or-library frame belongs to (time inside a C extension, onnxruntime's kernel or
msgspec, counts for the Python frame that called it), and a part's share of the samples times
the time per request (1 / requests per second) gives its microseconds per request. With
``--baseline`` the same is done for another checkout, in the same run. Results go to
bench/results/profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import loadgen, serving
from bench.service import WRK_SCRIPT

RESULTS = Path(__file__).parent / "results"

# (part, substrings of a frame's file) in the order they are tried on a sample's frames,
# innermost first: the first frame that matches a part decides the sample.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("onnxruntime call", ("onnxruntime/", "app/model/scorer.py")),
    (
        "metrics (prometheus-client, multiprocess files)",
        ("prometheus_client/", "app/observe/metrics.py"),
    ),
    (
        "decode, feature matrix, verdicts, encode",
        (
            "app/http/decoding.py",
            "app/serving/predictions.py",
            "app/http/predict.py",
            "app/model/verdicts.py",
            "numpy/",
            "msgspec/",
        ),
    ),
    ("admission, time budget, body", ("app/serving/admission.py", "asyncio/timeouts.py", "anyio/")),
    (
        "scoring endpoint (the rest)",
        (
            "app/serving/endpoint.py",
            "app/serving/dataplane.py",
            "app/service/api.py",
            "app/service/factory.py",
        ),
    ),
    ("Litestar (routing, middleware, handler, response)", ("litestar/",)),
    ("uvicorn (HTTP parsing, sending)", ("uvicorn/", "httptools/")),
    ("event loop", ("asyncio/", "uvloop/")),
]


def part_of(frames: list[dict[str, Any]], stack: list[int]) -> str:
    for index in reversed(stack):  # innermost first
        file = frames[index].get("file", "")
        for part, patterns in PARTS:
            if any(p in file for p in patterns):
                return part
    return "other"


def shares(speedscope: dict[str, Any]) -> dict[str, float]:
    frames = speedscope["shared"]["frames"]
    counts: Counter[str] = Counter()
    for profile in speedscope["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if stack:
                counts[part_of(frames, stack)] += weight
    total = sum(counts.values()) or 1.0
    return {part: counts[part] / total for part in [*(p for p, _ in PARTS), "other"]}


def profile(model_dir: Path, seconds: float, source: Path | None, workdir: Path) -> dict[str, Any]:
    body = workdir / "batch-1.json"
    body.write_bytes(loadgen.make_bodies(1, 1, 7, 0.0)[0].content)
    with serving.gridscore_serve(
        model_dir, workdir, command="api", source=source, WORKERS="1", LOG_LEVEL="warning"
    ) as server:
        env = {**os.environ, "WRK_METHOD": "POST", "WRK_BODY_FILE": str(body)}
        wrk_out: dict[str, Any] = {}

        def drive() -> None:
            done = subprocess.run(
                ["wrk", "-t1", "-c8", f"-d{seconds + 4:g}s", "-s", str(WRK_SCRIPT),
                 f"{server.url}/predict"],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            wrk_out.update(json.loads(done.stdout.strip().splitlines()[-1]))

        driver = threading.Thread(target=drive)
        driver.start()
        time.sleep(2)  # warmed up and saturated before sampling
        sampled = workdir / "profile.json"
        subprocess.run(
            [
                str(Path(sys.executable).with_name("py-spy")), "record", "-p",
                str(server.process.pid), "-d", f"{seconds:g}", "-r", "500", "-f", "speedscope",
                "-o", str(sampled), "--nonblocking",
            ],
            capture_output=True, check=True,
        )  # fmt: skip
        driver.join()
    per_request_us = wrk_out["duration_us"] / wrk_out["requests"]
    by_part = shares(json.loads(sampled.read_text()))
    return {
        "requests_per_s": round(1e6 / per_request_us),
        "per_request_us": round(per_request_us, 1),
        "parts_us": {part: round(share * per_request_us, 1) for part, share in by_part.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models"))
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--baseline", type=Path, help="another checkout, profiled the same way")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "command": "python -m bench.profile" + (" --baseline <checkout>" if args.baseline else ""),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
    }
    with tempfile.TemporaryDirectory(prefix="gridscore-profile-") as tmp:
        if args.baseline:
            from bench.service import _describe_checkout

            report["baseline_commit"] = _describe_checkout(args.baseline)
            report["baseline"] = profile(args.model_dir, args.seconds, args.baseline, Path(tmp))
        report["current"] = profile(args.model_dir, args.seconds, None, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name in ("baseline", "current"):
        if name in report:
            row = report[name]
            print(f"{name}: {row['requests_per_s']} req/s, {row['per_request_us']} us per request")
            for part, us in row["parts_us"].items():
                print(f"  {us:7.1f} us  {part}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
