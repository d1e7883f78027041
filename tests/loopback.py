"""Serving on loopback in the test process: the one helper the suite's gateways (``LiveServer``
in conftest) and loopback fakes (Stripe, FCM, SMTP) use.

``LoopbackServer`` runs an ASGI app under uvicorn in a daemon thread with its own event loop,
on a socket bound to a port of 127.0.0.1 the OS picked (no guessed free port, no race for it).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn


def loopback_socket() -> socket.socket:
    """A listening TCP socket on a free port of 127.0.0.1.

    IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on the connections it accepts only when the
    listening socket says it is TCP (``socket.create_server`` leaves the protocol 0), and without
    it a small answer can wait 40 ms for the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


class OnLoopback:
    """The addresses of a server listening on ``self.port`` of 127.0.0.1 (``ws_url``: a
    gateway's GraphQL WebSocket endpoint)."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


class LoopbackServer(OnLoopback):
    """``app`` served by uvicorn (``**config``: ``uvicorn.Config`` options) on a loopback port,
    in a thread with its own event loop. ``start()`` returns once uvicorn accepts connections;
    also a context manager (``with LoopbackServer(app) as server:``)."""

    def __init__(self, app, *, label: str = "loopback server", **config) -> None:
        self.label = label
        self.sock = loopback_socket()
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, **config))
        self.thread = threading.Thread(
            target=self._serve, name=f"{label} :{self.port}", daemon=True
        )

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self, timeout: float = 15.0):
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{self.label} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=15)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
