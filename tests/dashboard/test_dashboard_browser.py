"""The dashboard in a real browser: live charts, injections, bursts, outages, safety."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from app.contract.api import ModelResponse
from app.dashboard.readings import ReadingSampler
from tests.support.browser import Page, wait_for_tick
from tests.support.servers import RunningServer, free_port, gridscore_serve

pytestmark = [pytest.mark.system, pytest.mark.slow]


def _tick(page: Page) -> int:
    value = page.page.get_attribute(".tick", "data-tick")
    return int(value) if value else 0


def _fire(page: Page, button: str, timeout: float = 15000) -> None:
    """Click a burst button and wait until that burst (not an earlier one) is done."""
    previous = int(page.page.get_attribute("#burst", "data-id") or 0)
    page.page.click(button)
    page.page.wait_for_selector(
        f"#burst[data-id='{previous + 1}'][data-state=done]", timeout=timeout
    )


def _start_stream(page: Page, interval: str = "0.3") -> None:
    page.page.fill("#stream-form input[name=interval]", interval)
    page.page.click("#start")


def test_page_loads_streams_and_stops(
    page: Page, dashboard: RunningServer, api: RunningServer
) -> None:
    features = httpx.get(f"{api.url}/health").json()["features"]
    page.page.goto(dashboard.url)
    assert page.page.title() == "gridscore dashboard"
    _start_stream(page)
    started = time.monotonic()
    wait_for_tick(page.page, 2, timeout=3)
    assert time.monotonic() - started < 3
    # One panel per feature of the served model, in its order.
    panels = page.page.locator("svg.readings-chart .panel")
    assert [panels.nth(i).get_attribute("data-feature") for i in range(panels.count())] == features
    assert page.page.locator("svg.readings-chart polyline").count() == len(features)
    page.page.click("#stop")
    page.page.wait_for_selector("#live[data-state=stopped]")
    assert page.page.locator(".tick").count() == 0
    time.sleep(1.0)  # three more intervals: nothing comes back
    assert page.page.locator(".tick").count() == 0
    assert page.errors == []


def test_injected_extreme_reading_is_marked_and_counted(
    page: Page, dashboard: RunningServer, api: RunningServer
) -> None:
    page.page.goto(dashboard.url)
    page.page.fill("#stream-form input[name=anomaly_rate]", "0")
    _start_stream(page, "0.2")
    wait_for_tick(page.page, 2)
    before = int(page.page.inner_text("#anomalies-total"))
    page.page.click("#inject")
    result = page.page.wait_for_selector("#inject-result")
    feature = result.get_attribute("data-feature")
    direction = result.get_attribute("data-direction")
    assert "anomaly" in result.inner_text()
    marker = page.page.wait_for_selector(
        f"polygon.breach[data-breach={feature}_{direction}]", timeout=2000
    )
    assert marker is not None
    assert int(page.page.inner_text("#anomalies-total")) > before
    # The verdict line names the feature the forest credits most, with a bar of the shares;
    # the stream lists the reading among its latest flagged ones, with the same two.
    features = [f["name"] for f in httpx.get(f"{api.url}/model").json()["features"]]
    assert page.page.inner_text("#inject-top-feature") in features
    assert page.page.locator("#inject-result svg.share-bar rect").count() >= 1
    flagged = page.page.wait_for_selector("#flagged tbody tr", timeout=2000)
    assert flagged.get_attribute("data-top-feature") in features
    assert flagged.query_selector("svg.share-bar rect") is not None
    assert page.errors == []


def _bar_shares(row: Any) -> dict[str, float]:
    """A share bar's segments, as fractions of its width."""
    svg = row.query_selector("svg.share-bar")
    width = float(svg.get_attribute("width"))
    return {
        rect.get_attribute("data-feature"): float(rect.get_attribute("width")) / width
        for rect in svg.query_selector_all("rect")
    }


