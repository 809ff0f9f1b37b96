"""The dashboard's alarms view: which sensors are in alarm, which sites are flooded, what was
raised and cleared lately, and how far the stream workers lag, from NATS (NATS_URL).

The alarm events the stream workers publish are kept in the alarms stream (JetStream), so the
view needs no state of its own: at start it reads the newest event of every subject (each
sensor's and each site's last word, "raised" or "cleared"), then follows new ones as they are
stored. The lag is the sum over the partition consumers of what waits and what is delivered
and not yet acknowledged, as KEDA reads it. One watcher per dashboard process, shared by every
open page; each change is rendered once and sent to every page over SSE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app.contract.stream import ALARMS, AlarmEvent, stream_names

log = logging.getLogger("gridscore.dashboard.alarms")

RECENT = 30  # events listed
LAG_EVERY_S = 2.0
RETRY_S = 2.0

Render = Callable[[str, dict[str, Any]], str]


@dataclass
class AlarmBoard:
    """What the view shows; changed by events, read by the renderer."""

    broker: str = "connecting"  # connecting, connected, unreachable: <why>
    raised: dict[str, AlarmEvent] = field(default_factory=dict)  # sensor -> its raise
    floods: dict[str, AlarmEvent] = field(default_factory=dict)  # site -> its flood
    recent: deque[AlarmEvent] = field(default_factory=lambda: deque(maxlen=RECENT))
    lag: int | None = None
    partitions: int = 0
    version: int = 0  # bumped on every change

    def apply(self, event: AlarmEvent) -> None:
        table = self.floods if event.kind == "flood" else self.raised
        if event.state == "raised":
            table[event.sensor] = event
        else:
            table.pop(event.sensor, None)
        self.recent.appendleft(event)
        self.version += 1

    def view(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "raised": sorted(self.raised.values(), key=lambda e: e.sensor),
            "floods": sorted(self.floods.values(), key=lambda e: e.sensor),
            "recent": list(self.recent),
            "lag": self.lag,
            "partitions": self.partitions,
        }


class AlarmHub:
    """Watches the alarms stream while the dashboard runs; fans the rendered view out."""

    def __init__(
        self,
        nats_urls: tuple[str, ...],
        stream_name: str,
        render: Render,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.nats_urls = nats_urls
        self.connect_options = connect_options or {}  # TLS to the broker
        self.readings, _, self.alarms = stream_names(stream_name)
        self.render = render
        self.board = AlarmBoard()
        self.fragment = ""
        self.viewers: set[asyncio.Queue[str | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def join(self) -> asyncio.Queue[str | None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=8)
        self.viewers.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue[str | None]) -> None:
        self.viewers.discard(queue)

    def close_all(self) -> None:
        for queue in list(self.viewers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self.viewers.clear()

    async def stop(self) -> None:
        self.close_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def _publish(self) -> None:
        fragment = self.render("_alarms.html", self.board.view())
        if fragment == self.fragment:
            return
        self.fragment = fragment
        for queue in list(self.viewers):
            with contextlib.suppress(asyncio.QueueFull):  # a slow page skips a frame
                queue.put_nowait(fragment)

    async def _run(self) -> None:
        import nats

        self._publish()
        while True:
            nc = None
            try:
                nc = await nats.connect(
                    servers=list(self.nats_urls),
                    connect_timeout=2,
                    # A few quick reconnects; past them the loop here says so and retries.
                    max_reconnect_attempts=3,
                    reconnect_time_wait=0.5,
                    name="gridscore-dashboard",
                    error_cb=_quiet,
                    **self.connect_options,
                )
                self.board.broker = "connected"
                await self._watch(nc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if (
                    not isinstance(exc, OSError | TimeoutError)
                    and "nats" not in type(exc).__module__
                ):
                    log.exception("the alarms view failed")
                if type(exc).__name__ == "NotFoundError":
                    self.board.broker = "connected; no alarms stream yet (no stream worker ran)"
                else:
                    self.board.broker = f"unreachable: {exc or type(exc).__name__}"
                self.board.version += 1
                self._publish()
                await asyncio.sleep(RETRY_S)
            finally:
                if nc is not None:
                    with contextlib.suppress(Exception):
                        await nc.close()

    async def _watch(self, nc: Any) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = nc.jetstream(timeout=5)
        decode = msgspec.json.Decoder(AlarmEvent).decode

        async def arrived(msg: Any) -> None:
            with contextlib.suppress(msgspec.DecodeError):
                self.board.apply(decode(msg.data))
                self._publish()

        # Each subject's newest event first (the current state), then every new one.
        subscription = await js.subscribe(
            f"{ALARMS}.>",
            stream=self.alarms,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT),
            cb=arrived,
        )
        try:
            while not nc.is_closed:
                await self._measure_lag(js)
                self.board.broker = "connected" if nc.is_connected else "reconnecting"
                self._publish()
                await asyncio.sleep(LAG_EVERY_S)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        raise ConnectionError("lost the broker")

    async def _measure_lag(self, js: Any) -> None:
        try:
            consumers = await js.consumers_info(self.readings)
        except Exception:
            return
        ours = [c for c in consumers if (c.name or "").startswith("gridscore-p")]
        self.board.partitions = len(ours)
        self.board.lag = sum((c.num_pending or 0) + (c.num_ack_pending or 0) for c in ours)


async def _quiet(exc: Exception) -> None:
    """nats-py logs every failed attempt with a traceback; the view says it in one line."""
    log.debug("broker: %s", exc)


def since(at: str) -> str:
    """An event's time as the view shows it (its RFC 3339 text, to the second)."""
    return at.replace("T", " ")[:19]
