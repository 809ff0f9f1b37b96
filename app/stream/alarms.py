"""Alarms per sensor from the verdicts of its readings, in order, with flood suppression per site.

A verdict per reading is not something an operator can act on: a sensor that flickers across
the threshold would page them many times a minute. Alarm-management practice (EEMUA 191,
ISA-18.2) answers with hysteresis and flood suppression, and so does this:

- **raise** a sensor's alarm when ``k`` of its last ``n`` readings are flagged;
- **clear** it after ``m`` consecutive normal readings;
- **flood**: when the sensors of one site raise more than ``flood_limit`` alarms within
  ``flood_window`` seconds, the site gets one flood alarm instead of one alarm per sensor.
  While it lasts, its sensors' raises and clears are kept in the state but not sent; it clears
  when the raises within the window fall to half the limit, and then every sensor still raised
  is sent once, so the operator sees what the flood hid.

Everything here is a pure function of the readings' order, flags and message times: judging
the same readings again (after a crash, a takeover by another worker) gives the same events
with the same ids, so JetStream's de-duplication drops the second copy. Time is the stream's
own (each message's publish time), so a replay sees the same flood windows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from app.contract.stream import AlarmEvent


@dataclass(frozen=True, slots=True)
class AlarmPolicy:
    """The thresholds (defaults in docs/stream.md; ``ALARM_*`` and ``FLOOD_*`` settings)."""

    raise_k: int = 3
    window_n: int = 5
    clear_m: int = 10
    flood_limit: int = 10
    flood_window_s: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.raise_k <= self.window_n <= 64:
            raise ValueError("alarms need 1 <= k <= n <= 64 (k of the last n readings)")
        if self.clear_m < 1 or self.flood_limit < 1 or self.flood_window_s <= 0:
            raise ValueError("alarm clear count, flood limit and window must be positive")


class SensorState(msgspec.Struct, array_like=True, omit_defaults=True):
    """One sensor: its last flags (bit 0 the newest), how many it has, and its alarm."""

    flags: int = 0
    seen: int = 0
    raised: bool = False
    normal_run: int = 0
    sent: bool = False  # the operator's view: its last event sent said "raised"


class SiteState(msgspec.Struct, array_like=True, omit_defaults=True):
    """One site: when its sensors raised alarms lately (message times), and its flood."""

    raises: list[float] = []
    flooded: bool = False


class PartitionState(msgspec.Struct, omit_defaults=True):
    """What a worker checkpoints for one partition: the sensors and sites not at rest, and the
    stream sequence of the last message judged (a new holder resumes after it)."""

    applied_seq: int = 0
    sensors: dict[str, SensorState] = {}
    sites: dict[str, SiteState] = {}


@dataclass(slots=True)
class Judged:
    """One reading's verdict as the alarms need it."""

    site: str
    sensor: str  # "<site>.<sensor>"
    flagged: bool
    score: float
    top_feature: str | None
    out_of_range: list[str]
    timestamp: str | None  # the reading's own, when it had one
    time: float  # the message's time, seconds since the epoch
    cause: str  # "<stream sequence>.<index in the message>"

    @property
    def at(self) -> str:
        """When, for an event: the reading's timestamp, else its message's time (RFC 3339);
        made only for the few readings that cause one."""
        if self.timestamp:
            return self.timestamp
        stamp = datetime.fromtimestamp(self.time, UTC).isoformat(timespec="milliseconds")
        return stamp.replace("+00:00", "Z")


