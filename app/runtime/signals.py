"""React to SIGTERM/SIGINT inside a uvicorn worker before uvicorn itself does.

uvicorn's handler closes the listener at once and runs the app's shutdown hooks only after
open requests finish. Two things must happen earlier: readiness must turn 503 while the server
still accepts (so load balancers stop sending before the door closes), and SSE streams must end
(they never finish by themselves and would hold shutdown for the whole graceful timeout), and
every response from then on must close its connection (``http_protocol.begin_drain``), so
keep-alive clients move on with an answer rather than lose a request to a closed socket.
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

from app.runtime import http_protocol, listeners


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
                loop.call_soon_threadsafe(http_protocol.begin_drain)
                loop.call_soon_threadsafe(callback)
            if not callable(previous):
                if previous == signal.SIG_DFL and signum == signal.SIGINT:
                    raise KeyboardInterrupt
                return
            if seen["count"] == 1:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_stop_later, loop, delay, previous, signum, frame)
            else:
                previous(signum, frame)

        chained.gridscore_chain = True  # type: ignore[attr-defined]
        with contextlib.suppress(ValueError):  # not the main thread (e.g. a test client)
            signal.signal(sig, chained)


_stopping: set[asyncio.Task[None]] = set()


def _stop_later(
    loop: asyncio.AbstractEventLoop,
    delay: float,
    handler: Callable[[int, FrameType | None], Any],
    signum: int,
    frame: FrameType | None,
) -> None:
    """After ``delay``, stop taking connections (accepting those the kernel already
    completed), then let ``handler`` (uvicorn's) close the listeners."""

    async def stop() -> None:
        await asyncio.sleep(delay)
        if not getattr(handler, "gridscore_chain", False):  # the last link: uvicorn's
            await listeners.stop_accepting()
        handler(signum, frame)

    task = loop.create_task(stop())
    _stopping.add(task)
    task.add_done_callback(_stopping.discard)
