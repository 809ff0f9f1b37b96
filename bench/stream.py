"""Stream benchmark: readings through NATS JetStream and one stream worker, on this machine.

    python -m bench.stream            # 3 runs of each measurement (a few minutes)
    python -m bench.stream --quick    # small counts, for the test suite

For each run a fresh nats-server (JetStream, file store in a temporary folder) and one
``gridscore stream`` worker (one process, verdicts on), broker and worker on this machine:

- **throughput**: a backlog of messages is stored first (one reading each, then 100 each,
  spread over 16 sites x 10 sensors), then the worker starts and drains it; readings/s is the
  backlog over the time from its first verdict stored to its last, with the worker's and the
  broker's CPU over that time (from /proc);
- **latency**: a paced publisher (NATS's text protocol on a socket, the messages built before
  the run, so the client costs little of the two cores) sends one-reading messages at 70 % of
  the throughput just measured for ``--seconds``; the messages of one sensor in 160 carry
  their send time in their Nats-Msg-Id, and the verdict (received by a subscription on that
  sensor's verdict subject) carries it back: publish-to-verdict as the client sees it, per 5 s
  window, beside the worker's own histogram over every message
  (stream_publish_to_verdict_seconds, /metrics);
- **/predict beside it**: one ``gridscore api`` worker under wrk (8 connections) at batch 1
  and 100, readings/s, in the same run.

The publisher and the subscriber share the two cores with the broker and the worker: their
CPU is recorded too. Results: bench/results/stream.json; tables: python -m bench.report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import nats

from app.harness import StreamVerdict, create_streams, find_artifact
from bench import procs, serving
from bench.natsserver import NatsServer, environment, nats_server
from bench.service import server as api_server
from bench.service import wrk

RESULTS = Path(__file__).parent / "results"
SITES, SENSORS = 16, 10
WINDOW_S = 5.0
RATE_SHARE = 0.7


def body(index: int, per_message: int) -> bytes:
    """Readings drawn like the synthetic supply point's normal operation (1 % far out), each
    different: repeated or cyclic readings would let the CPU predict the forest's branches
    and flatter the kernel (docs/benchmarks.md, the kernel's profile)."""
    rng = random.Random(index)

    def one() -> dict[str, float]:
        if rng.random() < 0.01:
            return {"voltage": 290.0, "current": 31.0, "frequency": 50.9}
        return {
            "voltage": round(rng.gauss(230.0, 3.0), 3),
            "current": round(rng.gauss(10.0, 1.5), 3),
            "frequency": round(rng.gauss(50.0, 0.02), 4),
        }

    if per_message == 1:
        return json.dumps(one()).encode()
    return json.dumps({"readings": [one() for _ in range(per_message)]}).encode()


def subject(index: int) -> str:
    return f"grid.readings.site{index % SITES}.sensor{(index // SITES) % SENSORS}"


async def fill(url: str, messages: int, per_message: int) -> None:
    """Store ``messages`` in the readings' stream (core publishes, flushed, then counted)."""
    nc = await nats.connect(url, pending_size=256 * 1024 * 1024)
    js = nc.jetstream(timeout=30)
    for i in range(messages):
        await nc.publish(subject(i), body(i, per_message))
        if i % 2000 == 1999:
            await nc.flush()
    await nc.flush()
    deadline = time.monotonic() + 120
    while (await js.stream_info("GRID")).state.messages < messages:
        if time.monotonic() > deadline:
            raise RuntimeError("the broker did not store the whole backlog")
        await asyncio.sleep(0.1)
    await nc.close()


async def verdicts_stored(url: str) -> int:
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info("GRID_VERDICTS")).state.messages)
    finally:
        await nc.close()


@contextmanager
def worker(model_dir: Path, broker: NatsServer, log_dir: Path) -> Iterator[serving.RunningServer]:
    env = environment(broker.url, WORKERS="1", LOG_LEVEL="warning")
    with serving.gridscore_serve(model_dir, log_dir, command="stream", timeout=90, **env) as run:
        yield run


