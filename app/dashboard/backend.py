"""The dashboard's client for the scorer at BACKEND_URL (HTTP only, keep-alive by default)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from app.contract.api import ErrorBody, HealthResponse, ModelResponse, PredictResponse
from app.dashboard.http1 import Connection, ProtocolError, Response, Target, build_request


class BackendError(RuntimeError):
    """The scorer could not be reached, or answered with an error."""


@dataclass(frozen=True)
class Scored:
    response: PredictResponse
    latency_s: float
    new_connection: bool


_decode_predict = msgspec.json.Decoder(PredictResponse).decode
_decode_health = msgspec.json.Decoder(HealthResponse).decode
_decode_model = msgspec.json.Decoder(ModelResponse).decode
MODEL_TTL_S = 5.0  # how long a model description is reused before asking again
_decode_error = msgspec.json.Decoder(ErrorBody).decode
_encode = msgspec.json.Encoder().encode


KeySource = str | Callable[[], str]  # a key, or where to read the current one (a key file's)


def key_headers(name: str, source: KeySource) -> tuple[tuple[str, str], ...]:
    key = source() if callable(source) else source
    return ((name, key),) if key else ()


class Backend:
    """Posts batches to ``/predict`` and reads ``/health`` of one scorer."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 5.0,
        api_key: KeySource = "",
        admin_key: KeySource = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._admin_key = admin_key
        self.predict_target = Target.parse(f"{self.base_url}/predict")
        self.health_target = Target.parse(f"{self.base_url}/health")
        self.model_target = Target.parse(f"{self.base_url}/model")
        self.timeout = timeout
        self._model: ModelResponse | None = None
        self._model_at = 0.0
        self._idle: list[Connection] = []
        self.connections_opened = 0

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return key_headers("X-API-Key", self._api_key)

    @property
    def admin_headers(self) -> tuple[tuple[str, str], ...]:
        return key_headers("X-Admin-Key", self._admin_key)

    async def _request(self, target: Target, raw: bytes, fresh: bool) -> Response:
        conn = None
        if not fresh:
            while self._idle and conn is None:
                candidate = self._idle.pop()
                conn = candidate if candidate.reusable else None
        try:
            if conn is None:
                conn = await asyncio.wait_for(Connection.connect(target), self.timeout)
                self.connections_opened += 1
            response = await asyncio.wait_for(conn.request(raw), self.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
            if conn is not None:
                await conn.close()
            reason = str(exc) or type(exc).__name__
            raise BackendError(f"scorer at {self.base_url} unreachable: {reason}") from None
        if response.keep_alive and not fresh:
            self._idle.append(conn)
        else:
            await conn.close()
        return response

    async def predict(
        self, readings: list[dict[str, float]], new_connection: bool = False
    ) -> Scored:
        body = _encode({"readings": readings})
        raw = build_request("POST", self.predict_target, body, new_connection, self.headers)
        started = time.perf_counter()
        response = await self._request(self.predict_target, raw, new_connection)
        status, body = response.status, response.body
        latency = time.perf_counter() - started
        if status != 200:
            raise BackendError(f"scorer answered {status}: {self._detail(body)}")
        return Scored(_decode_predict(body), latency, new_connection)

    async def health(self) -> HealthResponse:
        raw = build_request("GET", self.health_target)
        answer = await self._request(self.health_target, raw, fresh=False)
        status, body = answer.status, answer.body
        try:
            health = _decode_health(body)
        except msgspec.MsgspecError:
            raise BackendError(f"scorer answered {status} with an unexpected body") from None
        if status != 200:
            raise BackendError(f"scorer not ready ({health.status}): {health.reason or ''}".strip())
        return health

    async def model(self) -> ModelResponse:
        """The served model's description (GET /model), reused for a few seconds."""
        if self._model is not None and time.monotonic() - self._model_at < MODEL_TTL_S:
            return self._model
        raw = build_request("GET", self.model_target, headers=self.headers)
        answer = await self._request(self.model_target, raw, fresh=False)
        status, body = answer.status, answer.body
        if status != 200:
            raise BackendError(f"scorer has no model to describe ({status}): {self._detail(body)}")
        try:
            self._model = _decode_model(body)
        except msgspec.MsgspecError:
            raise BackendError("scorer described its model in an unexpected shape") from None
        self._model_at = time.monotonic()
        return self._model

    async def metrics_text(self) -> tuple[str, str]:
        """The scorer's /metrics (summed over its workers) and the instance that answered."""
        target = Target.parse(f"{self.base_url}/metrics")
        answer = await self._request(target, build_request("GET", target), fresh=False)
        if answer.status != 200:
            raise BackendError(f"scorer's /metrics answered {answer.status}")
        return answer.instance, answer.body.decode(errors="replace")

    async def metric_totals(self, names: tuple[str, ...]) -> dict[str, float]:
        """Totals of unlabelled series from the scorer's /metrics (summed over its workers)."""
        _, text = await self.metrics_text()
        totals = dict.fromkeys(names, 0.0)
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in totals:
                try:
                    totals[name] = float(value)
                except ValueError:
                    continue
        return totals

    async def admin(self, method: str, path: str, payload: object = None) -> None:
        """An /admin/* call with the configured admin key; raises BackendError on refusal."""
        if not self.admin_headers:
            raise BackendError("no admin key configured for this dashboard (ADMIN_KEY)")
        target = Target.parse(f"{self.base_url}{path}")
        body = _encode(payload) if payload is not None else b""
        raw = build_request(method, target, body, headers=self.admin_headers)
        answer = await self._request(target, raw, fresh=False)
        if answer.status != 200:
            raise BackendError(f"scorer refused ({answer.status}): {self._detail(answer.body)}")

    @staticmethod
    def _detail(body: bytes) -> str:
        try:
            return _decode_error(body).detail
        except msgspec.MsgspecError:
            return body[:200].decode(errors="replace")

    async def close(self) -> None:
        for conn in self._idle:
            await conn.close()
        self._idle.clear()
