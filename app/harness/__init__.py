"""The entry into the server for code that drives it from outside: ``bench/``.

A benchmark starts servers as processes (``gridscore api``, ``bench/serving.py``), so what it
needs from ``app`` is small, and this is all of it; nothing in ``bench/`` imports another part
of ``app`` (an import-linter contract in pyproject.toml checks it), so the server's insides
can move without breaking a benchmark:

- **artifacts**: ``find_artifact`` (is a model published in a folder?);
- **load**: ``LoadSpec`` -> ``run_load`` / ``run_load_async`` -> ``LoadResult`` (closed loop,
  open loop, waves; the dashboard's bursts use the same generator), with request bodies per
  wire format (``make_bodies``, ``PROTOCOLS``, ``infer_path``) and ``percentile``;
- **reading a server**: ``ModelResponse`` (``GET /model``), ``multiprocess_registry`` (the
  workers' metrics files as ``/metrics`` sums them);
- **the stream**: ``create_streams`` (the streams a stream worker with these settings makes,
  to fill before one runs), ``StreamVerdict`` (what a verdict message holds);
- **the docs**: ``docgen`` (the benchmark tables are generated parts of the docs);
- **in-process parts**: ``wire_decoder`` (the server's own decode of each wire format, to time
  it), ``freeze_startup_heap`` (the server's garbage-collection set-up, for a load generator
  that must not pause).

Layer: the top, beside ``app.service``; it may import any part of ``app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app import docgen
from app.contract.api import ModelResponse
from app.contract.stream import StreamVerdict
from app.dashboard.loadrun import LoadResult, LoadSpec, make_bodies, percentile
from app.dashboard.loadrun import run as run_load
from app.dashboard.loadrun import run_async as run_load_async
from app.dashboard.v2_requests import PROTOCOLS, Body, infer_path
from app.http.decoding import RequestCodec
from app.http.predict import PredictJson
from app.model import artifact
from app.model.holder import ModelHolder
from app.observe.metrics import multiprocess_registry
from app.runtime.gctune import freeze_startup_heap
from app.v2.infer import INFER_PATH, InferV2

__all__ = [
    "PROTOCOLS",
    "Body",
    "LoadResult",
    "LoadSpec",
    "ModelResponse",
    "StreamVerdict",
    "create_streams",
    "docgen",
    "find_artifact",
    "freeze_startup_heap",
    "infer_path",
    "make_bodies",
    "multiprocess_registry",
    "percentile",
    "run_load",
    "run_load_async",
    "wire_decoder",
]


def find_artifact(model_dir: Path, name: str = "gridscore-iforest") -> Path | None:
    """The newest artifact named ``name`` in ``model_dir``, or None."""
    return artifact.find(model_dir, name)


def wire_decoder(protocol: str, model: ModelResponse) -> Any:
    """The server's decoder of ``protocol`` (``predict``, ``v2-json``, ``v2-binary``) for the
    model ``GET /model`` described: ``.decode(body, scope)`` returns the float32 matrix."""
    features = tuple(f.name for f in model.features)
    if protocol == "predict":
        return PredictJson(RequestCodec(features, tuple(f.unit for f in model.features)), "bench")
    return InferV2(INFER_PATH, model.v2_name, ModelHolder(features), features, "bench")


async def create_streams(nats_urls: str, **env: str) -> None:
    """The streams and buckets ``gridscore stream`` with these settings (environment
    variables) creates, made now on the broker at ``nats_urls``."""
    import nats

    from app.config import Settings
    from app.runtime import tls
    from app.stream.broker import ensure_streams

    settings = Settings.from_env({"NATS_URL": nats_urls, **env}).stream
    connection = await nats.connect(
        servers=list(settings.nats_urls), **tls.broker_options(settings)
    )
    try:
        await ensure_streams(connection.jetstream(timeout=10), settings)
    finally:
        await connection.close()
