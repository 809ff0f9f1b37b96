"""The HTTP contract as msgspec Structs (documented in docs/api.md)."""

from __future__ import annotations

from typing import Annotated

import msgspec

FLOAT32_MAX = 3.4028234663852886e38
"""Largest finite float32: readings are scored in float32, so larger magnitudes are refused."""


_FINITE = "Finite and within float32 range; NaN and infinities get 422."
Volts = Annotated[
    float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX, description=f"RMS voltage, V. {_FINITE}")
]
Amperes = Annotated[
    float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX, description=f"RMS current, A. {_FINITE}")
]
Hertz = Annotated[
    float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX, description=f"Frequency, Hz. {_FINITE}")
]
Timestamp = Annotated[
    str,
    msgspec.Meta(
        max_length=64, description="When the reading was taken (free-form, e.g. RFC 3339)."
    ),
]


class Reading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One sensor reading."""

    voltage: Volts
    current: Amperes
    frequency: Hertz
    timestamp: Timestamp | None = None


class PredictRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A batch of readings to score, 1 to MAX_BATCH of them."""

    # At least one reading (an empty batch is answered 400, as the contract says); the most
    # is MAX_BATCH, a setting, so the schema cannot state it (413 beyond).
    readings: Annotated[list[Reading], msgspec.Meta(min_length=1)]


class Prediction(msgspec.Struct, omit_defaults=True):
    """The verdict for one reading, in request order.

    ``anomaly``: the forest flags it (score > threshold) or a feature lies outside the
    operating envelope. ``out_of_range``: those features with their direction, such as
    ``voltage_low`` or ``current_high``; omitted when none.
    """

    anomaly: bool
    score: float
    out_of_range: list[str] = []


class PredictResponse(msgspec.Struct):
    """Predictions in request order, with totals and the instance that answered."""

    predictions: list[Prediction]
    anomalies: int
    total: int
    served_by: str


class ModelRef(msgspec.Struct):
    name: str
    digest: str


class EnvelopeState(msgspec.Struct):
    """The envelope in force: ``trained``, ``preset:en50160``, ``custom`` or ``off``."""

    source: str
    bounds: dict[str, list[float | None]]


class HealthResponse(msgspec.Struct, omit_defaults=True):
    """Readiness: ``ok`` only when a verified model is loaded."""

    status: str
    served_by: str
    features: list[str] | None = None
    model: ModelRef | None = None
    threshold: float | None = None
    envelope: EnvelopeState | None = None
    reason: str | None = None


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every error response: the status again, a stable code, a message, the field if any."""

    status: int
    error: str
    detail: str
    field: str | None = None
