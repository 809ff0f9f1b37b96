"""The dashboard from an attacker's side: CSP, cross-site POSTs, burst bounds, fixed target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.service.factory import create_dashboard_app
from app.serving import keys as keys_module
from tests.support.config import settings_from

SETTINGS = settings_from(
    BACKEND_URL="http://127.0.0.1:9",  # nothing listens: bursts must be refused before sending
    DASHBOARD_MAX_BURST_REQUESTS=100,
    DASHBOARD_MAX_BURST_CONCURRENCY=4,
    DASHBOARD_MAX_BATCH=10,
)


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(create_dashboard_app(SETTINGS)) as test_client:
        yield test_client


def _token(client: TestClient[Litestar]) -> str:
    page = client.get("/").text
    return page.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]


def test_pages_carry_a_strict_content_security_policy(client: TestClient[Litestar]) -> None:
    for path in ("/", "/dashboard/status"):  # the documents a browser renders
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"
    page = client.get("/").text
    assert "<script>" not in page  # every script is a file of ours
    assert "style=" not in page


def test_cross_site_posts_are_refused(client: TestClient[Litestar]) -> None:
    first = client.get("/")  # the victim's browser holds the CSRF cookie
    assert "samesite=strict" in first.headers["set-cookie"].lower()
    forged = [
        client.post("/dashboard/inject"),
        client.post("/dashboard/bursts/concurrent", data={"requests": "50"}),
        client.post("/dashboard/inject", headers={"x-csrftoken": "guessed"}),
    ]
    assert [r.status_code for r in forged] == [403, 403, 403]
    assert client.get("/dashboard/bursts/current").text.count("No burst yet") == 1


@pytest.mark.parametrize(
    ("kind", "form", "message"),
    [
        ("concurrent", {"requests": "100000"}, "requests must be between 1 and 100"),
        (
            "concurrent",
            {"requests": "10", "concurrency": "500"},
            "concurrency must be between 1 and 4",
        ),
        ("concurrent", {"requests": "10", "batch": "100000"}, "batch must be between 1 and 10"),
        ("sustained", {"workers": "4", "cycles": "50"}, "workers x cycles must be at most 100"),
        ("concurrent", {"requests": "lots"}, "requests must be a number"),
        ("exfiltrate", {}, "unknown burst kind"),
    ],
)
def test_bursts_beyond_the_configured_bounds_are_refused(
    client: TestClient[Litestar], kind: str, form: dict[str, str], message: str
) -> None:
    token = _token(client)
    response = client.post(f"/dashboard/bursts/{kind}", data=form, headers={"x-csrftoken": token})
    assert response.status_code in (404, 422)
    assert message in response.text
    assert client.get("/dashboard/bursts/current").text.count("No burst yet") == 1


def test_stream_parameters_are_bounded(client: TestClient[Litestar]) -> None:
    token = _token(client)
    response = client.post(
        "/dashboard/stream/start",
        data={"batch": "5000", "interval": "0.5"},
        headers={"x-csrftoken": token},
    )
    assert response.status_code == 422
    assert "batch must be between 1 and 10" in response.text
    assert client.get("/dashboard/stream?interval=0.001").status_code >= 400


def test_the_target_comes_from_configuration_only(client: TestClient[Litestar]) -> None:
    token = _token(client)
    client.post(
        "/dashboard/bursts/concurrent",
        data={"requests": "2", "url": "http://127.0.0.1:1/", "backend_url": "http://127.0.0.1:1/"},
        headers={"x-csrftoken": token},
    )
    assert client.get("/health").status_code == 200
    page = client.get("/").text
    assert 'id="backend-url">http://127.0.0.1:9</code>' in page


def test_a_rotated_secret_file_signs_the_next_pages_and_retires_the_old_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "CHECK_EVERY_S", 0.0)
    secret_file = tmp_path / "dashboard-secret"
    secret_file.write_text("first-secret-4f1c\n")
    settings = settings_from(
        BACKEND_URL="http://127.0.0.1:9",
        DASHBOARD_SECRET="from-the-environment",  # the file's secret wins
        DASHBOARD_SECRET_FILE=str(secret_file),
    )
    with TestClient(create_dashboard_app(settings)) as browser:
        old = _token(browser)
        assert _stop_stream(browser, old) == 200
        # Rotation, keeping the old secret on the second line a while: both sign valid tokens.
        secret_file.write_text("second-secret-9a2e\nfirst-secret-4f1c\n")
        assert _stop_stream(browser, old) == 200
        # The old secret retired: the browser's cookie and the page's token are refused...
        secret_file.write_text("second-secret-9a2e\n")
        assert _stop_stream(browser, old) == 403
        # ...until the page is loaded again, which replaces the cookie.
        new = _token(browser)
        assert new != old
        assert _stop_stream(browser, new) == 200
    with TestClient(create_dashboard_app(settings)) as other_process:
        # Another process reading the same file accepts the same browser's token.
        other_process.cookies.set("csrftoken", new)
        assert _stop_stream(other_process, new) == 200


def _stop_stream(client: TestClient[Litestar], token: str) -> int:
    return client.post("/dashboard/stream/stop", headers={"x-csrftoken": token}).status_code
