"""What TLS costs a request: batch-1 /predict on kept-alive connections, plain and HTTPS.

    python -m bench.tls [--baseline CHECKOUT]     # 3 rounds of 10 s per target (about 2 min)
    python -m bench.tls --quick                   # short, for the test suite

One worker (``gridscore api``), wrk (one thread, 8 kept-alive connections, closed loop) at
batch 1, in rounds that take the targets in turn: the plain server, the same server with
``TLS_CERT_FILE``/``TLS_KEY_FILE`` (a certificate from a CA made for the run, ECDSA P-256 as
trustme issues them), and with ``--baseline`` another checkout (plain), so "TLS off costs
nothing" and "what TLS on costs" are both read from one run. Beside wrk's view (requests/s,
p50/p99), the worker's own: its CPU time over the run per request (from /proc), which is the
cost per request whatever the load generator does on the same two cores. Handshakes are not in
these figures (the connections stay open); a client that opens a connection per request pays
one each time. Results: bench/results/tls.json; tables: python -m bench.report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trustme

from app.harness import find_artifact
from bench import procs
from bench.service import server, wrk

RESULTS = Path(__file__).parent / "results"
BODY = {"readings": [{"voltage": 230.1, "current": 9.8, "frequency": 50.02}]}


def one_run(
    model_dir: Path, seconds: float, body: Path, source: Path | None = None, **env: str
) -> dict[str, Any]:
    scheme = "https" if env.get("TLS_CERT_FILE") else "http"
    probe = None
    if scheme == "https":  # the readiness probe only; wrk does not verify either
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        probe.check_hostname = False
        probe.verify_mode = ssl.CERT_NONE
    with server(model_dir, 1, source=source, tls=probe, **env) as (process, port, _):
        pids = procs.worker_pids(process.pid)
        before = sum(procs.cpu_seconds(p) for p in pids)
        run = wrk(
            f"{scheme}://127.0.0.1:{port}/predict",
            seconds,
            body=body,
            headers=(("Content-Type", "application/json"),),
        )
        used = sum(procs.cpu_seconds(p) for p in pids) - before
    if run["errors"]:
        raise RuntimeError(f"{run['errors']} requests failed ({scheme}); refusing the run")
    run["server_cpu_us_per_request"] = round(1e6 * used / run["requests"], 1)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tls", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--baseline", type=Path, help="another checkout, served plain")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "tls.json")
    args = parser.parse_args(argv)
    if find_artifact(args.model_dir) is None:
        print(f"no artifact in {args.model_dir}: run python -m convert first", file=sys.stderr)
        return 2
    seconds, rounds = (2.0, 1) if args.quick else (10.0, 3)
    with tempfile.TemporaryDirectory(prefix="gridscore-bench-tls-") as tmp:
        folder = Path(tmp)
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        cert, key = folder / "tls.crt", folder / "tls.key"
        leaf.private_key_pem.write_to_path(str(key))
        cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        body = folder / "batch-1.json"
        body.write_text(json.dumps(BODY))
        targets: dict[str, dict[str, Any]] = {
            "plain": {},
            "tls": {"TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key)},
        }
        if args.baseline:
            targets = {"baseline_plain": {"source": args.baseline.resolve()}, **targets}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(rounds):
            for name, options in targets.items():
                run = one_run(args.model_dir, seconds, body, **options)
                runs[name].append(run)
                print(
                    f"  {name}: {run['requests_per_s']:.0f} req/s, p50 {run['p50_ms']:.3f} ms, "
                    f"p99 {run['p99_ms']:.3f} ms, worker {run['server_cpu_us_per_request']} "
                    "µs CPU/request",
                    flush=True,
                )
    medians = {
        name: {
            key: round(statistics.median(r[key] for r in rs), 3)
            for key in ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_request")
        }
        | {"rounds": [r["requests_per_s"] for r in rs]}
        for name, rs in runs.items()
    }
    plain, tls = medians["plain"], medians["tls"]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "command": "python -m bench.tls"
        + (" --baseline <checkout>" if args.baseline else "")
        + (" --quick" if args.quick else ""),
        "seconds": seconds,
        "targets": medians,
        "tls_cost": {
            "requests_per_s_ratio": round(tls["requests_per_s"] / plain["requests_per_s"], 3),
            "p50_added_ms": round(tls["p50_ms"] - plain["p50_ms"], 3),
            "server_cpu_added_us_per_request": round(
                tls["server_cpu_us_per_request"] - plain["server_cpu_us_per_request"], 1
            ),
        },
    }
    if args.baseline:
        revision = subprocess.run(
            ["git", "-C", str(args.baseline), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        report["baseline_commit"] = revision or "unknown"
    if "baseline_plain" in medians:
        report["plain_vs_baseline"] = round(
            plain["requests_per_s"] / medians["baseline_plain"]["requests_per_s"], 3
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        json.dumps(
            {k: report[k] for k in ("tls_cost",)}
            | {"plain_vs_baseline": report.get("plain_vs_baseline")}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
