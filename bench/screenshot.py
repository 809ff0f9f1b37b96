"""Screenshot of the dashboard at work, for the README (bench/results/dashboard.png).

python -m bench.screenshot      # starts a scorer and a dashboard on loopback, drives
                                # Chromium through a stream, an injection and a burst
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def wait_for_tick(page: Any, at_least: int, timeout: float = 10.0) -> int:
    """Poll the live panel until its tick counter reaches ``at_least``; returns the tick.

    Polls from Python: the page's CSP (no 'unsafe-eval') stops Playwright's in-page waits.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.get_attribute(".tick", "data-tick") if page.locator(".tick").count() else None
        tick = int(value) if value else 0
        if tick >= at_least:
            return tick
        if time.monotonic() > deadline:
            raise TimeoutError(f"the live panel reached tick {tick}, not {at_least}")
        time.sleep(0.05)


def capture(page: Any, dashboard_url: str, path: Path) -> None:
    """Drive ``page`` through a live stream, an injection and a burst, then screenshot it."""
    page.set_viewport_size({"width": 1200, "height": 1300})
    page.goto(dashboard_url)
    page.fill("#stream-form input[name=batch]", "8")
    page.fill("#stream-form input[name=interval]", "0.2")
    page.fill("#stream-form input[name=anomaly_rate]", "0.03")
    page.click("#start")
    wait_for_tick(page, 20, timeout=15)
    page.click("#inject")
    page.wait_for_selector("polygon.breach", timeout=5000)
    page.fill("#burst-form input[name=requests]", "2000")
    page.fill("#burst-form input[name=concurrency]", "16")
    page.check("#burst-form input[name=new_connection]")
    page.click("#fire-burst")
    page.wait_for_selector("#burst-done", timeout=30000)
    time.sleep(0.5)
    page.screenshot(path=str(path), full_page=True)


def main() -> int:
    from playwright.sync_api import sync_playwright

    from bench.serving import gridscore_serve

    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        models = Path("models")
        with (
            gridscore_serve(models, Path(tmp), command="api", WORKERS="2") as api,
            gridscore_serve(models, Path(tmp), command="dashboard", BACKEND_URL=api.url) as dash,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            capture(browser.new_page(), dash.url, RESULTS / "dashboard.png")
            browser.close()
    print(f"wrote {RESULTS / 'dashboard.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
