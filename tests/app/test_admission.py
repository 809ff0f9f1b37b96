"""Who and how much gets into /predict: API key, in-flight bound, time budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from app.config import Settings
from app.service.factory import create_api_app
from app.serving.admission import key_matches
from tests.support.config import settings_from
from tests.support.examples import NOMINAL
from tests.support.fakes import EchoScorer, holder_with

pytestmark = pytest.mark.anyio

BODY = {"readings": [NOMINAL]}


class SlowScorer(EchoScorer):
    """Takes ``seconds`` per batch, in the worker thread (INLINE_ROWS=0 sends it there)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(self.seconds)
        return super().score(matrix)


def _client(settings: Settings, scorer: object) -> httpx.AsyncClient:
    app = create_api_app(settings, holder=holder_with(scorer))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_key_comparison() -> None:
    keys = [b"alpha-key", b"beta-key"]
    assert key_matches(b"beta-key", keys)
    assert not key_matches(b"beta-ke", keys)
    assert not key_matches(b"", keys)


async def test_api_key_guards_predict_only(model_dir: object) -> None:
    settings = settings_from(API_KEY="s3cret,other")
    async with _client(settings, EchoScorer()) as client:
        missing = await client.post("/predict", json=BODY)
        wrong = await client.post("/predict", json=BODY, headers={"x-api-key": "nope"})
        bearer = await client.post(
            "/predict", json=BODY, headers={"authorization": "Bearer s3cret"}
        )
        header = await client.post("/predict", json=BODY, headers={"x-api-key": "other"})
        open_paths = [await client.get(p) for p in ("/health", "/live", "/metrics")]
        metrics = (await client.get("/metrics")).text
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert bearer.status_code == header.status_code == 200
    assert [r.status_code for r in open_paths] == [200, 200, 200]
    assert 'requests_total{method="POST",path="/predict",status="401"} 2.0' in metrics


async def test_beyond_max_in_flight_is_503_at_once_while_probes_stay_quick() -> None:
    settings = settings_from(MAX_IN_FLIGHT=2, INLINE_ROWS=0, REQUEST_TIMEOUT=10)
    async with _client(settings, SlowScorer(1.0)) as client:
        slow = [asyncio.create_task(client.post("/predict", json=BODY)) for _ in range(2)]
        await asyncio.sleep(0.2)  # both are in flight now
        started = time.monotonic()
        refused = await client.post("/predict", json=BODY)
        live = await client.get("/live")
        health = await client.get("/health")
        quick = time.monotonic() - started
        done = await asyncio.gather(*slow)
    assert refused.status_code == 503
    assert refused.json()["error"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert live.status_code == health.status_code == 200
    assert quick < 0.5  # not queued behind the slow ones
    assert [r.status_code for r in done] == [200, 200]


async def test_work_over_the_time_budget_is_503_with_retry_after() -> None:
    settings = settings_from(REQUEST_TIMEOUT=0.3, INLINE_ROWS=0)
    async with _client(settings, SlowScorer(1.0)) as client:
        response = await client.post("/predict", json=BODY)
    assert response.status_code == 503
    assert response.json()["error"] == "timeout"
    assert response.headers["retry-after"] == "1"


async def test_a_body_slower_than_the_budget_is_408() -> None:
    settings = settings_from(REQUEST_TIMEOUT=0.3)

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"readings": ['
        await asyncio.sleep(1.0)
        yield b"]}"

    async with _client(settings, EchoScorer()) as client:
        response = await client.post(
            "/predict", content=trickle(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 408
    assert response.json()["error"] == "request_timeout"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


V2_PATH = "/v2/models/gridscore-iforest/infer"
V2_BODY = {"inputs": [{"name": "readings", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}


async def test_the_v2_route_shares_the_in_flight_bound_and_the_time_budget() -> None:
    """/predict and v2 infer are one scoring path: requests in flight on one count against
    the other, and a v2 request over the budget gets the same 503, in v2's error shape."""
    settings = settings_from(MAX_IN_FLIGHT=2, INLINE_ROWS=0, REQUEST_TIMEOUT=0.6)
    async with _client(settings, SlowScorer(1.0)) as client:
        slow = [asyncio.create_task(client.post("/predict", json=BODY)) for _ in range(2)]
        await asyncio.sleep(0.2)
        refused = await client.post(V2_PATH, json=V2_BODY)
        await asyncio.gather(*slow)
        over_budget = await client.post(V2_PATH, json=V2_BODY)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "requests in progress" in refused.json()["error"]
    assert over_budget.status_code == 503
    assert over_budget.headers["retry-after"] == "1"
    assert "not scored within 0.6 s" in over_budget.json()["error"]
