"""A real Chromium (Debian's, driven by Playwright) against separate API and dashboard processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import CHROMIUM_ARGS, Page, chromium
from tests.support.servers import RunningServer, gridscore_serve


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, and later tests (asyncio.run in the load generator) need the thread back.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 1300})
    yield Page(context.new_page())
    context.close()


@pytest.fixture(scope="module", params=["synthetic", "five-feature"])
def served_model(request: pytest.FixtureRequest, model_dir: Path, feeder_model_dir: Path) -> Path:
    """Every dashboard test runs against the default model and against one trained on a
    five-feature export: the page follows the features of the artifact served."""
    return model_dir if request.param == "synthetic" else feeder_model_dir


@pytest.fixture(scope="module")
def api(served_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with gridscore_serve(
        served_model, tmp_path_factory.mktemp("api"), command="api", WORKERS="2"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def dashboard(
    served_model: Path, api: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with gridscore_serve(
        served_model,
        tmp_path_factory.mktemp("dashboard"),
        command="dashboard",
        BACKEND_URL=api.url,
        DASHBOARD_MAX_BURST_REQUESTS="3000",
    ) as server:
        yield server
