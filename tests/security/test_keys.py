"""Keys from files (API_KEY_FILE, ADMIN_KEY_FILE): read at start, re-read when they change
(a rotated Kubernetes Secret), never logged."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.config import SecuritySettings
from app.serving import keys as keys_module
from app.serving.keys import KeyRing, check_key_files
from tests.support.servers import gridscore_serve

READING = {"readings": [{"voltage": 230.0, "current": 10.0, "frequency": 50.0}]}
OLD, NEW = "old-key-7f3a9c2e51", "new-key-0b8d4e6a93"


def _write(path: Path, text: str) -> None:
    """Replace the file at once, as the kubelet swaps a Secret's files."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_a_ring_follows_its_file_and_keeps_the_variables_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "CHECK_EVERY_S", 0.0)
    path = tmp_path / "keys"
    _write(path, f"# scoring keys\n{OLD}\n\n")
    ring = KeyRing(("from-env",), str(path), "API_KEY_FILE")
    assert ring.current() == [b"from-env", OLD.encode()]
    _write(path, f"{NEW}\n")
    assert ring.current() == [b"from-env", NEW.encode()]
    assert ring.first() == "from-env"
    # Half-way through a rotation the file is empty or gone: the keys in use stay.
    _write(path, "\n")
    assert ring.current() == [b"from-env", NEW.encode()]
    path.unlink()
    assert ring.current() == [b"from-env", NEW.encode()]
    _write(path, f"{OLD}\n")
    assert ring.current() == [b"from-env", OLD.encode()]


def test_a_ring_looks_at_its_file_at_most_every_half_second(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    _write(path, f"{OLD}\n")
    ring = KeyRing((), str(path), "API_KEY_FILE")
    ring.current()
    _write(path, f"{NEW}\n")
    assert ring.current() == [OLD.encode()]  # not looked at again yet
    time.sleep(keys_module.CHECK_EVERY_S + 0.05)
    assert ring.current() == [NEW.encode()]


def test_a_bad_key_file_is_named_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n")
    absent = str(tmp_path / "absent")
    assert "API_KEY_FILE" in check_key_files(SecuritySettings(api_key_file=absent))
    assert "no such file" in check_key_files(SecuritySettings(api_key_file=absent))
    assert "no key in it" in check_key_files(SecuritySettings(admin_key_file=str(empty)))
    named = check_key_files(SecuritySettings(dashboard_secret_file=absent))
    assert named.startswith("DASHBOARD_SECRET_FILE")
    assert check_key_files(SecuritySettings()) == ""


def test_the_server_refuses_to_start_on_a_missing_key_file(model_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_DIR": str(model_dir), "API_KEY_FILE": str(tmp_path / "absent")}
    done = subprocess.run(
        [sys.executable, "-m", "app", "api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"gridscore: API_KEY_FILE {tmp_path / 'absent'}: no such file"
    ]


@pytest.mark.slow
def test_a_key_file_rewritten_under_load(model_dir: Path, tmp_path: Path) -> None:
    api_file, admin_file = tmp_path / "api-keys", tmp_path / "admin-keys"
    _write(api_file, f"{OLD}\n")
    _write(admin_file, "admin-secret-55c1d0\n")
    env = {
        "API_KEY_FILE": str(api_file),
        "ADMIN_KEY_FILE": str(admin_file),
        "WORKERS": "2",
        "LOG_LEVEL": "debug",
    }
    with gridscore_serve(model_dir, tmp_path, command="serve", **env) as server:
        url = f"{server.url}/predict"
        done = threading.Event()
        statuses: dict[str, list[tuple[float, int]]] = {OLD: [], NEW: []}

        def client(key: str) -> None:
            with httpx.Client(headers={"X-API-Key": key}) as session:
                while not done.is_set():
                    try:
                        status = session.post(url, json=READING).status_code
                    except httpx.HTTPError:
                        status = -1
                    statuses[key].append((time.monotonic(), status))

        threads = [threading.Thread(target=client, args=(key,)) for key in (OLD, NEW)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            rotated_at = time.monotonic()
            _write(api_file, f"{NEW}\n")
            time.sleep(2.0)
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=10)
        # The dashboard in the same process presents the file's key too.
        page = httpx.get(f"{server.url}/dashboard/model")
        digest = httpx.get(f"{server.url}/health").json()["model"]["digest"]
        assert digest[:12] in page.text
        log = server.log()

    def after(key: str, seconds: float) -> set[int]:
        return {s for t, s in statuses[key] if t > rotated_at + seconds}

    def before(key: str) -> set[int]:
        return {s for t, s in statuses[key] if t < rotated_at}

    assert before(OLD) == {200}
    assert before(NEW) == {401}
    assert after(OLD, 1.0) == {401}, "the removed key still worked a second after the rewrite"
    assert after(NEW, 1.0) == {200}
    every = {s for key in (OLD, NEW) for _, s in statuses[key]}
    assert every <= {200, 401}, every  # nothing else failed
    assert len(statuses[OLD]) > 50
    assert "keys reloaded" in log
    for secret in (OLD, NEW, "admin-secret-55c1d0"):
        assert secret not in log
