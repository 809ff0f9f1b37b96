"""The stream worker at its edges: malformed messages become dead letters and the stream goes
on; MQTT devices are scored like any publisher; a node of a three-node JetStream cluster dies
mid-stream and nothing is lost; a bad broker URL or a conflicting stream stops it at start-up
with exit status 2."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import msgspec
import nats
import paho.mqtt.client as mqtt
import pytest
from nats.js.api import StreamConfig

from app.contract.stream import DEAD_REASON, AlarmEvent
from tests.support import stream as s
from tests.support.nats import NatsServer, environment, nats_cluster, nats_server, urls
from tests.support.servers import RunningServer, gridscore_serve

pytestmark = pytest.mark.slow

GOOD = json.dumps(s.NOMINAL).encode()


class Malformed(NamedTuple):
    name: str
    subject: str
    body: bytes
    reason: str  # what the dead letter's reason header must say


def _with(**changes: object) -> bytes:
    return json.dumps({**s.NOMINAL, **changes}).encode()


CATALOGUE = [
    Malformed("empty body", "grid.readings.site1.s1", b"", "empty body"),
    Malformed("only whitespace", "grid.readings.site1.s1", b"  \n ", "empty body"),
    Malformed("not JSON", "grid.readings.site1.s1", b"voltage=230", "not JSON"),
    Malformed("truncated JSON", "grid.readings.site1.s1", b'{"voltage": 23', "not JSON"),
    Malformed("NaN literal", "grid.readings.site1.s1", b'{"voltage": NaN}', "not JSON"),
    Malformed(
        "invalid UTF-8 in a string",
        "grid.readings.site1.s1",
        GOOD[:-1] + b', "timestamp": "\xff"}',
        "not UTF-8",
    ),
    Malformed("a JSON array", "grid.readings.site1.s1", b"[230, 10, 50]", "Expected `object`"),
    Malformed("a JSON string", "grid.readings.site1.s1", b'"230"', "Expected `object`"),
    Malformed(
        "a missing feature",
        "grid.readings.site1.s1",
        b'{"voltage": 230, "current": 10}',
        "missing required field `frequency`",
    ),
    Malformed(
        "an unknown field", "grid.readings.site1.s1", _with(phase=3), "unknown field `phase`"
    ),
    Malformed(
        "a number as a string", "grid.readings.site1.s1", _with(voltage="230"), "`$.voltage`"
    ),
    Malformed("a null feature", "grid.readings.site1.s1", _with(current=None), "`$.current`"),
    Malformed("beyond float32", "grid.readings.site1.s1", _with(frequency=1e39), "`$.frequency`"),
    Malformed(
        "a timestamp not a string", "grid.readings.site1.s1", _with(timestamp=5), "timestamp"
    ),
    Malformed(
        "a timestamp too long", "grid.readings.site1.s1", _with(timestamp="x" * 65), "timestamp"
    ),
    Malformed("an empty batch", "grid.readings.site1.s1", b'{"readings": []}', "`$.readings`"),
    Malformed(
        "readings not a list",
        "grid.readings.site1.s1",
        b'{"readings": "many"}',
        "`$.readings`",
    ),
    Malformed(
        "one bad reading in a batch",
        "grid.readings.site1.s1",
        b'{"readings": [' + GOOD + b', {"voltage": "x"}]}',
        "`$.readings[1]",
    ),
    Malformed(
        "more readings than MAX_BATCH",
        "grid.readings.site1.s1",
        json.dumps({"readings": [s.NOMINAL] * 51}).encode(),
        "51 readings in one message; at most 50",
    ),
    Malformed(
        "a site that is not a name (MQTT's site.1)", "grid.readings.site//1.s1", GOOD, "site"
    ),
]


def test_the_catalogue_has_at_least_15_distinct_cases() -> None:
    assert len(CATALOGUE) >= 15
    assert len({case.name for case in CATALOGUE}) == len(CATALOGUE)


def test_each_malformed_message_is_dead_lettered_with_its_reason_and_the_stream_goes_on(
    model_dir: Path, tmp_path: Path
) -> None:
    async def run(url: str) -> tuple[list[s.StreamVerdict], list[nats.aio.msg.Msg]]:
        nc = await nats.connect(url)
        js = nc.jetstream(timeout=10)
        for index, case in enumerate(CATALOGUE):
            await js.publish(case.subject, case.body, headers={"Nats-Msg-Id": f"bad{index}"})
            await js.publish("grid.readings.site1.s1", GOOD, headers={"Nats-Msg-Id": f"ok{index}"})
        verdicts = await s.wait_for_verdicts(js, len(CATALOGUE))
        dead = await s.read_all(js, "GRID_ALARMS", "grid.dead.>")
        await nc.close()
        return verdicts, dead

    with (
        nats_server() as broker,
        gridscore_serve(
            model_dir, tmp_path, command="stream", **environment(broker.url, MAX_BATCH="50")
        ) as worker,
    ):
        verdicts, dead = asyncio.run(run(broker.url))
        metrics = urllib.request.urlopen(f"{worker.url}/metrics").read().decode()
    assert sorted(v.msg_id or "" for v in verdicts) == sorted(f"ok{i}" for i in range(20))
    assert len(dead) == len(CATALOGUE)
    for case, letter in zip(CATALOGUE, dead, strict=True):
        reason = letter.headers[DEAD_REASON]
        assert case.reason in reason, (case.name, reason)
        assert letter.data == case.body, case.name  # the message itself, to inspect or replay
        assert letter.headers["Gridscore-Source-Msg-Id"] == f"bad{CATALOGUE.index(case)}"
    assert dead[-1].subject == "grid.dead.site//1.s1"
    assert f'stream_messages_total{{outcome="dead_lettered"}} {float(len(CATALOGUE))}' in metrics


def test_mqtt_devices_are_scored_and_operators_can_take_alarms_over_mqtt(
    model_dir: Path, tmp_path: Path
) -> None:
    with (
        nats_server(mqtt=True) as broker,
        gridscore_serve(model_dir, tmp_path, command="stream", **environment(broker.url)),
    ):
        assert broker.mqtt_port is not None
        alarms: list[bytes] = []
        got_alarm = threading.Event()

        def on_message(client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
            alarms.append(message.payload)
            got_alarm.set()

        console = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="control-room")
        console.on_message = on_message
        console.connect("127.0.0.1", broker.mqtt_port)
        console.subscribe("grid/alarms/#", qos=1)
        console.loop_start()
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="feeder-7-gateway")
        device.connect("127.0.0.1", broker.mqtt_port)
        device.loop_start()
        for i in range(8):
            body = json.dumps(s.reading(i, odd=i >= 3)).encode()
            device.publish("grid/readings/feeder7/pmu2", body, qos=1).wait_for_publish(5)
        verdicts = asyncio.run(_verdicts(broker.url, 8))
        assert got_alarm.wait(20)
        device.loop_stop()
        console.loop_stop()
        device.disconnect()
        console.disconnect()
    assert {v.sensor for v in verdicts} == {"feeder7.pmu2"}
    assert [p.anomaly for v in sorted(verdicts, key=lambda v: v.seq) for p in v.predictions] == [
        False, False, False, True, True, True, True, True,
    ]  # fmt: skip
    event = msgspec.json.decode(alarms[0], type=AlarmEvent)
    assert (event.sensor, event.state) == ("feeder7.pmu2", "raised")


async def _verdicts(url: str, count: int) -> list[s.StreamVerdict]:
    nc = await nats.connect(url)
    verdicts = await s.wait_for_verdicts(nc.jetstream(timeout=10), count)
    await nc.close()
    return verdicts


def test_a_cluster_node_killed_mid_stream_loses_nothing(model_dir: Path, tmp_path: Path) -> None:
    """The node killed leads every partition's consumer (the pull requests waiting there die
    with it, unanswered) while the worker's own connection, the streams and the buckets are on
    the others: the worker must notice the silence and ask the new leaders again. Leaders are
    placed, not left to the draw, so the test takes this path on every run."""

    async def run(
        home: NatsServer, victim: NatsServer
    ) -> tuple[s.Published, list[s.StreamVerdict]]:
        nc = await nats.connect(servers=[n.url for n in cluster], max_reconnect_attempts=-1)
        js = nc.jetstream(timeout=10)
        try:  # closed on failure too: a leaked connection fails a later test as "unraisable"
            await s.place_leaders(nc, js, consumers_on=victim.name, the_rest_on=home.name)
            published = await s.publish(js, 1500, retry=True)
            victim.kill()  # mid-stream: the worker is still judging what was published
            published = await s.publish(js, 1500, start=1500, published=published, retry=True)
            verdicts = await s.wait_for_verdicts(js, 3000, timeout=150)
        finally:
            await nc.close()
        return published, verdicts

    with nats_cluster() as cluster:
        env = environment(urls(cluster), STREAM_REPLICAS="3")
        _create_streams_when_the_cluster_is_up(cluster, env)
        with gridscore_serve(model_dir, tmp_path, command="stream", timeout=120, **env) as worker:
            _wait_for_all_partitions(worker.url)
            home = next(
                n for n in cluster if any(c.startswith("gridscore-") for c in n.client_names())
            )
            victim = next(n for n in cluster if n is not home)
            try:
                published, verdicts = asyncio.run(run(home, victim))
            except BaseException:
                _explain(cluster, worker)
                raise
    assert {v.msg_id for v in verdicts} == set(published.messages)
    # A verdict whose publish was in flight when the node went may be stored twice: NATS drops a
    # repeated Nats-Msg-Id across a leader change only once the new leader knows the first copy's
    # sequence (docs/stream.md). A repeat must be a copy, and only of the few in flight then.
    print(f"verdicts stored twice (sequence: copies): {s.duplicates(verdicts)}")
    assert s.differing_repeats(verdicts) == []
    assert sum(n - 1 for n in s.duplicates(verdicts).values()) <= 50, s.duplicates(verdicts)


def _explain(cluster: list[NatsServer], worker: RunningServer) -> None:
    """What a failing run leaves to read: the worker's log, its metrics, each consumer's and
    stream's state, the brokers' logs."""
    print(f"worker's log:\n{worker.log()[-8000:]}")
    with contextlib.suppress(OSError):
        metrics = urllib.request.urlopen(f"{worker.url}/metrics", timeout=5).read().decode()
        print("\n".join(line for line in metrics.splitlines() if line.startswith("stream_")))

    async def state() -> None:
        alive = [n.url for n in cluster if n.process is not None and n.process.poll() is None]
        nc = await nats.connect(servers=alive, connect_timeout=2, max_reconnect_attempts=1)
        js = nc.jetstream(timeout=5)
        for stream in ("GRID", "GRID_VERDICTS"):
            with contextlib.suppress(Exception):
                info = await js.stream_info(stream)
                print(stream, info.state, info.cluster)
        for partition in range(8):
            with contextlib.suppress(Exception):
                print(partition, await js.consumer_info("GRID", f"gridscore-p{partition}"))
        await nc.close()

    with contextlib.suppress(Exception):
        asyncio.run(state())
    for node in cluster:
        print(f"{node.name}'s log:\n{node.log()[-3000:]}")


def _wait_for_all_partitions(url: str, within: float = 60.0) -> None:
    """Until the worker holds all eight partitions (their consumers exist)."""
    deadline = time.monotonic() + within
    held: object = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                held = json.loads(answer.read()).get("partitions")
            if held == list(range(8)):
                return
        time.sleep(0.2)
    raise TimeoutError(f"the worker holds {held}, not all eight partitions, after {within:g} s")


def _create_streams_when_the_cluster_is_up(cluster: list[object], env: dict[str, str]) -> None:
    async def create() -> None:
        nc = await nats.connect(servers=[n.url for n in cluster])  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while True:  # the meta leader is elected a moment after start
            try:
                await s.create_streams(nc.jetstream(timeout=5), **env)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        await nc.close()

    asyncio.run(create())


def _stream_command(model_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment_ = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "MODEL_DIR": str(model_dir),
        "TRAIN_IF_MISSING": "0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "stream"],
        env=environment_,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:4222", "nats://127.0.0.1", "nats://:4222", "127.0.0.1:4222"]
)
def test_a_bad_nats_url_stops_it_with_status_2_and_a_clear_line(model_dir: Path, url: str) -> None:
    done = _stream_command(model_dir, NATS_URL=url)
    assert done.returncode == 2, done.stderr
    assert "NATS_URL must be nats://host:port" in done.stderr
    assert "Traceback" not in done.stderr


def test_streams_that_conflict_stop_it_with_status_2(model_dir: Path) -> None:
    async def occupy(url: str) -> None:
        nc = await nats.connect(url)
        # Someone else's stream already captures the readings' subjects.
        await nc.jetstream().add_stream(StreamConfig(name="RAW", subjects=["grid.readings.>"]))
        await nc.close()

    with nats_server() as broker:
        asyncio.run(occupy(broker.url))
        done = _stream_command(model_dir, NATS_URL=broker.url)
    assert done.returncode == 2, done.stderr
    assert "overlap a stream that already exists" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_stream_with_another_partition_count_stops_it_with_status_2(model_dir: Path) -> None:
    async def create(url: str) -> None:
        nc = await nats.connect(url)
        await s.create_streams(nc.jetstream(), STREAM_PARTITIONS="4")
        await nc.close()

    with nats_server() as broker:
        asyncio.run(create(broker.url))
        done = _stream_command(model_dir, NATS_URL=broker.url, STREAM_PARTITIONS="8")
    assert done.returncode == 2, done.stderr
    assert "STREAM_PARTITIONS must match" in done.stderr
