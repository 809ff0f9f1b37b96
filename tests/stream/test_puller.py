"""A partition's puller on its own: it notices a consumer gone silent (its leader died with the
pull requests waiting there) and a delivery lost on its way (a gap in the consumer's delivery
sequence), and takes neither a heartbeat nor a redelivery for one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.msg import Msg

from app.stream.broker import PartitionPuller


class Broker:
    """Stands in for the connection: records the pull requests sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, **_: Any) -> object:
        return self

    async def unsubscribe(self) -> None:
        pass

    async def publish(self, subject: str, body: bytes, reply: str = "") -> None:
        self.requests.append(json.loads(body))


def delivery(stream_seq: int, delivery_seq: int, delivered: int = 1) -> Msg:
    reply = f"$JS.ACK.GRID.gridscore-p0.{delivered}.{stream_seq}.{delivery_seq}.1700000000000.0"
    return Msg(None, subject="grid.readings.s.x.0", reply=reply, data=b"{}")  # type: ignore[arg-type]


def status(code: str, description: str) -> Msg:
    return Msg(None, subject="_INBOX.test", headers={"Status": code, "Description": description})  # type: ignore[arg-type]


async def started() -> tuple[PartitionPuller, Broker, list[Msg]]:
    broker, buffer = Broker(), list[Msg]()
    puller = PartitionPuller(broker, "GRID", "gridscore-p0", 10, buffer, asyncio.Event())  # type: ignore[arg-type]
    await puller.start()
    return puller, broker, buffer


def test_each_pull_request_asks_for_heartbeats_well_inside_its_expiry() -> None:
    async def run() -> None:
        _, broker, _ = await started()
        assert broker.requests, "no pull request sent"
        for request in broker.requests:
            assert 0 < request["idle_heartbeat"] <= request["expires"] / 2

    asyncio.run(run())


def test_a_consumer_silent_for_three_heartbeats_is_asked_again() -> None:
    async def run() -> None:
        puller, broker, _ = await started()
        t0 = puller.heard
        assert not puller.silent(t0 + 2.5 * puller.heartbeat_s)
        await puller._on_message(status("100", "Idle Heartbeat"))  # the leader is alive
        assert not puller.silent(puller.heard + 2.5 * puller.heartbeat_s)
        assert puller.silent(puller.heard + 3.5 * puller.heartbeat_s)
        sent = len(broker.requests)
        await puller.ask_again()
        assert len(broker.requests) > sent  # new requests, to the new leader
        assert not puller.silent(puller.heard + 2.5 * puller.heartbeat_s)

    asyncio.run(run())


def test_a_puller_with_nothing_requested_is_not_silent() -> None:
    async def run() -> None:
        puller, _, buffer = await started()
        buffer.extend(delivery(i, i) for i in range(1, 21))  # two batches waiting to be judged
        puller.outstanding = 0
        assert not puller.silent(puller.heard + 60)

    asyncio.run(run())


def test_a_skipped_delivery_sequence_is_a_gap_and_a_redelivery_is_not() -> None:
    async def run() -> None:
        puller, _, buffer = await started()
        for msg in [delivery(3, 1), delivery(7, 2), delivery(7, 3, delivered=2), delivery(9, 4)]:
            await puller._on_message(msg)
        assert not puller.gap
        await puller._on_message(delivery(12, 6))  # delivery 5 never arrived
        assert puller.gap
        assert len(buffer) == 5

    asyncio.run(run())


def test_a_new_leader_going_back_in_its_sequence_is_not_a_gap() -> None:
    async def run() -> None:
        puller, _, _ = await started()
        for msg in [delivery(1, 1), delivery(2, 2), delivery(3, 3), delivery(2, 2), delivery(3, 3)]:
            await puller._on_message(msg)
        assert not puller.gap

    asyncio.run(run())