def test_generated_batch_says_why_each_flagged_reading_is_flagged(
    page: Page, dashboard: RunningServer, api: RunningServer
) -> None:
    features = [f["name"] for f in httpx.get(f"{api.url}/model").json()["features"]]
    page.page.goto(dashboard.url)
    page.page.fill("#stream-form input[name=batch]", "40")
    page.page.fill("#stream-form input[name=anomaly_rate]", "1")
    page.page.click("#generate")
    page.page.wait_for_selector(".batch table")
    flagged = page.page.query_selector_all(".batch tr.anomaly")
    assert len(flagged) >= 20  # every reading pushed 4 to 8 standard deviations out
    for row in flagged:
        top = row.query_selector(".top-feature").inner_text().split()[0]
        assert top in features
        shares = _bar_shares(row)
        assert set(shares) <= set(features)
        assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)  # shares sum to 1
        # The top feature has the longest segment, up to the 0.1 px the widths are drawn to.
        width = float(row.query_selector("svg.share-bar").get_attribute("width"))
        assert shares[top] >= max(shares.values()) - 0.1 / width, (top, shares)
    for row in page.page.query_selector_all(".batch tr.normal"):
        assert row.query_selector("svg.share-bar") is None  # explained only when flagged
    assert page.errors == []


def test_drift_panel_ranks_the_shifted_feature_first(
    page: Page, dashboard: RunningServer, api: RunningServer
) -> None:
    """Nominal readings, then readings with the voltage 8 V higher, scored by the scorer the
    dashboard watches: its drift panel shows every PSI under 0.1, then voltage on top, over
    0.25, the others still under 0.1."""
    model = msgspec.json.decode(httpx.get(f"{api.url}/model").content, type=ModelResponse)
    volts = [f.name for f in model.features if f.unit == "V"]
    shifted = "voltage" if "voltage" in volts else volts[0]
    sampler = ReadingSampler(model.features, seed=5)
    page.page.goto(dashboard.url)
    page.page.select_option("#drift-window", "30")
    page.page.wait_for_selector("#drift-panel svg.psi-bars")

    def post(batches: int, shift: float) -> None:
        for _ in range(batches):
            readings = sampler.batch(500, 0.0)
            for reading in readings:
                reading[shifted] += shift
            assert httpx.post(f"{api.url}/predict", json={"readings": readings}).status_code == 200

    def panel() -> tuple[int, dict[str, float]]:
        # One read of one refresh: htmx swaps the panel every 3 s, so the count and the bars
        # read separately could come from two refreshes (a small early window's PSI).
        readings, bars = page.page.eval_on_selector(
            "#drift-panel",
            """panel => [
                Number(panel.querySelector('#drift-readings').textContent),
                [...panel.querySelectorAll('g.psi')].map(
                    bar => [bar.dataset.feature, Number(bar.dataset.psi || NaN)]),
            ]""",
        )
        return int(readings), dict(bars)

    def wait_for(condition: Any, feed_shift: float) -> dict[str, float]:
        deadline = time.monotonic() + 30
        shown: dict[str, float] = {}
        while time.monotonic() < deadline:
            post(2, feed_shift)
            time.sleep(0.5)
            readings, shown = panel()
            if len(shown) == len(model.features) and condition(readings, shown):
                return shown
        return shown

    nominal = wait_for(lambda readings, psi: readings >= 4000, 0.0)
    assert all(value < 0.1 for value in nominal.values()), nominal
    after = wait_for(lambda readings, psi: psi[shifted] > 0.25, 8.0)
    assert after[shifted] > 0.25, after
    assert all(value < 0.1 for name, value in after.items() if name != shifted), after
    # Drawn largest first: the shifted feature heads the panel.
    first = page.page.query_selector("#drift-panel g.psi")
    assert first.get_attribute("data-feature") == shifted
    assert first.get_attribute("data-level") == "significant"
    assert page.errors == []


def test_concurrent_burst_reports_figures_and_connections(
    page: Page, dashboard: RunningServer, api: RunningServer
) -> None:
    page.page.goto(dashboard.url)

    def burst(new_connection: bool) -> dict[str, str]:
        page.page.fill("#burst-form input[name=requests]", "200")
        page.page.fill("#burst-form input[name=concurrency]", "8")
        page.page.set_checked("#burst-form input[name=new_connection]", new_connection)
        _fire(page, "#fire-burst")
        return {
            name: page.page.inner_text(f"#burst-{name}")
            for name in ("rps", "latency", "errors", "connections", "count")
        }

    keep_alive = burst(False)
    fresh = burst(True)
    assert float(keep_alive["rps"]) > 0
    assert keep_alive["latency"].count("ms") == 3  # p50 / p95 / p99
    assert keep_alive["errors"] == "0"
    assert keep_alive["count"] == "200 / 200"
    assert int(keep_alive["connections"]) == 8
    assert int(fresh["connections"]) == 200  # new connection each request, visibly
    bars = page.page.locator("#burst svg.served-by .bar")
    served = {bars.nth(i).get_attribute("data-instance") for i in range(bars.count())}
    api_instances = {httpx.get(f"{api.url}/health").json()["served_by"].rsplit(":", 1)[0]}
    assert served
    assert {name.rsplit(":", 1)[0] for name in served} == api_instances
    assert page.errors == []


