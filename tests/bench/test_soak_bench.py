"""The soak's server-side view: what the workers' own histogram says of each window."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.dashboard.loadrun import LoadResult, LoadSpec
from bench import procs, soak
from tests.support.tools import require_tool


def test_server_window_counts_the_requests_between_two_readings() -> None:
    before = {"0.001": 100.0, "0.0025": 110.0, "0.005": 110.0, "0.01": 110.0, "+Inf": 110.0}
    # 1,000 more: 950 under 1 ms, 45 under 2.5 ms, 4 under 5 ms, 1 over 10 ms.
    after = {"0.001": 1050.0, "0.0025": 1105.0, "0.005": 1109.0, "0.01": 1109.0, "+Inf": 1110.0}
    window = soak.server_window(before, after)
    assert window["requests"] == 1000
    assert window["slower_than_ms"] == {"1": 50, "2.5": 5, "5": 1, "10": 1}
    # 99 % of 1,000 is 990: 950 are under 1 ms, 995 under 2.5 ms.
    assert window["p99_under_ms"] == 2.5


def test_server_window_orders_the_bounds_as_numbers() -> None:
    # As text, "10.0" sorts before "2.5"; as numbers the 2.5 s bucket comes first.
    before = {"+Inf": 0.0, "10.0": 0.0, "2.5": 0.0, "0.005": 0.0}
    after = {"+Inf": 100.0, "10.0": 100.0, "2.5": 99.0, "0.005": 98.0}
    window = soak.server_window(before, after)
    # Exactly 99 % within 2.5 s: the p99 lies under 2.5 s, not 10 s.
    assert window["p99_under_ms"] == 2500.0
    assert window["slower_than_ms"] == {"5": 2}


def test_server_window_past_the_last_bound() -> None:
    after = {"0.001": 10.0, "0.01": 50.0, "+Inf": 100.0}
    assert soak.server_window({}, after)["p99_under_ms"] == float("inf")


def test_server_window_without_requests_has_no_p99() -> None:
    same = {"0.001": 5.0, "+Inf": 5.0}
    window = soak.server_window(same, same)
    assert window["requests"] == 0
    assert window["p99_under_ms"] is None


def test_windows_group_requests_by_when_they_finished() -> None:
    result = LoadResult(LoadSpec("http://127.0.0.1:1/predict", rate=10.0))
    # Finished 1 s, 2 s and 6 s after the start; the last one was sent 30 ms late.
    result.finished = [101.0, 102.0, 106.0]
    result.latencies = [0.002, 0.004, 0.040]
    result.send_delays = [0.0, 0.001, 0.030]
    first, second = soak.windows(result, start=100.0)
    assert (first["from_s"], first["requests"], second["from_s"], second["requests"]) == (
        0.0,
        2,
        5.0,
        1,
    )
    assert first["p50_ms"] == pytest.approx(3.0)
    assert first["send_delay_p99_ms"] == pytest.approx(0.99)
    assert (second["p99_ms"], second["send_delay_p99_ms"]) == (40.0, 30.0)


def test_cpu_and_wait_windows_are_per_process_differences() -> None:
    first = soak.Sample(10.0, {}, {1: 2.0, 2: 5.0}, {1: 0, 2: 0}, {1: 0.5, 2: 1.0})
    last = soak.Sample(15.0, {}, {1: 6.0, 2: 5.5}, {1: 3, 2: 0}, {1: 0.75, 2: 1.0})
    assert soak.cpu_window(first, last) == {1: 80.0, 2: 10.0}
    assert soak.wait_window(first, last) == {1: 250.0, 2: 0.0}


SPIN = "import time\nuntil = time.perf_counter() + 1.5\nwhile time.perf_counter() < until: pass"


def test_runqueue_wait_is_the_time_ready_without_a_core() -> None:
    # Three busy processes held to one core: each is ready all the time and runs about a
    # third of it, so each waits for the core about twice as long as it runs.
    core = {min(os.sched_getaffinity(0))}
    started = time.perf_counter()
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(3)]
    try:
        for spinner in spinners:
            os.sched_setaffinity(spinner.pid, core)
        time.sleep(1.0)
        read = {
            s.pid: (procs.runqueue_wait_seconds(s.pid), procs.cpu_seconds(s.pid)) for s in spinners
        }
        alive = time.perf_counter() - started
    finally:
        for spinner in spinners:
            spinner.wait()
    for waited, ran in read.values():
        assert waited >= 0.3, read
        assert waited > 1.4 * ran, read
        # Waiting and running both take time the process was alive (ticks: a little slack).
        assert waited + ran <= alive + 0.05, (read, alive)


def test_an_idle_process_waits_for_no_core() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    try:
        time.sleep(0.6)
        # Its start-up ran; since then it has only slept.
        waited = procs.runqueue_wait_seconds(sleeper.pid)
        time.sleep(0.2)
        assert procs.runqueue_wait_seconds(sleeper.pid) - waited < 0.01
    finally:
        sleeper.wait()


def test_cpu_seconds_is_what_the_kernel_charged_the_process() -> None:
    sum(i * i for i in range(2_000_000))  # some CPU to count
    before = os.times()
    measured = procs.cpu_seconds(os.getpid())
    after = os.times()
    # /proc counts in clock ticks: at most one tick below what os.times says.
    tick = 1 / procs.CLOCK_TICKS
    assert before.user + before.system - tick <= measured <= after.user + after.system + tick
    assert measured > 0


def test_run_timed_counts_its_own_child_alone() -> None:
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    # Another child that spins and is reaped meanwhile must not be counted.
    other = subprocess.Popen([sys.executable, "-c", spin])
    out, cpu = procs.run_timed(
        [sys.executable, "-c", spin + "\nprint('done')"], dict(os.environ), 30
    )
    other.wait()
    assert out.strip() == "done"
    assert 0.25 <= cpu < 0.55  # its 0.3 s and its interpreter's start, not the other's
    with pytest.raises(subprocess.CalledProcessError):
        procs.run_timed([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ), 30)
    started = time.monotonic()
    with pytest.raises(subprocess.CalledProcessError):  # killed at its time limit
        procs.run_timed([sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ), 1)
    assert time.monotonic() - started < 10


def test_paced_wrk_shortens_the_think_time_by_what_requests_take(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    latency_ms = 2.0
    asked: list[float] = []

    def wrk_model(url: str, seconds: float, connections: int, body: Path, think_ms: float) -> dict:
        # Each connection's cycle: its think time, then its request.
        asked.append(think_ms)
        return {"requests_per_s": connections * 1000 / (think_ms + latency_ms)}

    monkeypatch.setattr(soak.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(soak, "wrk", wrk_model)
    paced = soak.paced_wrk("http://127.0.0.1:1/predict", tmp_path / "b", 3200.0, 10.0, [])
    assert paced is not None
    assert asked == [pytest.approx(20.0), pytest.approx(18.0)]  # 64 / 3,200 per s; less 2 ms
    assert paced["requests_per_s"] == pytest.approx(3200.0)
    assert paced["think_ms"] == 18.0
    # Requests slower than a whole cycle: no think time could pace them.
    latency_ms = 25.0
    assert soak.paced_wrk("http://127.0.0.1:1/predict", tmp_path / "b", 3200.0, 10.0, []) is None


def test_preemptions_are_the_main_threads_involuntary_switches() -> None:
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
    measured = procs.preemptions(os.getpid())
    after = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
    assert before <= measured <= after


@pytest.mark.slow
def test_a_sampler_that_fails_gives_no_samples_and_stops(tmp_path: Path) -> None:
    # No metrics folder: the sampler starts, says it is ready, then fails on its first read.
    with soak.Sampler(str(tmp_path / "missing"), [os.getpid()]) as sampler:
        assert sampler.begin(5.0) is not None
        assert sampler.samples() == []
    assert not sampler.process.is_alive()


@pytest.mark.slow
@pytest.mark.system
def test_a_soak_reports_the_workers_view_of_every_window(model_dir: Path) -> None:
    require_tool("wrk", "wrk")  # the paced C client after the open loop
    result = soak.soak_once(model_dir, duration=10.0, baseline=None)
    windows = result["windows"]
    assert [w["from_s"] for w in windows] == [0.0, 5.0]
    for window in windows:
        server = window["server"]
        # The workers answered the requests the client saw finish in the same 5 seconds
        # (give or take those in flight at the edges).
        assert server["requests"] == pytest.approx(window["requests"], rel=0.05)
        assert server["p99_under_ms"] is not None
        # Each request was sent no later than it finished: so is the p99 of each.
        assert 0 <= window["send_delay_p99_ms"] <= window["p99_ms"]
        assert len(window["worker_cpu_pct"]) == 2
        # One worker may sit idle in a window (the generator reuses the connection freed
        # last), but together they served the window's requests.
        assert all(0 <= share <= 105 for share in window["worker_cpu_pct"])
        assert sum(window["worker_cpu_pct"]) > 5
        assert 0 < window["generator_cpu_pct"] <= 105
        assert len(window["worker_preemptions"]) == 2
        assert all(n >= 0 for n in window["worker_preemptions"])
        # Waiting for a core takes part of a window, never more than all of it.
        assert all(0 <= ms <= 5000 for ms in window["worker_waited_ms"])
        assert 0 <= window["generator_waited_ms"] <= 5000
    assert result["summary"]["ok"] == result["summary"]["requests"]
    # The same rate again from wrk, each connection paced by think times calibrated so that
    # the 64 together send about the soak's rate.
    paced = result["paced_wrk"]
    assert paced["errors"] == 0
    assert paced["requests_per_s"] == pytest.approx(result["rate_requests_per_s"], rel=0.1)
    assert 0 < paced["p50_ms"] <= paced["p99_ms"] <= paced["max_ms"]
    assert paced["think_ms"] > 0
    assert 0 < paced["client_cpu_pct"] <= 105  # wrk's own, one thread
    assert len(paced["worker_cpu_pct"]) == 2
