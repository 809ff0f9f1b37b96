"""Drift: served readings counted into the model's training bins, and PSI over them."""

from __future__ import annotations

import time

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.observe import drift
from app.observe.psi import level, psi
from tests.support.metrics_text import value


def test_psi_matches_the_figures_the_prometheus_rules_are_tested_with() -> None:
    # The same inputs as ops/prometheus/rules_test.yml: four bins of a quarter each.
    assert round(psi([25, 25, 25, 25], [0.25] * 4), 4) == 0
    assert round(psi([10, 20, 30, 40], [0.25] * 4), 4) == 0.2282
    assert round(psi([5, 5, 15, 75], [0.25] * 4), 4) == 1.2442
    # An empty bin counts at the floor, not as infinitely far.
    assert round(psi([1, 1, 1, 0], [0.25] * 4), 4) == 2.0271
    assert psi([0, 0, 0, 0], [0.25] * 4) is None
    with pytest.raises(ValueError, match="4 served bins against 3"):
        psi([1, 1, 1, 1], [0.3, 0.3, 0.4])
    assert [level(v) for v in (None, 0.05, 0.15, 0.22, 0.3)] == [
        "no data",
        "stable",
        "slight",
        "moderate",
        "significant",
    ]


def _drift_counts(client: TestClient[Litestar], feature: str, digest: str) -> list[float]:
    text = client.get("/metrics").text
    return [
        value(text, "drift_readings_total", feature=feature, bin=str(index), model=digest[:12])
        for index in range(10)
    ]


def test_served_readings_are_counted_into_the_training_deciles(
    client: TestClient[Litestar], rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drift, "FLUSH_S", 0.05)
    model = client.get("/model").json()
    digest = model["digest"]
    features = {f["name"]: f for f in model["features"]}
    voltage = features["voltage"]["drift"]
    assert len(voltage["edges"]) == 9
    assert len(voltage["shares"]) == 10
    assert sum(voltage["shares"]) == pytest.approx(1.0)
    # The training shares are exported beside the counts, under the model's short digest.
    text = client.get("/metrics").text
    for index, share in enumerate(voltage["shares"]):
        exported = value(
            text, "drift_training_share", feature="voltage", bin=str(index), model=digest[:12]
        )
        assert exported == pytest.approx(share)

    before = _drift_counts(client, "voltage", digest)
    rows = rng.normal([236, 10, 50], [3, 1.5, 0.02], (600, 3)).round(3)
    for chunk in np.array_split(rows, 3):
        readings = [dict(zip(features, map(float, row), strict=True)) for row in chunk]
        assert client.post("/predict", json={"readings": readings}).status_code == 200
    # A refused batch counts nothing.
    bad = client.post("/predict", json={"readings": [{"voltage": 400.0}]})
    assert bad.status_code == 422
    deadline = time.monotonic() + 5
    while sum(_drift_counts(client, "voltage", digest)) - sum(before) < 600:
        assert time.monotonic() < deadline, "drift counts not flushed within 5 s"
        time.sleep(0.05)
    counted = np.subtract(_drift_counts(client, "voltage", digest), before)
    # Bin i holds the readings between edges[i-1] and edges[i] (an edge belongs above it).
    expected = np.bincount(
        np.searchsorted(voltage["edges"], rows[:, 0].astype(np.float32), side="right"),
        minlength=10,
    )
    assert counted.tolist() == expected.tolist()
    # Shifted 6 V up, the readings crowd the upper bins: a PSI far past "significant".
    assert psi(counted.tolist(), voltage["shares"]) > 1.0


def test_many_small_requests_are_counted_before_the_second_is_out(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests' matrices wait for at most FLUSH_REQUESTS requests, however long the flush
    period: the memory they hold stays bounded under a high rate of small requests."""
    monkeypatch.setattr(drift, "FLUSH_S", 3600.0)
    monkeypatch.setattr(drift, "FLUSH_REQUESTS", 3)
    model = client.get("/model").json()
    digest = model["digest"]
    reading = {f["name"]: f["drift"]["edges"][4] for f in model["features"]}
    before = sum(_drift_counts(client, "voltage", digest))
    for _ in range(3):
        assert client.post("/predict", json={"readings": [reading]}).status_code == 200
    deadline = time.monotonic() + 5
    while sum(_drift_counts(client, "voltage", digest)) - before < 3:
        assert time.monotonic() < deadline, "three requests' readings not counted within 5 s"
        time.sleep(0.05)
