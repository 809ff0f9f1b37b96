"""The launcher: fails fast without a model, converts when allowed, explains itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.examples import EXAMPLE_BATCH
from tests.support.servers import gridscore_serve


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_subcommands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for command in ("serve", "convert", "verify"):
        assert command in result.stdout


def test_no_artifact_and_train_if_missing_0_exits_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run("serve", MODEL_DIR=str(tmp_path), TRAIN_IF_MISSING="0", PORT="1")
    assert result.returncode == 2
    assert "TRAIN_IF_MISSING=0" in result.stderr
    assert "python -m convert" in result.stderr
    assert time.monotonic() - started < 10


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = _run("serve", MODEL_DIR=str(tmp_path), WORKERS="two")
    assert result.returncode == 2
    assert "WORKERS must be an integer" in result.stderr


def test_bad_envelope_config_stops_the_launch(model_dir: Path) -> None:
    result = _run("serve", MODEL_DIR=str(model_dir), ENVELOPE_VOLTAGE_MIN="300", PORT="1")
    assert result.returncode == 2
    assert "envelope configuration" in result.stderr
    assert "must be below" in result.stderr


def test_verify_reports_a_good_artifact_and_refuses_a_tampered_one(
    artifact_path: Path, tmp_path: Path
) -> None:
    good = _run("verify", str(artifact_path))
    assert good.returncode == 0
    assert "sha256 verified" in good.stdout
    bad = tmp_path / artifact_path.name
    bad.write_bytes(artifact_path.read_bytes()[:-1])
    bad.with_suffix(".json").write_bytes(artifact_path.with_suffix(".json").read_bytes())
    refused = _run("verify", str(bad))
    assert refused.returncode == 2
    assert "refusing to load" in refused.stderr


@pytest.mark.slow
def test_serve_trains_when_missing_then_answers_the_example(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with gridscore_serve(models, tmp_path, TRAIN_IF_MISSING="1") as server:
        response = httpx.post(f"{server.url}/predict", json=EXAMPLE_BATCH)
        assert "[  publish]" in server.log()
    assert response.status_code == 200
    assert [p["anomaly"] for p in response.json()["predictions"]] == [False, True]
    assert len(list(models.glob("gridscore-iforest-*.onnx"))) == 1
