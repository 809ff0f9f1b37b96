"""gridscore's settings: environment variables read once at start-up, grouped by concern.

Each field declares its variable, default and meaning in one place (``setting``): ``from_env``
reads them from that declaration, and ``python -m app.docgen`` writes the reference page
docs/configuration.md from it, so the two cannot drift (a test checks the page is current).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from app.envelope import EnvelopeError, env_overrides

Parser = Callable[[Mapping[str, str], str, Any], Any]


class SettingsError(ValueError):
    """An environment variable holds a value gridscore cannot use."""


# Parsers: (environment, variable, default) -> value. An empty or unset variable is the default.


def text(lower: bool = False) -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        return (raw.lower() if lower else raw) or default

    return parse


def choice(*allowed: str) -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip().lower() or default
        if raw not in allowed:
            raise SettingsError(f"{name} must be {', '.join(allowed)}, got {raw!r}")
        return raw

    return parse


def path_segment() -> Parser:
    """A name that sits in a URL path as one segment (letters, digits, ``.``, ``_``, ``-``)."""

    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        if raw and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", raw):
            raise SettingsError(
                f"{name} must be letters, digits, '.', '_' or '-' (one URL path segment), "
                f"got {raw!r}"
            )
        return raw or default

    return parse


def path() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        return Path(raw) if raw else default

    return parse


def integer(minimum: int = 0) -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
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

    return parse


def number(zero_is_default: bool = False, floor: float | None = None) -> Parser:
    """A float; ``zero_is_default``: 0 means the default too; ``floor``: smaller values clamp."""

    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if zero_is_default and value == 0:
            return default
        return value if floor is None else max(floor, value)

    return parse


def flag() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        raw = env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} must be 1/0 (or true/false), got {raw!r}")

    return parse


def comma_list() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())

    return parse


def envelope_bounds() -> Parser:
    def parse(env: Mapping[str, str], name: str, default: Any) -> Any:
        try:
            return env_overrides(env)
        except EnvelopeError as exc:
            raise SettingsError(str(exc)) from None

    return parse


def setting(env: str, default: Any, doc: str, parse: Parser, shown: str | None = None) -> Any:
    """A field read from the variable ``env``; ``doc`` is its line in the reference, ``shown``
    what the reference prints as its default when the value itself would not say it."""
    return field(default=default, metadata={"env": env, "doc": doc, "parse": parse, "shown": shown})


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The server process: where it listens, how many workers, how it stops, logs, names."""

    host: str = setting("HOST", "127.0.0.1", "listen address (`0.0.0.0` in containers)", text())
    port: int = setting("PORT", 8000, "TCP port", integer(minimum=0))
    workers: int = setting(
        "WORKERS", 1, "server processes (one per pod in Kubernetes)", integer(minimum=1)
    )
    graceful_timeout: float = setting(
        "GRACEFUL_TIMEOUT",
        10.0,
        "seconds to finish in-flight requests and close streams on SIGTERM",
        number(zero_is_default=True),
    )
    drain_seconds: float = setting(
        "DRAIN_SECONDS",
        0.0,
        "after SIGTERM, answer `/health` 503 this long before closing the listener "
        "(8 in `ops/k8s`, docs/deploying.md)",
        number(floor=0.0),
    )
    request_order: str = setting(
        "REQUEST_ORDER",
        "fair",
        "`fair`: the requests read in one pass of the event loop start least recently served "
        "connection first, so none waits two rounds (docs/benchmarks.md); `poll`: in the order "
        "the loop reports their sockets (uvicorn's)",
        choice("fair", "poll"),
    )
    metrics_dir: str = setting(
        "PROMETHEUS_MULTIPROC_DIR",
        "",
        "shared folder for the workers' metrics (the launcher makes a temporary one if unset)",
        text(),
        shown="(temporary)",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "info",
        "`debug`, `info`, `warning` or `error`; `debug` adds one JSON line per request "
        "(reading values are never logged)",
        choice("debug", "info", "warning", "error"),
    )
    pod_name: str = setting(
        "POD_NAME", "", "instance name, first half of `served_by`", text(), shown="(host name)"
    )
    node_name: str = setting(
        "NODE_NAME", "", "node the pod runs on (shown by the dashboard)", text()
    )
    control_dir: str = setting(
        "CONTROL_DIR",
        "",
        "folder where workers share the model every worker should serve (after an admin "
        "swap); the launcher makes a temporary one if unset",
        text(),
        shown="(temporary)",
    )
    gc_freeze: bool = setting(
        "GC_FREEZE",
        True,
        "`1`: after start-up, exempt the start-up heap from garbage collection and collect the "
        "young generation less often, so no full collection pauses a request "
        "(docs/benchmarks.md); `0`: Python's defaults",
        flag(),
    )

    def instance_name(self) -> str:
        """The pod name, else the host name: the first half of ``served_by``."""
        return self.pod_name or socket.gethostname()


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Which artifact to serve, its threshold and envelope, and onnxruntime's threads."""

    dir: Path = setting("MODEL_DIR", Path("models"), "folder of digest-named artifacts", path())
    name: str = setting(
        "MODEL_NAME", "gridscore-iforest", "artifact name before the digest", text()
    )
    v2_name: str = setting(
        "V2_MODEL_NAME",
        "",
        "the model's name on the Open Inference Protocol routes (`/v2/models/{name}/infer`); "
        "KServe passes the InferenceService's name",
        path_segment(),
        shown="(`MODEL_NAME`)",
    )
    digest: str = setting(
        "MODEL_DIGEST",
        "",
        "serve only the artifact whose sha256 starts with this",
        text(lower=True),
        shown="(newest)",
    )
    train_if_missing: bool = setting(
        "TRAIN_IF_MISSING",
        True,
        "`1`: run the convert step when no artifact exists (needs the `train` extra); "
        "`0`: exit at once with status 2 and a message",
        flag(),
    )
    threshold: float | None = setting(
        "ANOMALY_THRESHOLD",
        None,
        "override the trained score threshold",
        number(),
        shown="(trained)",
    )
    envelope_preset: str = setting(
        "ENVELOPE_PRESET",
        "trained",
        "`trained`, `en50160` or `off` (docs/envelope.md)",
        text(lower=True),
    )
    envelope_file: str = setting(
        "ENVELOPE_FILE", "", 'JSON of per-feature bounds, `{"voltage": {"min": 207}}`', text()
    )
    envelope_overrides: tuple[tuple[str, str, float], ...] = setting(
        "ENVELOPE_<FEATURE>_<MIN|MAX>",
        (),
        "one bound, e.g. `ENVELOPE_VOLTAGE_MIN=200`; applied after `ENVELOPE_FILE`",
        envelope_bounds(),
    )
    watch_seconds: float = setting(
        "MODEL_WATCH",
        0.0,
        "check `MODEL_DIR` this often (seconds) for a newer artifact and swap to it "
        "(respecting `MODEL_DIGEST`); `0`: off",
        number(floor=0.0),
    )
    shadow_digest: str = setting(
        "SHADOW_DIGEST",
        "",
        "score every batch with this artifact too, off the response path, and count where it "
        "disagrees (docs/api.md)",
        text(lower=True),
        shown="(off)",
    )

    @property
    def served_name(self) -> str:
        """The name clients of the v2 routes use for the model."""
        return self.v2_name or self.name

    intra_op_threads: int = setting(
        "ORT_INTRA_OP_THREADS", 1, "onnxruntime intra-op threads per process", integer(minimum=1)
    )
    inter_op_threads: int = setting(
        "ORT_INTER_OP_THREADS", 1, "onnxruntime inter-op threads per process", integer(minimum=1)
    )


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Who may score and how much: the API key, batch and body limits, in-flight bound, time."""

    max_batch: int = setting(
        "MAX_BATCH", 10_000, "most readings per request (413 beyond)", integer(minimum=1)
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES",
        4 * 1024 * 1024,
        "largest request body in bytes (413 beyond)",
        integer(minimum=1024),
    )
    max_in_flight: int = setting(
        "MAX_IN_FLIGHT",
        64,
        "`/predict` requests one process serves at once (503 with Retry-After beyond)",
        integer(minimum=1),
    )
    request_timeout: float = setting(
        "REQUEST_TIMEOUT",
        10.0,
        "seconds for one `/predict`, body included (408 slow body, 503 slow work)",
        number(zero_is_default=True),
    )
    api_keys: tuple[str, ...] = setting(
        "API_KEY",
        (),
        "comma-separated keys; when set, `/predict` requires one "
        "(`Authorization: Bearer` or `X-API-Key`)",
        comma_list(),
        shown="(off)",
    )
    admin_keys: tuple[str, ...] = setting(
        "ADMIN_KEY",
        (),
        "comma-separated keys for `/admin/*` (model swap, rollback, shadow); unset: those "
        "routes answer 404",
        comma_list(),
        shown="(off)",
    )
    inline_rows: int = setting(
        "INLINE_ROWS",
        512,
        "batches up to this size score on the event loop; larger ones in a worker thread, "
        "so `/health` and `/live` stay responsive",
        integer(minimum=0),
    )


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """The dashboard: which scorer it talks to, its CSRF secret, and the bounds on bursts."""

    backend_url: str = setting(
        "BACKEND_URL",
        "",
        "scorer the dashboard talks to; required by `gridscore dashboard`",
        text(),
        shown="(this process)",
    )
    secret: str = setting(
        "DASHBOARD_SECRET",
        "",
        "signs the CSRF tokens; set it when several dashboard processes serve one site",
        text(),
        shown="(random)",
    )
    burst_max_requests: int = setting(
        "DASHBOARD_MAX_BURST_REQUESTS", 5_000, "most requests in one burst", integer(minimum=1)
    )
    burst_max_concurrency: int = setting(
        "DASHBOARD_MAX_BURST_CONCURRENCY",
        64,
        "most requests in flight in one burst",
        integer(minimum=1),
    )
    burst_max_seconds: float = setting(
        "DASHBOARD_MAX_BURST_SECONDS",
        30.0,
        "a burst stops after this long",
        number(zero_is_default=True),
    )
    max_batch: int = setting(
        "DASHBOARD_MAX_BATCH", 1_000, "most readings per dashboard request", integer(minimum=1)
    )


def _read(section: type[Any], env: Mapping[str, str]) -> Any:
    values = {
        f.name: f.metadata["parse"](env, f.metadata["env"], f.default) for f in fields(section)
    }
    return section(**values)


SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "model": ModelSettings,
    "limits": LimitSettings,
    "dashboard": DashboardSettings,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about gridscore, one frozen object per process."""

    server: ServerSettings = field(default_factory=ServerSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); raises SettingsError."""
        env = os.environ if env is None else env
        return cls(**{name: _read(section, env) for name, section in SECTIONS.items()})

    def dashboard_backend(self) -> str:
        """The scorer the dashboard uses: BACKEND_URL, else this process."""
        return self.dashboard.backend_url or f"http://127.0.0.1:{self.server.port}"


# The reference page (docs/configuration.md, written by python -m app.docgen).


def _shown_default(f: Any) -> str:
    if f.metadata["shown"] is not None:
        return str(f.metadata["shown"])
    value = f.default
    if value is MISSING or value in ("", (), None):
        return ""
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def reference_markdown() -> str:
    """The configuration reference: one table per section, from the field declarations."""
    lines: list[str] = []
    for name, section in SECTIONS.items():
        summary = (section.__doc__ or "").strip()
        lines += [
            f"### {name}",
            "",
            summary,
            "",
            "| variable | default | meaning |",
            "|---|---|---|",
        ]
        for f in fields(section):
            env = f.metadata["env"].replace("|", "\\|")
            lines.append(f"| `{env}` | {_shown_default(f)} | {f.metadata['doc']} |")
        lines.append("")
    return "\n".join(lines)
