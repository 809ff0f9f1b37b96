"""End the dashboard's event streams the moment the server is told to stop.

uvicorn only runs the app's shutdown hooks after open requests finish or its graceful timeout
runs out, and an SSE request never finishes by itself: every open dashboard tab would hold a
SIGTERM for the whole timeout. Chaining onto the signal handler uvicorn installed lets the
streams end at once, so the open requests complete and shutdown proceeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any


def on_stop_signal(callback: Callable[[], None]) -> None:
    """Run ``callback`` on the event loop when SIGTERM or SIGINT arrives, then the old handler."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def chained(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(callback)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL and signum == signal.SIGINT:
                raise KeyboardInterrupt

        with contextlib.suppress(ValueError):  # not the main thread (e.g. a test client)
            signal.signal(sig, chained)
