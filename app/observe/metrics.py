"""The Prometheus metrics: the one place that defines them, and the middleware that feeds them.

With several worker processes, prometheus-client's multiprocess mode keeps each worker's values
in files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` reports their sum, whichever worker
answers. The launcher sets that variable before any worker imports prometheus-client.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("gridscore.access")

# Sub-millisecond buckets first: a warm batch-1 request takes well under a millisecond.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
GC_BUCKETS = (0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1)
SCORE_DIFF_BUCKETS = (1e-6, 1e-4, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
UNMATCHED = "<unmatched>"

# The *_created series double the exposition and no dashboard or rule of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def multiprocess_registry(directory: str) -> CollectorRegistry:
    """A registry that reads every worker's metrics files in ``directory`` and sums them."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class Metrics:
    """The metric objects of one app, registered on their own registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "requests_total",
            "HTTP requests by route template, method and status.",
            ["path", "method", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "rate_limited_total",
            "Scoring requests answered 429 by the rate limits, by client (key- and a short hash "
            "of its key, never the key; or address) and limit (requests or readings).",
            ["client", "limit"],
            registry=r,
        )
        self.request_latency = Histogram(
            "request_latency_seconds",
            "Time to serve a request that succeeded (status < 400).",
            ["path", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_latency = Histogram(
            "inference_latency_seconds",
            "Time inside onnxruntime per batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "batch_size_readings",
            "Readings per scored request.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.readings = Counter("readings_total", "Readings scored.", registry=r)
        self.anomalies = Counter("anomalies_total", "Readings flagged as anomalies.", registry=r)
        self.envelope_breaches = Counter(
            "envelope_breaches_total",
            "Readings outside the operating envelope, by feature and direction (low/high).",
            ["feature", "direction"],
            registry=r,
        )
        self.in_flight = Gauge(
            "in_flight_requests",
            "Requests being served now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.ready = Gauge(
            "scorer_ready",
            "1 while this process serves a verified model (summed: ready worker processes).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.gc_pause = Histogram(
            "gc_pause_seconds",
            "Time the cyclic garbage collector held this process, per collection.",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=r,
        )
        self.model_swaps = Counter(
            "model_swaps_total",
            "Model swaps tried in this process, by result (ok, refused).",
            ["result"],
            registry=r,
        )
        self.shadow_batches = Counter(
            "shadow_batches_total", "Batches the shadow model scored.", registry=r
        )
        self.shadow_readings = Counter(
            "shadow_readings_total", "Readings the shadow model scored.", registry=r
        )
        self.shadow_disagreements = Counter(
            "shadow_verdict_disagreements_total",
            "Readings on which the shadow model's verdict differs from the live model's.",
            registry=r,
        )
        self.shadow_dropped = Counter(
            "shadow_dropped_batches_total",
            "Batches the shadow skipped because it was behind (its queue was full).",
            registry=r,
        )
        self.shadow_score_difference = Histogram(
            "shadow_score_difference",
            "|shadow score - live score| per reading.",
            buckets=SCORE_DIFF_BUCKETS,
            registry=r,
        )
        self.drift_readings = Counter(
            "drift_readings_total",
            "Readings scored, by feature, by the fixed bin (of the scoring model's training "
            "deciles) they fall in, and by that model (its digest's first 12 hex characters).",
            ["feature", "bin", "model"],
            registry=r,
        )
        self.drift_training_share = Gauge(
            "drift_training_share",
            "Share of a served model's training rows in each bin of each feature.",
            ["feature", "bin", "model"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.expected_anomaly_rate = Gauge(
            "expected_anomaly_rate",
            "The share of readings the served model is expected to flag (its held-out false "
            "alarm rate, or its contamination).",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.model_info = Gauge(
            "model_info",
            "The model being served (value 1).",
            ["name", "digest"],
            multiprocess_mode="livemax",
            registry=r,
        )
        # The stream worker (app/stream): what it consumed, published and raised.
        self.stream_messages = Counter(
            "stream_messages_total",
            "Reading messages by what became of them: consumed, acknowledged (after "
            "their verdicts, alarms and partition state were stored), redelivered, "
            "already_judged (skipped), dead_lettered.",
            ["outcome"],
            registry=r,
        )
        self.stream_readings = Counter(
            "stream_readings_total", "Readings consumed from the stream and scored.", registry=r
        )
        self.stream_dead_letters = Counter(
            "stream_dead_letters_total",
            "Messages sent to grid.dead.<site>.<sensor>, by reason.",
            ["reason"],
            registry=r,
        )
        self.stream_fetch_size = Histogram(
            "stream_fetch_size_messages",
            "Messages judged per cycle (one onnxruntime call).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.stream_publish_to_verdict = Histogram(
            "stream_publish_to_verdict_seconds",
            "From a reading message's publish (its JetStream time) to its verdict and alarms "
            "stored.",
            buckets=(*LATENCY_BUCKETS, 30.0, 60.0),
            registry=r,
        )
        self.stream_consumer_pending = Gauge(
            "stream_consumer_pending_messages",
            "A partition's lag: messages not yet delivered plus delivered and unacknowledged "
            "(as KEDA reads it), reported by its holder.",
            ["partition"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.stream_alarms = Counter(
            "stream_alarms_total",
            "Alarm events sent: raised, cleared, flood_raised, flood_cleared.",
            ["event"],
            registry=r,
        )
        self.stream_broker_connected = Gauge(
            "stream_broker_connected",
            "1 while this process is connected to the broker (summed over processes).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.stream_broker_disconnects = Counter(
            "stream_broker_disconnects_total", "Times the broker connection was lost.", registry=r
        )
        self.stream_pulls_silent = Counter(
            "stream_pulls_silent_total",
            "Times a partition's consumer fell silent (its leader gone with the pull requests "
            "waiting there) and was asked again.",
            registry=r,
        )
        self.stream_deliveries_lost = Counter(
            "stream_deliveries_lost_total",
            "Times a message was delivered and lost on its way (a gap in a consumer's delivery "
            "sequence) and the partitions started again from their checkpoints.",
            registry=r,
        )
        self.stream_partitions_held = Gauge(
            "stream_partitions_held",
            "Partitions this process holds (summed over processes).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self._exposition_registry = self.registry
        directory = multiprocess_dir()
        if directory:
            self._exposition_registry = multiprocess_registry(directory)

    def exposition(self) -> bytes:
        """The Prometheus text format: the sum over all workers in multiprocess mode."""
        return generate_latest(self._exposition_registry)


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """Observe every value of ``values`` at once: the same exposition as one ``observe`` per
    value, with one write per bucket instead of one per value (10,000 readings in a batch).

    prometheus-client has no bulk observe; its Histogram keeps one value per bucket (counts
    per bucket, not cumulative) and one for the sum, which this updates the way ``observe``
    does. Checked against per-value observation in tests/app/test_swap.py."""
    import numpy as np  # only the scorer's process observes in bulk; the dashboard has none

    if len(values) == 0:
        return
    bounds = np.asarray(histogram._upper_bounds)
    # observe() counts a value in the first bucket whose upper bound is >= the value.
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(np.sum(values)))


class MetricsMiddleware:
    """Counts every routed HTTP request by route template; times the successful ones."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        # The router has set the template by now (this middleware sits on routed handlers).
        path = scope.get("path_template") or UNMATCHED
        metrics = self.metrics
        status = 500
        counted = False
        started = time.perf_counter()

        async def count_then_send(message: Message) -> None:
            nonlocal status, counted
            if message["type"] == "http.response.start":
                status = message["status"]
                # Counted before the answer leaves: a client never holds a response that
                # requests_total does not include, even if the process dies a moment later.
                metrics.requests.labels(path, method, str(status)).inc()
                counted = True
            await send(message)

        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, count_then_send)
        finally:
            metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            if not counted:  # nothing was sent at all
                metrics.requests.labels(path, method, str(status)).inc()
            if status < 400:
                metrics.request_latency.labels(path, method).observe(elapsed)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "request",
                    extra={
                        "fields": {
                            "method": method,
                            "path": path,
                            "status": status,
                            "ms": round(elapsed * 1000, 3),
                        }
                    },
                )


def middleware_factory(metrics: Metrics) -> Any:
    """A Litestar middleware entry bound to ``metrics``."""
    return lambda app: MetricsMiddleware(app, metrics)
