"""Secrets, field encryption, blind indexes, passwords, tokens and the permission catalogue."""
