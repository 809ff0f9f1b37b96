"""The operating envelope: which bounds are in force, and how breaches are named.

The compiled graph compares each reading with two bound vectors fed at run time, so operators
choose the bounds without recompiling: the ones derived from training data (default), a
standard's limits scaled from each feature's nominal value (EN 50160, ANSI C84.1 Range A), or
their own, from a JSON file or environment variables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from app.config.envelope import EnvelopeError

if TYPE_CHECKING:
    from app.config import Settings
    from app.contract.metadata import Metadata

# Each preset is a relative tolerance around the nominal value, per kind of feature (kinds
# come from the artifact: features in V and in Hz with a nominal value). EN 50160: supply
# voltage within nominal +/-10 %, frequency of a synchronously connected system within
# +/-1 % (for 99.5 % of a year). ANSI C84.1 Range A: service voltage within +/-5 % of nominal;
# it says nothing of frequency. Other features (current, power factor...) keep their trained
# bounds unless the operator sets them.
PRESETS: dict[str, dict[str, float]] = {
    "en50160": {"voltage": 0.10, "frequency": 0.01},
    "ansi-c84.1": {"voltage": 0.05},
}
PRESET_NAMES = ("trained", *PRESETS, "off")


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

    def breach_namer(self) -> BreachNamer:
        return BreachNamer(self.breach_columns(), self.features)


class BreachNamer:
    """Names the breaches of one row, ``<feature>_<low|high>`` feature by feature in feature
    order; a pattern seen once is remembered (rows out of range are few, patterns fewer)."""

    def __init__(self, columns: list[tuple[str, str]], features: tuple[str, ...]) -> None:
        self.names = [f"{feature}_{side}" for feature, side in columns]
        self.order = sorted(range(len(columns)), key=lambda j: (features.index(columns[j][0]), j))
        self._known: dict[bytes, list[str]] = {}

    def __call__(self, row: Any) -> list[str]:
        """``row``: one row of the breach matrix (bool numpy array)."""
        key = row.tobytes()
        names = self._known.get(key)
        if names is None:
            names = [self.names[j] for j in self.order if row[j]]
            if len(self._known) < 4096:
                self._known[key] = names
        return names


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
    nominal: Mapping[str, Mapping[str, float]] | None = None,
) -> Envelope:
    """The envelope in force: a preset, then any overrides on top (which make it "custom").

    ``nominal``: {"voltage": {feature: nominal}, "frequency": {feature: nominal}}, from the
    artifact; a standard preset scales the bounds of those features around their nominal.
    """
    if preset not in PRESET_NAMES:
        raise EnvelopeError(
            f"ENVELOPE_PRESET must be one of {', '.join(PRESET_NAMES)}, got {preset!r}"
        )
    if preset == "off":
        bounds = {name: [-math.inf, math.inf] for name in features}
    else:
        bounds = {name: list(trained[name]) for name in features}
        if preset in PRESETS:
            scaled = 0
            for kind, tolerance in PRESETS[preset].items():
                for name, value in (nominal or {}).get(kind, {}).items():
                    if name in bounds:
                        # Rounded: 230 V +10 % is 253 V, not 253.00000000000003 V.
                        bounds[name] = [
                            round(value * (1 - tolerance), 9),
                            round(value * (1 + tolerance), 9),
                        ]
                        scaled += 1
            if not scaled:
                kinds = " or ".join(PRESETS[preset])
                raise EnvelopeError(
                    f"ENVELOPE_PRESET={preset} scales {kinds} features from their nominal "
                    "value, and this artifact declares none (convert --units name=V,... "
                    "--nominal-voltage, --nominal-frequency)"
                )
    by_lower = {name.lower(): name for name in features}
    for feature, side, value in overrides:
        found = by_lower.get(feature.lower())
        if found is None:
            raise EnvelopeError(
                f"envelope bound for unknown feature {feature!r}; features: {features}"
            )
        name = found
        if math.isnan(value):
            raise EnvelopeError(f"envelope {name} {side} is NaN")
        bounds[name][0 if side == "min" else 1] = value
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
    nominal = {"voltage": meta.nominal.voltage, "frequency": meta.nominal.frequency}
    return resolve(
        tuple(meta.features),
        meta.envelope.bounds,
        settings.model.envelope_preset,
        overrides,
        nominal,
    )
