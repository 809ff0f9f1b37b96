"""Process facts from /proc: children of a server, CPU time, resident and proportional memory."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(stat: Path) -> list[str]:
    """A /proc/<pid>/stat's fields after the command (which may hold spaces and parentheses):
    the state first, so field n of proc(5) is index n - 3."""
    return stat.read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat)
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_pids(server_pid: int) -> list[int]:
    """uvicorn's worker processes under a ``gridscore serve`` supervisor (or the server itself)."""
    spawned = [p for p in children(server_pid) if "spawn_main" in cmdline(p)]
    return spawned or [server_pid]


def memory_mib(pid: int) -> dict[str, float]:
    """RSS (what `top` shows) and PSS (shared pages split between the processes sharing them)."""
    result = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            result["rss_mib"] = round(int(line.split()[1]) / 1024, 1)
    rollup = Path(f"/proc/{pid}/smaps_rollup")
    if rollup.exists():
        for line in rollup.read_text().splitlines():
            if line.startswith("Pss:"):
                result["pss_mib"] = round(int(line.split()[1]) / 1024, 1)
    return result


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime and stime: 14 and 15


def run_timed(argv: list[str], env: dict[str, str], timeout: float) -> tuple[str, float]:
    """Run ``argv`` to its end; its output (standard output and error in one stream) and the
    CPU seconds (user plus system) it used, from the kernel's account of that one child
    (``wait4``), so no other child of this process is counted. Killed after ``timeout``
    seconds; a non-zero exit raises."""
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as child:
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        try:
            out = child.stdout.read()  # type: ignore[union-attr]
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, argv, out)
    return out, usage.ru_utime + usage.ru_stime


def preemptions(pid: int) -> int:
    """How many times the kernel has taken the CPU from ``pid``'s main thread while it could
    still run (involuntary context switches), to run something else: another process, thread
    or kernel thread. For a server whose main thread is its event loop, each is a pause in
    serving."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("nonvoluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def runqueue_wait_seconds(pid: int) -> float:
    """How long ``pid``'s main thread has waited, ready to run, for a core so far (the
    scheduler's run-queue delay, /proc/<pid>/schedstat's second field, in nanoseconds)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
