"""The WebSocket load generator of the live scenario: a separate process holding thousands of
graphql-transport-ws connections on plain asyncio protocols (a minimal RFC 6455 client: masked
text frames out, unmasked frames in, pings answered), so that the time it spends per message
is small next to the server's. It timestamps the arrival of each ``next`` message with the
system-wide monotonic clock, which the parent process reads too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import time
import urllib.request

NAME = "asyncio WebSocket client (bench/wsclient.py, one process)"


def frame(text: str, opcode: int = 0x1) -> bytes:
    data = text.encode()
    n = len(data)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + data  # a zero mask: the payload goes as it is


class Round:
    """How many sockets still wait for this round's message."""

    def __init__(self) -> None:
        self.waiting = 0
        self.done = asyncio.Event()

    def start(self, n: int) -> None:
        self.waiting = n
        self.done.clear()


class Sock(asyncio.Protocol):
    def __init__(self, request: bytes, init: str, after_ack: list[str], round_: Round) -> None:
        self.round = round_
        self.init = init
        self.request = request
        self.after_ack = after_ack
        self.buf = b""
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.arrived: list[float] = []
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.fail(self.buf[:200].decode(errors="replace"))
                return
            self.upgraded, self.buf = True, self.buf[end + 4 :]
            # Only now: uvicorn drops bytes that come with the upgrade request.
            self.transport.write(frame(self.init))
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + n:
                return
            payload, self.buf = self.buf[at : at + n], self.buf[at + n :]
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping: pong with the same payload
                self.transport.write(frame(payload.decode(errors="replace"), 0xA))
            elif opcode == 0x8:
                self.fail("closed by the server")
            elif opcode == 0x1:
                self.text(payload, now)

    def text(self, payload: bytes, now: float) -> None:
        if b'"next"' in payload:
            self.arrived.append(now)
            if len(self.arrived) == 1:
                self.round.waiting -= 1
                if self.round.waiting == 0:
                    self.round.done.set()
        elif b'"connection_ack"' in payload:
            for message in self.after_ack:
                self.transport.write(frame(message))
            if not self.ready.done():
                self.ready.set_result(True)
        elif b'"ping"' in payload:
            self.transport.write(frame('{"type":"pong"}'))
        elif b'"error"' in payload:
            self.fail(payload[:300].decode(errors="replace"))

    def fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    def connection_lost(self, exc) -> None:
        self.fail(f"connection lost: {exc}")


def _post(port: int, path: str, headers: dict, body: bytes) -> None:
    url = f"http://127.0.0.1:{port}{path}"
    headers = {"Content-Type": "application/json", **headers}
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as res:
        answer = json.loads(res.read() or b"{}")
    if answer.get("errors"):
        raise RuntimeError(f"trigger failed: {answer}")


async def _run(
    port: int, n: int, tenant: str, token: str, subscribe: str, triggers: list, pipe
) -> None:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n"
        f"X-Tenant: {tenant}\r\n\r\n"
    ).encode()
    init = json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    socks: list[Sock] = []
    gate = asyncio.Semaphore(100)
    round_ = Round()

    async def open_one(i: int) -> None:
        async with gate:
            sub = json.dumps({"id": "1", "type": "subscribe", "payload": json.loads(subscribe)})
            sock = Sock(request, init, [sub], round_)
            await loop.create_connection(lambda: sock, "127.0.0.1", port)
            await asyncio.wait_for(sock.ready, 30)
            socks.append(sock)

    await asyncio.gather(*(open_one(i) for i in range(n)))
    await asyncio.sleep(1.0)  # the last subscribes are registered
    pipe.send(("connected", len(socks)))
    pipe.recv()  # the parent measured the server's memory
    rounds = []
    for path, headers, body in triggers:
        for s in socks:
            s.arrived.clear()
        round_.start(len(socks))
        t0 = time.monotonic()
        await loop.run_in_executor(None, _post, port, path, headers, body)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(round_.done.wait(), 10)
        got = [s.arrived[0] - t0 for s in socks if s.arrived]
        rounds.append({"received": len(got), "latencies": got})
        await asyncio.sleep(0.2)
    pipe.send(("done", rounds))
    for s in socks:
        s.transport.close()


def child(pipe, *args) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    os.nice(0)
    asyncio.run(_run(*args, pipe))
