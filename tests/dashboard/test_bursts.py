"""Burst forms: the protocol select is checked like every other field, and a v2 burst posts
to the served model's infer path."""

from __future__ import annotations

import asyncio

import pytest

from app.contract.api import ModelResponse
from app.dashboard.bursts import BURST_PROTOCOLS, BurstLimits, BurstRunner
from app.dashboard.forms import ParamError
from app.dashboard.loadrun import merged_headers
from app.dashboard.readings import synthetic_features
from app.dashboard.v2_requests import PROTOCOLS


def test_the_select_offers_every_protocol_the_load_runs_speak() -> None:
    assert tuple(value for value, _ in BURST_PROTOCOLS) == PROTOCOLS


def test_an_unknown_protocol_is_refused() -> None:
    runner = BurstRunner("http://127.0.0.1:1", BurstLimits())
    with pytest.raises(ParamError, match="protocol must be one of"):
        asyncio.run(runner.start("concurrent", {"requests": "1", "protocol": "grpc"}))
    assert runner.current is None


@pytest.mark.parametrize(
    ("protocol", "v2_name", "path"),
    [("predict", "feeder-3", "/predict"), ("v2-json", "feeder-3", "/v2/models/feeder-3/infer"),
     ("v2-binary", "feeder-3", "/v2/models/feeder-3/infer"),
     # A scorer from before the v2 routes' name field: its artifact name.
     ("v2-json", "", "/v2/models/gridscore-iforest/infer")],
)  # fmt: skip
def test_the_burst_goes_to_the_route_of_its_protocol(
    protocol: str, v2_name: str, path: str
) -> None:
    model = ModelResponse(
        name="gridscore-iforest",
        digest="0" * 64,
        threshold=0.6,
        features=synthetic_features(),
        envelope_source="trained",
        calibration=None,  # type: ignore[arg-type]
        training_rows=1,
        data_source="synthetic",
        v2_name=v2_name,
    )

    async def describe() -> ModelResponse:
        return model

    async def started() -> str:
        runner = BurstRunner("http://127.0.0.1:1", BurstLimits())
        burst = await runner.start("concurrent", {"requests": "1", "protocol": protocol}, describe)
        runner.cancel()
        return burst.run.spec.url

    assert asyncio.run(started()) == f"http://127.0.0.1:1{path}"


def test_a_body_header_takes_the_place_of_the_same_header() -> None:
    base = (("X-API-Key", "k"), ("content-type", "text/plain"))
    body = (("Content-Type", "application/octet-stream"), ("Inference-Header-Content-Length", "9"))
    assert merged_headers(base, body) == (("X-API-Key", "k"), *body)
