"""The stream's wire format, shared by the worker, the dashboard's alarms view and clients:
the subjects, a verdict message, an alarm event, the dead-letter header (docs/stream.md)."""

from __future__ import annotations

import re

import msgspec

from app.contract.api import Prediction

READINGS = "grid.readings"  # grid.readings.<site>.<sensor>
VERDICTS = "grid.verdicts"  # grid.verdicts.<site>.<sensor>
ALARMS = "grid.alarms"  # grid.alarms.<site>.<sensor>, and grid.alarms.<site> for a flood
DEAD = "grid.dead"  # grid.dead.<site>.<sensor>
DEAD_REASON = "Gridscore-Dead-Reason"  # the header that says why a message was not scored
# Site and sensor names: what survives a NATS subject and an MQTT topic unchanged.
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def stream_names(name: str) -> tuple[str, str, str]:
    """(readings, verdicts, alarms and dead letters) streams of a ``STREAM_NAME``."""
    return name, f"{name}_VERDICTS", f"{name}_ALARMS"


class StreamVerdict(msgspec.Struct, omit_defaults=True):
    """What ``grid.verdicts.<site>.<sensor>`` carries for one reading message: the /predict
    fields of each of its readings, in order, and which message and model they answer."""

    sensor: str
    seq: int  # the reading message's sequence in the readings' stream
    model: str  # the model's digest (first 12 hex)
    predictions: list[Prediction]
    anomalies: int
    served_by: str
    msg_id: str | None = None  # the reading message's Nats-Msg-Id, when it had one


class AlarmEvent(msgspec.Struct, omit_defaults=True):
    """An alarm sent on ``grid.alarms.<site>.<sensor>`` (a sensor's) or ``grid.alarms.<site>``
    (the site's flood)."""

    sensor: str  # "<site>.<sensor>"; the site's name for a flood alarm
    state: str  # "raised" or "cleared"
    at: str  # when: the reading's timestamp, else the message's time (RFC 3339)
    model: str
    kind: str = "sensor"  # or "flood"
    score: float | None = None
    top_feature: str | None = None
    out_of_range: list[str] = []
    sensors: list[str] = []  # a flood: the sensors raised within its window, or still raised
    msg_id: str = ""  # what caused it: the Nats-Msg-Id, "<sensor>:<state>:<seq>.<index>"