def _scored_over(api: RunningServer, path: str) -> float:
    """Successful scoring requests the scorer has counted on ``path`` (a route template)."""
    text = httpx.get(f"{api.url}/metrics").text
    pattern = rf'requests_total{{method="POST",path="{re.escape(path)}",status="200"}} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("protocol", ["v2-json", "v2-binary"])
def test_burst_over_the_open_inference_protocol(
    page: Page, dashboard: RunningServer, api: RunningServer, protocol: str
) -> None:
    """The protocol select sends the burst to the v2 infer route, JSON or binary tensors:
    every request scored, by the instances that serve /predict."""
    page.page.goto(dashboard.url)
    infer = "/v2/models/{model}/infer"
    before = _scored_over(api, infer), _scored_over(api, "/predict")
    page.page.fill("#burst-form input[name=requests]", "120")
    page.page.fill("#burst-form input[name=concurrency]", "4")
    page.page.fill("#burst-form input[name=batch]", "25")
    page.page.select_option("#burst-form select[name=protocol]", protocol)
    _fire(page, "#fire-burst")
    assert page.page.inner_text("#burst-protocol") == protocol
    assert page.page.inner_text("#burst-errors") == "0"
    assert page.page.inner_text("#burst-count") == "120 / 120"
    assert _scored_over(api, infer) - before[0] == 120
    assert _scored_over(api, "/predict") == before[1]  # nothing went to /predict
    bars = page.page.locator("#burst svg.served-by .bar")
    served = {bars.nth(i).get_attribute("data-instance") for i in range(bars.count())}
    api_instance = httpx.get(f"{api.url}/health").json()["served_by"].rsplit(":", 1)[0]
    assert served
    assert {name.rsplit(":", 1)[0] for name in served} == {api_instance}
    assert page.errors == []


def test_sustained_bursts_show_progress_then_totals(page: Page, dashboard: RunningServer) -> None:
    page.page.goto(dashboard.url)
    page.page.fill("#sustained-form input[name=workers]", "4")
    page.page.fill("#sustained-form input[name=cycles]", "150")
    page.page.fill("#sustained-form input[name=batch]", "200")
    page.page.click("#fire-sustained")
    page.page.wait_for_selector("#burst[data-state=running]")
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if page.page.locator("#burst-done").count():
            break
        text = (
            page.page.inner_text("#burst-cycles")
            if page.page.locator("#burst-cycles").count()
            else ""
        )
        seen.add(text)
        time.sleep(0.2)
    assert page.page.inner_text("#burst-count") == "600 / 600"
    assert page.page.inner_text("#burst-cycles") == "cycle 150 / 150"
    assert len({s for s in seen if s and s != "cycle 150 / 150"}) >= 2  # progress was live
    assert page.page.inner_text("#burst-errors") == "0"


def test_second_burst_is_refused_while_one_runs(page: Page, dashboard: RunningServer) -> None:
    page.page.goto(dashboard.url)
    page.page.fill("#sustained-form input[name=workers]", "2")
    page.page.fill("#sustained-form input[name=cycles]", "1000")
    page.page.fill("#sustained-form input[name=batch]", "500")
    page.page.click("#fire-sustained")
    page.page.wait_for_selector("#burst[data-state=running]")
    page.page.click("#fire-burst")
    refusal = page.page.wait_for_selector("#burst-error")
    assert "still running" in refusal.inner_text()
    assert page.page.locator("#burst[data-state=running]").count() == 1
    page.page.wait_for_selector("#burst-done", timeout=40000)


