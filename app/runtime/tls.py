"""TLS for every listener of a gridscore process, with certificates that may change on disk.

With ``TLS_CERT_FILE`` and ``TLS_KEY_FILE`` set, uvicorn serves HTTPS only, through the
context made here (``context_factory``, uvicorn's ``ssl_context_factory``). Certificates in
Kubernetes are Secrets that cert-manager renews before they expire; a server that read its
certificate only at start would serve an expired one until restarted. So the context is
watched (``CertificateWatch``, started with each worker's context): when the files change, the
new pair is checked on a scratch context first (a half-written file or a key that does not match is
refused and the old pair kept, with a log line), then loaded into the serving context on the
event loop that serves the connections, so the next handshake presents it; connections already
open keep theirs.

``TLS_CLIENT_CA_FILE`` asks clients for a certificate signed by that CA (mutual TLS): for every
connection (``TLS_CLIENT_AUTH=all``: a client without one, or with another CA's, fails the
handshake), or only for ``/admin/*`` (``admin``: the certificate is optional in the handshake,
verified when given, and the admin routes refuse a request whose connection has none; the
HTTP protocol puts the verified peer certificate in the request's scope, as ASGI's TLS
extension does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from pathlib import Path
from typing import Any

from app.config import SecuritySettings, Settings, StreamSettings

log = logging.getLogger("gridscore.tls")

WATCH_EVERY_S = 1.0


class TlsConfigError(ValueError):
    """The TLS files cannot be used (missing, unreadable, not PEM, key and certificate apart)."""


def _stamp(paths: list[str]) -> tuple[tuple[int, int, int], ...]:
    """What changes when a file is replaced: inode, size, modification time (a Secret's
    files are symlinks swapped atomically; stat follows them)."""
    stamps = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            stamps.append((0, 0, 0))
            continue
        stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamps)


def server_context(security: SecuritySettings) -> ssl.SSLContext:
    """A server context with the configured pair (and client CA); TlsConfigError if any file
    cannot be used, with the reason in words."""
    if not (security.tls_cert_file and security.tls_key_file):
        raise TlsConfigError("TLS needs both TLS_CERT_FILE and TLS_KEY_FILE")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_pair(context, security.tls_cert_file, security.tls_key_file)
    if security.tls_client_ca_file:
        _load_ca(context, "TLS_CLIENT_CA_FILE", security.tls_client_ca_file)
        context.verify_mode = (
            ssl.CERT_REQUIRED if security.tls_client_auth == "all" else ssl.CERT_OPTIONAL
        )
    return context


def _load_ca(context: ssl.SSLContext, name: str, path: str) -> None:
    """Trust the CA certificates of the file the variable ``name`` gives."""
    _check_readable(name, path)
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"{name} {path}: not PEM CA certificates ({_reason(exc)})") from None


def client_context(name: str, ca_file: str) -> ssl.SSLContext:
    """A client context verifying servers and their names against the CA file the variable
    ``name`` gives, or against the system's CAs when it is empty."""
    if not ca_file:
        context = ssl.create_default_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # names and chains checked
        _load_ca(context, name, ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _check_readable(name: str, path: str) -> None:
    if not Path(path).is_file():
        raise TlsConfigError(f"{name} {path}: no such file")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise TlsConfigError(f"{name} {path}: cannot read: {exc.strerror}") from None


def _load_pair(
    context: ssl.SSLContext,
    cert: str,
    key: str,
    names: tuple[str, str] = ("TLS_CERT_FILE", "TLS_KEY_FILE"),
) -> None:
    cert_name, key_name = names
    _check_readable(cert_name, cert)
    _check_readable(key_name, key)
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise TlsConfigError(
                f"{key_name} {key} is not the key of the certificate in {cert_name} {cert}"
            ) from None
        raise TlsConfigError(
            f"{cert_name} {cert} / {key_name} {key}: not a PEM certificate and key ({_reason(exc)})"
        ) from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).splitlines()[0][:200]


