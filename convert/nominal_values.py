"""The nominal voltage and frequency the standard envelope presets scale from.

Voltage features are the ones whose unit is ``V``, frequency features those in ``Hz``
(``--units``). Each gets a nominal value: the one given (``--nominal-voltage``,
``--nominal-frequency``), or else the standard value nearest its mean when that is within 10 %
(standard low-voltage system voltages such as 120, 230 or 400 V; 50 or 60 Hz). A feature with
neither keeps no nominal value, and a preset then leaves its trained bounds alone.
"""

from __future__ import annotations

from app.contract.metadata import FeatureSummary, NominalInfo

STANDARD_VOLTAGES = (
    100.0, 110.0, 115.0, 120.0, 127.0, 200.0, 208.0, 220.0, 230.0, 240.0, 277.0, 347.0,
    380.0, 400.0, 415.0, 440.0, 480.0, 600.0, 690.0,
)  # fmt: skip
STANDARD_FREQUENCIES = (50.0, 60.0)
TOLERANCE = 0.10


def _nearest(mean: float, standards: tuple[float, ...]) -> float | None:
    best = min(standards, key=lambda value: abs(value - mean))
    return best if abs(best - mean) <= TOLERANCE * best else None


def nominal_info(
    features: tuple[str, ...],
    units: tuple[str, ...],
    summaries: dict[str, FeatureSummary],
    voltage: float | None = None,
    frequency: float | None = None,
) -> NominalInfo:
    voltages: dict[str, float] = {}
    frequencies: dict[str, float] = {}
    # unit -> (the value given, the standard values, where a feature's nominal value goes)
    kinds = {
        "V": (voltage, STANDARD_VOLTAGES, voltages, "voltage"),
        "Hz": (frequency, STANDARD_FREQUENCIES, frequencies, "frequency"),
    }
    notes = []
    for name, unit in zip(features, units, strict=True):
        if unit not in kinds:
            continue
        given, standards, found, word = kinds[unit]
        mean = summaries[name].mean
        value = given if given is not None else _nearest(mean, standards)
        how = "given" if given is not None else "nearest standard value to the mean"
        if value is not None:
            found[name] = value
            notes.append(f"{name} {value:g} {unit} ({how}, mean {mean:.4g})")
        else:
            notes.append(f"{name}: no standard {word} within 10 % of its mean {mean:.4g}")
    derivation = "; ".join(notes) if notes else "no feature in V or Hz (--units)"
    return NominalInfo(voltage=voltages, frequency=frequencies, derivation=derivation)
