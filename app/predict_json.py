"""``POST /predict``'s wire format: a JSON batch of readings in, JSON verdicts out.

The scoring path (``app/endpoint.py``) hands this protocol the body; it decodes it strictly into
the artifact's request Structs (``app/decoding.py``), lays the readings out as a float32 matrix
in feature order, and encodes the verdicts as ``PredictResponse``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from app.decoding import RequestCodec
from app.endpoint import Headers, Verdicts
from app.errors import ApiError
from app.predictions import build_response, feature_matrix
from app.schemas import ErrorBody

JSON: Headers = [(b"content-type", b"application/json")]


class PredictJson:
    """The ScoringProtocol of ``POST /predict``."""

    path = "/predict"

    def __init__(self, codec: RequestCodec, served_by: str) -> None:
        self.codec = codec
        self.features = codec.features
        self.served_by = served_by
        self._encode = msgspec.json.Encoder().encode

    def decode(self, body: bytes, headers: Headers) -> tuple[np.ndarray, Any]:
        content_type = ""
        for name, value in headers:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        request = self.codec.decode(body, content_type)
        return feature_matrix(request.readings, self.features), None

    def encode(self, verdicts: Verdicts, context: Any) -> tuple[bytes, Headers]:
        return self._encode(build_response(verdicts, self.served_by)), JSON

    def error(self, exc: ApiError) -> bytes:
        return self._encode(
            ErrorBody(status=exc.status_code, error=exc.code, detail=exc.detail, field=exc.field)
        )
