"""The email sender interface: SMTP (aiosmtplib), and the development / test senders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

if TYPE_CHECKING:
    from api.settings import Settings

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


class SmtpEmailSender:
    """Plain-text mail through an SMTP server (STARTTLS when configured)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 20,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout

    async def send(self, to: str, subject: str, text: str) -> None:
        from email.message import EmailMessage as Mime

        import aiosmtplib

        mail = Mime()
        mail["From"], mail["To"], mail["Subject"] = self.sender, to, subject
        mail.set_content(text)
        await aiosmtplib.send(
            mail,
            hostname=self.host,
            port=self.port,
            start_tls=self.starttls,
            username=self.username or None,
            password=self.password or None,
            timeout=self.timeout,
        )


def make_email_sender(backend: str, settings: Settings | None = None) -> EmailSender:
    if backend == "console":
        return ConsoleEmailSender()
    if backend == "capture":
        return CapturingEmailSender()
    if backend == "smtp" and settings is not None:
        return SmtpEmailSender(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    raise ValueError(f"unknown ANJU_EMAIL_BACKEND {backend!r} (console, capture, smtp)")