def check(security: SecuritySettings) -> str:
    """What is wrong with the TLS settings, in one line, or "" (the command line's check at
    start-up, before any listener opens)."""
    try:
        _check_backend(security)
        if security.tls:
            server_context(security)
        elif security.tls_client_ca_file:
            return "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS is TLS)"
    except TlsConfigError as exc:
        return str(exc)
    return ""


def _check_backend(security: SecuritySettings) -> None:
    """The dashboard's files for an HTTPS scorer: a CA file, and a client pair."""
    if security.backend_ca_file:
        client_context("BACKEND_CA_FILE", security.backend_ca_file)
    if bool(security.backend_cert_file) != bool(security.backend_key_file):
        raise TlsConfigError("BACKEND_CERT_FILE and BACKEND_KEY_FILE go together")
    if security.backend_cert_file:
        _load_pair(
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
            security.backend_cert_file,
            security.backend_key_file,
            names=("BACKEND_CERT_FILE", "BACKEND_KEY_FILE"),
        )


def context_factory(config: Any, default: Any) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory`` (called in each worker as it starts, on its event
    loop): the serving context from the settings, watched for new certificate files."""
    security = Settings.from_env().security
    context = server_context(security)
    with contextlib.suppress(RuntimeError):  # no running loop: nothing to watch from
        CertificateWatch(security, context).start(asyncio.get_running_loop())
    return context


class CertificateWatch:
    """Loads new certificate files into the serving context once they form a valid pair.

    On the event loop that serves the connections, so a handshake never meets a context in
    the middle of a change."""

    def __init__(self, security: SecuritySettings, context: ssl.SSLContext) -> None:
        self.cert = security.tls_cert_file
        self.key = security.tls_key_file
        self.context = context
        self._seen = _stamp([self.cert, self.key])
        self.reloads = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        _watches.add(loop.create_task(self._watch()))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            self.check()

    def check(self) -> bool:
        """Load the files if they changed and form a valid pair; whether it loaded them."""
        stamp = _stamp([self.cert, self.key])
        if stamp == self._seen:
            return False
        try:
            _load_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), self.cert, self.key)
        except TlsConfigError as exc:
            # A renewal half written (certificate and key replaced one after the other): the
            # pair in use stays until the files agree.
            log.warning("new certificate files not used yet: %s", exc)
            return False
        self.context.load_cert_chain(certfile=self.cert, keyfile=self.key)
        self._seen = stamp
        self.reloads += 1
        log.info("certificate reloaded", extra={"fields": {"file": self.cert}})
        return True


_watches: set[asyncio.Task[None]] = set()  # held, so the loop does not drop them


def uvicorn_tls_options(security: SecuritySettings) -> dict[str, Any]:
    """Options for uvicorn.Config: the context factory when TLS is configured."""
    return {"ssl_context_factory": context_factory} if security.tls else {}


def broker_context(stream: StreamSettings) -> ssl.SSLContext | None:
    """The client context for the NATS broker: verified against ``NATS_CA_FILE`` (else the
    system's CAs), presenting ``NATS_CERT_FILE`` when the broker asks for a client
    certificate; None for plain ``nats://`` with no file set (nats-py then upgrades only if the
    broker requires TLS, verifying against the system's CAs). TlsConfigError when a file
    cannot be used."""
    wanted = stream.ca_file or stream.cert_file or stream.key_file
    if not wanted and not any(url.startswith("tls://") for url in stream.nats_urls):
        return None
    context = client_context("NATS_CA_FILE", stream.ca_file)
    if bool(stream.cert_file) != bool(stream.key_file):
        raise TlsConfigError("NATS_CERT_FILE and NATS_KEY_FILE go together")
    if stream.cert_file:
        _load_pair(context, stream.cert_file, stream.key_file, ("NATS_CERT_FILE", "NATS_KEY_FILE"))
    return context


def broker_options(stream: StreamSettings) -> dict[str, Any]:
    """``nats.connect`` keyword arguments for TLS to the broker (none for plain NATS)."""
    context = broker_context(stream)
    return {"tls": context} if context is not None else {}


def check_broker(stream: StreamSettings) -> str:
    """What is wrong with the broker's TLS files, in one line, or "" (start-up check)."""
    try:
        broker_context(stream)
    except TlsConfigError as exc:
        return str(exc)
    return ""
