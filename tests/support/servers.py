"""Real gridscore processes on loopback ports, for tests that need a live server.

The benchmarks start servers the same way, so the harness itself lives with them
(``bench/serving.py``, ``bench/procs.py``); tests take it from here.
"""

from bench.procs import memory_mib, worker_pids
from bench.serving import RunningServer, free_port, gridscore_serve, run_server

__all__ = [
    "RunningServer",
    "free_port",
    "gridscore_serve",
    "memory_mib",
    "run_server",
    "worker_pids",
]
