"""Which worker holds which partition: members and leases in a key-value bucket whose keys expire.

Every worker writes ``member.<id>`` every third of ``STREAM_LEASE_SECONDS`` (the bucket's keys
expire after it), and reads the others. Each partition has one rightful holder among the live
members, by rendezvous hashing with bounded loads (``assignment``): every worker computes the
same answer from the same member list, the shares differ by one at most, and when a member
comes or goes few partitions move. A worker takes a partition it should hold by creating
``lease.p<n>`` (which fails while another holds it), renews its leases with a compare-and-set
on their revision, and gives up those it should no longer hold after finishing their work, so
the next holder starts where it stopped. A worker that dies stops renewing; its leases expire
and the rightful holders take them.

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

from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
)
from nats.js.kv import KeyValue

log = logging.getLogger("gridscore.stream.leases")


def _rank(member: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{member}/{partition}".encode(), digest_size=8).digest()


def assignment(partitions: int, members: list[str]) -> dict[int, str]:
    """Each partition's rightful holder: rendezvous hashing with bounded loads. Partition by
    partition, the member with the highest hash of (member, partition) that has not yet its
    share: ``partitions // members`` each, one more for ``partitions % members`` of them.
    Plain rendezvous hashing left a member of three without any of eight partitions about one
    time in eight (and 7/1/0 splits); bounded, three members share eight as 3/3/2, and a
    member coming or going still moves few partitions."""
    if not members:
        return {}
    base, extra = divmod(partitions, len(members))
    load = dict.fromkeys(members, 0)
    above = 0  # members holding base + 1
    chosen: dict[int, str] = {}
    for partition in range(partitions):
        for member in sorted(members, key=lambda m: _rank(m, partition), reverse=True):
            if load[member] < base or (load[member] == base and above < extra):
                above += load[member] == base
                chosen[partition] = member
                load[member] += 1
                break
    return chosen


class Leases:
    """This worker's membership and partition leases; calls ``acquire`` / ``release`` as the
    partitions it should hold change.

    Renewing never waits on taking: a partition is taken (its state read, its consumer made
    again) in a task of its own while the round goes on renewing the others. A round that
    waited for a slow take (a consumer created while the cluster elects a leader can take
    seconds) let the other leases expire, and taking those again let the next ones expire: with
    a node of a three-node cluster gone, a worker spent minutes losing and taking its partitions
    and judged nothing (tests/stream/test_stream_edges.py)."""

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
        self.taking: dict[int, asyncio.Task[None]] = {}  # partitions being taken
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self, release: bool = True) -> None:
        """Stop renewing; with ``release``, hand every partition back (after its work)."""
        for task in [self._task, *self.taking.values()]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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
        """One round: heartbeat, renew, give up what moved away, start taking what moved here."""
        await self.kv.put(f"member.{self.me}", self.me.encode())
        members = await self.members()
        rightful = {p for p, m in assignment(self.partitions, members).items() if m == self.me}
        # All at once: one slow answer (a leader moving) must not hold the others past expiry.
        await asyncio.gather(*(self._renew(p) for p in sorted(self.held)))
        for partition in sorted(self.held):
            if partition not in rightful and partition not in self.taking:
                await self._give_up(partition)
        for partition in sorted(rightful - set(self.held) - set(self.taking)):
            try:
                revision = await self.kv.create(self._key(partition), self.me.encode())
            except KeyWrongLastSequenceError:
                continue  # still held by its previous holder: it gives it up, or it expires
            self.held[partition] = revision
            self.taking[partition] = asyncio.get_running_loop().create_task(self._take(partition))

    async def _renew(self, partition: int) -> None:
        """Renew one lease. Every write is checked against the lease as it was when the renewal
        began: a lease given up meanwhile (the worker fenced, a take that failed) is not brought
        back, and a key written for it after all is deleted again."""
        key, me = self._key(partition), self.me.encode()
        before = self.held.get(partition)
        if before is None:
            return

        def current() -> bool:
            return self.held.get(partition) == before

        async def keep(revision: int) -> None:
            if current():
                self.held[partition] = revision
            else:
                await self._delete(key, revision)

        try:
            await keep(await self.kv.update(key, me, last=before))
            return
        except KeyWrongLastSequenceError:
            pass
        # Not at the revision this worker last wrote. Its own renewal may have been stored with
        # the answer lost (a timeout while a leader moved), or the key expired with no one else
        # taking it: either way the lease is still this worker's to keep, and the partition's
        # work goes on (the state's fence guards against a holder in between).
        with contextlib.suppress(KeyNotFoundError, KeyDeletedError):
            entry = await self.kv.get(key)
            if entry.value == me and entry.revision:
                await keep(entry.revision)
                return
            if entry.value:  # another worker's
                if current():
                    await self._lose(partition)
                return
        try:
            await keep(await self.kv.create(key, me))
        except KeyWrongLastSequenceError:
            if current():
                await self._lose(partition)

    async def _lose(self, partition: int) -> None:
        log.warning("lease lost", extra={"fields": {"partition": partition}})
        self.held.pop(partition, None)
        if partition not in self.taking:  # one being taken notices when its take ends
            await self.lost(partition)

    async def _take(self, partition: int) -> None:
        taken = False
        try:
            taken = await self.acquire(partition)
        finally:
            if self.taking.get(partition) is asyncio.current_task():
                del self.taking[partition]
        if partition not in self.held:  # the lease went while the partition was being taken
            if taken:
                await self.lost(partition)
        elif not taken:
            await self._give_up(partition, work=False)

    async def forget(self, partition: int) -> None:
        """Let a lease go without its work: the worker was fenced off the partition (another
        holder wrote its state meanwhile). The next round takes it again if it is still this
        worker's, from the state as it is now."""
        await self._give_up(partition, work=False)

    async def _give_up(self, partition: int, work: bool = True) -> None:
        if work:
            await self.release(partition)
        revision = self.held.pop(partition, None)
        if revision is None:
            return
        await self._delete(self._key(partition), revision)

    async def _delete(self, key: str, revision: int) -> None:
        """Delete a lease key if it is still at ``revision`` (else someone else's now)."""
        with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError, BadRequestError):
            # BadRequestError: nats-py reports a delete at a revision that is no longer the
            # key's (it expired meanwhile) as that, not as KeyWrongLastSequenceError.
            await self.kv.delete(key, last=revision)

    @staticmethod
    def _key(partition: int) -> str:
        return f"lease.p{partition}"
