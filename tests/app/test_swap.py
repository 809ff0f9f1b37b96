"""Swapping the served model while serving: admin, rollback, refusals, shadow, SIGHUP, watch."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.dashboard.loadrun import LoadRun, LoadSpec
from app.model import artifact
from app.observe.metrics import Metrics, observe_many
from app.service.factory import create_api_app
from convert import pipeline
from tests.support.config import settings_from
from tests.support.examples import NOMINAL
from tests.support.metrics_text import value
from tests.support.models import publish_synthetic
from tests.support.servers import RunningServer, gridscore_serve

ADMIN = {"Authorization": "Bearer admin-secret"}


def _client(folder: Path, digest: str, **env: object) -> TestClient[Litestar]:
    settings = settings_from(folder, MODEL_DIGEST=digest[:12], ADMIN_KEY="admin-secret", **env)
    return TestClient(create_api_app(settings))


def _model_of(client: TestClient[Litestar]) -> str:
    response = client.post("/predict", json={"readings": [NOMINAL]})
    assert response.status_code == 200
    assert response.headers["x-model-digest"] == response.json()["model"]
    return str(response.json()["model"])


def test_admin_routes_are_404_without_an_admin_key(two_models: tuple[Path, str, str]) -> None:
    folder, _, b = two_models
    with TestClient(create_api_app(settings_from(folder))) as client:
        for path in ("/admin/model", "/admin/model/rollback", "/admin/shadow",
                     "/admin/shadow/clear"):  # fmt: skip
            response = client.post(path, json={"digest": b[:12]})
            assert response.status_code == 404, path
            assert response.json()["error"] == "not_found"


def test_admin_keys_are_checked(two_models: tuple[Path, str, str]) -> None:
    folder, a, b = two_models
    with _client(folder, a, API_KEY="scoring-key") as client:
        body = {"digest": b[:12]}
        assert client.post("/admin/model", json=body).status_code == 401
        wrong = client.post("/admin/model", json=body, headers={"X-Admin-Key": "nope"})
        assert wrong.status_code == 401
        scoring = client.post("/admin/model", json=body, headers={"X-API-Key": "scoring-key"})
        assert scoring.status_code == 403
        bad = client.post("/admin/model", json={"digest": "zz"}, headers=ADMIN)
        assert bad.status_code == 400
        missing = client.post("/admin/model", json={"digest": "abcdef123456"}, headers=ADMIN)
        assert missing.status_code == 404
        assert missing.json()["error"] == "no_such_artifact"
        assert client.get("/health").json()["model"]["digest"] == a  # nothing changed


def test_swap_then_rollback(two_models: tuple[Path, str, str]) -> None:
    folder, a, b = two_models
    with _client(folder, a) as client:
        assert _model_of(client) == a[:12]
        swapped = client.post("/admin/model", json={"digest": b[:12]}, headers=ADMIN)
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["model"] == b
        assert swapped.json()["previous"] == a
        assert _model_of(client) == b[:12]
        health = client.get("/health").json()
        assert health["model"]["digest"] == b
        assert health["previous"]["digest"] == a
        assert health["last_swap"]["result"] == "ok"
        metrics = client.get("/metrics").text
        assert value(metrics, "model_info", digest=b) == 1
        assert value(metrics, "model_info", digest=a) == 0
        assert value(metrics, "model_swaps_total", result="ok") == 1
        back = client.post("/admin/model/rollback", headers=ADMIN)
        assert back.status_code == 200
        assert _model_of(client) == a[:12]
        assert client.get("/health").json()["previous"]["digest"] == b


def test_a_tampered_candidate_is_refused_and_the_live_model_keeps_serving(
    two_models: tuple[Path, str, str], tmp_path: Path
) -> None:
    folder, a, b = two_models
    for name in (f"gridscore-iforest-{a[:12]}", f"gridscore-iforest-{b[:12]}"):
        for suffix in (".onnx", ".json"):
            shutil.copy(folder / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    tampered = tmp_path / f"gridscore-iforest-{b[:12]}.onnx"
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with _client(tmp_path, a) as client:
        refused = client.post("/admin/model", json={"digest": b[:12]}, headers=ADMIN)
        assert refused.status_code == 409
        assert "sha256" in refused.json()["detail"]
        assert _model_of(client) == a[:12]
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["last_swap"]["result"] == "refused"
        assert "tampered" in health.json()["last_swap"]["reason"]
        metrics = client.get("/metrics").text
        assert value(metrics, "model_swaps_total", result="refused") == 1


def test_shadow_disagreements_equal_an_offline_recount(two_models: tuple[Path, str, str]) -> None:
    folder, a, b = two_models
    rng = np.random.default_rng(5)
    batches = [
        rng.normal([230, 10, 50], [3, 1.5, 0.02], (50, 3)) * rng.choice([1.0, 1.03], (50, 3))
        for _ in range(20)
    ]
    with _client(folder, a, SHADOW_DIGEST=b[:12]) as client:
        assert client.get("/health").json()["shadow"] == b
        for batch in batches:
            readings = [
                dict(zip(("voltage", "current", "frequency"), r, strict=True))
                for r in batch.tolist()
            ]
            assert client.post("/predict", json={"readings": readings}).status_code == 200
        deadline = time.monotonic() + 10
        while value(client.get("/metrics").text, "shadow_batches_total") < len(batches):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        metrics = client.get("/metrics").text
    offline = 0
    verdicts = {}
    for digest in (a, b):
        loaded = artifact.load(folder / f"gridscore-iforest-{digest[:12]}.onnx")
        meta = loaded.metadata
        verdict = pipeline.served_verdict(
            loaded.model_bytes, meta.envelope.bounds, tuple(meta.features)
        )
        verdicts[digest] = (verdict, meta.threshold)
    for batch in batches:
        rows = batch.astype(np.float32)
        flags = []
        for verdict, threshold in verdicts.values():
            score, breach = verdict(rows)
            flags.append((score.astype(np.float64) > threshold) | breach.any(axis=1))
        offline += int(np.count_nonzero(flags[0] != flags[1]))
    assert value(metrics, "shadow_dropped_batches_total") == 0
    assert value(metrics, "shadow_readings_total") == 1_000
    assert value(metrics, "shadow_verdict_disagreements_total") == offline
    assert offline > 0  # the two models do disagree somewhere on these readings
    assert value(metrics, "shadow_score_difference_count") == 1_000


def test_bulk_observation_matches_one_observe_per_value() -> None:
    values = np.array([0.0, 1e-7, 1e-4, 0.0004, 0.0099, 0.01, 0.3, 0.7, 2.0])
    one, many = Metrics(), Metrics()
    for v in values:
        one.shadow_score_difference.observe(float(v))
    observe_many(many.shadow_score_difference, values)
    assert one.exposition() == many.exposition()


# -- live: two workers, traffic, swaps ------------------------------------------------------


@pytest.fixture
def live(
    two_models: tuple[Path, str, str], tmp_path: Path
) -> Iterator[tuple[RunningServer, str, str]]:
    folder, a, b = two_models
    models = tmp_path / "models"
    shutil.copytree(folder, models)
    with gridscore_serve(
        models, tmp_path, command="api", WORKERS="2", ADMIN_KEY="admin-secret",
        MODEL_DIGEST=a[:12], LOG_LEVEL="warning",
    ) as server:  # fmt: skip
        yield server, a, b


def _every_worker_serves(server: RunningServer, digest: str, within: float = 1.0) -> float:
    """Seconds until both workers report ``digest`` on /health (new connection each time)."""
    started = time.monotonic()
    seen: dict[str, str] = {}
    while time.monotonic() - started < within:
        health = httpx.get(f"{server.url}/health", headers={"connection": "close"}).json()
        seen[health["served_by"]] = health["model"]["digest"]
        if len(seen) == 2 and all(d == digest for d in seen.values()):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not every worker serves {digest[:12]} within {within} s: {seen}")


@pytest.mark.slow
def test_ten_swaps_under_load_fail_nothing(live: tuple[RunningServer, str, str]) -> None:
    server, a, b = live
    load = LoadRun(LoadSpec(f"{server.url}/predict", rate=300, connections=16, duration=30))
    runner = threading.Thread(target=lambda: __import__("asyncio").run(load.run()))
    runner.start()
    time.sleep(1.0)
    followed = []
    target = a
    for index in range(10):
        target = b if target == a else a
        if index % 2 == 0:
            answer = httpx.post(
                f"{server.url}/admin/model", json={"digest": target[:12]}, headers=ADMIN
            )
        else:
            answer = httpx.post(f"{server.url}/admin/model/rollback", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        followed.append(_every_worker_serves(server, target))
        time.sleep(0.5)
    runner.join()
    summary = load.result.summary()
    print(f"10 swaps under {summary['requests_per_s']} req/s: every worker followed within "
          f"{max(followed):.3f} s; models served {summary['models']}")  # fmt: skip
    assert summary["errors_by_status"] == {}
    assert summary["transport_errors"] == {}
    assert summary["ok"] == summary["requests"] > 2_000
    assert set(summary["models"]) == {a[:12], b[:12]}
    assert sum(summary["models"].values()) == summary["ok"]


@pytest.mark.slow
def test_sighup_and_a_watched_folder_pick_up_a_new_artifact(
    tmp_path: Path, two_models: tuple[Path, str, str]
) -> None:
    folder, a, b = two_models
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".onnx", ".json"):
        shutil.copy(folder / f"gridscore-iforest-{a[:12]}{suffix}", models)
    with gridscore_serve(
        models, tmp_path, command="api", WORKERS="2", LOG_LEVEL="warning"
    ) as server:
        _every_worker_serves(server, a)
        for suffix in (".calibration.json", ".calibration.svg", ".json", ".onnx"):
            shutil.copy(folder / f"gridscore-iforest-{b[:12]}{suffix}", models)
        server.process.send_signal(signal.SIGHUP)
        _every_worker_serves(server, b, within=5.0)
    third = tmp_path / "third"
    c = publish_synthetic(third, seed=3)
    with gridscore_serve(
        models, tmp_path, command="api", MODEL_WATCH="0.5", LOG_LEVEL="warning"
    ) as server:
        assert httpx.get(f"{server.url}/health").json()["model"]["digest"] == b
        # The large-batch graphs' folder and the metadata first, the model last (docs/model.md)
        for path in sorted(third.iterdir(), key=lambda p: p.suffix == ".onnx"):
            if path.is_dir():
                shutil.copytree(path, models / path.name)
            else:
                shutil.copy(path, models)
        deadline = time.monotonic() + 5
        while httpx.get(f"{server.url}/health").json()["model"]["digest"] != c:
            assert time.monotonic() < deadline
            time.sleep(0.1)
