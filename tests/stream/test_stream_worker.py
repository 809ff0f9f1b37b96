"""The stream worker against a real nats-server: every published reading gets exactly one
verdict in effect, scored as /predict scores it; alarms are what one worker judging each
partition in order raises, through a SIGKILL, three workers sharing the partitions, and a
broker that goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats
import pytest
from litestar.testing import TestClient

from app.service.factory import create_api_app
from app.stream.alarms import AlarmPolicy
from tests.support import stream as s
from tests.support.config import settings_from
from tests.support.nats import environment, nats_server
from tests.support.servers import RunningServer, gridscore_serve

pytestmark = pytest.mark.slow

POLICY = AlarmPolicy()  # the defaults the workers run with


@contextmanager
def worker(model_dir: Path, log_dir: Path, url: str, **env: str) -> Iterator[RunningServer]:
    with gridscore_serve(
        model_dir, log_dir, command="stream", timeout=90, **environment(url, **env)
    ) as running:
        yield running


def health(server: RunningServer) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{server.url}/health", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def connect(url: str) -> tuple[nats.NATS, nats.js.JetStreamContext]:
    nc = await nats.connect(url)
    return nc, nc.jetstream(timeout=10)


def test_every_reading_gets_one_verdict_scored_as_predict_scores_it(
    model_dir: Path, tmp_path: Path
) -> None:
    async def run(url: str) -> tuple[s.Published, list[s.StreamVerdict], list[str], list[str]]:
        nc, js = await connect(url)
        published = await s.publish(js, 300)
        published = await s.publish(js, 60, per_message=50, start=300, published=published)
        # A publisher retrying with the same Nats-Msg-Id adds nothing.
        await s.publish(js, 20, start=0)
        verdicts = await s.wait_for_verdicts(js, 360)
        alarms = [a.msg_id for a in await s.stored_alarms(js)]
        reference = await s.reference_alarms(js, verdicts, POLICY)
        await nc.close()
        return published, verdicts, alarms, reference

    with nats_server() as broker, worker(model_dir, tmp_path, broker.url):
        published, verdicts, alarms, reference = asyncio.run(run(broker.url))
    assert s.duplicates(verdicts) == {}
    assert len(verdicts) == len(published.messages) == 360
    by_id = {v.msg_id: v for v in verdicts}
    assert set(by_id) == set(published.messages)
    # The scores /predict gives the same readings.
    with TestClient(create_api_app(settings_from(model_dir))) as client:
        for msg_id, (subject, rows) in published.messages.items():
            answer = client.post("/predict", json={"readings": rows}).json()
            verdict = by_id[msg_id]
            assert verdict.sensor == subject.split(".", 2)[2]
            assert [p.score for p in verdict.predictions] == [
                p["score"] for p in answer["predictions"]
            ]
            assert [p.anomaly for p in verdict.predictions] == [
                p["anomaly"] for p in answer["predictions"]
            ]
            assert verdict.model == answer["model"]
    assert len(reference) > 4  # bursts raise and clear alarms
    assert alarms == sorted(set(alarms), key=alarms.index)  # none stored twice
    assert set(alarms) == set(reference)


def test_a_worker_killed_mid_stream_and_restarted_loses_nothing_and_raises_nothing_twice(
    model_dir: Path, tmp_path: Path
) -> None:
    async def publish_all(url: str, count: int) -> s.Published:
        nc, js = await connect(url)
        await s.create_streams(js, **environment(url))
        published = await s.publish(js, count)
        await nc.close()
        return published

    async def stored_verdicts(url: str, at_least: int) -> int:
        nc, js = await connect(url)
        try:
            while True:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    stored = (await js.stream_info("GRID_VERDICTS")).state.messages
                    if stored >= at_least:
                        return int(stored)
                await asyncio.sleep(0.01)
        finally:
            await nc.close()

    async def collect(url: str, count: int) -> tuple[list[s.StreamVerdict], list[str], list[str]]:
        nc, js = await connect(url)
        verdicts = await s.wait_for_verdicts(js, count)
        alarms = [a.msg_id for a in await s.stored_alarms(js)]
        reference = await s.reference_alarms(js, verdicts, POLICY)
        await nc.close()
        return verdicts, alarms, reference

    total = 10_000
    with nats_server() as broker:
        published = asyncio.run(publish_all(broker.url, total))  # a backlog
        with worker(model_dir, tmp_path, broker.url, STREAM_BATCH="20") as first:
            asyncio.run(stored_verdicts(broker.url, 500))
            first.process.send_signal(signal.SIGKILL)  # mid-stream, cycles on their way
            first.process.wait(10)
        at_kill = asyncio.run(stored_verdicts(broker.url, 0))
        with worker(model_dir, tmp_path, broker.url):
            verdicts, alarms, reference = asyncio.run(collect(broker.url, total))
    assert 500 <= at_kill < total  # the kill came with work left
    assert s.duplicates(verdicts) == {}
    assert {v.msg_id for v in verdicts} == set(published.messages)
    assert len(alarms) == len(set(alarms))  # no alarm raised twice
    assert len(reference) > 50  # raises, clears and floods throughout, across the kill
    assert set(alarms) == set(reference)


def settled_partitions(servers: list[RunningServer], within: float = 30.0) -> list[list[int]]:
    """The partitions each server holds, once every one is held by exactly one of them and
    every server holds some. Leases move over a few seconds (a member that starts late takes
    its share as the others hand theirs over), longer on a loaded machine; the last answer is
    returned if they never settle, for the assertions to show."""
    deadline = time.monotonic() + within
    while True:
        held = [health(server)[1]["partitions"] for server in servers]
        spread = all(held) and sorted(p for h in held for p in h) == list(range(8))
        if spread or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


def test_three_workers_share_the_partitions_and_raise_what_one_would(
    model_dir: Path, tmp_path: Path
) -> None:
    async def run(url: str, servers: list[RunningServer]) -> tuple[object, ...]:
        nc, js = await connect(url)
        published = await s.publish(js, 4000, sites=12, sensors=4)
        verdicts = await s.wait_for_verdicts(js, 4000)
        alarms = [a.msg_id for a in await s.stored_alarms(js)]
        reference = await s.reference_alarms(js, verdicts, POLICY)
        await nc.close()
        return published, verdicts, alarms, reference, settled_partitions(servers)

    with (
        nats_server() as broker,
        worker(model_dir, tmp_path, broker.url) as one,
        worker(model_dir, tmp_path, broker.url) as two,
        worker(model_dir, tmp_path, broker.url) as three,
    ):
        settled_partitions([one, two, three])  # the leases spread over the three members
        published, verdicts, alarms, reference, held = asyncio.run(
            run(broker.url, [one, two, three])
        )
    assert s.duplicates(verdicts) == {}
    assert {v.msg_id for v in verdicts} == set(published.messages)
    assert len({v.served_by for v in verdicts}) == 3  # all three did work
    partitions = [p for h in held for p in h]
    assert sorted(partitions) == list(range(8))  # each partition held once
    assert len(reference) > 50
    assert set(alarms) == set(reference)
    assert len(alarms) == len(set(alarms))


def test_the_broker_going_away_turns_readiness_503_and_loses_nothing(
    model_dir: Path, tmp_path: Path
) -> None:
    with nats_server() as broker, worker(model_dir, tmp_path, broker.url) as running:
        first = asyncio.run(_publish(broker.url, 0, 500))
        broker.kill()
        time.sleep(1.0)
        status, body = health(running)
        assert status == 503
        assert body["broker"] == "disconnected"
        broker.start()  # the same port and store
        deadline = time.monotonic() + 30
        while health(running)[0] != 200:
            assert time.monotonic() < deadline, running.log()[-3000:]
            time.sleep(0.2)
        second = asyncio.run(_publish(broker.url, 500, 500))
        verdicts = asyncio.run(_verdicts(broker.url, 1000))
        metrics = urllib.request.urlopen(f"{running.url}/metrics").read().decode()
    assert {v.msg_id for v in verdicts} == set(first.messages) | set(second.messages)
    assert s.duplicates(verdicts) == {}
    assert "stream_broker_disconnects_total 1.0" in metrics
    assert "broker connection lost" in running.log()


async def _publish(url: str, start: int, count: int) -> s.Published:
    nc, js = await connect(url)
    published = await s.publish(js, count, start=start)
    await nc.close()
    return published


async def _verdicts(url: str, count: int) -> list[s.StreamVerdict]:
    nc, js = await connect(url)
    verdicts = await s.wait_for_verdicts(js, count)
    await nc.close()
    return verdicts