def drain(model_dir: Path, messages: int, per_message: int) -> dict[str, Any]:
    """One throughput run: a stored backlog, then one worker draining it."""
    with (
        tempfile.TemporaryDirectory(prefix="gridscore-stream-bench-") as tmp,
        nats_server() as broker,
    ):
        asyncio.run(create_streams(broker.url, **environment(broker.url)))
        asyncio.run(fill(broker.url, messages, per_message))
        assert broker.process is not None
        with worker(model_dir, broker, Path(tmp)) as running:
            worker_pids = [running.process.pid, *procs.children(running.process.pid)]
            started = None
            cpu_start: dict[str, float] = {}
            done = 0
            deadline = time.monotonic() + 600
            while done < messages and time.monotonic() < deadline:
                done = asyncio.run(verdicts_stored(broker.url))
                if started is None and done > 0:
                    started, first = time.monotonic(), done
                    cpu_start = _cpu(worker_pids, broker.process.pid)
                time.sleep(0.05)
            ended = time.monotonic()
            cpu_end = _cpu(worker_pids, broker.process.pid)
        if started is None or done < messages:
            raise RuntimeError(f"{done} of {messages} messages got verdicts")
        elapsed = ended - started
        judged = messages - first
        return {
            "messages": messages,
            "readings_per_message": per_message,
            "seconds": round(elapsed, 3),
            "readings_per_s": round(judged * per_message / elapsed, 1),
            "messages_per_s": round(judged / elapsed, 1),
            "worker_cpu": round((cpu_end["worker"] - cpu_start["worker"]) / elapsed, 3),
            "broker_cpu": round((cpu_end["broker"] - cpu_start["broker"]) / elapsed, 3),
        }


def _cpu(worker_pids: list[int], broker_pid: int) -> dict[str, float]:
    return {
        "worker": sum(procs.cpu_seconds(p) for p in worker_pids if os.path.exists(f"/proc/{p}")),
        "broker": procs.cpu_seconds(broker_pid),
    }


PROBE_SENSOR = 0  # messages of this sensor carry their send time; its verdicts are timed


class RawPublisher:
    """The paced run's publisher: NATS's text protocol written straight to the socket, the
    frames of the messages not timed built before the run. nats-py's publish and building a
    varied body per message cost the client half a core at this rate, on the two cores the
    broker and the worker need (the first version measured the client as much as the worker).
    The broker treats these as any client's publishes (no acknowledgement asked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.error = ""
        self.pong = asyncio.Event()
        self.listening = asyncio.create_task(self._listen())

    @classmethod
    async def connect(cls, url: str) -> RawPublisher:
        host, port = url.removeprefix("nats://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        info = await reader.readline()
        if not info.startswith(b"INFO "):
            raise RuntimeError(f"not a NATS server: {info[:80]!r}")
        options = {"verbose": False, "pedantic": False, "headers": True, "protocol": 1}
        writer.write(b"CONNECT " + json.dumps(options).encode() + b"\r\n")
        publisher = cls(reader, writer)
        await publisher.round_trip()
        return publisher

    async def _listen(self) -> None:
        """The server's lines: PING (answered), PONG, -ERR (kept, raised by the next send)."""
        while line := await self.reader.readline():
            if line.startswith(b"PING"):
                self.writer.write(b"PONG\r\n")
            elif line.startswith(b"PONG"):
                self.pong.set()
            elif line.startswith(b"-ERR"):
                self.error = line.decode(errors="replace").strip()
        self.error = self.error or "the broker closed the connection"
        self.pong.set()

    async def round_trip(self) -> None:
        """A PING answered: every publish written before it has been read by the broker."""
        self.pong.clear()
        self.writer.write(b"PING\r\n")
        await self.writer.drain()
        await asyncio.wait_for(self.pong.wait(), 30)
        if self.error:
            raise RuntimeError(f"the broker refused the publisher: {self.error}")

    @staticmethod
    def frame(subject_: str, payload: bytes, msg_id: str | None = None) -> bytes:
        if msg_id is None:
            return b"PUB %s %d\r\n%s\r\n" % (subject_.encode(), len(payload), payload)
        head = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.encode()
        return b"HPUB %s %d %d\r\n%s%s\r\n" % (
            subject_.encode(),
            len(head),
            len(head) + len(payload),
            head,
            payload,
        )

    async def send(self, frames: list[bytes]) -> None:
        if self.error:
            raise RuntimeError(f"the broker refused a publish: {self.error}")
        self.writer.write(b"".join(frames))
        await self.writer.drain()

    async def close(self) -> None:
        await self.round_trip()
        self.listening.cancel()
        self.writer.close()
        await self.writer.wait_closed()


