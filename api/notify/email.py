"""The email sender interface (SMTP arrives with the notifications issue) and its development /
test senders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("anju.email")


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str


class EmailSender(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


class ConsoleEmailSender:
    async def send(self, to: str, subject: str, text: str) -> None:
        log.info("email", to=to, subject=subject, text=text)


class CapturingEmailSender:
    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    async def send(self, to: str, subject: str, text: str) -> None:
        self.outbox.append(EmailMessage(to, subject, text))


def make_email_sender(backend: str) -> EmailSender:
    if backend == "console":
        return ConsoleEmailSender()
    if backend == "capture":
        return CapturingEmailSender()
    raise ValueError(f"unknown ANJU_EMAIL_BACKEND {backend!r} (console, capture)")
