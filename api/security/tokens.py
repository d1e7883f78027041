"""Access tokens (JWT, Ed25519 "EdDSA", key id in the header, audience = tenant slug) and opaque
refresh tokens (random, stored only as a SHA-256 hash)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"  # the only algorithm accepted
VERIFIED_CACHE_SIZE = 10_000


class InvalidToken(Exception):
    pass


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode().rstrip("=")


@dataclass(frozen=True)
class AccessClaims:
    account_id: uuid.UUID
    tenant: str
    session_id: uuid.UUID
    expires_at: int


class TokenService:
    def __init__(
        self,
        private_pem: str,
        previous_public_pems: Iterable[str] = (),
        *,
        issuer: str = "anju",
        ttl: int = 900,
    ) -> None:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the JWT signing key must be an Ed25519 private key")
        self._private = key
        self.kid = key_id(key.public_key())
        self._public: dict[str, Ed25519PublicKey] = {self.kid: key.public_key()}
        self._verified: dict[tuple[str, str], AccessClaims] = {}
        for pem in previous_public_pems:
            pub = serialization.load_pem_public_key(pem.encode())
            if isinstance(pub, Ed25519PublicKey):
                self._public[key_id(pub)] = pub
        self.issuer = issuer
        self.ttl = ttl

    def issue(self, account_id: uuid.UUID, tenant: str, session_id: uuid.UUID) -> tuple[str, int]:
        now = int(time.time())
        exp = now + self.ttl
        claims = {
            "iss": self.issuer,
            "sub": str(account_id),
            "aud": tenant,
            "sid": str(session_id),
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": secrets.token_urlsafe(12),
        }
        token = jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, exp

    def issue_challenge(
        self, account_id: uuid.UUID, tenant: str, purpose: str, ttl: int = 300
    ) -> tuple[str, int]:
        """A short-lived token proving a first step (e.g. the password before TOTP). It has no
        session id, so it is never accepted as an access token."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": str(account_id),
            "aud": tenant,
            "purpose": purpose,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
        }
        token = jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, now + ttl

    def verify_challenge(self, token: str, tenant: str, purpose: str) -> uuid.UUID:
        try:
            header = jwt.get_unverified_header(token)
            key = self._public.get(header.get("kid", ""))
            if header.get("alg") != ALGORITHM or key is None:
                raise InvalidToken("bad header")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=tenant,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "aud", "iss", "purpose"]},
                leeway=5,
            )
            if claims["purpose"] != purpose or "sid" in claims:
                raise InvalidToken("wrong purpose")
            return uuid.UUID(claims["sub"])
        except InvalidToken:
            raise
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(type(exc).__name__) from exc

    def verify(self, token: str, tenant: str) -> AccessClaims:
        """The claims of a valid access token for ``tenant``. A token verified once is kept
        (bounded, per process) until it expires: the signature cannot change, and revocation
        is checked against the database on every request anyway."""
        key = (token, tenant)
        hit = self._verified.get(key)
        if hit is not None:
            if hit.expires_at + 5 >= time.time():
                return hit
            self._verified.pop(key, None)
        claims = self._verify(token, tenant)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # oldest first
        self._verified[key] = claims
        return claims

    def _verify(self, token: str, tenant: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise InvalidToken("algorithm not allowed")
            key = self._public.get(header.get("kid", ""))
            if key is None:
                raise InvalidToken("unknown key id")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=tenant,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "sid"]},
                leeway=5,
            )
            return AccessClaims(
                uuid.UUID(claims["sub"]), claims["aud"], uuid.UUID(claims["sid"]), claims["exp"]
            )
        except InvalidToken:
            raise
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(type(exc).__name__) from exc


def new_refresh_token() -> tuple[str, bytes]:
    """(token for the client, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, refresh_hash(token)


def refresh_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
