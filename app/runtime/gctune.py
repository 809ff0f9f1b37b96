"""Keep the cyclic garbage collector's pauses out of requests.

A worker's start-up heap (Litestar, onnxruntime, numpy, the templates: ~60,000 tracked
objects) never becomes garbage, yet every full collection walks all of it: ~17 ms on these
machines, landing inside whichever requests are in flight. Once the model is loaded and warm,
``freeze_startup_heap`` collects once and moves every surviving object to the permanent
generation, which the collector never scans again. Requests themselves make little cyclic
garbage (their objects are freed by reference counting), so the youngest generation's
threshold is raised as well: fewer, still tiny, collections.

``GcPauses`` times every collection (``gc.callbacks``) into the ``gc_pause_seconds`` histogram,
so the effect is measured in production as well as in the benchmark.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger("gridscore.gc")

YOUNG_THRESHOLD = 10_000  # the default is 700 allocations
OLDER_THRESHOLDS = (20, 20)  # default (10, 10): promote and scan the older generations less


def full_collection_ms() -> float:
    """How long a full collection of this process's heap takes now."""
    started = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - started) * 1000


def freeze_startup_heap() -> dict[str, float]:
    """Collect, then exempt every object alive now from future collections. Logs (and
    returns) what a full collection cost before and costs after."""
    before = full_collection_ms()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    after = full_collection_ms()
    figures = {
        "objects_frozen": gc.get_freeze_count(),
        "full_collection_ms_before": round(before, 3),
        "full_collection_ms_after": round(after, 3),
    }
    log.info(
        "start-up heap frozen",
        extra={"fields": {**figures, "thresholds": list(gc.get_threshold())}},
    )
    return figures


class GcPauses:
    """Observes each collection's duration into a histogram labelled by generation."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.children = {generation: histogram.labels(str(generation)) for generation in range(3)}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.children[info["generation"]].observe(time.perf_counter() - self._started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