FRAME_POOL = 32_000  # distinct pre-built messages the paced run cycles through


async def paced(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Publish one-reading messages at ``rate`` for ``seconds``; time the verdicts of one
    sensor in 160 (its messages carry their send time in their Nats-Msg-Id). Timing every
    verdict would have the client parse as many messages as the worker publishes, on the same
    two cores; the worker's own histogram covers every message."""
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    arrivals: list[tuple[int, int]] = []  # (send ns, receive ns)
    decode = msgspec.json.Decoder(StreamVerdict).decode
    probe = subject(PROBE_SENSOR * SITES).replace("grid.readings.", "grid.verdicts.")

    async def on_verdict(msg: Any) -> None:
        received = time.time_ns()
        msg_id = decode(msg.data).msg_id or ""
        if msg_id.startswith("t"):
            arrivals.append((int(msg_id[1:].split("-", 1)[0]), received))

    await nc.subscribe(probe, cb=on_verdict)
    await nc.flush()
    cycle = SITES * SENSORS
    pool = [RawPublisher.frame(subject(i), body(i, 1)) for i in range(FRAME_POOL)]
    publisher = await RawPublisher.connect(url)
    cpu_before = time.process_time()
    start = time.monotonic()
    sent = probes = 0
    total = int(rate * seconds)
    late: list[float] = []
    while sent < total:
        due = start + sent / rate
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        else:
            late.append(now - due)
        # Whatever is due by now goes out in one write (a few per tick at thousands a second).
        now = time.monotonic()
        frames: list[bytes] = []
        while sent < total and start + sent / rate <= now:
            if sent % cycle == PROBE_SENSOR * SITES:
                msg_id = f"t{time.time_ns()}-{sent}"
                frames.append(RawPublisher.frame(subject(sent), body(sent, 1), msg_id))
                probes += 1
            else:
                frames.append(pool[sent % FRAME_POOL])
            sent += 1
        await publisher.send(frames)
    await publisher.close()
    deadline = time.monotonic() + 30
    while len(arrivals) < probes and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    client_cpu = (time.process_time() - cpu_before) / (time.monotonic() - start)
    await nc.close()
    latencies = sorted((r - s) / 1e6 for s, r in arrivals)
    if not latencies:
        raise RuntimeError("no verdict came back")
    first_send = min(s for s, _ in arrivals)
    windows: dict[int, list[float]] = {}
    for s, r in arrivals:
        windows.setdefault(int((s - first_send) / 1e9 // WINDOW_S), []).append((r - s) / 1e6)
    return {
        "rate_per_s": round(rate, 1),
        "seconds": seconds,
        "sent": sent,
        "timed": probes,
        "answered": len(arrivals),
        "p50_ms": round(_percentile(latencies, 0.5), 3),
        "p99_ms": round(_percentile(latencies, 0.99), 3),
        "max_ms": round(latencies[-1], 3),
        "worst_window_p99_ms": round(
            max(_percentile(sorted(v), 0.99) for v in windows.values() if len(v) >= 10), 3
        ),
        "windows_p99_ms": [
            round(_percentile(sorted(windows[k]), 0.99), 3) for k in sorted(windows)
        ],
        "client_cpu": round(client_cpu, 3),
        "sent_late_p99_ms": round(_percentile(sorted(late), 0.99) * 1000, 3) if late else 0.0,
    }


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def latency(model_dir: Path, rate: float, seconds: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="gridscore-stream-bench-") as tmp,
        nats_server() as broker,
    ):
        with worker(model_dir, broker, Path(tmp)) as running:
            assert broker.process is not None
            pids = [running.process.pid, *procs.children(running.process.pid)]
            before = _cpu(pids, broker.process.pid)
            started = time.monotonic()
            result = asyncio.run(paced(broker.url, rate, seconds))
            elapsed = time.monotonic() - started
            after = _cpu(pids, broker.process.pid)
            metrics = urllib.request.urlopen(f"{running.url}/metrics", timeout=5).read().decode()
        result["worker_cpu"] = round((after["worker"] - before["worker"]) / elapsed, 3)
        result["broker_cpu"] = round((after["broker"] - before["broker"]) / elapsed, 3)
        result["worker_view"] = _worker_view(metrics)
        return result


def _worker_view(metrics: str) -> dict[str, float]:
    """p50 and p99 of the worker's own publish-to-verdict histogram (bucket upper bounds)."""
    buckets: list[tuple[float, float]] = []
    for line in metrics.splitlines():
        if line.startswith("stream_publish_to_verdict_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append(
                (float("inf") if bound == "+Inf" else float(bound), float(line.split()[-1]))
            )
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    view = {"count": total}
    for name, q in (("p50_le_ms", 0.5), ("p99_le_ms", 0.99)):
        view[name] = next((b * 1000 for b, c in buckets if c >= q * total), float("nan"))
    return view


def predict_beside(model_dir: Path, seconds: float) -> dict[str, Any]:
    """/predict on one worker under wrk at batch 1 and 100: readings/s, for comparison."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gridscore-stream-bench-") as tmp:
        files = {}
        for batch in (1, 100):
            files[batch] = Path(tmp) / f"batch-{batch}.json"
            rows = json.loads(body(0, batch)) if batch > 1 else [json.loads(body(0, 1))]
            rows = rows["readings"] if isinstance(rows, dict) else rows
            files[batch].write_text(json.dumps({"readings": rows}))
        with api_server(model_dir, 1) as (_, port, _):
            for batch, path in files.items():
                run = wrk(f"http://127.0.0.1:{port}/predict", seconds, body=path)
                result[str(batch)] = {
                    "requests_per_s": run["requests_per_s"],
                    "readings_per_s": round(run["requests_per_s"] * batch, 1),
                    "p99_ms": run["p99_ms"],
                }
    return result


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    best = sorted(runs, key=lambda r: r[key])[len(runs) // 2]
    return {**best, "runs": [r[key] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--quick", action="store_true", help="small counts, for the test suite")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of a latency run")
    parser.add_argument("--out", type=Path, default=RESULTS / "stream.json")
    args = parser.parse_args(argv)
    if find_artifact(args.model_dir) is None:
        print(f"no artifact in {args.model_dir}: run python -m convert first", file=sys.stderr)
        return 2
    runs = 1 if args.quick else args.runs
    one = [drain(args.model_dir, 3_000 if args.quick else 200_000, 1) for _ in range(runs)]
    hundred = [drain(args.model_dir, 100 if args.quick else 5_000, 100) for _ in range(runs)]
    k1 = _median(one, "readings_per_s")
    k100 = _median(hundred, "readings_per_s")
    rate = RATE_SHARE * k1["readings_per_s"]
    seconds = 5.0 if args.quick else args.seconds
    paced_runs = [latency(args.model_dir, rate, seconds) for _ in range(runs)]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "command": "python -m bench.stream" + (" --quick" if args.quick else ""),
        "throughput_1_per_message": k1,
        "throughput_100_per_message": k100,
        "latency_at_70_pct": _median(paced_runs, "p99_ms"),
        "predict_one_worker": predict_beside(args.model_dir, 3 if args.quick else 10),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "latency_at_70_pct"}, indent=1))
    lat = report["latency_at_70_pct"]
    print(
        f"latency at {lat['rate_per_s']:,.0f}/s: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms "
        f"(runs {lat['runs']}), worst 5 s window {lat['worst_window_p99_ms']} ms; worker's own "
        f"view p99 <= {lat['worker_view']['p99_le_ms']} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
