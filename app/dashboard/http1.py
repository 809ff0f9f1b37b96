"""A lean asyncio HTTP/1.1 client for the dashboard and the load generator.

httpx spends a few hundred microseconds of Python per request, which would swamp the latency of
a sub-millisecond scorer; this client writes a prebuilt request and reads a Content-Length
response, nothing else. It speaks just enough HTTP for gridscore's endpoints (JSON, and v2's
binary tensors).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class ProtocolError(RuntimeError):
    """The server sent something this client does not read (chunked body, bad status line)."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"only http(s)://host:port/path URLs are supported, got {url!r}")
        tls = parts.scheme == "https"
        return cls(parts.hostname, parts.port or (443 if tls else 80), parts.path or "/", tls)


# The context HTTPS targets are verified with: the system's CAs until the dashboard configures
# its own (BACKEND_CA_FILE, and a client certificate for a scorer that requires one).
_client_tls: dict[str, ssl.SSLContext] = {}


def configure_tls(
    ca_file: str = "", cert_file: str = "", key_file: str = "", itself: bool = False
) -> ssl.SSLContext:
    """The client context for HTTPS targets; OSError or ssl.SSLError if a file is unusable.
    ``itself``: the target is this process's own listener on loopback (``gridscore serve``),
    whose certificate names the service, not 127.0.0.1: no host name is checked, and the
    chain only against ``ca_file`` when one is given (else not: the bytes never leave the
    process's own loopback connection)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if itself:
        context.check_hostname = False
        if not ca_file:
            context.verify_mode = ssl.CERT_NONE
    if cert_file:
        context.load_cert_chain(cert_file, key_file or None)
    _client_tls["context"] = context
    return context


def client_context() -> ssl.SSLContext:
    return _client_tls.get("context") or configure_tls()


def build_request(
    method: str,
    target: Target,
    body: bytes = b"",
    close: bool = False,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    head = [
        f"{method} {target.path} HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        "Connection: close" if close else "Connection: keep-alive",
        *(f"{name}: {value}" for name, value in headers),
    ]
    if body or method == "POST":
        if not any(name.lower() == "content-type" for name, _ in headers):
            head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class Response:
    status: int
    body: bytes
    keep_alive: bool
    instance: str = ""  # X-Instance: the scorer pod whose /metrics these are
    json_length: int | None = None  # Inference-Header-Content-Length: JSON before binary


class StaleConnection(ConnectionError):
    """A kept-alive connection the server had already closed: nothing of the request was read,
    so sending it again on a new connection is safe."""


class Connection:
    """One TCP connection; ``request`` sends prebuilt bytes and reads one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.open = True
        self.used = False

    @property
    def reusable(self) -> bool:
        """Open on our side and not closed by the server (idle keep-alive timeout)."""
        return self.open and not self.reader.at_eof() and not self.writer.is_closing()

    @classmethod
    async def connect(cls, target: Target) -> Connection:
        if target.tls:
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=client_context(), server_hostname=target.host
            )
        else:
            reader, writer = await asyncio.open_connection(target.host, target.port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> Response:
        reused, self.used = self.used, True
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            partial = getattr(exc, "partial", b"")
            if reused and not partial:
                await self.close()
                raise StaleConnection("the server closed this kept-alive connection") from None
            raise
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {lines[0]!r}") from None
        length, keep_alive, instance, json_length = 0, True, "", None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                keep_alive = False
            elif name == "x-instance":
                instance = value.strip()
            elif name == "inference-header-content-length":
                try:
                    json_length = int(value)
                except ValueError:
                    raise ProtocolError(f"bad {name} header {value.strip()!r}") from None
            elif name == "transfer-encoding":
                raise ProtocolError("chunked responses are not supported")
        body = await self.reader.readexactly(length) if length else b""
        if not keep_alive:
            await self.close()
        return Response(status, body, keep_alive, instance, json_length)

    async def close(self) -> None:
        if self.open:
            self.open = False
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
