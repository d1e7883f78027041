"""Field-level encryption (AES-256-GCM) and blind indexes (HMAC-SHA256).

Ciphertext layout: 2-byte key version, 12-byte nonce, GCM ciphertext+tag. The associated data
binds a value to where it belongs: ``scope|table|column|row id`` (scope: the tenant id, or
``shared`` for the shared schema), so a ciphertext copied to another row, column or tenant fails
to decrypt. The newest key version encrypts; every configured version decrypts, which is what
lets ``anju keys rotate`` re-encrypt in the background while reads keep working.

Blind index: HMAC-SHA256 of the normalised value under a per-scope key derived (HKDF) from the
blind-index key, so equal values match within a tenant and not across tenants.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionFailed(Exception):
    """The ciphertext is not valid for this place (moved, tampered) or its key is unknown."""


def _ad(scope: str, table: str, column: str, row_id: object) -> bytes:
    return f"{scope}|{table}|{column}|{row_id}".encode()


class FieldCipher:
    def __init__(self, keys: dict[int, bytes]):
        if not keys:
            raise ValueError("at least one field key is required")
        self._aead = {v: AESGCM(k) for v, k in keys.items()}
        self.current = max(keys)

    def encrypt(self, value: str, *, scope: str, table: str, column: str, row_id: object) -> bytes:
        nonce = os.urandom(12)
        ct = self._aead[self.current].encrypt(
            nonce, value.encode(), _ad(scope, table, column, row_id)
        )
        return struct.pack(">H", self.current) + nonce + ct

    def decrypt(self, blob: bytes, *, scope: str, table: str, column: str, row_id: object) -> str:
        if blob is None or len(blob) < 2 + 12 + 16:
            raise DecryptionFailed("not a ciphertext")
        (version,) = struct.unpack(">H", blob[:2])
        aead = self._aead.get(version)
        if aead is None:
            raise DecryptionFailed(f"unknown key version {version}")
        try:
            return aead.decrypt(blob[2:14], blob[14:], _ad(scope, table, column, row_id)).decode()
        except InvalidTag as exc:
            raise DecryptionFailed("ciphertext does not belong here or was altered") from exc

    @staticmethod
    def version_of(blob: bytes) -> int:
        return struct.unpack(">H", blob[:2])[0]


class BlindIndex:
    def __init__(self, key: bytes):
        self._key = key
        self._derived: dict[str, bytes] = {}

    def _key_for(self, scope: str) -> bytes:
        k = self._derived.get(scope)
        if k is None:
            k = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"anju-bidx|" + scope.encode()
            ).derive(self._key)
            self._derived[scope] = k
        return k

    def digest(self, value: str, *, scope: str, column: str) -> bytes:
        msg = column.encode() + b"\x00" + value.encode()
        return hmac.new(self._key_for(scope), msg, hashlib.sha256).digest()


def mask_phone(e164: str) -> str:
    """+8613812345678 -> +86138****5678 (country code and first digits, last four)."""
    if len(e164) <= 8:
        return e164[:2] + "*" * max(0, len(e164) - 2)
    return e164[: len(e164) - 8] + "****" + e164[-4:]


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"