@dataclass
class AlarmBook:
    """The alarm state of the sensors of one partition, judged one reading at a time."""

    policy: AlarmPolicy
    sensors: dict[str, SensorState] = field(default_factory=dict)
    sites: dict[str, SiteState] = field(default_factory=dict)
    # Flood windows as deques while judging (lists in the checkpoint).
    _raises: dict[str, deque[float]] = field(default_factory=dict)

    @classmethod
    def restore(cls, policy: AlarmPolicy, state: PartitionState) -> AlarmBook:
        book = cls(policy, dict(state.sensors), dict(state.sites))
        book._raises = {site: deque(s.raises) for site, s in state.sites.items()}
        return book

    def checkpoint(self, applied_seq: int) -> PartitionState:
        """The state to keep: sensors and sites that are not at rest."""
        n = self.policy.window_n
        sensors = {
            name: s
            for name, s in self.sensors.items()
            if s.raised or s.sent or (s.flags & ((1 << n) - 1))
        }
        sites = {}
        for site, state in self.sites.items():
            raises = list(self._raises.get(site, ()))
            if raises or state.flooded:
                sites[site] = SiteState(raises, state.flooded)
        return PartitionState(applied_seq, sensors, sites)

    def judge(self, reading: Judged, model: str) -> list[AlarmEvent]:
        """The events this reading causes (usually none)."""
        policy = self.policy
        state = self.sensors.get(reading.sensor)
        if state is None:
            if not reading.flagged:  # a sensor at rest stays at rest, and is not stored
                return self._site_tick(reading, model) if reading.site in self.sites else []
            state = self.sensors[reading.sensor] = SensorState()
        mask = (1 << policy.window_n) - 1
        state.flags = ((state.flags << 1) | reading.flagged) & mask
        state.seen = min(state.seen + 1, policy.window_n)
        events: list[AlarmEvent] = []
        if not state.raised:
            if state.flags.bit_count() >= policy.raise_k:
                state.raised, state.normal_run = True, 0
                if self._site_raise(reading, model, events) and not state.sent:
                    state.sent = True
                    events.append(self._event(reading, "raised", model))
        elif reading.flagged:
            state.normal_run = 0
        else:
            state.normal_run += 1
            if state.normal_run >= policy.clear_m:
                state.raised = False
                if state.sent and not self._flooded(reading.site):
                    state.sent = False
                    events.append(self._event(reading, "cleared", model))
        events += self._site_tick(reading, model)
        if not (state.raised or state.flags or state.sent):
            del self.sensors[reading.sensor]  # at rest again
        return events

    def _flooded(self, site: str) -> bool:
        found = self.sites.get(site)
        return found is not None and found.flooded

    def _window(self, site: str, now: float) -> deque[float]:
        raises = self._raises.setdefault(site, deque())
        horizon = now - self.policy.flood_window_s
        while raises and raises[0] <= horizon:
            raises.popleft()
        return raises

    def _site_raise(self, reading: Judged, model: str, events: list[AlarmEvent]) -> bool:
        """Count a sensor's raise for its site; whether the sensor's own event may be sent."""
        site = self.sites.setdefault(reading.site, SiteState())
        raises = self._window(reading.site, reading.time)
        raises.append(reading.time)
        if site.flooded:
            return False
        if len(raises) > self.policy.flood_limit:
            site.flooded = True
            raised = sorted(name for name, s in self.sensors.items() if s.raised and
                            name.startswith(reading.site + "."))  # fmt: skip
            events.append(
                AlarmEvent(
                    sensor=reading.site,
                    state="raised",
                    at=reading.at,
                    model=model,
                    kind="flood",
                    sensors=raised,
                    msg_id=f"{reading.site}:flood:raised:{reading.cause}",
                )
            )
            return False
        return True

    def _site_tick(self, reading: Judged, model: str) -> list[AlarmEvent]:
        """A flooded site's flood ends when its raises within the window fall to half the
        limit; then each of its sensors whose state the flood hid is sent."""
        site = self.sites.get(reading.site)
        if site is None:
            return []
        raises = self._window(reading.site, reading.time)
        if not site.flooded:
            if not raises:
                del self.sites[reading.site]
                self._raises.pop(reading.site, None)
            return []
        if len(raises) > self.policy.flood_limit // 2:
            return []
        site.flooded = False
        prefix = reading.site + "."
        still = sorted(n for n, s in self.sensors.items() if s.raised and n.startswith(prefix))
        events = [
            AlarmEvent(
                sensor=reading.site,
                state="cleared",
                at=reading.at,
                model=model,
                kind="flood",
                sensors=still,
                msg_id=f"{reading.site}:flood:cleared:{reading.cause}",
            )
        ]
        for name in sorted(n for n in self.sensors if n.startswith(prefix)):
            state = self.sensors[name]
            if state.raised == state.sent:
                continue
            state.sent = state.raised
            word = "raised" if state.raised else "cleared"
            events.append(
                AlarmEvent(
                    sensor=name,
                    state=word,
                    at=reading.at,
                    model=model,
                    msg_id=f"{name}:{word}:{reading.cause}",
                )
            )
            if not (state.raised or state.flags):
                del self.sensors[name]
        return events

    @staticmethod
    def _event(reading: Judged, state: str, model: str) -> AlarmEvent:
        return AlarmEvent(
            sensor=reading.sensor,
            state=state,
            at=reading.at,
            model=model,
            score=reading.score,
            top_feature=reading.top_feature,
            out_of_range=reading.out_of_range,
            msg_id=f"{reading.sensor}:{state}:{reading.cause}",
        )
