"""Partition leases against a real nats-server's key-value bucket: renewing never waits on a
slow take, a renewal whose answer was lost or a lease that expired with no one else about is
kept, and a lease another worker took is given up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats
import pytest
from nats.js.api import KeyValueConfig, StorageType

from app.stream.leases import Leases
from tests.support.nats import nats_server

pytestmark = pytest.mark.slow

LEASE_S = 2.0


@dataclass
class Calls:
    """What the leases asked of the worker."""

    acquired: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    slow: dict[int, float] = field(default_factory=dict)  # partition -> seconds its take takes

    async def acquire(self, partition: int) -> bool:
        await asyncio.sleep(self.slow.get(partition, 0.0))
        self.acquired.append(partition)
        return True

    async def release(self, partition: int) -> None:
        pass

    async def lose(self, partition: int) -> None:
        self.lost.append(partition)


def run_leases(
    partitions: int, calls: Calls, body: Callable[[Leases, object], Awaitable[None]]
) -> None:
    """One worker's leases on a fresh bucket whose keys expire after LEASE_S, then ``body``."""

    async def main(url: str) -> None:
        nc = await nats.connect(url)
        js = nc.jetstream(timeout=5)
        kv = await js.create_key_value(
            KeyValueConfig(bucket="T_LEASES", history=1, ttl=LEASE_S, storage=StorageType.FILE)
        )
        leases = Leases(kv, "me", partitions, LEASE_S, calls.acquire, calls.release, calls.lose)
        leases.start()
        try:
            await body(leases, kv)
        finally:
            await leases.stop(release=False)
            await nc.close()

    with nats_server() as broker:
        asyncio.run(main(broker.url))


def test_a_slow_take_does_not_let_the_other_leases_expire() -> None:
    # Taking partition 3 takes three lease lifetimes (a consumer made while a cluster elects
    # a leader): the others must be renewed meanwhile, not lost and taken again.
    calls = Calls(slow={3: 3 * LEASE_S})

    async def body(leases: Leases, kv: object) -> None:
        await asyncio.sleep(4 * LEASE_S)

    run_leases(4, calls, body)
    assert calls.lost == []
    assert sorted(calls.acquired) == [0, 1, 2, 3]  # each taken once


async def _held(leases: Leases, count: int) -> None:
    for _ in range(100):
        if len(leases.held) == count and not leases.taking:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"holds {leases.held}, taking {list(leases.taking)}")


def test_a_renewal_stored_with_its_answer_lost_keeps_the_lease() -> None:
    calls = Calls()

    async def body(leases: Leases, kv: object) -> None:
        await _held(leases, 2)
        # The worker's own renewal stored, its answer lost: the key is at a revision the
        # worker does not know, with its own name.
        await kv.put("lease.p1", b"me")  # type: ignore[attr-defined]
        await asyncio.sleep(2 * leases.period)
        assert 1 in leases.held
        assert leases.held[1] == (await kv.get("lease.p1")).revision  # type: ignore[attr-defined]

    run_leases(2, calls, body)
    assert calls.lost == []
    assert sorted(calls.acquired) == [0, 1]


def test_a_lease_that_expired_with_no_other_holder_is_kept() -> None:
    calls = Calls()

    async def body(leases: Leases, kv: object) -> None:
        await _held(leases, 2)
        await kv.purge("lease.p0")  # type: ignore[attr-defined]
        await asyncio.sleep(2 * leases.period)
        assert sorted(leases.held) == [0, 1]

    run_leases(2, calls, body)
    assert calls.lost == []
    assert sorted(calls.acquired) == [0, 1]  # not taken again: its work went on


def test_a_lease_another_worker_holds_is_given_up() -> None:
    calls = Calls()

    async def body(leases: Leases, kv: object) -> None:
        await _held(leases, 2)
        await kv.put("lease.p0", b"other")  # type: ignore[attr-defined]
        for _ in range(40):
            if calls.lost:
                break
            await asyncio.sleep(0.05)

    run_leases(2, calls, body)
    assert calls.lost == [0]
