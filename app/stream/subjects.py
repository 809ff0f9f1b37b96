"""The stream's subjects: where readings arrive and where verdicts, alarms and dead letters go.

Readings are published on ``grid.readings.<site>.<sensor>`` (over MQTT as
``grid/readings/<site>/<sensor>``). The readings' stream stores each one with a partition token
appended, ``grid.readings.<site>.<sensor>.<p>``, where ``p`` is a hash of the site (the stream's
subject transform, so publishers need not know it): all sensors of a site are judged by the
same worker, in order, and a site's flood is decided in one place.
"""

from __future__ import annotations

from app.contract.stream import ALARMS, DEAD, READINGS, TOKEN, VERDICTS


class BadSubject(ValueError):
    """A reading arrived on a subject whose site or sensor cannot be used."""

    code = "bad_subject"


def readings_subjects() -> list[str]:
    return [f"{READINGS}.*.*"]


def partition_transform(partitions: int) -> tuple[str, str]:
    """(source, destination) of the stream's subject transform: the site's partition appended."""
    return (
        f"{READINGS}.*.*",
        f"{READINGS}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{partition({partitions},1)}}}}",
    )


def partition_filter(partition: int) -> str:
    """The readings of one partition, as its consumer filters them."""
    return f"{READINGS}.*.*.{partition}"


_parsed: dict[str, tuple[str, str, int]] = {}
_PARSED_MAX = 200_000  # subjects remembered (sensors repeat; a flood of new ones is forgotten)


def parse_reading(subject: str) -> tuple[str, str, int]:
    """(site, sensor, partition) of a stored reading's subject; BadSubject when the site or the
    sensor is not a name (MQTT turns a ``.`` in a topic level into ``//``, say)."""
    found = _parsed.get(subject)
    if found is not None:
        return found
    found = _parse_reading(subject)
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    _parsed[subject] = found
    return found


def _parse_reading(subject: str) -> tuple[str, str, int]:
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != "grid" or parts[1] != "readings":
        raise BadSubject(f"subject {subject!r} is not grid.readings.<site>.<sensor>")
    _, _, site, sensor, partition = parts
    for what, name in (("site", site), ("sensor", sensor)):
        if not TOKEN.fullmatch(name):
            raise BadSubject(f"{what} {name!r} is not letters, digits, '_' or '-' (1 to 128)")
    return site, sensor, int(partition)


def verdict_subject(site: str, sensor: str) -> str:
    return f"{VERDICTS}.{site}.{sensor}"


def alarm_subject(sensor: str) -> str:
    """``sensor``: ``<site>.<sensor>`` for a sensor's alarm, ``<site>`` for a flood."""
    return f"{ALARMS}.{sensor}"


def dead_subject(site: str, sensor: str) -> str:
    return f"{DEAD}.{site}.{sensor}"
