"""Rate limits per client: token buckets of requests and readings, 429 with Retry-After, a
metric label that never holds the key."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from app.contract.errors import ApiError
from app.serving.ratelimit import RateLimits, key_label
from tests.support.servers import gridscore_serve


def _limits(requests: float = 0.0, readings: float = 0.0, burst: float = 1.0) -> RateLimits:
    counter = Counter("limited", "x", ["client", "limit"], registry=CollectorRegistry())
    return RateLimits(requests, readings, burst, counter)


def test_a_client_over_its_request_rate_is_told_when_to_come_back() -> None:
    limits = _limits(requests=5, burst=1)
    noisy, quiet = limits.client({}, b"noisy-key"), limits.client({}, b"quiet-key")
    for _ in range(5):
        limits.admit_request(noisy)
    with pytest.raises(ApiError) as refused:
        limits.admit_request(noisy)
    assert refused.value.status_code == 429
    assert refused.value.headers["retry-after"] == "1"
    limits.admit_request(quiet)  # another client's bucket is its own
    time.sleep(0.25)  # refilled at 5 a second
    limits.admit_request(noisy)


def test_readings_are_counted_and_a_batch_over_the_burst_is_named() -> None:
    limits = _limits(readings=1000, burst=2)
    client = limits.client({"client": ("10.0.0.7", 5000)}, b"")
    limits.admit_readings(client, 1500)
    with pytest.raises(ApiError) as over:
        limits.admit_readings(client, 1000)
    assert over.value.status_code == 429
    assert over.value.headers["retry-after"] == "1"
    with pytest.raises(ApiError, match="exceed this client's burst of 2000"):
        limits.admit_readings(client, 2001)


def test_an_empty_readings_bucket_refuses_before_the_body_is_read() -> None:
    limits = _limits(readings=1000, burst=1)
    batch_job, operator = limits.client({}, b"batch-job"), limits.client({}, b"operator")
    limits.admit_request(batch_job)
    limits.admit_readings(batch_job, 1000)  # its whole second's worth
    with pytest.raises(ApiError) as refused:
        limits.admit_request(batch_job)  # at admission, before any body
    assert refused.value.status_code == 429
    assert refused.value.headers["retry-after"] == "1"
    assert "1000 readings/s" in refused.value.detail
    limits.admit_request(operator)
    time.sleep(0.01)  # 10 readings' worth refilled: a request may come in again...
    limits.admit_request(batch_job)
    with pytest.raises(ApiError):
        limits.admit_readings(batch_job, 1000)  # ...but not its batch of 1,000
    # Until the bucket holds that batch, its requests are refused before their bodies are read.
    with pytest.raises(ApiError) as again:
        limits.admit_request(batch_job)
    assert again.value.headers["retry-after"] == "1"
    time.sleep(1.0)
    limits.admit_request(batch_job)
    limits.admit_readings(batch_job, 1000)


def test_the_metric_label_is_a_hash_never_the_key() -> None:
    limits = _limits(requests=1)
    key = b"s3cret-operator-key"
    client = limits.client({}, key)
    limits.admit_request(client)
    with pytest.raises(ApiError):
        limits.admit_request(client)
    by_address = limits.client({"client": ("192.0.2.1", 1)}, b"")
    limits.admit_request(by_address)
    with pytest.raises(ApiError):
        limits.admit_request(by_address)
    samples = {
        tuple(sorted(s.labels.items())): s.value
        for metric in limits.limited.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }
    assert samples == {
        (("client", key_label(key)), ("limit", "requests")): 1.0,
        (("client", "address"), ("limit", "requests")): 1.0,
    }
    assert key.decode() not in repr(samples)
    assert key_label(key).startswith("key-")
    assert len(key_label(key)) == 12


READING = {"readings": [{"voltage": 230.0, "current": 10.0, "frequency": 50.0}]}


@pytest.mark.slow
def test_a_noisy_client_is_refused_while_a_quiet_one_is_served(
    model_dir: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.write_text("noisy-1c9e\nquiet-77ab\n")
    env = {"API_KEY_FILE": str(keys), "RATE_LIMIT_REQUESTS": "50", "RATE_LIMIT_BURST": "1"}
    with gridscore_serve(model_dir, tmp_path, command="api", **env) as server:
        url = f"{server.url}/predict"
        done = threading.Event()
        answers: dict[str, list[httpx.Response]] = {"noisy-1c9e": [], "quiet-77ab": []}

        def client(key: str, pause: float) -> None:
            with httpx.Client(headers={"X-API-Key": key}) as session:
                while not done.is_set():
                    answers[key].append(session.post(url, json=READING))
                    time.sleep(pause)

        threads = [
            threading.Thread(target=client, args=("noisy-1c9e", 0.0)),
            threading.Thread(target=client, args=("quiet-77ab", 0.05)),  # 20 a second
        ]
        for thread in threads:
            thread.start()
        time.sleep(3.0)
        done.set()
        for thread in threads:
            thread.join(timeout=10)
        metrics = httpx.get(f"{server.url}/metrics").text

    noisy, quiet = answers["noisy-1c9e"], answers["quiet-77ab"]
    refused = [a for a in noisy if a.status_code == 429]
    assert len(refused) > len(noisy) / 2, len(noisy)
    assert 100 <= len(noisy) - len(refused) <= 50 * 3 + 50 + 10  # the rate, and one burst
    assert all(a.headers["retry-after"].isdigit() for a in refused)
    body: dict[str, Any] = refused[0].json()
    assert body["error"] == "rate_limited"
    assert {a.status_code for a in quiet} == {200}
    assert len(quiet) > 40
    assert f'rate_limited_total{{client="{key_label(b"noisy-1c9e")}",limit="requests"}}' in metrics
    assert "noisy-1c9e" not in metrics
