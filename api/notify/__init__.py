"""Outgoing messages and the notification centre: SMS, email (SMTP), push (FCM), the inbox,
preferences and quiet hours (see docs/notifications.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.notify.email import EmailSender
    from api.notify.push import PushSender
    from api.notify.sms import SmsSender
    from api.settings import Settings


@dataclass(frozen=True)
class Senders:
    """The outgoing channels: ``push`` is used by the job worker only."""

    sms: SmsSender
    email: EmailSender
    push: PushSender | None = None


def make_senders(settings: Settings) -> Senders:
    from api.notify.email import make_email_sender
    from api.notify.push import make_push_sender
    from api.notify.sms import make_sender

    return Senders(
        sms=make_sender(settings.sms_backend),
        email=make_email_sender(settings.email_backend, settings),
        push=make_push_sender(settings),
    )
