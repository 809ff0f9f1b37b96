"""The operating envelope: which bounds are in force, and how breaches are named.

The compiled graph compares each reading with two bound vectors fed at run time, so operators
choose the bounds without recompiling: the ones derived from training data (default), a preset
for a 230 V / 50 Hz grid after EN 50160, or their own, from a JSON file or environment variables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from app.artifact import Metadata
    from app.settings import Settings

# EN 50160: supply voltage within nominal +/-10 %, frequency of a synchronously connected
# system within 50 Hz +/-1 % (for 99.5 % of a year). Current depends on the circuit, so it
# keeps the trained bounds unless the operator sets it.
PRESETS: dict[str, dict[str, tuple[float, float]]] = {
    "en50160": {"voltage": (207.0, 253.0), "frequency": (49.5, 50.5)},
}
PRESET_NAMES = ("trained", *PRESETS, "off")
_ENV_BOUND = re.compile(r"^ENVELOPE_(?P<feature>[A-Z0-9_]+)_(?P<side>MIN|MAX)$")


class EnvelopeError(ValueError):
    """The envelope configuration cannot be used."""


class Bound(msgspec.Struct, forbid_unknown_fields=True):
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Envelope:
    """Bounds per feature, in feature order; a reading outside is flagged."""

    source: str
    features: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def bounds(self) -> dict[str, list[float | None]]:
        """[low, high] per feature; None where unbounded."""
        return {
            name: [None if math.isinf(lo) else lo, None if math.isinf(hi) else hi]
            for name, lo, hi in zip(self.features, self.low, self.high, strict=True)
        }

    def breach_columns(self) -> list[tuple[str, str]]:
        """(feature, low|high) for each column of the graph's breach matrix."""
        return [(f, "low") for f in self.features] + [(f, "high") for f in self.features]

    def breach_names(self) -> list[list[str]]:
        """For each breach code (bit j = breach column j), ``<feature>_<low|high>`` names,
        feature by feature in feature order."""
        columns = self.breach_columns()
        order = sorted(range(len(columns)), key=lambda j: (self.features.index(columns[j][0]), j))
        return [
            [f"{columns[j][0]}_{columns[j][1]}" for j in order if code >> j & 1]
            for code in range(2 ** len(columns))
        ]


def env_overrides(env: Mapping[str, str]) -> tuple[tuple[str, str, float], ...]:
    """``ENVELOPE_<FEATURE>_<MIN|MAX>`` variables as (feature, min|max, value)."""
    found = []
    for name, raw in sorted(env.items()):
        match = _ENV_BOUND.match(name)
        if match is None or not raw.strip():
            continue
        try:
            value = float(raw)
        except ValueError:
            raise EnvelopeError(f"{name} must be a number, got {raw!r}") from None
        found.append((match["feature"].lower(), match["side"].lower(), value))
    return tuple(found)


def file_overrides(path: str) -> tuple[tuple[str, str, float], ...]:
    """Bounds from a JSON file: ``{"voltage": {"min": 207, "max": 253}, ...}``."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise EnvelopeError(f"ENVELOPE_FILE {path}: {exc.strerror}") from None
    try:
        decoded = msgspec.json.decode(raw, type=dict[str, Bound])
    except msgspec.MsgspecError as exc:
        raise EnvelopeError(f"ENVELOPE_FILE {path}: {exc}") from None
    found = []
    for feature, bound in decoded.items():
        for side in ("min", "max"):
            value = getattr(bound, side)
            if value is not None:
                found.append((feature, side, float(value)))
    return tuple(found)


def resolve(
    features: tuple[str, ...],
    trained: Mapping[str, list[float]],
    preset: str,
    overrides: tuple[tuple[str, str, float], ...] = (),
) -> Envelope:
    """The envelope in force: a preset, then any overrides on top (which make it "custom")."""
    if preset not in PRESET_NAMES:
        raise EnvelopeError(
            f"ENVELOPE_PRESET must be one of {', '.join(PRESET_NAMES)}, got {preset!r}"
        )
    if preset == "off":
        bounds = {name: [-math.inf, math.inf] for name in features}
    else:
        bounds = {name: list(trained[name]) for name in features}
        for name, (lo, hi) in PRESETS.get(preset, {}).items():
            bounds[name] = [lo, hi]
    for feature, side, value in overrides:
        if feature not in bounds:
            raise EnvelopeError(
                f"envelope bound for unknown feature {feature!r}; features: {features}"
            )
        if math.isnan(value):
            raise EnvelopeError(f"envelope {feature} {side} is NaN")
        bounds[feature][0 if side == "min" else 1] = value
    for feature, (lo, hi) in bounds.items():
        if not lo < hi:
            raise EnvelopeError(f"envelope for {feature}: min {lo} must be below max {hi}")
    source = "custom" if overrides else (f"preset:{preset}" if preset in PRESETS else preset)
    return Envelope(
        source=source,
        features=features,
        low=tuple(float(bounds[f][0]) for f in features),
        high=tuple(float(bounds[f][1]) for f in features),
    )


def configured(meta: Metadata, settings: Settings) -> Envelope:
    """The envelope in force for an artifact: preset, then ENVELOPE_FILE, then env bounds."""
    overrides = settings.model.envelope_overrides
    if settings.model.envelope_file:
        overrides = file_overrides(settings.model.envelope_file) + overrides
    return resolve(
        tuple(meta.features), meta.envelope.bounds, settings.model.envelope_preset, overrides
    )
