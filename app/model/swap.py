"""Swapping the served model without downtime: admin, SIGHUP, a watched folder, rollback.

A candidate is found in MODEL_DIR by digest, verified, checked against what this process
serves (the request schema's features, the configured envelope, a passing parity record),
given its own onnxruntime session and warmed up, all in a worker thread beside the live
model; then one assignment on the event loop makes it live. A request in flight keeps the
model it started with; readiness never leaves 200. A refused candidate changes nothing: the
live model keeps serving, the refusal is logged, counted (``model_swaps_total{result}``) and
shown by ``/health``. The replaced model stays loaded for an instant rollback.

Workers of one server follow each other through a file in CONTROL_DIR: the worker that makes
a swap (an admin request reaches one worker) writes the model and shadow every worker should
serve, and every worker checks that file five times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from app.config import Settings
from app.config.envelope import EnvelopeError
from app.model import artifact
from app.model.holder import LoadedModel, ModelHolder, release_free_memory
from app.model.shadow import Shadow
from app.observe.metrics import Metrics

log = logging.getLogger("gridscore.swap")

CONTROL_FILE = "served.json"
FOLLOW_S = 0.2


class SwapRefused(Exception):
    """A swap that cannot be made: ``status`` 404 (no such artifact) or 409 (refused)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class SwapRecord:
    result: str  # ok or refused
    source: str  # admin, rollback, sighup, watch, control, shadow
    digest: str
    reason: str
    at: str


class Served(msgspec.Struct):
    """What every worker should serve: written by the worker that swapped."""

    model: str
    shadow: str = ""


