"""The service benchmark's quick mode and the load generator's command line, end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.examples import NOMINAL
from tests.support.servers import gridscore_serve
from tests.support.tools import require_tool


@pytest.mark.slow
@pytest.mark.system
def test_quick_service_benchmark_reports_every_figure(model_dir: Path, tmp_path: Path) -> None:
    require_tool("wrk", "wrk")
    out = tmp_path / "service.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.service",
            "--quick",
            "--model-dir",
            str(model_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert {row["workers"] for row in report["cold_start"]} == {1, 2}
    assert all(0 < row["median_s"] < 30 for row in report["cold_start"])
    single = report["single_connection_2_workers"]["1"]
    assert single["ok"] == single["requests"] == 300
    assert single["connections_opened"] == 1
    for row in report["throughput_2_workers"]:
        assert row["errors_by_status"] == {}
        assert row["transport_errors"] == {}
        assert row["ok"] > 0
    workers = report["memory_per_worker_after_load"]
    assert len(workers) == 2
    assert all(w["rss_mib"] > 10 for w in workers)
    assert set(report["nagle"]) == {"stock_httptools", "gridscore_nodelay"}
    floor = report["http_floor_1_worker"]
    assert {"bare_asgi", "live", "predict_batch_1", "predict_batch_10000"} <= set(floor)
    for row in floor.values():
        assert row["errors"] == 0
        assert row["requests_per_s"] > 0
        assert row["p50_ms"] <= row["p99_ms"] <= row["p999_ms"]
    gc_runs = report["gc_1_worker"]
    assert (
        gc_runs["gc_freeze_1"]["startup"]["full_collection_ms_after"]
        < (gc_runs["gc_freeze_1"]["startup"]["full_collection_ms_before"])
    )
    order = report["request_order_1_worker"]
    assert set(order) == {
        "poll_batch_1_c8",
        "fair_batch_1_c8",
        "poll_batch_100_c8",
        "fair_batch_100_c8",
    }
    assert all(row["errors"] == 0 and row["requests_per_s"] > 0 for row in order.values())
    assert "start to first 200" in done.stdout


@pytest.mark.slow
@pytest.mark.system
def test_wrk_paces_each_connection_by_its_think_time(tmp_path: Path) -> None:
    from bench import serving
    from bench.service import wrk

    require_tool("wrk", "wrk")
    port = serving.free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    checkout = Path(__file__).resolve().parents[2]
    with serving.run_server(argv, dict(os.environ), port, tmp_path, cwd=checkout) as server:
        paced = wrk(f"{server.url}/", 3.0, connections=4, think_ms=50)
        flat_out = wrk(f"{server.url}/", 1.0, connections=4)
    # Four connections, each waiting 50 ms on average before each request: about 80 a second,
    # less what the requests themselves take.
    assert paced["errors"] == 0
    assert 55 < paced["requests_per_s"] <= 85
    assert flat_out["requests_per_s"] > 10 * paced["requests_per_s"]
    # wrk's own CPU, from the kernel's account of the finished child: idling between paced
    # requests, busy flat out.
    assert paced["client_cpu_pct"] < flat_out["client_cpu_pct"]
    assert flat_out["client_cpu_pct"] > 10


def test_a_measurement_with_failed_requests_is_refused() -> None:
    from bench.service import _medians

    run = {"requests_per_s": 900.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}
    assert _medians({"live": [run, run]})["live"]["requests_per_s"] == 900.0
    refused = re.escape("requests failed while measuring: {'predict': 7}")
    with pytest.raises(RuntimeError, match=refused):
        _medians({"live": [run], "predict": [run, {**run, "errors": 7}]})


@pytest.mark.slow
def test_a_baseline_checkout_serves_an_artifact_it_published(tmp_path: Path) -> None:
    from app.model import artifact
    from bench.serving import own_artifact

    checkout = Path(__file__).resolve().parents[2]
    folder = own_artifact(checkout)
    found = artifact.find(folder, "gridscore-iforest")
    assert found is not None
    assert found.with_suffix(".onnx").exists()
    with gridscore_serve(tmp_path / "empty", tmp_path, command="api", source=checkout) as server:
        answer = httpx.post(f"{server.url}/predict", json={"readings": [NOMINAL]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == found.stem.rsplit("-", 1)[-1]


@pytest.mark.slow
def test_loadgen_command_prints_a_json_report(model_dir: Path, tmp_path: Path) -> None:
    with gridscore_serve(model_dir, tmp_path) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                "--url",
                server.url,
                "-n",
                "100",
                "-c",
                "2",
                "--batch",
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["load"]["ok"] == 100
    assert report["load"]["rows_per_s"] > 0
    assert report["ceiling"]["ok"] > 0
    assert isinstance(report["generator_bound"], bool)
