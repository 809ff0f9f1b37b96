"""Load generator for the scoring service (command line over app.dashboard.loadrun).

Closed loop (N connections) or open loop (fixed rate, latency from each request's due time so
queueing is not hidden), bounded by a request count and a duration. It also measures its own
ceiling against the trivial ``GET /live`` and says when it, not the server, is the bottleneck.

    python -m bench.loadgen --url http://127.0.0.1:8000 -c 16 -d 10 --batch 100
    python -m bench.loadgen --protocol v2-binary --batch 1000 -n 500
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import msgspec

from app.harness import (
    PROTOCOLS,
    LoadResult,
    LoadSpec,
    ModelResponse,
    infer_path,
    make_bodies,
)
from app.harness import run_load as run
from app.harness import run_load_async as run_async

__all__ = [
    "LoadResult",
    "LoadSpec",
    "ceiling",
    "main",
    "make_bodies",
    "run",
    "run_async",
    "served_model",
    "target",
]


def ceiling(base_url: str, connections: int, duration: float = 3.0) -> dict[str, Any]:
    """The generator's own limit: the same loop against the trivial ``GET /live``."""
    spec = LoadSpec(f"{base_url}/live", method="GET", connections=connections, duration=duration)
    return run(spec).summary()


def served_model(base_url: str) -> ModelResponse | None:
    """The served model (GET /model): the bodies carry its features, the v2 path its name;
    None if unknown."""
    try:
        with urllib.request.urlopen(f"{base_url}/model", timeout=5) as response:
            return msgspec.json.decode(response.read(), type=ModelResponse)
    except (urllib.error.URLError, OSError, msgspec.MsgspecError):
        return None


def target(base_url: str, protocol: str, model: ModelResponse | None) -> str:
    """The scoring URL ``protocol`` posts to."""
    if protocol == "predict":
        return f"{base_url}/predict"
    name = (model.v2_name or model.name) if model is not None else "gridscore-iforest"
    return base_url + infer_path(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--batch", type=int, default=1, help="readings per request")
    parser.add_argument("--connections", "-c", type=int, default=1)
    parser.add_argument("--requests", "-n", type=int, help="stop after this many requests")
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="stop after seconds")
    parser.add_argument("--rate", type=float, help="open loop at this many requests/s")
    parser.add_argument("--new-connection", action="store_true", help="one connection per request")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the /live ceiling run")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="predict",
        help="wire format: /predict's JSON, or v2 infer with a JSON or a binary tensor",
    )
    args = parser.parse_args(argv)
    base_url = args.url.rstrip("/")
    model = served_model(base_url)
    spec = LoadSpec(
        target(base_url, args.protocol, model),
        batch=args.batch,
        connections=args.connections,
        requests=args.requests,
        duration=args.duration,
        rate=args.rate,
        new_connection=args.new_connection,
        features=tuple(model.features) if model else None,
        protocol=args.protocol,
    )
    report: dict[str, Any] = {"load": run(spec).summary()}
    if not args.no_ceiling:
        report["ceiling"] = ceiling(args.url.rstrip("/"), args.connections)
        limit = report["ceiling"]["requests_per_s"]
        achieved = report["load"]["requests_per_s"]
        # Within 80% of what the generator manages against a no-op: it may be the bottleneck.
        report["generator_bound"] = bool(limit and achieved >= 0.8 * limit)
    json.dump(report, sys.stdout, indent=2)
    print()
    if report.get("generator_bound"):
        print(
            "note: throughput is within 80% of the generator's own ceiling; the load "
            "generator, not the server, may be the bottleneck",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
