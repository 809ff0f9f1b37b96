"""A real Prometheus on 127.0.0.1 scrapes a running gridscore and evaluates gridscore's rules."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench import loadgen
from convert.data import normal_points
from tests.support.servers import free_port, gridscore_serve
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.system, pytest.mark.slow]

CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: gridscore
    static_configs:
      - targets: [{targets}]
"""


def _query(base: str, expr: str) -> list[dict[str, object]]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


def test_prometheus_scrapes_gridscore_and_loads_the_rules(model_dir: Path, tmp_path: Path) -> None:
    prometheus = require_tool("prometheus", "prometheus")
    with gridscore_serve(model_dir, tmp_path, command="api", WORKERS="2") as server:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            CONFIG.format(
                rules=ROOT / "ops" / "prometheus" / "rules.yml",
                targets=f'"127.0.0.1:{server.port}"',
            )
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            expr = (
                "histogram_quantile(0.95, sum by (le) "
                '(rate(request_latency_seconds_bucket{path="/predict"}[30s])))'
            )
            value = None
            deadline = time.monotonic() + 60
            while value is None and time.monotonic() < deadline:
                loadgen.run(loadgen.LoadSpec(f"{server.url}/predict", batch=10, duration=1.0))
                try:
                    result = _query(base, expr)
                except httpx.HTTPError:
                    continue  # Prometheus still starting
                if result:
                    value = float(result[0]["value"][1])  # type: ignore[index]
            assert value is not None, "no latency quantile from Prometheus within 60 s"
            assert 0 < value < 1  # seconds: a real number from the real histogram
            rules = httpx.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
            assert {g["name"] for g in rules} == {
                "gridscore.recording",
                "gridscore.drift",
                "gridscore.alerts",
                "gridscore.stream",
            }
            # Loaded and parsed; a group not evaluated yet reports "unknown", a broken one "err".
            assert all(r["health"] in {"ok", "unknown"} for g in rules for r in g["rules"]), rules
            alerts = next(g for g in rules if g["name"] == "gridscore.alerts")
            assert {r["name"] for r in alerts["rules"]} == {
                "GridscoreHighErrorRatio",
                "GridscoreLatencyP95AboveSLO",
                "GridscoreNoReadyScorer",
                "GridscoreAnomalyRateSpike",
                "GridscoreAnomalyRateOffExpectation",
                "GridscoreDriftModerate",
                "GridscoreDriftSignificant",
            }
            stream = next(g for g in rules if g["name"] == "gridscore.stream")
            assert {r["name"] for r in stream["rules"] if r["type"] == "alerting"} == {
                "GridscoreStreamLagGrowing",
                "GridscoreStreamDeadLetters",
                "GridscoreStreamBrokerUnreachable",
            }
            ready = _query(base, 'sum(scorer_ready{job="gridscore"})')
            assert float(ready[0]["value"][1]) == 2  # type: ignore[index]  # both workers
        finally:
            process.terminate()
            process.wait(timeout=20)


@contextlib.contextmanager
def _prometheus(config: Path, tsdb: Path) -> Iterator[str]:
    prometheus = require_tool("prometheus", "prometheus")
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _fast_drift_rules(source: Path, target: Path) -> None:
    """ops/prometheus/rules.yml with the drift group evaluated every second over 20 s instead
    of every 30 s over 5 minutes; every expression is the file's own. (The recorded names keep
    their ``5m`` suffix.)"""
    text = source.read_text()
    head, sep, drift = text.partition("  - name: gridscore.drift\n")
    drift, sep2, tail = drift.partition("\n  - name: ")
    drift = drift.replace("interval: 30s", "interval: 1s").replace("[5m]", "[20s]")
    assert sep, "no drift group in rules.yml"
    assert sep2, "no group after the drift group"
    assert "[20s]" in drift
    target.write_text(head + sep + drift + sep2 + tail)


def _psi(base: str) -> dict[str, float]:
    result = _query(base, "gridscore:drift_psi:5m")
    return {r["metric"]["feature"]: float(r["value"][1]) for r in result}  # type: ignore[index]


def test_prometheus_computes_psi_over_two_scorers_and_sees_voltage_drift(
    model_dir: Path, tmp_path: Path
) -> None:
    """Two scorers (one with two workers, like two pods) fed nominal readings, then readings
    with the voltage mean 8 V higher: the recording rules' PSI is under 0.1 for every
    feature, then over 0.25 for voltage only."""
    rng = np.random.default_rng(8)
    features = ("voltage", "current", "frequency")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with (
        gridscore_serve(model_dir, tmp_path / "a", command="api", WORKERS="2") as first,
        gridscore_serve(model_dir, tmp_path / "b", command="api", WORKERS="1") as second,
    ):
        rules = tmp_path / "rules.yml"
        _fast_drift_rules(ROOT / "ops" / "prometheus" / "rules.yml", rules)
        config = tmp_path / "prometheus.yml"
        targets = f'"127.0.0.1:{first.port}", "127.0.0.1:{second.port}"'
        config.write_text(CONFIG.format(rules=rules, targets=targets))
        with _prometheus(config, tmp_path / "tsdb") as base, httpx.Client(timeout=10) as client:

            def feed(seconds: float, shift: float) -> None:
                until = time.monotonic() + seconds
                while time.monotonic() < until:
                    for server in (first, second):
                        rows = normal_points(200, rng)
                        rows[:, 0] += shift
                        readings = [
                            dict(zip(features, map(float, row), strict=True))
                            for row in rows.round(3)
                        ]
                        response = client.post(f"{server.url}/predict", json={"readings": readings})
                        assert response.status_code == 200
                    time.sleep(0.05)

            def settled(seconds: float, shift: float, done: object) -> dict[str, float]:
                """Feed for ``seconds`` (the 20 s window fills), then until ``done(psi)``."""
                feed(seconds, shift)
                deadline = time.monotonic() + 30
                psi: dict[str, float] = {}
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        psi = _psi(base)
                    if set(psi) == set(features) and done(psi):  # type: ignore[operator]
                        return psi
                    feed(1.0, shift)
                return psi

            nominal = settled(22, 0.0, lambda psi: True)
            assert set(nominal) == set(features), nominal
            assert all(value < 0.1 for value in nominal.values()), nominal

            shifted = settled(22, 8.0, lambda psi: psi["voltage"] > 0.25)
            assert shifted["voltage"] > 0.25, shifted
            assert shifted["current"] < 0.1, shifted
            assert shifted["frequency"] < 0.1, shifted
            # Fleet-wide: both scorers' counts went into it.
            instances = _query(base, "count by (instance) (drift_readings_total)")
            assert len(instances) == 2
            print(f"PSI nominal {nominal}, shifted {shifted}")
