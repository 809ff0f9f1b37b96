"""Which worker holds which partition: members and leases in a key-value bucket whose keys expire.

Every worker writes ``member.<id>`` every third of ``STREAM_LEASE_SECONDS`` (the bucket's keys
expire after it), and reads the others. Each partition has one rightful holder among the live
members, by rendezvous hashing (the member with the highest hash of (member, partition)): every
worker computes the same answer from the same member list, and when a member comes or goes only
the partitions it wins or loses move. A worker takes a partition it should hold by creating
``lease.p<n>`` (which fails while another holds it), renews its leases with a compare-and-set on
their revision, and gives up those it should no longer hold after finishing their work, so the
next holder starts where it stopped. A worker that dies stops renewing; its leases expire and the
rightful holders take them.

The lease says who should work; the fence is the partition's state: every checkpoint is a
compare-and-set on the state's revision, and a new holder writes one before it starts, so a
holder that lost its lease without noticing (a long pause) fails its next checkpoint and drops
its work instead of writing over the new holder's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

log = logging.getLogger("gridscore.stream.leases")


def rightful_holder(partition: int, members: list[str]) -> str:
    """Rendezvous hashing: the member with the highest hash for this partition."""
    return max(
        members,
        key=lambda member: hashlib.blake2b(
            f"{member}/{partition}".encode(), digest_size=8
        ).digest(),
    )


class Leases:
    """This worker's membership and partition leases; calls ``acquire`` / ``release`` as the
    partitions it should hold change."""

    def __init__(
        self,
        kv: KeyValue,
        me: str,
        partitions: int,
        lease_s: float,
        acquire: Callable[[int], Awaitable[bool]],
        release: Callable[[int], Awaitable[None]],
        lost: Callable[[int], Awaitable[None]],
    ) -> None:
        self.kv = kv
        self.me = me
        self.partitions = partitions
        self.period = lease_s / 3
        self.acquire, self.release, self.lost = acquire, release, lost
        self.held: dict[int, int] = {}  # partition -> the lease's revision
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self, release: bool = True) -> None:
        """Stop renewing; with ``release``, hand every partition back (after its work)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if release:
            for partition in sorted(self.held):
                await self._give_up(partition)
        with contextlib.suppress(Exception):
            await self.kv.delete(f"member.{self.me}")

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker away: the next tick tries again
                log.warning("lease round failed: %s", exc)
            await asyncio.sleep(self.period)

    async def members(self) -> list[str]:
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            keys = []
        found = {key.split(".", 1)[1] for key in keys if key.startswith("member.")}
        found.add(self.me)
        return sorted(found)

    async def tick(self) -> None:
        """One round: heartbeat, renew, give up what moved away, take what moved here."""
        await self.kv.put(f"member.{self.me}", self.me.encode())
        members = await self.members()
        rightful = {p for p in range(self.partitions) if rightful_holder(p, members) == self.me}
        for partition in sorted(self.held):
            if partition not in rightful:
                await self._give_up(partition)
                continue
            try:
                self.held[partition] = await self.kv.update(
                    self._key(partition), self.me.encode(), last=self.held[partition]
                )
            except KeyWrongLastSequenceError:
                log.warning("lease lost", extra={"fields": {"partition": partition}})
                del self.held[partition]
                await self.lost(partition)
        for partition in sorted(rightful - set(self.held)):
            try:
                revision = await self.kv.create(self._key(partition), self.me.encode())
            except KeyWrongLastSequenceError:
                continue  # still held by its previous holder: it gives it up, or it expires
            self.held[partition] = revision
            if not await self.acquire(partition):
                await self._give_up(partition, work=False)

    async def _give_up(self, partition: int, work: bool = True) -> None:
        if work:
            await self.release(partition)
        revision = self.held.pop(partition, None)
        if revision is None:
            return
        with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
            await self.kv.delete(self._key(partition), last=revision)

    @staticmethod
    def _key(partition: int) -> str:
        return f"lease.p{partition}"
