"""Rate limits per caller and per tenant: fixed one-minute windows, counted in Redis when
``ANJU_REDIS_URL`` is set (shared by every gateway process) and in process memory otherwise.

Counting is one round trip (INCR, with the key's expiry set on its first hit). A fixed window
lets a caller send up to twice the limit across a window boundary; that is accepted for the
simplicity of one counter per caller."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

WINDOW = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window ends


class Limiter(Protocol):
    async def hit(self, key: str, limit: int) -> Verdict: ...


def _window(now: float) -> tuple[int, int]:
    start = int(now // WINDOW) * WINDOW
    return start, max(1, start + WINDOW - int(now))


class MemoryLimiter:
    """Counters of this process (development, tests, a single gateway)."""

    def __init__(self, max_keys: int = 100_000):
        self.counts: dict[tuple[str, int], int] = {}
        self.max_keys = max_keys

    async def hit(self, key: str, limit: int) -> Verdict:
        start, retry = _window(time.time())
        if len(self.counts) >= self.max_keys:  # drop past windows first
            self.counts = {k: v for k, v in self.counts.items() if k[1] >= start}
        n = self.counts.get((key, start), 0) + 1
        self.counts[(key, start)] = n
        return Verdict(n <= limit, retry)


class RedisLimiter:
    """Counters shared by every gateway process through Redis."""

    def __init__(self, url: str):
        import redis.asyncio as redis

        self.redis = redis.from_url(url)

    async def hit(self, key: str, limit: int) -> Verdict:
        start, retry = _window(time.time())
        rkey = f"anju:rl:{key}:{start}"
        async with self.redis.pipeline(transaction=True) as pipe:
            n, _ = await pipe.incr(rkey).expire(rkey, WINDOW + 5, nx=True).execute()
        return Verdict(int(n) <= limit, retry)

    async def close(self) -> None:
        await self.redis.aclose()


def make_limiter(redis_url: str) -> Limiter:
    return RedisLimiter(redis_url) if redis_url else MemoryLimiter()
