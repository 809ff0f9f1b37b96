"""The floor of the HTTP stack: an ASGI app that answers every request with a fixed small
JSON body and does nothing else. Served by the same uvicorn, loop and protocol as gridscore
(``bench.service`` starts it), it shows what a request costs before any framework runs."""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"alive"}'
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"18")],
}
END = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body, as a real handler must
        message = await receive()
        more = message.get("more_body", False)
    await send(START)
    await send(END)
