"""The notification scenario's loopback FCM: ``python -m bench.fcm PORT``. A bare ASGI app on
uvicorn (httptools) answering ``POST /v1/projects/<p>/messages:send`` with FCM's success body
and counting what it received; ``GET /count`` returns the count."""

from __future__ import annotations

import json
import sys

import uvicorn

received = 0


async def app(scope, receive, send) -> None:
    global received
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        body = json.dumps({"count": received}).encode()
    else:
        received += 1
        body = b'{"name":"projects/bench/messages/%d"}' % received
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        lifespan="off",
    )