def test_target_is_fixed_to_backend_url(
    page: Page, dashboard: RunningServer, api: RunningServer
) -> None:
    page.page.goto(dashboard.url)
    assert page.page.inner_text("#backend-url") == api.url
    assert (
        page.page.locator("input[name=url], input[name=target], input[name=backend_url]").count()
        == 0
    )
    # A crafted form field naming another host is ignored: the burst still hits BACKEND_URL.
    page.page.evaluate(
        """() => {
            const form = document.querySelector('#burst-form');
            for (const name of ['url', 'target', 'backend_url']) {
                const input = document.createElement('input');
                input.type = 'hidden';
                input.name = name;
                input.value = 'http://127.0.0.1:9/';
                form.appendChild(input);
            }
        }"""
    )
    page.page.fill("#burst-form input[name=requests]", "50")
    _fire(page, "#fire-burst")
    assert page.page.inner_text("#burst-errors") == "0"
    assert page.page.locator("#burst svg.served-by .bar").count() >= 1


def test_closing_the_tab_ends_the_server_side_stream(
    browser: object, dashboard: RunningServer
) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.goto(dashboard.url)
    tab.click("#start")
    wait_for_tick(tab, 1)
    assert httpx.get(f"{dashboard.url}/dashboard/streams").json()["viewers"] == 1
    tab.close()
    context.close()
    deadline = time.monotonic() + 5
    while (
        httpx.get(f"{dashboard.url}/dashboard/streams").json()["viewers"]
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert httpx.get(f"{dashboard.url}/dashboard/streams").json() == {"streams": 0, "viewers": 0}


def test_scorer_outage_shows_an_error_and_recovers(
    page: Page, model_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    with (
        gridscore_serve(model_dir, tmp_path, command="api", port=port) as api,
        gridscore_serve(model_dir, tmp_path, command="dashboard", BACKEND_URL=api.url) as dashboard,
    ):
        page.page.goto(dashboard.url)
        first = page.page.wait_for_selector("#backend-served-by").inner_text()
        assert first == httpx.get(f"{api.url}/health").json()["served_by"]
        _start_stream(page, "0.2")
        wait_for_tick(page.page, 1)
        api.process.terminate()
        api.process.wait(timeout=20)
        error = page.page.wait_for_selector("#backend-error", timeout=5000)
        assert "unavailable" in error.inner_text().lower()
        page.page.wait_for_selector("#stream-error", timeout=5000)
        with gridscore_serve(model_dir, tmp_path, command="api", port=port) as again:
            page.page.wait_for_selector("#backend-ok", timeout=5000)
            second = page.page.inner_text("#backend-served-by")
            assert second == httpx.get(f"{again.url}/health").json()["served_by"]
            assert second != first  # a new process answers now
            page.page.wait_for_selector("#stream-error", state="detached", timeout=5000)
            wait_for_tick(page.page, _tick(page) + 1)
    assert [e for e in page.errors if "Failed to load resource" not in e] == []


def test_readme_screenshot(page: Page, dashboard: RunningServer, tmp_path: Path) -> None:
    from bench.screenshot import capture

    path = tmp_path / "dashboard.png"
    capture(page.page, dashboard.url, path)
    assert path.stat().st_size > 20_000
    assert page.errors == []


def test_shadow_agreement_then_promote_and_roll_back(
    page: Page, two_models: tuple[Path, str, str], tmp_path: Path
) -> None:
    folder, a, b = two_models
    admin = {"ADMIN_KEY": "admin-secret"}
    with (
        gridscore_serve(
            folder, tmp_path, command="api", MODEL_DIGEST=a[:12], SHADOW_DIGEST=b[:12], **admin
        ) as api,
        gridscore_serve(
            folder, tmp_path, command="dashboard", BACKEND_URL=api.url, **admin
        ) as dashboard,
    ):
        page.page.goto(dashboard.url)
        _start_stream(page, "0.2")
        wait_for_tick(page.page, 3)
        assert page.page.wait_for_selector("#live-model").inner_text() == a[:12]
        assert page.page.inner_text("#shadow-model") == b[:12]
        deadline = time.monotonic() + 5
        while "%" not in page.page.inner_text("#shadow-agreement"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        page.page.click("#promote")
        page.page.wait_for_selector(f"#live-model:text('{b[:12]}')", timeout=5000)
        assert page.page.inner_text("#shadow-model") == "none"
        assert httpx.get(f"{api.url}/health").json()["model"]["digest"] == b
        page.page.click("#rollback")
        page.page.wait_for_selector(f"#live-model:text('{a[:12]}')", timeout=5000)
        assert httpx.get(f"{api.url}/health").json()["model"]["digest"] == a
    assert [e for e in page.errors if "Failed to load resource" not in e] == []
