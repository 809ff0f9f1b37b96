"""The dashboard as its own process: lean imports, prompt shutdown with streams open, CSRF."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import gridscore_serve

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from litestar.testing import TestClient
from app.service.factory import create_dashboard_app
from app.config import Settings

settings = Settings.from_env({'BACKEND_URL': 'http://127.0.0.1:9'})
with TestClient(create_dashboard_app(settings)) as client:
    page = client.get("/")
    assert page.status_code == 200, page.text
    status = client.get("/dashboard/status")
    assert "Scorer unavailable" in status.text, status.text
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"onnxruntime", "numpy", "sklearn"})
print("HEAVY", heavy)
"""


def test_dashboard_never_imports_onnxruntime_or_numpy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_vendored_scripts_match_their_recorded_sha256() -> None:
    record = json.loads((ROOT / "static" / "vendor.json").read_text())
    for entry in record["files"]:
        data = (ROOT / "static" / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"] in entry["file"]  # the version is in the file name
    base = (ROOT / "templates" / "base.html").read_text()
    for entry in record["files"]:
        assert f"/static/{entry['file']}" in base
    assert "http" not in base.split("<body")[0].replace('"http-equiv', "")  # no CDN


@pytest.mark.slow
def test_sigterm_with_an_open_stream_exits_promptly(model_dir: Path, tmp_path: Path) -> None:
    with (
        gridscore_serve(model_dir, tmp_path, command="api") as api,
        gridscore_serve(
            model_dir, tmp_path, command="dashboard", BACKEND_URL=api.url, GRACEFUL_TIMEOUT="20"
        ) as dashboard,
    ):
        ended = threading.Event()
        ticks: list[str] = []

        def watch() -> None:
            url = f"{dashboard.url}/dashboard/stream?batch=2&interval=0.2"
            with httpx.stream("GET", url, timeout=30) as response:
                ticks.extend(x for x in response.iter_lines() if x.startswith("event: tick"))
            ended.set()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while len(ticks) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(ticks) >= 2
        started = time.monotonic()
        dashboard.process.send_signal(signal.SIGTERM)
        dashboard.process.wait(timeout=15)
        took = time.monotonic() - started
        assert ended.wait(5)  # the stream was closed by the server, not left hanging
    # Well inside GRACEFUL_TIMEOUT (20 s): the open stream did not hold the shutdown.
    assert took < 5, took


@pytest.mark.slow
def test_dashboard_posts_need_the_csrf_token(model_dir: Path, tmp_path: Path) -> None:
    with (
        gridscore_serve(model_dir, tmp_path, command="api") as api,
        gridscore_serve(model_dir, tmp_path, command="dashboard", BACKEND_URL=api.url) as dashboard,
    ):
        with httpx.Client(base_url=dashboard.url) as browser:
            page = browser.get("/")
            token = page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]
            refused = browser.post("/dashboard/inject")
            accepted = browser.post("/dashboard/inject", headers={"x-csrftoken": token})
        # A cross-site page can make the browser post, but cannot read the token.
        forged = httpx.post(f"{dashboard.url}/dashboard/bursts/concurrent", data={"requests": 5})
    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert "inject-result" in accepted.text
    assert forged.status_code == 403
