"""``POST /predict``'s wire format: a JSON batch of readings in, JSON verdicts out.

The scoring path (``app/serving/endpoint.py``) hands this protocol the body; it decodes it
strictly into the artifact's request Structs (``app/http/decoding.py``), lays the readings out
as a float32 matrix in feature order, and encodes the verdicts as ``PredictResponse``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from app.contract.api import ErrorBody
from app.contract.errors import ApiError
from app.http.decoding import RequestCodec
from app.model.verdicts import Verdicts
from app.serving.endpoint import Headers
from app.serving.predictions import build_response, feature_matrix

JSON: Headers = [(b"content-type", b"application/json")]


EXPLAIN = {b"": "flagged", b"flagged": "flagged", b"true": "all", b"false": "none"}


def explain_mode(query: bytes) -> str:
    """``?explain=``: ``true`` every reading's attribution, ``false`` none, ``flagged`` (the
    default) the flagged readings' only; anything else is a 400."""
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"explain":
            mode = EXPLAIN.get(value.lower())
            if mode is None:
                raise ApiError(
                    400, "bad_request", "explain must be true, false or flagged", "explain"
                )
            return mode
    return "flagged"


class PredictJson:
    """The ScoringProtocol of ``POST /predict``."""

    path = "/predict"

    def __init__(self, codec: RequestCodec, served_by: str) -> None:
        self.codec = codec
        self.features = codec.features
        self.served_by = served_by
        self._encode = msgspec.json.Encoder().encode

    def decode(self, body: bytes, scope: Any) -> tuple[np.ndarray, Any]:
        content_type = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        explain = explain_mode(scope.get("query_string", b""))
        request = self.codec.decode(body, content_type)
        return feature_matrix(request.readings, self.features), explain

    def encode(self, verdicts: Verdicts, context: Any) -> tuple[bytes, Headers]:
        return self._encode(build_response(verdicts, self.served_by, context)), JSON

    def explains(self, context: Any) -> str:
        return str(context)  # the ?explain= mode decode found

    def error(self, exc: ApiError) -> bytes:
        return self._encode(
            ErrorBody(status=exc.status_code, error=exc.code, detail=exc.detail, field=exc.field)
        )
