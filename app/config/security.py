"""Settings of transport security and keys: TLS and mutual TLS for every listener, the
dashboard's trust in an HTTPS scorer, and key files re-read while serving (docs/security.md)."""

from __future__ import annotations

from dataclasses import dataclass

from app.config.fields import choice, number, setting, text


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """TLS for every listener of the process (API, dashboard, the stream worker's probes), with
    certificates that may change on disk while serving; keys from files; rate limits per
    client of the scoring routes."""

    tls_cert_file: str = setting(
        "TLS_CERT_FILE",
        "",
        "PEM certificate chain: with `TLS_KEY_FILE`, the process serves HTTPS only; replaced on "
        "disk (as cert-manager does), the next connection gets the new one",
        text(),
        shown="(plain HTTP)",
    )
    tls_key_file: str = setting("TLS_KEY_FILE", "", "PEM private key of that certificate", text())
    tls_client_ca_file: str = setting(
        "TLS_CLIENT_CA_FILE",
        "",
        "PEM CA certificates: clients must present a certificate signed by one (mutual TLS)",
        text(),
        shown="(no client certificates)",
    )
    tls_client_auth: str = setting(
        "TLS_CLIENT_AUTH",
        "all",
        "with `TLS_CLIENT_CA_FILE`: `all` routes need a client certificate, or `admin` only "
        "`/admin/*` (other clients may still present one)",
        choice("all", "admin"),
    )
    api_key_file: str = setting(
        "API_KEY_FILE",
        "",
        "file of API keys, one a line, accepted beside `API_KEY`'s; re-read within a second of "
        "a change (a mounted Kubernetes Secret rotates keys without a restart)",
        text(),
        shown="(none)",
    )
    admin_key_file: str = setting(
        "ADMIN_KEY_FILE",
        "",
        "file of admin keys, one a line, beside `ADMIN_KEY`'s; re-read within a second of a change",
        text(),
        shown="(none)",
    )
    dashboard_secret_file: str = setting(
        "DASHBOARD_SECRET_FILE",
        "",
        "file whose first line signs the dashboard's CSRF tokens, in place of "
        "`DASHBOARD_SECRET`; re-read within a second of a change (forms on pages opened before "
        "a rotation need a reload)",
        text(),
        shown="(none)",
    )
    backend_ca_file: str = setting(
        "BACKEND_CA_FILE",
        "",
        "the dashboard's CA certificates for an HTTPS `BACKEND_URL`",
        text(),
        shown="(the system's)",
    )
    backend_cert_file: str = setting(
        "BACKEND_CERT_FILE",
        "",
        "the dashboard's client certificate for a scorer that requires mutual TLS",
        text(),
        shown="(none)",
    )
    backend_key_file: str = setting(
        "BACKEND_KEY_FILE", "", "the key of `BACKEND_CERT_FILE`", text(), shown="(none)"
    )

    rate_requests: float = setting(
        "RATE_LIMIT_REQUESTS",
        0.0,
        "scoring requests per second one client (an API key, else an address) may send to one "
        "worker process; over it, 429 with Retry-After; `0`: no limit",
        number(floor=0.0),
        shown="(off)",
    )
    rate_readings: float = setting(
        "RATE_LIMIT_READINGS",
        0.0,
        "readings per second one client may send to one worker process; `0`: no limit",
        number(floor=0.0),
        shown="(off)",
    )
    rate_burst_s: float = setting(
        "RATE_LIMIT_BURST",
        1.0,
        "seconds of the rates a client may spend at once (each bucket's size)",
        number(floor=0.01),
    )

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file or self.tls_key_file)

    @property
    def admin_needs_client_cert(self) -> bool:
        """Mutual TLS for the admin routes alone (the handshake asks, the routes require)."""
        return bool(self.tls_client_ca_file) and self.tls_client_auth == "admin"
