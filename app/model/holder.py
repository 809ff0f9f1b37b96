"""The model holder: readiness and the loaded model of one server process, handed to handlers."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from app.config import Settings
from app.config.envelope import EnvelopeError
from app.contract import metadata as artifact_meta
from app.contract.errors import ApiError
from app.model import artifact, envelope
from app.model.envelope import BreachNamer
from app.model.scorer import Scorer

log = logging.getLogger("gridscore.model")

RETRY_AFTER_SECONDS = 1


class Status(StrEnum):
    LOADING = "loading"
    OK = "ok"
    DRAINING = "draining"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A verified artifact with its session and the threshold in force."""

    scorer: Scorer
    name: str
    digest: str
    features: tuple[str, ...]
    threshold: float
    envelope: envelope.Envelope
    name_breaches: BreachNamer
    breach_columns: list[tuple[str, str]]
    metadata: artifact_meta.Metadata

    @property
    def digest_header(self) -> tuple[bytes, bytes]:
        """``X-Model-Digest``: which model scored a response (the 12 hex of its name)."""
        return (b"x-model-digest", self.digest[:12].encode())

    @property
    def threshold64(self) -> np.float64:
        """The threshold as float64: scores compare with it in float64, as in the parity check
        (against a Python float, NumPy 2 would round it to float32 instead)."""
        return np.float64(self.threshold)


def release_free_memory() -> None:
    """Hand memory freed after start-up back to the OS (glibc keeps it otherwise).

    Parsing the model and building onnxruntime's tree structures leaves ~8 MiB of freed heap
    per worker that glibc would hold on to; malloc_trim returns it. A no-op off glibc.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)


class ModelHolder:
    """Readiness and the model, for one server process."""

    def __init__(self, features: tuple[str, ...] | None = None) -> None:
        # The request schema is built for these features at start-up; an artifact with
        # others cannot be served by this process (None: whatever the artifact has).
        self.features = features
        self.status = Status.LOADING
        self.model: LoadedModel | None = None
        self.previous: LoadedModel | None = None  # kept loaded, for an instant rollback
        self.reason = "model not loaded yet"

    def load(self, settings: Settings) -> None:
        """Find, verify and open the artifact; on any failure stay unavailable and say why."""
        started = time.perf_counter()
        path = artifact.find(settings.model.dir, settings.model.name, settings.model.digest)
        try:
            if path is None:
                raise artifact.ArtifactError(
                    f"no artifact {settings.model.name}-<digest>.onnx in {settings.model.dir}"
                    + (f" matching digest {settings.model.digest}" if settings.model.digest else "")
                )
            verified = artifact.load(path)
            self.install(verified, settings)
        except (artifact.ArtifactError, EnvelopeError, ValueError, RuntimeError) as exc:
            self.status = Status.UNAVAILABLE
            self.reason = str(exc)
            log.error(
                "model refused: %s", exc, extra={"fields": {"model_dir": str(settings.model.dir)}}
            )
            return
        assert self.model is not None
        log.info(
            "model loaded",
            extra={
                "fields": {
                    "file": path.name,
                    "digest": self.model.digest,
                    "threshold": self.model.threshold,
                    "seconds": round(time.perf_counter() - started, 3),
                }
            },
        )

    def install(self, verified: artifact.Artifact, settings: Settings) -> None:
        """Open a session on an already verified artifact and mark the holder ready."""
        self.activate(self.build(verified, settings))
        release_free_memory()

    def build(self, verified: artifact.Artifact, settings: Settings) -> LoadedModel:
        """A ready-to-serve model from a verified artifact: refused (ArtifactError,
        EnvelopeError) when this process cannot serve it; its session opened and warmed up.
        Touches nothing the serving path reads, so it may run in another thread."""
        meta = verified.metadata
        if self.features is not None and tuple(meta.features) != self.features:
            raise artifact.ArtifactError(
                f"{verified.path.name} has features {meta.features}, and this server's request "
                f"schema was built for {list(self.features)}; restart it to serve other features"
            )
        if meta.parity.points <= 0 or meta.parity.label_mismatches_outside_band:
            raise artifact.ArtifactError(
                f"{verified.path.name}: no passing parity check in its metadata; refusing it"
            )
        guard = envelope.configured(meta, settings)
        scorer = Scorer(
            verified, guard, settings.model.intra_op_threads, settings.model.inter_op_threads
        )
        scorer.warm_up()
        return LoadedModel(
            scorer=scorer,
            name=meta.name,
            digest=meta.digest,
            features=tuple(meta.features),
            threshold=meta.threshold
            if settings.model.threshold is None
            else settings.model.threshold,
            envelope=guard,
            name_breaches=guard.breach_namer(),
            breach_columns=guard.breach_columns(),
            metadata=meta,
        )

    def activate(self, model: LoadedModel) -> LoadedModel | None:
        """Serve ``model`` from the next request on; returns the model it replaces. One
        assignment on the event loop: a request in flight keeps the model it started with."""
        replaced, self.model = self.model, model
        if replaced is not None and replaced.digest != model.digest:
            self.previous = replaced
        if self.status is not Status.DRAINING:
            self.status = Status.OK
            self.reason = ""
        return replaced

    def drain(self) -> None:
        """Stop taking new predictions (shutdown has begun)."""
        self.status = Status.DRAINING
        self.reason = "server is shutting down"

    def ready(self) -> LoadedModel:
        """The model, or a 503 with Retry-After when none is loaded.

        While draining the model still answers: a request that reached this process is served
        (readiness already says 503, so load balancers send no new ones).
        """
        if self.status in (Status.OK, Status.DRAINING) and self.model is not None:
            return self.model
        raise ApiError(
            503,
            f"model_{self.status.value}",
            f"model {self.status.value}: {self.reason}",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
