"""API and admin keys: from the environment (``API_KEY``, ``ADMIN_KEY``) and from files
(``API_KEY_FILE``, ``ADMIN_KEY_FILE``, one key a line) that may change while serving; the
dashboard's CSRF secret from ``DASHBOARD_SECRET_FILE`` the same way.

A key in an environment variable shows in ``/proc/<pid>/environ`` and ``kubectl describe``
and stays until a restart; a key in a mounted Kubernetes Secret does neither, and the kubelet
replaces the file when the Secret changes. So a ring looks at its file's inode, size and time
at most every ``CHECK_EVERY_S`` on the request path (a ``stat``, no read) and reads it again
when they change: a removed key stops working within a second, a new one starts. A file that
cannot be read or holds no key mid-rotation leaves the keys in use (with a log line);
at start-up it stops the process instead (``check_key_files``). No key is ever logged: the
log lines give the file and the number of keys.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from app.config import SecuritySettings, Settings

log = logging.getLogger("gridscore.keys")

CHECK_EVERY_S = 0.5


class KeyFileError(ValueError):
    """A key file that cannot be used (missing, unreadable, no key in it)."""


def read_key_file(path: str, name: str) -> tuple[str, ...]:
    """The keys of a file: one a line, blank lines and ``#`` comments skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise KeyFileError(f"{name} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise KeyFileError(f"{name} {path}: cannot read: {reason}") from None
    keys = tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if not keys:
        raise KeyFileError(f"{name} {path}: no key in it (one key a line)")
    return keys


def _stamp(path: str) -> tuple[int, int, int]:
    try:
        st = os.stat(path)  # follows the Secret volume's symlinks to the current file
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class KeyRing:
    """The keys one kind of route accepts now: the variable's, then the file's."""

    def __init__(self, fixed: Sequence[str], path: str = "", name: str = "") -> None:
        self.fixed = tuple(fixed)
        self.path = path
        self.name = name
        self._keys = [key.encode() for key in self.fixed]
        self._texts: tuple[str, ...] = self.fixed
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self.reloads = 0
        if path:
            self._read(read_key_file(path, name), _stamp(path))

    def _read(self, from_file: tuple[str, ...], stamp: tuple[int, int, int]) -> None:
        self._texts = self.fixed + tuple(k for k in from_file if k not in self.fixed)
        self._keys = [key.encode() for key in self._texts]
        self._stamp = stamp

    def current(self) -> list[bytes]:
        """The accepted keys (an empty list: none required)."""
        if self.path:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + CHECK_EVERY_S
                self._refresh()
        return self._keys

    def first(self) -> str:
        """The key this process presents to a scorer of its own (the dashboard's)."""
        self.current()
        return self._texts[0] if self._texts else ""

    def _refresh(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        try:
            keys = read_key_file(self.path, self.name)
        except KeyFileError as exc:
            log.warning("keys kept as they were: %s", exc)
            self._stamp = stamp  # tried; a later change is read again
            return
        self._read(keys, stamp)
        self.reloads += 1
        log.info(
            "keys reloaded",
            extra={"fields": {"file": self.path, "keys": len(self._keys), "variable": self.name}},
        )


def key_rings(settings: Settings) -> tuple[KeyRing, KeyRing]:
    """This process's scoring and admin keys."""
    limits, security = settings.limits, settings.security
    return (
        KeyRing(limits.api_keys, security.api_key_file, "API_KEY_FILE"),
        KeyRing(limits.admin_keys, security.admin_key_file, "ADMIN_KEY_FILE"),
    )


def check_key_files(security: SecuritySettings) -> str:
    """What is wrong with the key files, in one line, or "" (the start-up check)."""
    for path, name in (
        (security.api_key_file, "API_KEY_FILE"),
        (security.admin_key_file, "ADMIN_KEY_FILE"),
        (security.dashboard_secret_file, "DASHBOARD_SECRET_FILE"),
    ):
        if path:
            try:
                read_key_file(path, name)
            except KeyFileError as exc:
                return str(exc)
    return ""
