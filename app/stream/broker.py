"""The broker side of the stream worker: the connection, the streams and buckets it needs, a
pull loop per partition and a pipelined publisher with JetStream acknowledgements.

Two parts of nats-py are not used on the hot path, for reasons measured here (docs/stream.md):
``fetch()`` creates an asyncio task and a ``wait_for`` per message, which caps a worker near
15,000 messages per CPU-second when it also publishes; and ``publish_async()`` leaves its future
unresolved forever when the server answers with an error or goes away with the publish in
flight. ``PartitionPuller`` instead keeps pull requests outstanding on one inbox per partition
(a plain subscription), and ``Publisher`` sends a batch of publishes with a reply inbox each,
counting their acknowledgements into one future per batch, errors included, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)
from nats.js.errors import BadRequestError, NotFoundError

from app.config import StreamSettings
from app.contract.stream import ALARMS, DEAD, VERDICTS
from app.runtime import tls
from app.stream import subjects

log = logging.getLogger("gridscore.stream")

STREAM_EXISTS_OTHERWISE = 10058  # "stream name already in use with a different configuration"
SUBJECTS_OVERLAP = 10065  # "subjects overlap with an existing stream"
BACKOFF_START_S = 0.1
BACKOFF_CAP_S = 5.0


class StreamConflict(RuntimeError):
    """The broker holds a stream that this worker cannot use as configured (exit status 2)."""


@dataclass(frozen=True)
class Names:
    """The streams, buckets and consumers one ``STREAM_NAME`` implies."""

    readings: str
    verdicts: str
    alarms: str
    state_bucket: str
    lease_bucket: str

    @classmethod
    def of(cls, name: str) -> Names:
        return cls(name, f"{name}_VERDICTS", f"{name}_ALARMS", f"{name}_STATE", f"{name}_LEASES")

    def consumer(self, partition: int) -> str:
        return f"gridscore-p{partition}"


def stream_configs(settings: StreamSettings) -> list[StreamConfig]:
    """The three streams, with their retention and limits (docs/stream.md)."""
    names = Names.of(settings.name)
    source, destination = subjects.partition_transform(settings.partitions)
    common: dict[str, Any] = {
        "retention": RetentionPolicy.LIMITS,
        "discard": DiscardPolicy.OLD,
        "storage": StorageType.FILE,
        "num_replicas": settings.replicas,
    }
    return [
        StreamConfig(
            name=names.readings,
            description="gridscore: sensor readings, a partition token (by site) appended",
            subjects=subjects.readings_subjects(),
            subject_transform=SubjectTransform(src=source, dest=destination),
            max_age=settings.max_age_s,
            duplicate_window=120.0,
            **common,
        ),
        StreamConfig(
            name=names.verdicts,
            description="gridscore: one verdict message per reading message",
            subjects=[f"{VERDICTS}.>"],
            max_age=settings.max_age_s,
            duplicate_window=120.0,
            **common,
        ),
        StreamConfig(
            name=names.alarms,
            description="gridscore: alarm events and dead letters",
            subjects=[f"{ALARMS}.>", f"{DEAD}.>"],
            max_age=settings.max_age_s * 30,
            duplicate_window=600.0,
            **common,
        ),
    ]


async def ensure_streams(js: JetStreamContext, settings: StreamSettings) -> None:
    """Create the streams and buckets that are missing; StreamConflict when one exists in a
    form this worker cannot use (another partition count, overlapping subjects)."""
    for config in stream_configs(settings):
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code == SUBJECTS_OVERLAP:
                raise StreamConflict(
                    f"stream {config.name}'s subjects {config.subjects} overlap a stream that "
                    f"already exists on the broker: {exc.description}"
                ) from None
            if exc.err_code != STREAM_EXISTS_OTHERWISE:
                raise
            await _check_existing(js, config)
    names = Names.of(settings.name)
    await _ensure_bucket(
        js,
        KeyValueConfig(
            bucket=names.state_bucket,
            description="gridscore: each partition's alarm state and last judged sequence",
            history=1,
            replicas=settings.replicas,
            storage=StorageType.FILE,
        ),
    )
    await _ensure_bucket(
        js,
        KeyValueConfig(
            bucket=names.lease_bucket,
            description="gridscore: which worker holds which partition (keys expire)",
            history=1,
            ttl=settings.lease_s,
            replicas=settings.replicas,
            storage=StorageType.FILE,
        ),
    )


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    """Create the bucket, or bring an existing one's key lifetime to this configuration's (a
    changed STREAM_LEASE_SECONDS applies at the next start, not refused)."""
    try:
        await js.create_key_value(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_EXISTS_OTHERWISE:
            raise
        found = (await js.stream_info(f"KV_{config.bucket}")).config
        found.max_age = config.ttl or 0.0
        await js.update_stream(found)


async def _check_existing(js: JetStreamContext, wanted: StreamConfig) -> None:
    """A stream of that name exists with other settings: usable if its subjects and partition
    transform are the same (limits may differ: the operator's to tune), else a conflict."""
    found = (await js.stream_info(str(wanted.name))).config
    same_subjects = sorted(found.subjects or []) == sorted(wanted.subjects or [])
    transform = found.subject_transform
    wanted_transform = wanted.subject_transform
    same_transform = (transform is None and wanted_transform is None) or (
        transform is not None
        and wanted_transform is not None
        and (transform.src, transform.dest) == (wanted_transform.src, wanted_transform.dest)
    )
    if not (same_subjects and same_transform):
        raise StreamConflict(
            f"stream {wanted.name} exists with subjects {found.subjects} and transform "
            f"{transform.dest if transform else None}; this worker needs {wanted.subjects} and "
            f"{wanted_transform.dest if wanted_transform else None} (STREAM_PARTITIONS must "
            f"match the stream's partition count)"
        )
    log.info("stream exists with other limits; using it", extra={"fields": {"stream": found.name}})


def backoff_delays() -> Callable[[int], float]:
    """Reconnect delays: 0.1 s doubling to 5 s."""
    return lambda attempt: min(BACKOFF_START_S * 2**attempt, BACKOFF_CAP_S)


async def connect(
    settings: StreamSettings,
    on_disconnect: Callable[[], Awaitable[None]],
    on_reconnect: Callable[[], Awaitable[None]],
    name: str,
) -> Client:
    """Connect (trying forever, with backoff), and keep reconnecting when the broker goes."""
    attempts = itertools.count()
    delay = backoff_delays()

    def next_server(servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
        return None, delay(next(attempts))

    async def connected() -> None:
        nonlocal attempts
        attempts = itertools.count()
        await on_reconnect()

    unreported = True

    async def errored(exc: Exception) -> None:
        # Said once: a broker that refuses this process (a TLS handshake, say) would otherwise
        # leave only readiness at 503; a later loss is logged by the worker's disconnect hook.
        nonlocal unreported
        if unreported:
            unreported = False
            reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
            log.warning(
                "broker not reachable; retrying with backoff", extra={"fields": {"error": reason}}
            )
        else:
            log.debug("broker error: %s", exc)

    return await nats.connect(
        servers=list(settings.nats_urls),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_to_server_handler=next_server,
        disconnected_cb=on_disconnect,
        reconnected_cb=connected,
        error_cb=errored,
        connect_timeout=2,
        ping_interval=5,
        max_outstanding_pings=2,
        pending_size=64 * 1024 * 1024,
        flusher_queue_size=65_536,
        **tls.broker_options(settings),
    )


async def reset_consumer(
    js: JetStreamContext, settings: StreamSettings, partition: int, after_seq: int
) -> None:
    """The partition's durable consumer, delivering from the stream sequence after
    ``after_seq`` (the last one judged): a new holder never sees a newer reading before an
    older one a previous holder fetched and did not finish."""
    names = Names.of(settings.name)
    consumer = names.consumer(partition)
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(names.readings, consumer)
    start: dict[str, Any] = (
        {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": after_seq + 1}
        if after_seq
        else {"deliver_policy": DeliverPolicy.ALL}
    )
    await js.add_consumer(
        names.readings,
        ConsumerConfig(
            durable_name=consumer,
            description=f"gridscore: partition {partition} of the readings, one holder at a time",
            filter_subject=subjects.partition_filter(partition),
            # One holder per partition: acknowledging the last message of a cycle acknowledges
            # the cycle (fewer messages for worker and broker than one ack each).
            ack_policy=AckPolicy.ALL,
            ack_wait=settings.ack_wait_s,
            max_ack_pending=settings.max_ack_pending,
            max_waiting=64,
            num_replicas=settings.replicas,
            **start,
        ),
    )


def reply_fields(reply: str) -> tuple[int, int, int]:
    """(stream sequence, times delivered, publish time in ns) from a JetStream message's reply
    subject (``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``, or the
    form with domain and account hash): what ``msg.metadata`` gives, without building a
    datetime per message."""
    tokens = reply.split(".")
    if len(tokens) == 9:
        return int(tokens[5]), int(tokens[4]), int(tokens[7])
    return int(tokens[7]), int(tokens[6]), int(tokens[9])


def delivery_sequence(reply: str) -> int:
    """The consumer's delivery sequence, from the same reply subject."""
    tokens = reply.split(".")
    return int(tokens[6] if len(tokens) == 9 else tokens[8])


@dataclass
class PartitionPuller:
    """Keeps about two batches of one partition's messages requested or buffered.

    Pull requests wait at the consumer's leader. A leader that dies takes them with it and
    answers nothing, not even "expired", so a puller that only counted what it asked for would
    wait forever for messages its count says are coming (the worker connected, the consumer led
    anew elsewhere, nothing judged). Each request therefore asks for idle heartbeats, and a
    puller that hears nothing for three of them while it waits forgets its requests and asks
    again (``silent`` / ``ask_again``: how the official clients recover too)."""

    nc: Client
    stream: str
    consumer: str
    batch: int
    buffer: list[Msg]
    ready: asyncio.Event
    expires_s: float = 5.0
    heartbeat_s: float = 1.0
    inbox: str = ""
    outstanding: int = 0
    closed: bool = False
    heard: float = 0.0  # when the consumer last answered (a message, a heartbeat, a status)
    # The consumer's delivery sequence of the last message, and whether one was skipped:
    # a message delivered and lost on the way (its leader died with it in flight). The
    # acknowledgement of a later one would acknowledge it too (ack policy "all"), so the
    # worker must start the partition again from its checkpoint instead.
    last_delivery: int = 0
    gap: bool = False
    _subscription: Any = None

    async def start(self) -> None:
        self.inbox = self.nc.new_inbox()
        self._subscription = await self.nc.subscribe(
            self.inbox, cb=self._on_message, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        await self.refill()

    async def _request(self) -> None:
        body = json.dumps(
            {
                "batch": self.batch,
                "expires": int(self.expires_s * 1e9),
                "idle_heartbeat": int(self.heartbeat_s * 1e9),
            }
        ).encode()
        if self.outstanding == 0:
            self.heard = time.monotonic()  # the silence is counted from the first request
        self.outstanding += self.batch
        await self.nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer}", body, reply=self.inbox
        )

    async def _on_message(self, msg: Msg) -> None:
        if self.closed:
            return
        self.heard = time.monotonic()
        if not msg.reply:  # a status: 408 (request expired), 409 (closed or deleted), 100
            status = (msg.headers or {}).get("Status", "")
            if status in ("408", "409"):
                left = (msg.headers or {}).get("Nats-Pending-Messages")
                self.outstanding = max(0, self.outstanding - (int(left) if left else self.batch))
                if status == "409" and "Deleted" in (msg.headers or {}).get("Description", ""):
                    self.closed = True  # another holder took the partition over
                    return
                await self.refill()
            return
        # Every delivery, a redelivery too, takes the consumer's next delivery sequence; a new
        # leader whose state lags may go back, never forward past one it did not send.
        delivery = delivery_sequence(msg.reply)
        if delivery > self.last_delivery + 1:
            self.gap = True
        self.last_delivery = delivery
        self.buffer.append(msg)
        self.outstanding = max(0, self.outstanding - 1)
        self.ready.set()
        if self.outstanding < self.batch:
            await self.refill()

    def silent(self, now: float) -> bool:
        """Requests outstanding and not a word from the consumer for three heartbeats."""
        return not self.closed and self.outstanding > 0 and now - self.heard > 3 * self.heartbeat_s

    async def ask_again(self) -> None:
        """Forget the requests the consumer no longer answers, and ask afresh."""
        self.outstanding = 0
        await self.refill()

    async def refill(self) -> None:
        """Ask for more while less than two batches are requested or buffered."""
        while not self.closed and self.outstanding + len(self.buffer) < 2 * self.batch:
            await self._request()

    async def stop(self) -> None:
        self.closed = True
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None


class PublishFailed(RuntimeError):
    """JetStream refused a publish, or did not acknowledge it in time."""


@dataclass
class _Batch:
    left: int
    done: asyncio.Future[None]
    errors: list[str] = field(default_factory=list)


class Publisher:
    """Pipelined JetStream publishes, acknowledged per batch."""

    def __init__(self, nc: Client, timeout_s: float = 5.0) -> None:
        self.nc = nc
        self.timeout_s = timeout_s
        self.prefix = ""
        self._numbers = itertools.count()
        self._batches: dict[int, _Batch] = {}

    async def start(self) -> None:
        self.prefix = self.nc.new_inbox() + "."
        await self.nc.subscribe(
            self.prefix + ">", cb=self._on_ack, pending_msgs_limit=-1, pending_bytes_limit=-1
        )

    async def _on_ack(self, msg: Msg) -> None:
        number = int(msg.subject[len(self.prefix) :].split(".", 1)[0])
        batch = self._batches.get(number)
        if batch is None:
            return  # a batch given up on
        status = (msg.headers or {}).get("Status")
        if status == "503":
            batch.errors.append("no stream answered (503)")
        elif msg.data.startswith(b'{"error"'):
            batch.errors.append(msg.data.decode(errors="replace")[:200])
        batch.left -= 1
        if batch.left == 0:
            del self._batches[number]
            if not batch.done.done():
                batch.done.set_result(None)

    async def send(self, items: list[tuple[str, bytes, dict[str, str] | None]]) -> Awaitable[None]:
        """Publish ``(subject, body, headers)`` items now; the awaitable completes when JetStream
        has stored (or de-duplicated) every one, and raises PublishFailed otherwise."""
        number = next(self._numbers)
        loop = asyncio.get_running_loop()
        batch = _Batch(len(items), loop.create_future())
        if not items:
            batch.done.set_result(None)
        else:
            self._batches[number] = batch
        reply = f"{self.prefix}{number}."
        publish = self.nc.publish
        for index, (subject, body, headers) in enumerate(items):
            await publish(subject, body, reply=f"{reply}{index}", headers=headers)
        return self._settled(number, batch)

    async def _settled(self, number: int, batch: _Batch) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(batch.done), self.timeout_s)
        except TimeoutError:
            self._batches.pop(number, None)
            raise PublishFailed(
                f"{batch.left} publishes not acknowledged in {self.timeout_s:g} s"
            ) from None
        if batch.errors:
            raise PublishFailed(f"{len(batch.errors)} publishes refused: {batch.errors[0]}")
