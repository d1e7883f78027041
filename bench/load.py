"""The load generator: an asyncio HTTP/1.1 keep-alive client run in its own process.

Two measurements per target:
* ``max``: closed loop, ``concurrency`` requests in flight, for ``seconds``: throughput;
* ``fixed``: open loop at a fixed rate (requests scheduled at exact times, latency counted from
  the scheduled time, so a slow server cannot hide queueing): p50 / p99;
* ``each``: closed loop, every request of the list sent once (shuffled), ``concurrency`` in
  flight: a warm-up that reaches every tenant of a list.
A request is (path, headers, body); in ``max`` and ``fixed``, each request picks one at random
from the given list.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time

NAME = "anju-bench asyncio HTTP/1.1 client (separate process)"


class _Conn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:].strip())
        if length:
            await self.reader.readexactly(length)
        return status


def _encode(port: int, path: str, headers: dict, body: bytes) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _run(port, requests, mode, seconds, concurrency, rate, seed, window) -> dict:
    rng = random.Random(seed)
    raws = [_encode(port, p, h, b) for p, h, b in requests]
    pool: asyncio.Queue = asyncio.Queue()
    size = max(concurrency, 256) if mode == "fixed" else concurrency
    for _ in range(size):
        pool.put_nowait(_Conn(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []  # (scheduled offset, latency) in fixed mode
    error_kinds: dict[str, int] = {}

    def failed(kind: str) -> None:
        error_kinds[kind] = error_kinds.get(kind, 0) + 1

    async def one(scheduled: float, raw: bytes | None = None) -> None:
        conn = await pool.get()
        try:
            status = await conn.request(raw if raw is not None else rng.choice(raws))
            if status != 200:
                failed(f"HTTP {status}")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            failed(type(exc).__name__)
            conn.writer.close()
            conn = _Conn(*await asyncio.open_connection("127.0.0.1", port))
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)
        if mode == "fixed":
            timeline.append((scheduled - t0, latencies[-1]))

    t0 = time.perf_counter()
    if mode == "max":
        deadline = t0 + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await one(time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elif mode == "each":
        order = list(raws)
        rng.shuffle(order)

        async def sender() -> None:
            while order:
                raw = order.pop()
                await one(time.perf_counter(), raw)

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    else:
        n = int(rate * seconds)
        tasks = []
        for i in range(n):
            at = t0 + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at)))
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    while not pool.empty():
        pool.get_nowait().writer.close()
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    out_windows = []
    if window:
        by_window: dict[int, list[float]] = {}
        for at, lat in timeline:
            by_window.setdefault(int(at // window), []).append(lat)
        for i in sorted(by_window):
            lats = sorted(by_window[i])
            p99 = lats[min(len(lats) - 1, int(0.99 * len(lats)))]
            out_windows.append((i * window, len(lats), lats[len(lats) // 2] * 1000, p99 * 1000))
    return {
        "windows": out_windows,
        "requests": len(latencies),
        "errors": sum(error_kinds.values()),
        "error_kinds": error_kinds,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def _child(conn, *args) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    conn.send(asyncio.run(_run(*args)))
    conn.close()


def measure(port, requests, mode, seconds, concurrency=32, rate=0.0, seed=1, window=0.0) -> dict:
    """Run one measurement in a separate process and return its numbers (``window``, fixed
    mode: also ``windows``, (start s, requests, p50 ms, p99 ms) of each ``window`` seconds by
    scheduled time)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_child, args=(child, port, requests, mode, seconds, concurrency, rate, seed, window)
    )
    proc.start()
    result = parent.recv()
    proc.join()
    return result
