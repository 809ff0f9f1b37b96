"""A message's body to readings: one reading as JSON (the fields of a ``/predict`` reading), or
``{"readings": [...]}`` for several readings of the message's sensor, in time order.

Decoding is as strict as ``/predict``'s (the same Structs, built for the served model's
features): a number as a string, an unknown or missing field, a value beyond float32 or a body
that is not JSON makes the message a dead letter, with the reason msgspec gives in words.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.contract.api import request_types


class Unusable(ValueError):
    """The message cannot be scored; its text is the dead letter's reason, ``code`` its kind
    (a metric label: empty_body, not_utf8, not_json, invalid_reading, too_many_readings)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class ReadingDecoder:
    """Decodes message bodies for one feature set (rebuilt when the served features change)."""

    def __init__(self, features: tuple[str, ...], units: tuple[str, ...], max_readings: int):
        self.features = features
        self.max_readings = max_readings
        reading, batch = request_types(features, units)
        self._one: msgspec.json.Decoder[Any] = msgspec.json.Decoder(reading)
        self._many: msgspec.json.Decoder[Any] = msgspec.json.Decoder(batch)

    def decode(self, body: bytes) -> list[Any]:
        """The readings of one message (at least one); raises Unusable."""
        if not body.strip():
            raise Unusable("empty_body", "empty body")
        # A batch names "readings"; a single reading cannot (it would be an unknown field).
        batch = b'"readings"' in body
        try:
            if batch:
                readings: list[Any] = self._many.decode(body).readings
            else:
                readings = [self._one.decode(body)]
        except msgspec.ValidationError as exc:
            raise Unusable("invalid_reading", f"invalid reading: {exc}") from None
        except UnicodeDecodeError as exc:
            raise Unusable("not_utf8", f"body is not UTF-8 (byte {exc.start})") from None
        except msgspec.DecodeError as exc:
            raise Unusable("not_json", f"body is not JSON: {exc}") from None
        if len(readings) > self.max_readings:
            raise Unusable(
                "too_many_readings",
                f"{len(readings)} readings in one message; at most {self.max_readings}",
            )
        return readings
