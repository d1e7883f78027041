"""Rate limits per caller and per tenant: fixed one-minute windows, counted in Redis when
``ANJU_REDIS_URL`` is set (shared by every gateway process) and in process memory otherwise.

Counting is one round trip (INCR, with the key's expiry set on its first hit). A fixed window
lets a caller send up to twice the limit across a window boundary; that is accepted for the
simplicity of one counter per caller.

Redis out of reach does not stop the service: the count fails open to this process's memory
(each gateway process then allows the limit on its own), with a warning in the log and
``RedisLimiter.uncounted`` counting the calls. A count times out after ``timeout`` seconds
(no retry), and after a failure Redis is left alone for ``COOLDOWN`` seconds, so a dead Redis
costs a request at most one timeout every few seconds, then nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("anju.ratelimit")

WINDOW = 60
COOLDOWN = 5.0  # seconds Redis is not asked after it failed


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

    def __init__(self, max_keys: int = 100_000) -> None:
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
    """Counters shared by every gateway process through Redis; this process's own while
    Redis cannot be reached."""

    def __init__(self, url: str, timeout: float = 0.5, cooldown: float = COOLDOWN) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.redis = redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.cooldown = cooldown
        self.fallback = MemoryLimiter()
        self.uncounted = 0  # calls counted in memory because Redis was out of reach
        self.attempts = 0  # calls that asked Redis
        self._skip_until = 0.0

    async def hit(self, key: str, limit: int) -> Verdict:
        from redis.exceptions import RedisError

        if time.monotonic() < self._skip_until:
            self.uncounted += 1
            return await self.fallback.hit(key, limit)
        start, retry = _window(time.time())
        rkey = f"anju:rl:{key}:{start}"
        self.attempts += 1
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                # Buffered in the pipeline (redis types each command as its answer, not as
                # the pipeline to chain on).
                pipe.incr(rkey)
                pipe.expire(rkey, WINDOW + 5, nx=True)
                n, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + self.cooldown
            self.uncounted += 1
            log.warning(
                "rate limits: Redis out of reach, counting in this process",
                error=repr(exc)[:200],
                retry_in=self.cooldown,
            )
            return await self.fallback.hit(key, limit)
        return Verdict(int(n) <= limit, retry)

    async def close(self) -> None:
        await self.redis.aclose()


def make_limiter(redis_url: str, timeout: float = 0.5) -> Limiter:
    return RedisLimiter(redis_url, timeout) if redis_url else MemoryLimiter()
