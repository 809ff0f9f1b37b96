"""Settings of who may score and how much: keys, batch and body limits, in-flight bound, time."""

from __future__ import annotations

from dataclasses import dataclass

from app.config.fields import comma_list, integer, number, setting


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
