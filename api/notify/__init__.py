"""Outgoing messages and the notification centre: SMS, email (SMTP), push (FCM), the inbox,
preferences and quiet hours (see docs/notifications.md)."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Senders:
    """The outgoing channels: ``push`` is used by the job worker only."""

    sms: Any
    email: Any
    push: Any = None


def make_senders(settings) -> Senders:
    from api.notify.email import make_email_sender
    from api.notify.push import make_push_sender
    from api.notify.sms import make_sender

    return Senders(
        sms=make_sender(settings.sms_backend),
        email=make_email_sender(settings.email_backend, settings),
        push=make_push_sender(settings),
    )
