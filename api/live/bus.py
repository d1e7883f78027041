"""The event bus between the relay and every gateway process's hub.

- ``LocalBus`` (default, ``make run``): the relay and the hub live in one process.
- ``RedisBus`` (``ANJU_REDIS_URL``): one pub/sub channel; each process holds one subscription
  and fans out in process (api/live/hub.py).

A message is a JSON list of events: ``{"tenant", "seq", "kind", "entity", "payload", "at"}``.
Delivery is at most once per process; the hub notices a gap in a tenant's sequence and reads
what it missed from the outbox, so a dropped message or a Redis reconnect loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("anju.live")

Handler = Callable[[list[dict]], Awaitable[None] | None]
CHANNEL = "anju:live"


class LocalBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    async def start(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, events: list[dict]) -> None:
        # The same bytes as Redis would carry: a subscriber never shares objects with the relay.
        data = json.dumps(events, separators=(",", ":"))
        for handler in list(self._handlers):
            result = handler(json.loads(data))
            if asyncio.iscoroutine(result):
                await result

    async def close(self) -> None:
        self._handlers.clear()


class RedisBus:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self.channel = channel
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def start(self, handler: Handler) -> None:
        self._task = asyncio.create_task(self._listen(handler), name="anju-live-bus")
        await asyncio.wait_for(self._ready.wait(), 10)

    async def _listen(self, handler: Handler) -> None:
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._ready.set()
                delay = 0.2
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        events = json.loads(message["data"])
                    except ValueError:
                        log.warning("live bus: a message that is not JSON was dropped")
                        continue
                    try:
                        result = handler(events)
                        if asyncio.iscoroutine(result):
                            await result
                    except Exception:  # the handler's fault: keep the subscription
                        log.exception("live bus: the handler failed on a message")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: resubscribe (the hub fills gaps)
                log.warning("live bus: redis subscription lost", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def publish(self, events: list[dict]) -> None:
        await self._redis.publish(self.channel, json.dumps(events, separators=(",", ":")))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()


def make_bus(redis_url: str, channel: str = CHANNEL) -> LocalBus | RedisBus:
    return RedisBus(redis_url, channel) if redis_url else LocalBus()
