"""Settings of the stream worker (``gridscore stream``): the broker, the streams, delivery and
the alarm thresholds (docs/stream.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.config.fields import (
    Parser,
    SettingsError,
    flag,
    integer,
    number,
    setting,
    text,
)

_NAME = re.compile(r"[A-Za-z0-9_-]+")


def nats_urls() -> Parser:
    """One or more ``nats://host:port`` (or ``tls://``) URLs, comma-separated (a cluster's)."""

    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip() or default
        urls = tuple(u.strip() for u in raw.split(",") if u.strip())
        for url in urls:
            try:
                parts = urlsplit(url)
                port = parts.port
            except ValueError:
                raise SettingsError(f"{name}: {url!r} is not a URL") from None
            if parts.scheme not in ("nats", "tls") or not parts.hostname or port is None:
                raise SettingsError(
                    f"{name} must be nats://host:port (or tls://), comma-separated; got {url!r}"
                )
        if not urls:
            raise SettingsError(f"{name} is empty")
        return urls

    return parse


def stream_name() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip() or default
        if not _NAME.fullmatch(raw):
            raise SettingsError(f"{name} must be letters, digits, '_' or '-', got {raw!r}")
        return raw

    return parse


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """The stream worker: the NATS JetStream broker, the streams it reads and writes, how it
    fetches and acknowledges, and when a sensor's alarm is raised, cleared or flooded."""

    nats_urls: tuple[str, ...] = setting(
        "NATS_URL",
        "nats://127.0.0.1:4222",
        "the broker, `nats://host:port`; a cluster's URLs comma-separated",
        nats_urls(),
    )
    name: str = setting(
        "STREAM_NAME",
        "GRID",
        "the readings' stream (subjects `grid.readings.<site>.<sensor>`), created when missing; "
        "verdicts go to `<name>_VERDICTS`, alarms and dead letters to `<name>_ALARMS`",
        stream_name(),
    )
    verdicts: bool = setting(
        "STREAM_VERDICTS", True, "`0`: publish no verdicts, only alarms and dead letters", flag()
    )
    partitions: int = setting(
        "STREAM_PARTITIONS",
        8,
        "partitions of the readings by site, each judged in order by one worker at a time; "
        "the most workers that share the work (fixed when the stream is created)",
        integer(minimum=1),
    )
    replicas: int = setting(
        "STREAM_REPLICAS", 1, "copies of each stream in a JetStream cluster (3 in production)",
        integer(minimum=1),
    )  # fmt: skip
    max_age_s: float = setting(
        "STREAM_MAX_AGE",
        86_400.0,
        "seconds readings and verdicts are kept (alarms and dead letters 30 times longer)",
        number(floor=60.0),
    )
    batch: int = setting(
        "STREAM_BATCH",
        1_000,
        "most messages judged in one cycle, scored in one onnxruntime call (a cycle takes what "
        "has arrived, up to this: small under a light load, large under a backlog)",
        integer(minimum=1),
    )
    in_flight: int = setting(
        "STREAM_INFLIGHT",
        4,
        "cycles whose publish acknowledgements may be outstanding at once",
        integer(minimum=1),
    )
    max_ack_pending: int = setting(
        "STREAM_MAX_ACK_PENDING",
        4_000,
        "messages a partition's consumer hands out before they are acknowledged (backpressure)",
        integer(minimum=1),
    )
    ack_wait_s: float = setting(
        "STREAM_ACK_WAIT", 30.0, "seconds before an unacknowledged message is redelivered",
        number(floor=1.0),
    )  # fmt: skip
    lease_s: float = setting(
        "STREAM_LEASE_SECONDS",
        10.0,
        "a partition's holder renews its lease within this; a dead holder's partitions move on "
        "after it",
        number(floor=2.0),
    )
    raise_k: int = setting(
        "ALARM_RAISE_K", 3, "raise a sensor's alarm when k of its last n readings are flagged",
        integer(minimum=1),
    )  # fmt: skip
    window_n: int = setting("ALARM_WINDOW_N", 5, "the n of k-of-n (at most 64)", integer(minimum=1))
    clear_m: int = setting(
        "ALARM_CLEAR_M", 10, "clear it after m consecutive normal readings", integer(minimum=1)
    )
    flood_limit: int = setting(
        "FLOOD_LIMIT",
        10,
        "a site whose sensors raise more alarms than this within `FLOOD_WINDOW` gets one flood "
        "alarm instead (EEMUA 191: 10 in 10 minutes)",
        integer(minimum=1),
    )
    flood_window_s: float = setting(
        "FLOOD_WINDOW", 600.0, "seconds of the flood window", number(floor=1.0)
    )
    ca_file: str = setting(
        "NATS_CA_FILE",
        "",
        "CA certificates that verify the broker's certificate (`tls://` URLs, or a broker that "
        "requires TLS)",
        text(),
        shown="(the system's)",
    )
    cert_file: str = setting(
        "NATS_CERT_FILE",
        "",
        "this process's certificate, for a broker that verifies its clients (mutual TLS)",
        text(),
        shown="(none)",
    )
    key_file: str = setting(
        "NATS_KEY_FILE", "", "the key of `NATS_CERT_FILE`", text(), shown="(none)"
    )
    monitor_url: str = setting(
        "NATS_MONITOR_URL",
        "",
        "the broker's monitoring endpoint (`http://host:8222`), for the dashboard's lag",
        text(),
        shown="(none)",
    )