class ModelSwitcher:
    """The swaps of one process (see the module docstring)."""

    def __init__(
        self,
        holder: ModelHolder,
        settings: Settings,
        metrics: Metrics,
        shadow: Shadow,
        on_activate: list[Callable[[LoadedModel], None]] | None = None,
    ) -> None:
        self.on_activate = on_activate or []
        self.holder = holder
        self.settings = settings
        self.metrics = metrics
        self.shadow = shadow
        self.lock = asyncio.Lock()
        self.last: SwapRecord | None = None
        control = settings.server.control_dir
        self.control = Path(control) / CONTROL_FILE if control else None
        self._control_seen: int | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- finding and building candidates ---------------------------------------------------

    def _path(self, digest: str) -> Path:
        model = self.settings.model
        # File names carry the digest's first 12 hex characters; a longer one is checked
        # against the metadata once loaded.
        path = artifact.find(model.dir, model.name, digest[: artifact.DIGEST_PREFIX_LEN])
        if path is None:
            raise SwapRefused(404, f"no artifact {model.name}-{digest[:12]}*.onnx in {model.dir}")
        return path

    def _build(self, path: Path, digest: str) -> LoadedModel:
        verified = artifact.load(path)
        if not verified.metadata.digest.startswith(digest):
            raise artifact.ArtifactError(
                f"{path.name}: its sha256 {verified.metadata.digest} does not start with {digest}"
            )
        return self.holder.build(verified, self.settings)

    async def _candidate(self, digest: str, source: str) -> LoadedModel:
        path = self._path(digest)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self._build, path, digest)
        except (artifact.ArtifactError, EnvelopeError, ValueError, RuntimeError) as exc:
            self._record("refused", source, digest, str(exc))
            raise SwapRefused(409, str(exc)) from None

    def _record(self, result: str, source: str, digest: str, reason: str) -> None:
        self.last = SwapRecord(
            result, source, digest, reason, datetime.now(UTC).isoformat(timespec="seconds")
        )
        self.metrics.model_swaps.labels(result).inc()
        fields = {"result": result, "source": source, "digest": digest}
        if result == "ok":
            log.info("model swapped", extra={"fields": fields})
        else:
            log.error("model swap refused: %s", reason, extra={"fields": fields})

    # -- the swaps ---------------------------------------------------------------------------

    async def swap_to(self, digest: str, source: str, publish: bool = True) -> LoadedModel:
        """Serve the artifact whose digest starts with ``digest``; raises SwapRefused."""
        if self.lock.locked() and source in ("admin", "rollback"):
            raise SwapRefused(409, "a swap is already in progress in this worker")
        async with self.lock:
            holder = self.holder
            live = holder.model
            if live is not None and live.digest.startswith(digest):
                model = live
            elif holder.previous is not None and holder.previous.digest.startswith(digest):
                model = holder.previous  # still loaded: no need to build it again
                self._activate(model, source)
            else:
                model = await self._candidate(digest, source)
                self._activate(model, source)
                release_free_memory()
            if publish:
                self._publish()
            return model

    def _activate(self, model: LoadedModel, source: str) -> None:
        replaced = self.holder.activate(model)
        info = self.metrics.model_info
        if replaced is not None and replaced.digest != model.digest:
            info.labels(replaced.name, replaced.digest).set(0)
        info.labels(model.name, model.digest).set(1)
        for hook in self.on_activate:
            hook(model)
        self._record("ok", source, model.digest, "")

    async def rollback(self) -> LoadedModel:
        previous = self.holder.previous
        if previous is None:
            raise SwapRefused(409, "no previous model to roll back to")
        return await self.swap_to(previous.digest, "rollback")

    async def reload_newest(self, source: str) -> LoadedModel | None:
        """Serve the newest artifact in MODEL_DIR (or the one MODEL_DIGEST pins), if new."""
        model = self.settings.model
        path = artifact.find(model.dir, model.name, model.digest)
        if path is None:
            return None
        digest = path.stem.rsplit("-", 1)[-1]
        live = self.holder.model
        if live is not None and live.digest.startswith(digest):
            return live
        try:
            return await self.swap_to(digest, source)
        except SwapRefused:
            return None  # logged, counted and shown by /health already

    async def set_shadow(self, digest: str, publish: bool = True) -> LoadedModel | None:
        """Shadow the artifact whose digest starts with ``digest`` ("" stops shadowing)."""
        current = self.shadow.model
        if not digest:
            self.shadow.set(None)
        elif current is None or not current.digest.startswith(digest):
            self.shadow.set(await self._candidate(digest, "shadow"))
            log.info("shadow model set", extra={"fields": {"digest": digest}})
        if publish:
            self._publish()
        return self.shadow.model

    # -- workers following each other, SIGHUP, MODEL_WATCH ------------------------------------

    def _publish(self) -> None:
        if self.control is None or self.holder.model is None:
            return
        shadow = self.shadow.model.digest if self.shadow.model is not None else ""
        data = msgspec.json.encode(Served(model=self.holder.model.digest, shadow=shadow))
        tmp = self.control.with_name(f".{self.control.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.control)
        with contextlib.suppress(OSError):
            self._control_seen = self.control.stat().st_mtime_ns

    async def _follow(self) -> None:
        assert self.control is not None
        while True:
            await asyncio.sleep(FOLLOW_S)
            try:
                seen = self.control.stat().st_mtime_ns
            except OSError:
                continue
            if seen == self._control_seen:
                continue
            try:
                served = msgspec.json.decode(self.control.read_bytes(), type=Served)
            except (OSError, msgspec.MsgspecError):
                continue  # a half-written file cannot be seen (rename), but be safe
            self._control_seen = seen
            with contextlib.suppress(SwapRefused):
                await self.swap_to(served.model, "control", publish=False)
            shadow_now = self.shadow.model.digest if self.shadow.model is not None else ""
            if served.shadow != shadow_now:
                with contextlib.suppress(SwapRefused):
                    await self.set_shadow(served.shadow, publish=False)

    async def _watch(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.reload_newest("watch")

    def start(self) -> None:
        """Follow the control file, watch MODEL_DIR if asked, and swap on SIGHUP."""
        loop = asyncio.get_running_loop()
        if self.control is not None:
            if self.holder.model is not None and not self.control.exists():
                self._publish()
            with contextlib.suppress(OSError):
                self._control_seen = self.control.stat().st_mtime_ns
            self._tasks.append(loop.create_task(self._follow()))
        if self.settings.model.watch_seconds > 0:
            self._tasks.append(loop.create_task(self._watch(self.settings.model.watch_seconds)))
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    def _on_sighup(self) -> None:
        log.info("SIGHUP: looking for a newer artifact")
        task = asyncio.get_running_loop().create_task(self._sighup())
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _sighup(self) -> None:
        await self.reload_newest("sighup")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.shadow.stop()

    def describe(self) -> dict[str, Any]:
        """For /health: the previous model, the last swap, the shadow."""
        previous = self.holder.previous
        return {
            "previous": {"name": previous.name, "digest": previous.digest} if previous else None,
            "last_swap": dataclasses.asdict(self.last) if self.last else None,
            "shadow": self.shadow.model.digest if self.shadow.model is not None else None,
        }
