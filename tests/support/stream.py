"""Driving a stream worker as its users do: publish readings to JetStream, read back what the
worker stored (verdicts, alarms, dead letters), and what one worker judging each partition's
readings in order would have raised (the reference the tests hold the workers to)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from app.contract.stream import AlarmEvent, StreamVerdict

__all__ = ["StreamVerdict"]
from app.stream.alarms import AlarmBook, AlarmPolicy, Judged
from app.stream.broker import ensure_streams, reply_fields
from tests.support.config import settings_from

NOMINAL = {"voltage": 230.0, "current": 10.0, "frequency": 50.0}
SPREAD = {"voltage": 3.0, "current": 1.5, "frequency": 0.02}  # the synthetic model's sd
ODD = {"voltage": 290.0, "current": 31.0, "frequency": 50.9}


def reading(i: int, odd: bool) -> dict[str, float]:
    """A reading within half a standard deviation of the synthetic supply point's normal
    operation, or a clearly anomalous one."""
    base = ODD if odd else NOMINAL
    return {
        name: round(value + SPREAD[name] * ((i * 7 + j) % 11 - 5) / 10, 4)
        for j, (name, value) in enumerate(base.items())
    }


@dataclass
class Published:
    """What the test sent: per message id, its subject and readings."""

    messages: dict[str, tuple[str, list[dict[str, float]]]] = field(default_factory=dict)

    @property
    def readings(self) -> int:
        return sum(len(r) for _, r in self.messages.values())


async def publish(
    js: JetStreamContext,
    count: int,
    sites: int = 4,
    sensors: int = 5,
    per_message: int = 1,
    start: int = 0,
    published: Published | None = None,
    retry: bool = False,
) -> Published:
    """``count`` messages over sites x sensors, two sensors of each site anomalous in bursts
    (so alarms are raised and cleared); each with a Nats-Msg-Id, retried with the same id when
    ``retry``."""
    published = published or Published()
    for i in range(start, start + count):
        site, sensor = f"site{i % sites}", f"sensor{(i // sites) % sensors}"
        # The sensor's own n-th reading: sensors 0 and 1 of each site go bad for 4 readings
        # in every 20 (an alarm raised, then cleared after the normal ones that follow).
        nth = i // (sites * sensors)
        burst = (i // sites) % sensors < 2 and 3 <= nth % 20 <= 6
        rows = [reading(i * per_message + j, burst) for j in range(per_message)]
        body = json.dumps(rows[0] if per_message == 1 else {"readings": rows}).encode()
        msg_id = f"r{i}"
        subject = f"grid.readings.{site}.{sensor}"
        while True:
            try:
                await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id}, timeout=2)
                break
            except Exception:
                if not retry:
                    raise
                await asyncio.sleep(0.2)
        published.messages[msg_id] = (subject, rows)
    return published


async def create_streams(js: JetStreamContext, **env: str) -> None:
    """The streams as a worker with these settings creates them (to publish before one runs)."""
    await ensure_streams(js, settings_from(**env).stream)


async def read_all(js: JetStreamContext, stream: str, subject: str = ">") -> list[Any]:
    """Every message stored in ``stream`` (on ``subject``), in stream order."""
    info = await js.stream_info(stream)
    last = info.state.last_seq
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30
        ),
    )
    found: list[Any] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            batch = await sub.fetch(1000, timeout=1)
        except nats.errors.TimeoutError:
            break
        found += batch
        if batch and batch[-1].metadata.sequence.stream >= last:
            break
    await sub.unsubscribe()
    return found


async def wait_for_verdicts(
    js: JetStreamContext, expected: int, timeout: float = 90.0
) -> list[StreamVerdict]:
    """The verdicts stored, once there is one for each of ``expected`` messages (by sequence)."""
    deadline = time.monotonic() + timeout
    seqs: set[int] = set()
    while time.monotonic() < deadline:
        try:
            info = await js.stream_info("GRID_VERDICTS")
            if info.state.messages >= expected:
                verdicts = [
                    msgspec.json.decode(m.data, type=StreamVerdict)
                    for m in await read_all(js, "GRID_VERDICTS")
                ]
                seqs = {v.seq for v in verdicts}
                if len(seqs) >= expected:
                    return verdicts
        except (nats.errors.Error, TimeoutError):
            pass  # a cluster electing a leader: ask again
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{len(seqs)} of {expected} messages have verdicts")


def duplicates(verdicts: list[StreamVerdict]) -> dict[int, int]:
    """Sequences answered more than once (the broker's de-duplication should leave none)."""
    return {seq: n for seq, n in Counter(v.seq for v in verdicts).items() if n > 1}


def differing_repeats(verdicts: list[StreamVerdict]) -> list[int]:
    """Sequences answered more than once with different contents (a repeat that is not a copy
    of the first answer would be two decisions about one reading)."""
    first: dict[int, StreamVerdict] = {}
    differing = []
    for verdict in verdicts:
        seen = first.setdefault(verdict.seq, verdict)
        if seen is not verdict and seen != verdict:
            differing.append(verdict.seq)
    return differing


async def stored_alarms(js: JetStreamContext) -> list[AlarmEvent]:
    return [
        msgspec.json.decode(m.data, type=AlarmEvent)
        for m in await read_all(js, "GRID_ALARMS", "grid.alarms.>")
    ]


async def reference_alarms(
    js: JetStreamContext, verdicts: list[StreamVerdict], policy: AlarmPolicy
) -> list[str]:
    """The alarm ids one worker would raise judging each partition's readings in stream order
    (flags from the verdicts, times from the readings' stream)."""
    by_seq = {v.seq: v for v in verdicts}
    books: dict[str, AlarmBook] = {}
    events: list[str] = []
    for msg in await read_all(js, "GRID"):
        seq = msg.metadata.sequence.stream
        verdict = by_seq.get(seq)
        if verdict is None:
            continue  # a dead letter
        _, _, site, sensor, partition = msg.subject.split(".")
        book = books.setdefault(partition, AlarmBook(policy))
        ts = reply_fields(msg.reply)[2] / 1e9  # as the worker reads it
        for index, prediction in enumerate(verdict.predictions):
            found = book.judge(
                Judged(
                    site=site,
                    sensor=f"{site}.{sensor}",
                    flagged=prediction.anomaly,
                    score=prediction.score,
                    top_feature=prediction.top_feature or None,
                    out_of_range=prediction.out_of_range,
                    timestamp=None,
                    time=ts,
                    cause=f"{seq}.{index}",
                ),
                verdict.model,
            )
            events += [event.msg_id for event in found]
    return events


async def lead(nc: nats.NATS, api: str, preferred: str, leader: Any) -> None:
    """Move a JetStream leader (``api``: the stepdown subject of a stream or a consumer) to
    the server named ``preferred``, and wait until ``leader()`` names it."""
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            if await leader() == preferred:
                return
            body = json.dumps({"placement": {"preferred": preferred}}).encode()
            await nc.request(api, body, timeout=5)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{api}: {preferred} did not become leader in 30 s")
        await asyncio.sleep(0.5)


async def place_leaders(
    nc: nats.NATS,
    js: JetStreamContext,
    consumers_on: str,
    the_rest_on: str,
    partitions: int = 8,
) -> None:
    """Every partition's consumer led by ``consumers_on``; the streams and the buckets by
    ``the_rest_on``. (The meta group's leader stays where it is: moving it takes the system
    account, and a worker needs it only to create consumers.)"""
    for stream in ("GRID", "GRID_VERDICTS", "GRID_ALARMS", "KV_GRID_STATE", "KV_GRID_LEASES"):

        async def stream_leader(stream: str = stream) -> str:
            return str((await js.stream_info(stream)).cluster.leader)  # type: ignore[union-attr]

        await lead(nc, f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", the_rest_on, stream_leader)
    for partition in range(partitions):
        consumer = f"gridscore-p{partition}"

        async def consumer_leader(consumer: str = consumer) -> str:
            info = await js.consumer_info("GRID", consumer)
            return str(info.cluster.leader)  # type: ignore[union-attr]

        api = f"$JS.API.CONSUMER.LEADER.STEPDOWN.GRID.{consumer}"
        await lead(nc, api, consumers_on, consumer_leader)
