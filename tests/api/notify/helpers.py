"""A loopback SMTP server and the mailbox it delivers to, for the notification tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email import policy as email_policy

from aiosmtpd.controller import Controller

from tests.loopback import loopback_socket


class Mailbox:
    """aiosmtpd handler keeping each message it accepts."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        mail = message_from_bytes(envelope.content, policy=email_policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 Message accepted for delivery"


class LoopbackSmtp(Controller):
    """aiosmtpd's threaded Controller on the socket of ``loopback_socket`` (a port the OS
    picked, TCP_NODELAY on what it accepts)."""

    def __init__(self, handler) -> None:
        self._sock = loopback_socket()
        super().__init__(handler, hostname="127.0.0.1", port=self._sock.getsockname()[1])

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


@contextmanager
def loopback_smtp() -> Iterator[tuple[LoopbackSmtp, Mailbox]]:
    """A running loopback SMTP server and its mailbox, stopped on exit."""
    mailbox = Mailbox()
    controller = LoopbackSmtp(mailbox)
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()
