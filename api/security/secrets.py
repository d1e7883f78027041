"""Where secrets come from: settings (ANJU_* variables) only.

Outside production a missing secret is generated once and kept in ``<data_dir>/secrets.json``
(mode 600), so ``make run`` works on a fresh machine and restarts keep tokens and ciphertexts
valid. In production a missing secret stops the process at start-up."""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import secrets
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


def new_ed25519_pem() -> str:
    """A new Ed25519 private key (PKCS8 PEM): a JWT signing key."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


_GENERATORS = {
    "jwt_private_key": new_ed25519_pem,
    "field_keys": lambda: "1:" + base64.b64encode(os.urandom(32)).decode(),
    "blind_index_key": lambda: base64.b64encode(os.urandom(32)).decode(),
    "demo_password": lambda: "demo-" + base64.b32encode(os.urandom(10)).decode().lower(),
}


def dev_secret(settings: Settings, name: str) -> str:
    """A development secret kept in ``<data_dir>/secrets.json`` (mode 600), made on first use.
    Processes starting together (gateway, worker) serialise on a lock file, so they agree."""
    if settings.env == "production":
        raise MissingSecret(f"production needs ANJU_{name.upper()}")
    path = settings.data_dir / "secrets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = json.loads(path.read_text()) if path.exists() else {}
        if name not in stored:
            stored[name] = _GENERATORS[name]()
            tmp = path.with_name(f".secrets.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(stored, f)
            os.replace(tmp, path)
        return stored[name]


def _key32(b64: str, name: str) -> bytes:
    try:
        key = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise MissingSecret(f"{name} must be base64 of 32 bytes")
    return key


def parse_field_keys(raw: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        version, _, b64 = part.partition(":")
        if not version.isdigit() or int(version) > 65535:
            raise MissingSecret("ANJU_FIELD_KEYS entries must be 'version:base64(32 bytes)'")
        keys[int(version)] = _key32(b64, f"ANJU_FIELD_KEYS version {version}")
    if not keys:
        raise MissingSecret("ANJU_FIELD_KEYS must hold at least one key")
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
        blind_index_key=_key32(values["blind_index_key"], "ANJU_BLIND_INDEX_KEY"),
    )
