"""The SMS provider interface and its development / test senders.

A real provider (Aliyun, Tencent Cloud, Twilio...) plugs in as another ``SmsSender`` chosen by
``ANJU_SMS_BACKEND``; the gateway only ever calls ``send``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("anju.sms")


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    text: str


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class ConsoleSender:
    """Development: the message goes to the log (the code is visible to the developer only)."""

    async def send(self, phone: str, text: str) -> None:
        log.info("sms", phone=phone, text=text)


class CapturingSender:
    """Tests: messages are kept in ``outbox``."""

    def __init__(self) -> None:
        self.outbox: list[SmsMessage] = []

    async def send(self, phone: str, text: str) -> None:
        self.outbox.append(SmsMessage(phone, text))

    def last_to(self, phone: str) -> SmsMessage | None:
        return next((m for m in reversed(self.outbox) if m.phone == phone), None)


def make_sender(backend: str) -> SmsSender:
    if backend == "console":
        return ConsoleSender()
    if backend == "capture":
        return CapturingSender()
    raise ValueError(f"unknown ANJU_SMS_BACKEND {backend!r} (console, capture)")
