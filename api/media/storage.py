"""Where media bytes live: a storage interface with a local-disk backend (the default) and an
S3-compatible one. Public keys are ``<tenant slug>/<yyyy>/<mm>/<random>.<ext>``: unguessable,
so a public URL reveals nothing about other files; their URLs are permanent. Private keys
start with ``private/``: they are never served without a signed link that expires (local: an
HMAC over the key and the expiry, checked by the gateway's ``/media/`` route; S3: a presigned
GET URL, and the bucket policy grants public reads on everything but ``private/*``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import Protocol

from api.settings import Settings

PRIVATE_PREFIX = "private/"


class StorageFull(Exception):
    """The storage has no room left (nothing of the file was kept)."""


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str: ...

    def private_url(self, key: str) -> str: ...


class UrlSigner:
    """Signed, expiring links: HMAC-SHA256 over ``<key>|<expiry>`` (unix seconds)."""

    def __init__(self, secret: bytes, ttl: int):
        self.secret, self.ttl = secret, ttl

    def signature(self, key: str, exp: int) -> str:
        mac = hmac.new(self.secret, f"{key}|{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def query(self, key: str, now: float | None = None) -> str:
        exp = int((now or time.time()) + self.ttl)
        return f"exp={exp}&sig={self.signature(key, exp)}"

    def valid(self, key: str, exp: str, sig: str, now: float | None = None) -> bool:
        try:
            expires = int(exp)
        except ValueError:
            return False
        if expires <= (now or time.time()) or len(sig) > 100:
            return False
        return hmac.compare_digest(self.signature(key, expires), sig)


def url_signer(settings: Settings, kit) -> UrlSigner:
    """The signer of private media links: ``ANJU_MEDIA_URL_KEY`` (base64 of 32 bytes), else a
    key derived from the blind-index key (its own derivation label, so neither key reveals the
    other)."""
    if settings.media_url_key:
        try:
            secret = base64.b64decode(settings.media_url_key, validate=True)
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != 32:
            raise ValueError("ANJU_MEDIA_URL_KEY must be base64 of 32 bytes")
    else:
        secret = kit.blind_index.digest("private media links", scope="media-url", column="key")
    return UrlSigner(secret, settings.media_private_url_ttl)


def _safe(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad storage key {key!r}")
    return key


class LocalStorage:
    """Files under a directory; the gateway serves them at ``/media/<key>``."""

    def __init__(self, root: Path, public_url: str, signer: UrlSigner | None = None):
        self.root = root
        self.public_url = public_url.rstrip("/")
        self.signer = signer

    def path(self, key: str) -> Path:
        return self.root / _safe(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        def write() -> None:
            path = self.path(key)
            tmp = path.with_name(path.name + ".part")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())  # a full disk shows here, not later
                os.replace(tmp, path)  # readers never see half a file
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StorageFull("no space left for media") from exc
                raise

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    def url(self, key: str) -> str:
        return f"{self.public_url}/{_safe(key)}"

    def private_url(self, key: str) -> str:
        if self.signer is None:
            raise RuntimeError("private media links need a signer (make_storage with a kit)")
        return f"{self.public_url}/{_safe(key)}?{self.signer.query(key)}"


class S3Storage:
    """An S3-compatible bucket through boto3 (calls run in a thread)."""

    def __init__(self, settings: Settings):
        import boto3
        from botocore.config import Config

        self.private_ttl = settings.media_private_url_ttl
        self.bucket = settings.s3_bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            # SigV4 (presigned links carry their expiry in X-Amz-Expires, at most 7 days).
            config=Config(signature_version="s3v4"),
        )
        base = settings.media_public_url or (
            f"{settings.s3_endpoint_url.rstrip('/')}/{self.bucket}"
            if settings.s3_endpoint_url
            else f"https://{self.bucket}.s3.{settings.s3_region}.amazonaws.com"
        )
        self.public_url = base.rstrip("/")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        cache = (
            "private, no-store"
            if key.startswith(PRIVATE_PREFIX)
            else "public, max-age=31536000, immutable"
        )
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=_safe(key),
            Body=data,
            ContentType=content_type,
            CacheControl=cache,
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=_safe(key))["Body"].read()

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=_safe(key))

    def url(self, key: str) -> str:
        return f"{self.public_url}/{_safe(key)}"

    def private_url(self, key: str) -> str:
        """A presigned GET (S3's own signature and expiry, with the configured credentials)."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": _safe(key)},
            ExpiresIn=self.private_ttl,
        )


def make_storage(settings: Settings, kit=None) -> Storage:
    if settings.media_backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("ANJU_MEDIA_BACKEND=s3 needs ANJU_S3_BUCKET")
        return S3Storage(settings)
    public = settings.media_public_url or f"http://{settings.host}:{settings.port}/media"
    return LocalStorage(
        settings.media_dir, public, url_signer(settings, kit) if kit is not None else None
    )
