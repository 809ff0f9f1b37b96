"""The dashboard's first card is the alarms view, streamed over SSE from the stream workers'
alarm events: sensors in alarm, a flooded site, recent raises and clears, the stream's lag."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from tests.support import stream as s
from tests.support.browser import Page
from tests.support.nats import NatsServer, environment, nats_server
from tests.support.servers import RunningServer, gridscore_serve

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture(scope="module")
def broker() -> Iterator[NatsServer]:
    with nats_server() as server:
        yield server


@pytest.fixture(scope="module")
def worker(
    model_dir: Path, broker: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    # A small flood limit, so three sensors of one site flood it.
    env = environment(broker.url, FLOOD_LIMIT="2", ALARM_CLEAR_M="3")
    with gridscore_serve(
        model_dir, tmp_path_factory.mktemp("stream"), command="stream", **env
    ) as server:
        yield server


@pytest.fixture(scope="module")
def site(
    model_dir: Path, broker: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """API and dashboard in one process, the dashboard watching the broker's alarms."""
    with gridscore_serve(
        model_dir, tmp_path_factory.mktemp("serve"), command="serve", NATS_URL=broker.url
    ) as server:
        yield server


async def _send(url: str, subject: str, odd: list[bool]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    for i, flag in enumerate(odd):
        await js.publish(subject, json.dumps(s.reading(i, flag)).encode())
    await nc.close()


def send(url: str, subject: str, odd: list[bool]) -> None:
    """Publish from a thread of its own: Playwright's sync API holds this thread's loop."""
    worker = threading.Thread(target=asyncio.run, args=(_send(url, subject, odd),))
    worker.start()
    worker.join(30)


def test_the_alarms_card_comes_first_and_follows_raises_floods_and_clears(
    page: Page, broker: NatsServer, worker: RunningServer, site: RunningServer
) -> None:
    page.page.goto(site.url)
    cards = page.page.locator("main section.card h2")
    assert cards.nth(0).inner_text() == "Alarms"
    assert cards.nth(1).inner_text() == "Live readings"
    # The chart's place comes before the controls that start it.
    order = page.page.evaluate(
        "document.querySelector('#live').compareDocumentPosition("
        "document.querySelector('#stream-form')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    assert order
    page.page.wait_for_selector("#alarms-board[data-broker=connected]", timeout=15000)
    assert page.page.inner_text("#alarm-count") == "0"
    # A sensor of site south goes bad: its alarm appears, with why; then it recovers.
    send(broker.url, "grid.readings.south.pmu9", [False, True, True, True])
    row = page.page.wait_for_selector("tr.alarm[data-sensor='south.pmu9']", timeout=15000)
    assert "voltage" in row.inner_text() or "current" in row.inner_text()
    send(broker.url, "grid.readings.south.pmu9", [False] * 3)
    page.page.wait_for_selector(
        "#recent-alarms li[data-sensor='south.pmu9'][data-state=cleared]", timeout=15000
    )
    assert page.page.locator("tr.alarm[data-sensor='south.pmu9']").count() == 0
    # Three sensors of site north: the third raise floods the site instead.
    for sensor in ("pmu1", "pmu2", "pmu3"):
        send(broker.url, f"grid.readings.north.{sensor}", [True] * 3)
    banner = page.page.wait_for_selector(".flood-banner[data-site=north]", timeout=15000)
    assert "north.pmu3" in banner.inner_text()
    assert page.page.locator("tr.alarm[data-sensor='north.pmu3']").count() == 0  # held back
    lag = page.page.get_attribute("#stream-lag", "data-lag")
    assert lag is not None
    assert lag.isdigit()
    assert page.errors == []


def test_the_alarms_card_says_when_no_broker_answers(
    page: Page, model_dir: Path, tmp_path: Path
) -> None:
    with gridscore_serve(
        model_dir, tmp_path, command="serve", NATS_URL="nats://127.0.0.1:9"
    ) as lonely:
        page.page.goto(lonely.url)
        page.page.wait_for_selector("#alarms-board", timeout=15000)
        deadline = time.monotonic() + 15
        # Each change swaps the board in anew: read the one on the page now.
        while "unreachable" not in (page.page.get_attribute("#alarms-board", "data-broker") or ""):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "Stream broker unreachable" in page.page.inner_text("#alarms")
