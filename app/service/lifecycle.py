"""The model side of a served process, the same for every transport: the holder, the data
plane, swaps (admin, SIGHUP, MODEL_WATCH), the shadow model, drift and garbage-collection
timing, started and stopped with the app."""

from __future__ import annotations

import logging

from app.config import Settings
from app.model.holder import LoadedModel, ModelHolder, Status
from app.model.shadow import Shadow
from app.model.swap import ModelSwitcher, SwapRefused
from app.observe.drift import DriftRecorder
from app.observe.metrics import Metrics
from app.runtime.gctune import GcPauses
from app.serving.dataplane import DataPlane

log = logging.getLogger("gridscore.api")


class ServedModel:
    """Loads the model at start-up, follows swaps, drains and stops with the process."""

    def __init__(self, settings: Settings, holder: ModelHolder, metrics: Metrics) -> None:
        self.settings = settings
        self.holder = holder
        self.metrics = metrics
        inline_rows = settings.limits.inline_rows
        self.shadow = Shadow(metrics, inline_rows)
        self.drift = DriftRecorder(metrics)
        self.switcher = ModelSwitcher(
            holder, settings, metrics, self.shadow, on_activate=[self.note_model]
        )
        self.plane = DataPlane(holder, metrics, inline_rows, self.shadow, self.drift)
        self.gc_pauses = GcPauses(metrics.gc_pause)

    def note_model(self, model: LoadedModel) -> None:
        """What follows the served model: its training shares, its expected anomaly rate."""
        self.drift.export_training(model)
        calibration = model.metadata.calibration
        expected = calibration.false_alarm_rate
        if expected is None:
            expected = float(model.metadata.model.get("contamination", 0.0))
        self.metrics.expected_anomaly_rate.set(expected)

    def load(self) -> None:
        holder, metrics = self.holder, self.metrics
        if holder.status is Status.LOADING:
            holder.load(self.settings)
        if holder.model is not None:
            metrics.model_info.labels(holder.model.name, holder.model.digest).set(1)
            self.note_model(holder.model)
        metrics.ready.set(1 if holder.status is Status.OK else 0)

    async def start(self) -> None:
        self.gc_pauses.install()
        self.load()
        shadow_digest = self.settings.model.shadow_digest
        if shadow_digest and self.holder.model is not None:
            try:
                await self.switcher.set_shadow(shadow_digest, publish=False)
            except SwapRefused as exc:
                log.error("SHADOW_DIGEST refused: %s", exc.reason)
        self.switcher.start()

    def drain(self) -> None:
        self.holder.drain()
        self.metrics.ready.set(0)

    async def stop(self) -> None:
        self.drain()
        self.gc_pauses.remove()
        await self.switcher.stop()
        self.drift.stop()
