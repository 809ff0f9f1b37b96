"""Rate limits per client on the scoring routes: token buckets in requests and readings a second.

A client is its API key when keys are required, else its address. Each has two buckets, one
of requests and one of readings, each holding ``RATE_LIMIT_BURST`` seconds of its rate and
refilled continuously; a request that finds its bucket short is answered 429 with
``Retry-After`` (the whole seconds until it would pass) and costs nothing else: the request
bucket is checked before the body is read, and so is the readings bucket against the client's
last refused batch; the readings are taken once the body is decoded, before anything is
scored. So one client with a
valid key cannot take every worker from the others (docs/security.md).

The buckets live in each worker process: with W workers behind one port (SO_REUSEPORT spreads
connections, not clients), a client that opens several connections can reach up to W times the
rate, and R replicas multiply that again; the limit is per process, stated so in the docs.

The metric names a client by a label that never contains its key: ``key-`` and the first 8 hex
digits of the key's SHA-256, or ``address`` for every client known by address (one label, so
the series stay few).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from typing import Any

from prometheus_client import Counter

from app.contract.errors import ApiError

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client's go first


class Bucket:
    __slots__ = ("stamp", "tokens", "wanted")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        # What the client's last refused request asked for (readings): until the bucket holds
        # that much, its requests are refused at admission, before their bodies are decoded.
        self.wanted = 1.0

    def refill(self, rate: float, size: float, now: float) -> float:
        self.tokens = min(size, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        return self.tokens

    def take(self, n: float, rate: float, size: float, now: float) -> float:
        """Take ``n`` tokens if there are; else the seconds until there would be."""
        if self.refill(rate, size, now) >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / rate


def key_label(key: bytes) -> str:
    return "key-" + hashlib.sha256(key).hexdigest()[:8]


class RateLimits:
    """One process's buckets: ``admit_request`` at admission, ``admit_readings`` after decoding."""

    def __init__(
        self, requests_per_s: float, readings_per_s: float, burst_s: float, limited: Counter
    ) -> None:
        self.requests_per_s = requests_per_s
        self.readings_per_s = readings_per_s
        self.burst_s = burst_s
        self.limited = limited
        self.enabled = requests_per_s > 0 or readings_per_s > 0
        self._clients: OrderedDict[bytes, tuple[Bucket, Bucket]] = OrderedDict()
        self._labels: dict[bytes, str] = {}

    def client(self, scope: dict[str, Any], key: bytes) -> bytes:
        """Who this request counts against: its key if it presented a valid one, else its
        address (the key was checked before this)."""
        if key:
            if key not in self._labels:
                self._labels[key] = key_label(key)
            return key
        peer = scope.get("client") or ("unknown", 0)
        return b"\0addr:" + str(peer[0]).encode()

    def _buckets(self, client: bytes, now: float) -> tuple[Bucket, Bucket]:
        buckets = self._clients.get(client)
        if buckets is None:
            buckets = (
                Bucket(self.requests_per_s * self.burst_s, now),
                Bucket(self.readings_per_s * self.burst_s, now),
            )
            self._clients[client] = buckets
            if len(self._clients) > MAX_CLIENTS:
                old, _ = self._clients.popitem(last=False)
                self._labels.pop(old, None)
        else:
            self._clients.move_to_end(client)
        return buckets

    def _label(self, client: bytes) -> str:
        return self._labels.get(client, "address")

    def admit_request(self, client: bytes) -> None:
        now = time.monotonic()
        requests, readings = self._buckets(client, now)
        if self.requests_per_s > 0:
            size = max(self.requests_per_s * self.burst_s, 1.0)
            wait = requests.take(1.0, self.requests_per_s, size, now)
            if wait:
                self._refuse(client, "requests", wait, f"{self.requests_per_s:g} requests/s")
        if self.readings_per_s > 0:
            # A client refused for a batch of n readings is refused again before its next body
            # is read, until its bucket holds n (an empty bucket refuses any body): a client
            # that ignores Retry-After costs a header's parsing, not its batch's decoding. One
            # that switches to a smaller batch waits at most RATE_LIMIT_BURST seconds longer.
            size = max(self.readings_per_s * self.burst_s, 1.0)
            tokens = readings.refill(self.readings_per_s, size, now)
            if tokens < readings.wanted:
                wait = (readings.wanted - tokens) / self.readings_per_s
                self._refuse(client, "readings", wait, f"{self.readings_per_s:g} readings/s")

    def admit_readings(self, client: bytes, readings: int) -> None:
        if self.readings_per_s <= 0:
            return
        size = max(self.readings_per_s * self.burst_s, 1.0)
        if readings > size:
            self.limited.labels(self._label(client), "readings").inc()
            raise ApiError(
                429,
                "rate_limited",
                f"{readings} readings in one request exceed this client's burst of {size:g} "
                f"({self.readings_per_s:g} readings/s for {self.burst_s:g} s); send smaller "
                "batches",
            )
        now = time.monotonic()
        bucket = self._buckets(client, now)[1]
        wait = bucket.take(readings, self.readings_per_s, size, now)
        bucket.wanted = float(readings) if wait else 1.0
        if wait:
            self._refuse(client, "readings", wait, f"{self.readings_per_s:g} readings/s")

    def _refuse(self, client: bytes, limit: str, wait: float, rate: str) -> None:
        self.limited.labels(self._label(client), limit).inc()
        retry = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"over this client's limit of {rate}; retry in {retry} s",
            headers={"retry-after": str(retry)},
        )
