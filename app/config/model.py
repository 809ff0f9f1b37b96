"""Settings of the served model: which artifact, its threshold and envelope, ORT threads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config.envelope import EnvelopeError, env_overrides
from app.config.fields import (
    Parser,
    SettingsError,
    flag,
    integer,
    number,
    path,
    path_segment,
    setting,
    text,
)


def envelope_bounds() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        try:
            return env_overrides(env)
        except EnvelopeError as exc:
            raise SettingsError(str(exc)) from None

    return parse


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Which artifact to serve, its threshold and envelope, and onnxruntime's threads."""

    dir: Path = setting("MODEL_DIR", Path("models"), "folder of digest-named artifacts", path())
    name: str = setting(
        "MODEL_NAME", "gridscore-iforest", "artifact name before the digest", text()
    )
    v2_name: str = setting(
        "V2_MODEL_NAME",
        "",
        "the model's name on the Open Inference Protocol routes (`/v2/models/{name}/infer`); "
        "KServe passes the InferenceService's name",
        path_segment(),
        shown="(`MODEL_NAME`)",
    )
    digest: str = setting(
        "MODEL_DIGEST",
        "",
        "serve only the artifact whose sha256 starts with this",
        text(lower=True),
        shown="(newest)",
    )
    train_if_missing: bool = setting(
        "TRAIN_IF_MISSING",
        True,
        "`1`: run the convert step when no artifact exists (needs the `train` extra); "
        "`0`: exit at once with status 2 and a message",
        flag(),
    )
    threshold: float | None = setting(
        "ANOMALY_THRESHOLD",
        None,
        "override the trained score threshold",
        number(),
        shown="(trained)",
    )
    envelope_preset: str = setting(
        "ENVELOPE_PRESET",
        "trained",
        "`trained`, `en50160` or `off` (docs/envelope.md)",
        text(lower=True),
    )
    envelope_file: str = setting(
        "ENVELOPE_FILE", "", 'JSON of per-feature bounds, `{"voltage": {"min": 207}}`', text()
    )
    envelope_overrides: tuple[tuple[str, str, float], ...] = setting(
        "ENVELOPE_<FEATURE>_<MIN|MAX>",
        (),
        "one bound, e.g. `ENVELOPE_VOLTAGE_MIN=200`; applied after `ENVELOPE_FILE`",
        envelope_bounds(),
    )
    watch_seconds: float = setting(
        "MODEL_WATCH",
        0.0,
        "check `MODEL_DIR` this often (seconds) for a newer artifact and swap to it "
        "(respecting `MODEL_DIGEST`); `0`: off",
        number(floor=0.0),
    )
    shadow_digest: str = setting(
        "SHADOW_DIGEST",
        "",
        "score every batch with this artifact too, off the response path, and count where it "
        "disagrees (docs/api.md)",
        text(lower=True),
        shown="(off)",
    )

    @property
    def served_name(self) -> str:
        """The name clients of the v2 routes use for the model."""
        return self.v2_name or self.name

    intra_op_threads: int = setting(
        "ORT_INTRA_OP_THREADS", 1, "onnxruntime intra-op threads per process", integer(minimum=1)
    )
    inter_op_threads: int = setting(
        "ORT_INTER_OP_THREADS", 1, "onnxruntime inter-op threads per process", integer(minimum=1)
    )
