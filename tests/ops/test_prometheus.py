"""A real Prometheus on 127.0.0.1 scrapes a running gridscore and evaluates gridscore's rules."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench import loadgen
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
      - targets: ["127.0.0.1:{port}"]
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
            CONFIG.format(rules=ROOT / "ops" / "prometheus" / "rules.yml", port=server.port)
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
            assert {g["name"] for g in rules} == {"gridscore.recording", "gridscore.alerts"}
            # Loaded and parsed; a group not evaluated yet reports "unknown", a broken one "err".
            assert all(r["health"] in {"ok", "unknown"} for g in rules for r in g["rules"]), rules
            alerts = next(g for g in rules if g["name"] == "gridscore.alerts")
            assert {r["name"] for r in alerts["rules"]} == {
                "GridscoreHighErrorRatio",
                "GridscoreLatencyP95AboveSLO",
                "GridscoreNoReadyScorer",
                "GridscoreAnomalyRateSpike",
            }
            ready = _query(base, 'sum(scorer_ready{job="gridscore"})')
            assert float(ready[0]["value"][1]) == 2  # type: ignore[index]  # both workers
        finally:
            process.terminate()
            process.wait(timeout=20)
