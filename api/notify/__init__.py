"""Outgoing messages: SMS now; push, email and the inbox with the notifications issue."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Senders:
    """The outgoing channels a request may use."""

    sms: Any
    email: Any
