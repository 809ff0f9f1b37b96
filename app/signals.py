"""React to SIGTERM/SIGINT inside a uvicorn worker before uvicorn itself does.

uvicorn's handler closes the listener at once and runs the app's shutdown hooks only after
open requests finish. Two things must happen earlier: readiness must turn 503 while the server
still accepts (so load balancers stop sending before the door closes), and SSE streams must end
(they never finish by themselves and would hold shutdown for the whole graceful timeout).
Chaining onto the handler uvicorn installed does both, and can hold uvicorn's own handling back
for a drain period.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any


def on_stop_signal(callback: Callable[[], None], delay: float = 0.0) -> None:
    """On SIGTERM or SIGINT run ``callback`` on the loop now, and the previous handler after
    ``delay`` seconds (a second signal goes through at once)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        seen = {"count": 0}

        def chained(
            signum: int, frame: FrameType | None, previous: Any = previous, seen: Any = seen
        ) -> None:
            seen["count"] += 1
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(callback)
            if not callable(previous):
                if previous == signal.SIG_DFL and signum == signal.SIGINT:
                    raise KeyboardInterrupt
                return
            if delay > 0 and seen["count"] == 1:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(loop.call_later, delay, previous, signum, frame)
            else:
                previous(signum, frame)

        with contextlib.suppress(ValueError):  # not the main thread (e.g. a test client)
            signal.signal(sig, chained)
