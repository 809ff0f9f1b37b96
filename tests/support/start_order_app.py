"""An ASGI app that answers each request with the place the server started it in (000000,
000001, ...). ``/hold?S`` sends its headers, then holds the event loop for S seconds before its
body: requests sent meanwhile are all read by the loop's next poll, and their answers show the
order the server started them in."""

from __future__ import annotations

import itertools
import time
from typing import Any

_started = itertools.count()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    place = next(_started)
    while (await receive()).get("more_body", False):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"6")],
        }
    )
    if scope["path"] == "/hold":
        time.sleep(float(scope["query_string"]))  # blocks the loop, on purpose
    await send({"type": "http.response.body", "body": b"%06d" % place})
