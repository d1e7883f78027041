"""Where secrets come from: settings (ANJU_* variables) only.

Outside production a missing secret is generated once and kept in ``<data_dir>/secrets.json``
(mode 600), so ``make run`` works on a fresh machine and restarts keep tokens and ciphertexts
valid. In production a missing secret stops the process at start-up."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.settings import Settings


class MissingSecret(RuntimeError):
    pass


@dataclass(frozen=True)
class Secrets:
    jwt_private_key: str
    jwt_previous_public_keys: tuple[str, ...]
    field_keys: dict[int, bytes]
    blind_index_key: bytes


_GENERATORS = {
    "jwt_private_key": lambda: (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    ),
    "field_keys": lambda: "1:" + base64.b64encode(os.urandom(32)).decode(),
    "blind_index_key": lambda: base64.b64encode(os.urandom(32)).decode(),
    "demo_password": lambda: "demo-" + base64.b32encode(os.urandom(10)).decode().lower(),
}


def dev_secret(settings: Settings, name: str) -> str:
    """A development secret kept in ``<data_dir>/secrets.json`` (mode 600), made on first use."""
    if settings.env == "production":
        raise MissingSecret(f"production needs ANJU_{name.upper()}")
    path = settings.data_dir / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = _GENERATORS[name]()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
        os.replace(tmp, path)
    return stored[name]


def parse_field_keys(raw: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        version, _, b64 = part.partition(":")
        key = base64.b64decode(b64)
        if not version.isdigit() or len(key) != 32:
            raise MissingSecret("ANJU_FIELD_KEYS entries must be 'version:base64(32 bytes)'")
        keys[int(version)] = key
    return keys


def load_secrets(settings: Settings) -> Secrets:
    values = {
        "jwt_private_key": settings.jwt_private_key,
        "field_keys": settings.field_keys,
        "blind_index_key": settings.blind_index_key,
    }
    missing = [k for k, v in values.items() if not v]
    if missing and settings.env == "production":
        names = ", ".join("ANJU_" + k.upper() for k in missing)
        raise MissingSecret(f"production needs {names}")
    for k in missing:
        values[k] = dev_secret(settings, k)
    return Secrets(
        jwt_private_key=values["jwt_private_key"],
        jwt_previous_public_keys=tuple(settings.jwt_previous_public_keys),
        field_keys=parse_field_keys(values["field_keys"]),
        blind_index_key=base64.b64decode(values["blind_index_key"]),
    )
