"""One frozen settings object, read from the environment once at start-up."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from app.envelope import EnvelopeError, env_overrides


class SettingsError(ValueError):
    """An environment variable holds a value gridscore cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be 1/0 (or true/false), got {raw!r}")


def _envelope_overrides(env: Mapping[str, str]) -> tuple[tuple[str, str, float], ...]:
    try:
        return env_overrides(env)
    except EnvelopeError as exc:
        raise SettingsError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about gridscore; see the README's configuration table."""

    host: str = "127.0.0.1"
    """HOST: address to listen on (default 127.0.0.1; 0.0.0.0 in containers)."""
    port: int = 8000
    """PORT: TCP port (default 8000)."""
    workers: int = 1
    """WORKERS: server processes (default 1; one per pod in Kubernetes)."""
    model_dir: Path = Path("models")
    """MODEL_DIR: folder holding digest-named artifacts (default ./models)."""
    model_name: str = "gridscore-iforest"
    """MODEL_NAME: artifact name before the digest (default gridscore-iforest)."""
    model_digest: str = ""
    """MODEL_DIGEST: pin one artifact by its sha256 prefix (default: newest published)."""
    train_if_missing: bool = True
    """TRAIN_IF_MISSING: run the convert step when no artifact exists (default 1)."""
    threshold: float | None = None
    """ANOMALY_THRESHOLD: override the trained score threshold (default: the trained one)."""
    envelope_preset: str = "trained"
    """ENVELOPE_PRESET: trained (default), en50160 (230 V / 50 Hz after EN 50160) or off."""
    envelope_file: str = ""
    """ENVELOPE_FILE: JSON of per-feature bounds, {"voltage": {"min": 207, "max": 253}}."""
    envelope_overrides: tuple[tuple[str, str, float], ...] = ()
    """ENVELOPE_<FEATURE>_<MIN|MAX>: single bounds; applied after ENVELOPE_FILE."""
    intra_op_threads: int = 1
    """ORT_INTRA_OP_THREADS: onnxruntime intra-op threads per process (default 1)."""
    inter_op_threads: int = 1
    """ORT_INTER_OP_THREADS: onnxruntime inter-op threads per process (default 1)."""
    max_batch: int = 10_000
    """MAX_BATCH: most readings in one request; more gets 413 (default 10000)."""
    max_body_bytes: int = 4 * 1024 * 1024
    """MAX_BODY_BYTES: largest request body; larger gets 413 (default 4 MiB)."""
    max_in_flight: int = 64
    """MAX_IN_FLIGHT: /predict requests one process serves at once; more get 503 at once."""
    request_timeout: float = 10.0
    """REQUEST_TIMEOUT: seconds for one /predict, body included (408 slow body, 503 slow work)."""
    drain_seconds: float = 0.0
    """DRAIN_SECONDS: after SIGTERM, answer /health 503 this long before closing the listener."""
    api_keys: tuple[str, ...] = ()
    """API_KEY: if set, /predict needs it (Bearer or X-API-Key); commas separate several."""
    inline_rows: int = 512
    """INLINE_ROWS: batches up to this size score on the event loop; larger ones in a thread."""
    metrics_dir: str = ""
    """PROMETHEUS_MULTIPROC_DIR: shared folder for multi-process metrics (launcher sets it)."""
    graceful_timeout: float = 10.0
    """GRACEFUL_TIMEOUT: seconds to finish in-flight requests and close streams on SIGTERM."""
    log_level: str = "info"
    """LOG_LEVEL: debug, info, warning or error (default info)."""
    pod_name: str = ""
    """POD_NAME: instance name for served_by (default: the host name)."""
    node_name: str = ""
    """NODE_NAME: node the pod runs on, shown on the dashboard (default empty)."""
    backend_url: str = ""
    """BACKEND_URL: scorer the dashboard talks to (default: this process, http://127.0.0.1:PORT)."""
    dashboard_secret: str = ""
    """DASHBOARD_SECRET: signs the dashboard's CSRF cookie; the launcher makes one if unset."""
    burst_max_requests: int = 5_000
    """DASHBOARD_MAX_BURST_REQUESTS: most requests in one dashboard burst (default 5000)."""
    burst_max_concurrency: int = 64
    """DASHBOARD_MAX_BURST_CONCURRENCY: most requests in flight in a burst (default 64)."""
    burst_max_seconds: float = 30.0
    """DASHBOARD_MAX_BURST_SECONDS: a burst stops after this long (default 30)."""
    dashboard_max_batch: int = 1_000
    """DASHBOARD_MAX_BATCH: most readings per request from the dashboard (default 1000)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); raises SettingsError."""
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "info").strip().lower() or "info"
        if level not in {"debug", "info", "warning", "error"}:
            raise SettingsError(f"LOG_LEVEL must be debug, info, warning or error, got {level!r}")
        return cls(
            host=env.get("HOST", "").strip() or "127.0.0.1",
            port=_int(env, "PORT", 8000, minimum=0),
            workers=_int(env, "WORKERS", 1, minimum=1),
            model_dir=Path(env.get("MODEL_DIR", "").strip() or "models"),
            model_name=env.get("MODEL_NAME", "").strip() or "gridscore-iforest",
            model_digest=env.get("MODEL_DIGEST", "").strip().lower(),
            train_if_missing=_bool(env, "TRAIN_IF_MISSING", True),
            threshold=_float(env, "ANOMALY_THRESHOLD", None),
            envelope_preset=env.get("ENVELOPE_PRESET", "").strip().lower() or "trained",
            envelope_file=env.get("ENVELOPE_FILE", "").strip(),
            envelope_overrides=_envelope_overrides(env),
            intra_op_threads=_int(env, "ORT_INTRA_OP_THREADS", 1, minimum=1),
            inter_op_threads=_int(env, "ORT_INTER_OP_THREADS", 1, minimum=1),
            max_batch=_int(env, "MAX_BATCH", 10_000, minimum=1),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024),
            max_in_flight=_int(env, "MAX_IN_FLIGHT", 64, minimum=1),
            request_timeout=_float(env, "REQUEST_TIMEOUT", 10.0) or 10.0,
            drain_seconds=max(0.0, _float(env, "DRAIN_SECONDS", 0.0) or 0.0),
            api_keys=tuple(k.strip() for k in env.get("API_KEY", "").split(",") if k.strip()),
            inline_rows=_int(env, "INLINE_ROWS", 512, minimum=0),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
            graceful_timeout=_float(env, "GRACEFUL_TIMEOUT", 10.0) or 10.0,
            log_level=level,
            pod_name=env.get("POD_NAME", "").strip(),
            node_name=env.get("NODE_NAME", "").strip(),
            backend_url=env.get("BACKEND_URL", "").strip(),
            dashboard_secret=env.get("DASHBOARD_SECRET", "").strip(),
            burst_max_requests=_int(env, "DASHBOARD_MAX_BURST_REQUESTS", 5_000, minimum=1),
            burst_max_concurrency=_int(env, "DASHBOARD_MAX_BURST_CONCURRENCY", 64, minimum=1),
            burst_max_seconds=_float(env, "DASHBOARD_MAX_BURST_SECONDS", 30.0) or 30.0,
            dashboard_max_batch=_int(env, "DASHBOARD_MAX_BATCH", 1_000, minimum=1),
        )

    def dashboard_backend(self) -> str:
        """The scorer the dashboard uses: BACKEND_URL, else this process."""
        return self.backend_url or f"http://127.0.0.1:{self.port}"

    def instance_name(self) -> str:
        """The pod name, else the host name: the first half of ``served_by``."""
        return self.pod_name or socket.gethostname()

    def describe(self) -> dict[str, object]:
        """Settings as plain values for the start-up log line (the secret left out)."""
        hidden = ("secret", "api_keys")
        return {
            f.name: str(getattr(self, f.name))
            for f in fields(self)
            if not any(word in f.name for word in hidden)
        }
