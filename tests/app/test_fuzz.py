"""Fuzzing: schemathesis against the served OpenAPI schema, hypothesis on decoding.

No generated request may get a 5xx or a response that contradicts the schema; every valid
batch scores and every invalid one gets a 4xx.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient

from app.contract.api import FLOAT32_MAX
from app.contract.errors import ApiError
from app.http.decoding import RequestCodec
from app.service.factory import create_api_app
from app.serving.predictions import feature_matrix
from tests.support.config import settings_from
from tests.support.fuzzing import schemathesis_run
from tests.support.servers import gridscore_serve

FEATURES = ("voltage", "current", "frequency")
CODEC = RequestCodec(FEATURES, ("V", "A", "Hz"))


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Any:
    app = create_api_app(settings_from(model_dir, MAX_BATCH=200))
    with TestClient(app) as test_client:  # runs start-up: the model loads
        yield test_client


@pytest.mark.slow
def test_schemathesis_against_the_served_schema(model_dir: Path, tmp_path: Path) -> None:
    """At least 1,000 generated requests from /schema/openapi.json: no 5xx, and every
    response matches the schema (status code, content type, body)."""
    report = tmp_path / "schemathesis.xml"
    # With the admin key, generated requests reach the admin routes' own checks (digests,
    # bodies) instead of stopping at 401.
    with gridscore_serve(
        model_dir, tmp_path, command="api", MAX_BATCH="200", ADMIN_KEY="fuzz-admin"
    ) as server:
        generated, passed, _ = schemathesis_run(
            server.url,
            tmp_path,
            # The v2 routes have their own run (tests/app/test_v2_client.py).
            "--exclude-path-regex",
            "^/v2",
            "--max-examples",
            "1200",
            "--header",
            "Authorization: Bearer fuzz-admin",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        )
    assert generated >= 1000
    assert generated == passed


finite = st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX, allow_nan=False)
reading = st.fixed_dictionaries(
    dict.fromkeys(FEATURES, finite),
    optional={"timestamp": st.text(max_size=64)},
)


@given(st.lists(reading, min_size=1, max_size=50))
@settings(max_examples=300, deadline=None)
def test_every_valid_batch_decodes_into_the_right_matrix(readings: list[dict[str, Any]]) -> None:
    body = json.dumps({"readings": readings}).encode()
    request = CODEC.decode(body, "application/json")
    matrix = feature_matrix(request.readings, FEATURES)
    expected = np.array([[r[f] for f in FEATURES] for r in readings], dtype=np.float32)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, expected)
    assert np.isfinite(matrix).all()


bad_number = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e39, -1e39]),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def invalid_bodies(draw: st.DrawFn) -> bytes:
    readings = draw(st.lists(reading, min_size=1, max_size=5))
    victim = draw(st.integers(0, len(readings) - 1))
    kind = draw(st.sampled_from(["bad number", "missing", "unknown", "not json"]))
    if kind == "not json":
        return draw(st.binary(max_size=30).filter(lambda b: not b.strip().startswith(b"{")))
    target = dict(readings[victim])
    field = draw(st.sampled_from(FEATURES))
    if kind == "bad number":
        target[field] = draw(bad_number)
    elif kind == "missing":
        del target[field]
    else:
        target[draw(st.sampled_from(["phase", "power", "Voltage"]))] = 1.0
    readings[victim] = target
    return json.dumps({"readings": readings}, allow_nan=True).encode()


@given(invalid_bodies())
@settings(max_examples=300, deadline=None)
def test_every_invalid_body_is_a_4xx(body: bytes) -> None:
    with pytest.raises(ApiError) as raised:
        CODEC.decode(body, "application/json")
    assert 400 <= raised.value.status_code < 500


@given(st.lists(reading, min_size=1, max_size=20))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_valid_batch_scores_over_http(client: Any, readings: list[dict[str, Any]]) -> None:
    response = client.post("/predict", json={"readings": readings})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(readings)
    assert all(0 < p["score"] <= 1 for p in predictions)
