"""Protocol benchmark: ``/predict`` JSON against v2 infer with a JSON and with a binary tensor.

One ``gridscore api`` worker, loaded by wrk (a C load generator, so the client's own encoding
and parsing do not share the bottleneck it measures): for each batch size (1, 100, 1,000,
10,000) and wire format, a closed loop with 8 connections; requests/s and rows/s are the
median of the rounds, the formats interleaved in each round and their order rotated. The
same readings go out in every format (``app/dashboard/v2_requests.py``), and the run first
checks that the three answers carry the same scores.

Then the share of a 10,000-reading request's time spent decoding its body: each format's
``decode`` timed in this process on the same body (median of 30), against the server's
median latency for that request alone (one connection); and what a Python client holding
the readings as a float32 matrix pays to encode that body in each format.

    python -m bench.protocols            # full run (~4 minutes)
    python -m bench.protocols --quick    # smoke run for the tests
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from app.harness import PROTOCOLS as WIRE_FORMATS
from app.harness import Body, ModelResponse, find_artifact, infer_path, make_bodies, wire_decoder
from bench import serving
from bench.service import wrk

RESULTS = Path(__file__).parent / "results"
PROTOCOLS = WIRE_FORMATS
BATCHES = (1, 100, 1_000, 10_000)


def _post(url: str, body: Body) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body.content, headers=dict(body.headers))
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), dict(response.headers)


def scores_of(protocol: str, answer: bytes, headers: dict[str, str]) -> list[float]:
    """The scores of one answer, whatever its format."""
    if protocol == "predict":
        return [p["score"] for p in json.loads(answer)["predictions"]]
    length = int(headers.get("inference-header-content-length") or len(answer))
    head = json.loads(answer[:length])
    score = next(o for o in head["outputs"] if o["name"] == "score")
    if "data" in score:
        return list(score["data"])
    size = score["parameters"]["binary_data_size"]
    return list(struct.unpack(f"<{size // 4}f", answer[length : length + size]))


def decode_seconds(protocol: str, body: Body, model: ModelResponse) -> float:
    """The median time of the format's ``decode`` of ``body``, in this process."""
    decoder = wire_decoder(protocol, model)
    scope = {
        "path": infer_path(model.v2_name),
        "query_string": b"explain=false",
        "headers": [(k.lower().encode(), v.encode()) for k, v in body.headers],
    }
    times = []
    for _ in range(30):
        started = time.perf_counter()
        decoder.decode(body.content, scope)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def client_encode_seconds(protocol: str, matrix: np.ndarray, names: list[str]) -> float:
    """What a Python client holding the readings as a float32 matrix pays to encode one body:
    dicts for ``/predict``, a flat list for a v2 JSON tensor, the raw bytes for binary
    (median of 10)."""

    def encode() -> bytes:
        if protocol == "predict":
            rows = [dict(zip(names, row, strict=True)) for row in matrix.tolist()]
            return json.dumps({"readings": rows}).encode()
        tensor: dict[str, Any] = {"name": "readings", "shape": list(matrix.shape)}
        tensor["datatype"] = "FP32"
        if protocol == "v2-json":
            tensor["data"] = matrix.ravel().tolist()
            return json.dumps({"inputs": [tensor]}).encode()
        raw = matrix.astype("<f4", copy=False).tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
        return json.dumps({"inputs": [tensor]}).encode() + raw

    times = []
    for _ in range(10):
        started = time.perf_counter()
        encode()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(model_dir: Path, seconds: float, rounds: int, workdir: Path) -> dict[str, Any]:
    with serving.gridscore_serve(
        model_dir, workdir, command="api", WORKERS="1", LOG_LEVEL="warning"
    ) as server:
        with urllib.request.urlopen(f"{server.url}/model", timeout=5) as response:
            model = msgspec.json.decode(response.read(), type=ModelResponse)
        urls = {
            "predict": f"{server.url}/predict?explain=false",
            "v2-json": server.url + infer_path(model.v2_name),
            "v2-binary": server.url + infer_path(model.v2_name),
        }
        bodies: dict[tuple[str, int], tuple[Body, Path]] = {}
        for batch in BATCHES:
            for protocol in PROTOCOLS:
                # The same seed: the same readings in every format.
                body = make_bodies(batch, 1, 7, 0.02, model.features, protocol)[0]
                path = workdir / f"{protocol}-{batch}.body"
                path.write_bytes(body.content)
                bodies[protocol, batch] = (body, path)
        agreement = {}
        for batch in BATCHES:
            scores = {p: scores_of(p, *_post(urls[p], bodies[p, batch][0])) for p in PROTOCOLS}
            agreement[str(batch)] = len({json.dumps(s) for s in scores.values()}) == 1
        measured: dict[str, list[dict[str, Any]]] = {}
        for round_index in range(rounds):
            for batch in BATCHES:
                order = PROTOCOLS[round_index % 3 :] + PROTOCOLS[: round_index % 3]
                for protocol in order:
                    body, path = bodies[protocol, batch]
                    result = wrk(urls[protocol], seconds, body=path, headers=body.headers)
                    measured.setdefault(f"{protocol} {batch}", []).append(result)
        alone = {}
        for protocol in PROTOCOLS:
            body, path = bodies[protocol, 10_000]
            alone[protocol] = wrk(
                urls[protocol], seconds, connections=1, body=path, headers=body.headers
            )
    table = []
    for batch in BATCHES:
        for protocol in PROTOCOLS:
            runs = measured[f"{protocol} {batch}"]
            rps = statistics.median(r["requests_per_s"] for r in runs)
            table.append(
                {
                    "protocol": protocol,
                    "batch": batch,
                    "requests_per_s": round(rps, 1),
                    "rows_per_s": round(rps * batch, 1),
                    "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
                    "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 3),
                    "errors": sum(r["errors"] for r in runs),
                    "body_bytes": len(bodies[protocol, batch][0].content),
                }
            )
    decode = {}
    names = [f.name for f in model.features]
    matrix = np.array(json.loads(bodies["v2-json", 10_000][0].content)["inputs"][0]["data"])
    matrix = matrix.astype(np.float32).reshape(10_000, len(names))
    for protocol in PROTOCOLS:
        body = bodies[protocol, 10_000][0]
        seconds_decoding = decode_seconds(protocol, body, model)
        request_ms = alone[protocol]["p50_ms"]
        decode[protocol] = {
            "decode_ms": round(seconds_decoding * 1000, 3),
            "request_p50_ms": request_ms,
            "decode_share": round(seconds_decoding * 1000 / request_ms, 3),
            "client_encode_ms": round(client_encode_seconds(protocol, matrix, names) * 1000, 3),
        }
    return {"table": table, "decode_10000": decode, "same_scores": agreement}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.protocols", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=RESULTS / "protocols.json")
    args = parser.parse_args(argv)
    seconds, rounds = (1.0, 1) if args.quick else (5.0, 3)
    model_dir = args.model_dir
    if find_artifact(model_dir) is None:
        print("no artifact in models/: run python -m convert first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gridscore-protocols-") as tmp:
        result = run(model_dir, seconds, rounds, Path(tmp))
    report = {
        "command": "python -m bench.protocols" + (" --quick" if args.quick else ""),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "seconds_per_cell": seconds,
        "rounds": rounds,
        "connections": 8,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for row in report["table"]:
        print(
            f"{row['protocol']:>10} batch {row['batch']:>6,}: {row['requests_per_s']:>9,.1f} req/s "
            f"{row['rows_per_s']:>12,.0f} rows/s  p50 {row['p50_ms']:.3f} ms  "
            f"errors {row['errors']}"
        )
    for protocol, figures in report["decode_10000"].items():
        print(
            f"{protocol:>10} at 10,000: decode {figures['decode_ms']:.2f} ms of "
            f"{figures['request_p50_ms']:.2f} ms ({figures['decode_share']:.0%}); a client "
            f"encodes it in {figures['client_encode_ms']:.2f} ms"
        )
    print("same scores in every format:", report["same_scores"])
    return 0 if all(report["same_scores"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
