"""The HTTP contract as msgspec Structs (documented in docs/api.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from app.contract.metadata import CalibrationSummary, DriftBins, FeatureHistogram

FLOAT32_MAX = 3.4028234663852886e38
"""Largest finite float32: readings are scored in float32, so larger magnitudes are refused."""


_FINITE = "Finite and within float32 range; NaN and infinities get 422."
Timestamp = Annotated[
    str,
    msgspec.Meta(
        max_length=64, description="When the reading was taken (free-form, e.g. RFC 3339)."
    ),
]


def request_types(features: Sequence[str], units: Sequence[str]) -> tuple[type, type]:
    """``Reading`` and ``PredictRequest`` Structs for the artifact's features.

    The request schema follows the artifact served: one required float field per feature (in
    the artifact's order), the optional ``timestamp``, nothing else. Built once at start-up.
    """
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (
            name,
            Annotated[
                float,
                msgspec.Meta(
                    ge=-FLOAT32_MAX,
                    le=FLOAT32_MAX,
                    description=f"{name}{f', {unit}' if unit else ''}. {_FINITE}",
                ),
            ],
        )
        for name, unit in zip(features, units, strict=True)
    ]
    fields.append(("timestamp", Timestamp | None, None))
    reading = msgspec.defstruct(
        "Reading",
        fields,
        forbid_unknown_fields=True,
        gc=False,  # no references to other objects: the collector need not track readings
        module=__name__,
    )
    reading.__doc__ = "One sensor reading: the model's features, and an optional timestamp."
    request = msgspec.defstruct(
        "PredictRequest",
        # At least one reading (an empty batch is answered 400, as the contract says); the
        # most is MAX_BATCH, a setting, so the schema cannot state it (413 beyond).
        [("readings", Annotated[list[reading], msgspec.Meta(min_length=1)])],  # type: ignore[valid-type]
        forbid_unknown_fields=True,
        module=__name__,
    )
    request.__doc__ = "A batch of readings to score, 1 to MAX_BATCH of them."
    return reading, request


class Prediction(msgspec.Struct, omit_defaults=True, gc=False):
    """The verdict for one reading, in request order.

    ``anomaly``: the forest flags it (score > threshold) or a feature lies outside the
    operating envelope. ``out_of_range``: those features with their direction, such as
    ``voltage_low`` or ``current_high``; omitted when none. ``attribution``: each feature's
    share (summing to 1) in isolating the reading, and ``top_feature`` the largest; given for
    flagged readings, for every reading with ``?explain=true``, for none with ``false``.
    """

    anomaly: bool
    score: float
    out_of_range: list[str] = []
    attribution: dict[str, float] = {}
    top_feature: str = ""


class PredictResponse(msgspec.Struct, gc=False):
    """Predictions in request order, with totals, the instance that answered and the model
    that scored them (its digest's first 12 hex characters)."""

    predictions: list[Prediction]
    anomalies: int
    total: int
    served_by: str
    model: str = ""


class ModelRef(msgspec.Struct):
    name: str
    digest: str


class EnvelopeState(msgspec.Struct):
    """The envelope in force: ``trained``, ``preset:en50160``, ``custom`` or ``off``."""

    source: str
    bounds: dict[str, list[float | None]]


class SwapInfo(msgspec.Struct):
    """The last model swap this process tried."""

    result: str
    source: str
    digest: str
    reason: str
    at: str


class HealthResponse(msgspec.Struct, omit_defaults=True):
    """Readiness: ``ok`` only when a verified model is loaded."""

    status: str
    served_by: str
    features: list[str] | None = None
    model: ModelRef | None = None
    previous: ModelRef | None = None
    shadow: str | None = None
    last_swap: SwapInfo | None = None
    threshold: float | None = None
    envelope: EnvelopeState | None = None
    calibration: CalibrationSummary | None = None
    reason: str | None = None


class FeatureInfo(msgspec.Struct, omit_defaults=True):
    """One feature of the served model: its unit, its training distribution, its bounds."""

    name: str
    unit: str
    mean: float
    std: float
    min: float
    max: float
    envelope: list[float | None]  # [low, high] in force; None where unbounded
    histogram: FeatureHistogram | None = None
    # The fixed bins drift_readings_total{bin} counts into: bin i lies between edges[i-1] and
    # edges[i] (the first open below, the last above), with its share of the training rows.
    drift: DriftBins | None = None


class ModelResponse(msgspec.Struct):
    """The served model: what it expects, what it was trained on, how it was calibrated."""

    name: str
    digest: str
    threshold: float
    features: list[FeatureInfo]
    envelope_source: str
    calibration: CalibrationSummary
    training_rows: int
    data_source: str
    # Its name on the Open Inference Protocol routes: /v2/models/{v2_name}/infer.
    v2_name: str = ""


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every error response: the status again, a stable code, a message, the field if any."""

    status: int
    error: str
    detail: str
    field: str | None = None
