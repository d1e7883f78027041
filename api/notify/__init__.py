"""Outgoing messages: SMS now; push, email and the inbox with the notifications issue."""
