"""The event bus between the relay and every gateway process's hub.

- ``LocalBus`` (default, ``make run``): the relay and the hub live in one process.
- ``RedisBus`` (``ANJU_REDIS_URL``): one pub/sub channel; each process holds one subscription
  and fans out in process (api/live/hub.py).

A message is a JSON list of events: ``{"tenant", "seq", "kind", "entity", "payload", "at"}``.
Delivery is at most once per process; the hub notices a gap in a tenant's sequence and reads
what it missed from the outbox, so a dropped message loses nothing. When the subscription is
lost (Redis restarted, the network), it is made again (after 0.2 s, doubling up to 5 s), and
then ``on_resume(lost_at)`` tells the hub to read back what was published meanwhile: events
published while no subscription listened are not lost either, even when no later event
reveals the gap. Meanwhile the relay cannot publish: its rows wait in the outbox.

A gateway that starts while Redis is out of reach starts all the same: ``start`` waits for the
first attempt only (at most ``start_wait`` seconds), the listener keeps trying, and the first
subscription it makes counts as a resume from the first failure (or from the start, if that
attempt hung): ``on_resume`` reads back what was published before it listened.

Connections to Redis time out after ``timeout`` seconds (a Redis that does not answer fails
a publish instead of holding the relay), and the subscription is checked every 15 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from api.live.hub import LiveEvent

log = structlog.get_logger("anju.live")

Handler = Callable[[list[LiveEvent]], Awaitable[None] | None]
Resume = Callable[[float], Awaitable[None] | None]
CHANNEL = "anju:live"


async def _call(fn: Callable[..., Awaitable[None] | None], *args: Any) -> None:
    result = fn(*args)
    if asyncio.iscoroutine(result):
        await result


class LocalBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    async def start(self, handler: Handler, on_resume: Resume | None = None) -> None:
        self._handlers.append(handler)  # in process: never lost, never resumed

    async def publish(self, events: list[LiveEvent]) -> None:
        # The same bytes as Redis would carry: a subscriber never shares objects with the relay.
        data = json.dumps(events, separators=(",", ":"))
        for handler in list(self._handlers):
            await _call(handler, json.loads(data))

    async def close(self) -> None:
        self._handlers.clear()


class RedisBus:
    def __init__(self, url: str, channel: str = CHANNEL, *, timeout: float = 2.0) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(
            url, socket_connect_timeout=timeout, socket_keepalive=True, health_check_interval=15
        )
        self.channel = channel
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False  # a subscription is held now
        self._tried = asyncio.Event()  # the first attempt succeeded or failed
        self._lost_at: float | None = None  # no subscription since then (Unix time)

    async def start(
        self, handler: Handler, on_resume: Resume | None = None, *, start_wait: float = 5.0
    ) -> None:
        """Subscribe in the background. Returns once the first attempt is over (Redis up: from
        the first request on, the process hears every event); never fails: Redis out of
        reach is logged and the listener keeps trying."""
        started_at = time.time()
        self._task = asyncio.create_task(self._listen(handler, on_resume), name="anju-live-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), start_wait)
        if not self.subscribed:
            if self._lost_at is None:  # the first attempt still hangs
                self._lost_at = started_at
            log.warning("live bus: no redis subscription at start; trying in the background")

    async def _listen(self, handler: Handler, on_resume: Resume | None) -> None:
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed = True
                self._tried.set()
                delay = 0.2
                lost_at, self._lost_at = self._lost_at, None
                if lost_at is not None:
                    log.info("live bus: redis subscription made again")
                    if on_resume is not None:
                        try:
                            await _call(on_resume, lost_at)
                        except Exception:
                            log.exception("live bus: resuming after a lost subscription failed")
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        events = json.loads(message["data"])
                    except ValueError:
                        log.warning("live bus: a message that is not JSON was dropped")
                        continue
                    try:
                        await _call(handler, events)
                    except Exception:  # the handler's fault: keep the subscription
                        log.exception("live bus: the handler failed on a message")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost (or never made): resubscribe, then resume
                self.subscribed = False
                if self._lost_at is None:
                    self._lost_at = time.time()
                self._tried.set()
                log.warning("live bus: redis subscription lost", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def publish(self, events: list[LiveEvent]) -> None:
        await self._redis.publish(self.channel, json.dumps(events, separators=(",", ":")))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()


def make_bus(redis_url: str, channel: str = CHANNEL, timeout: float = 2.0) -> LocalBus | RedisBus:
    return RedisBus(redis_url, channel, timeout=timeout) if redis_url else LocalBus()


class Publisher(Protocol):
    """What the relay needs of a bus."""

    async def publish(self, events: list[LiveEvent]) -> None: ...
