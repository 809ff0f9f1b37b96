"""The load generator against a live gridscore: bounded, honest about queueing and connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import loadgen
from tests.support.servers import RunningServer, gridscore_serve


@pytest.fixture(scope="module")
def live(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with gridscore_serve(model_dir, tmp_path_factory.mktemp("loadgen"), WORKERS="2") as server:
        yield server


def test_spec_refuses_unbounded_runs() -> None:
    with pytest.raises(ValueError, match="duration"):
        loadgen.LoadSpec("http://127.0.0.1:1/predict", duration=0)
    with pytest.raises(ValueError, match="duration"):
        loadgen.LoadSpec("http://127.0.0.1:1/predict", duration=10_000)
    with pytest.raises(ValueError, match="requests"):
        loadgen.LoadSpec("http://127.0.0.1:1/predict", requests=10**9)


@pytest.mark.slow
def test_closed_loop_stops_at_the_request_count_without_errors(live: RunningServer) -> None:
    spec = loadgen.LoadSpec(f"{live.url}/predict", batch=10, connections=4, requests=300)
    summary = loadgen.run(spec).summary()
    assert summary["requests"] == summary["ok"] == 300
    assert summary["errors_by_status"] == {}
    assert summary["transport_errors"] == {}
    assert summary["connections_opened"] == 4
    assert summary["rows_per_s"] == pytest.approx(summary["requests_per_s"] * 10, rel=0.01)
    assert summary["p50_ms"] <= summary["p90_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert sum(summary["served_by"].values()) == 300


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["v2-json", "v2-binary"])
def test_closed_loop_over_the_v2_protocol(live: RunningServer, protocol: str) -> None:
    model = loadgen.served_model(live.url)
    assert model is not None
    spec = loadgen.LoadSpec(
        loadgen.target(live.url, protocol, model),
        batch=50,
        connections=2,
        requests=100,
        protocol=protocol,
        features=tuple(model.features),
    )
    summary = loadgen.run(spec).summary()
    assert summary["requests"] == summary["ok"] == 100
    assert summary["errors_by_status"] == {}
    assert summary["protocol"] == protocol
    # Read from the v2 answer's parameters and model_version (binary answers included).
    assert sum(summary["served_by"].values()) == 100
    assert summary["models"] == {model.digest[:12]: 100}


def test_spec_refuses_an_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="protocol"):
        loadgen.LoadSpec("http://127.0.0.1:1/predict", protocol="grpc")


@pytest.mark.slow
def test_open_loop_holds_the_rate_and_stops_at_the_duration(live: RunningServer) -> None:
    spec = loadgen.LoadSpec(f"{live.url}/predict", rate=200, connections=8, duration=1.5)
    summary = loadgen.run(spec).summary()
    assert summary["mode"] == "open"
    assert 250 <= summary["requests"] <= 305  # 200/s for 1.5 s
    assert summary["ok"] == summary["requests"]
    assert summary["elapsed_s"] < 5


@pytest.mark.slow
def test_open_loop_opens_its_connections_before_the_first_request(live: RunningServer) -> None:
    # 20 requests a second need one connection at a time; all eight are open from the start,
    # so no request waits for a connection to be set up.
    spec = loadgen.LoadSpec(f"{live.url}/predict", rate=20, connections=8, duration=0.5)
    summary = loadgen.run(spec).summary()
    assert summary["connections_opened"] == 8
    assert summary["ok"] == summary["requests"] >= 9
    assert summary["elapsed_s"] < 2


@pytest.mark.slow
def test_open_loop_counts_queueing_from_the_intended_send_time(live: RunningServer) -> None:
    url = f"{live.url}/predict"
    service = loadgen.run(loadgen.LoadSpec(url, batch=1000, requests=20)).summary()
    # One connection serves ~100 of these a second; ask for 1,000/s for half a second. They
    # queue, and latency measured from when each was due grows far past the service time.
    overload = loadgen.run(loadgen.LoadSpec(url, batch=1000, rate=1000, duration=0.5)).summary()
    assert overload["ok"] == overload["requests"] >= 400
    assert overload["max_ms"] > 20 * service["p50_ms"]
    assert overload["p50_ms"] > 5 * service["p50_ms"]
    # They waited for the one connection on the generator's side: the send delay says so.
    assert overload["send_delay_p99_ms"] > 5 * service["p50_ms"]
    assert overload["send_delay_p99_ms"] <= overload["max_ms"]


@pytest.mark.slow
def test_new_connection_per_request_opens_one_each_and_spreads(live: RunningServer) -> None:
    spec = loadgen.LoadSpec(f"{live.url}/predict", requests=200, new_connection=True)
    summary = loadgen.run(spec).summary()
    assert summary["connections_opened"] == 200
    assert summary["ok"] == 200
    assert len(summary["served_by"]) == 2


@pytest.mark.slow
def test_ceiling_measures_the_generator_against_live(live: RunningServer) -> None:
    summary = loadgen.ceiling(live.url, connections=2, duration=0.5)
    assert summary["ok"] > 0
    assert summary["errors_by_status"] == {}


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _two_requests_against(
    handler: Callable[[list[asyncio.StreamWriter]], Handler],
) -> dict[str, Any]:
    """Two requests (one connection, 0.3 s timeout) against a scripted loopback server;
    ``handler`` is given the list of the connections it has taken, closed at the end."""

    async def scenario() -> loadgen.LoadResult:
        held: list[asyncio.StreamWriter] = []
        server = await asyncio.start_server(handler(held), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spec = loadgen.LoadSpec(f"http://127.0.0.1:{port}/predict", requests=2, timeout=0.3)
        try:
            return await loadgen.run_async(spec)
        finally:
            for writer in held:
                writer.close()
            server.close()

    return asyncio.run(scenario()).summary()


def test_a_request_never_answered_times_out_as_a_whole() -> None:
    """A server that reads the request and never answers: each request is given up after the
    spec's timeout (one budget from taking a connection to its answer), counted as a transport
    error, and the run ends instead of hanging."""

    def silent(held: list[asyncio.StreamWriter]) -> Handler:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # kept open, never answered
            await reader.read(65536)

        return serve

    started = time.perf_counter()
    summary = _two_requests_against(silent)
    assert time.perf_counter() - started < 3
    assert summary["transport_errors"] == {"TimeoutError": 2}
    assert summary["ok"] == 0


def test_one_time_budget_covers_a_retry_on_a_fresh_connection() -> None:
    """A kept-alive connection the server closes without answering is retried on a new one,
    within the same budget: 0.2 s lost on the dead connection and 0.2 s on the new one exceed
    a 0.3 s timeout, although each alone would not."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}"

    def drops_the_second(held: list[asyncio.StreamWriter]) -> Handler:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)
            first_connection = len(held) == 1
            await reader.readuntil(b"\r\n\r\n{")  # the request's head and the body's start
            if first_connection:
                writer.write(ok)  # the first request: answered, the connection kept
                await reader.readuntil(b"\r\n\r\n{")
            await asyncio.sleep(0.2)
            if first_connection:
                writer.close()  # the second request: dropped unanswered, as by an idle timeout
            else:
                writer.write(ok)  # its retry: answered, 0.4 s after it was first sent

        return serve

    summary = _two_requests_against(drops_the_second)
    assert summary["ok"] == 1
    assert summary["transport_errors"] == {"TimeoutError": 1}
    assert summary["connections_opened"] == 2
