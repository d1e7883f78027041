"""Where media bytes live: a storage interface with a local-disk backend (the default) and an
S3-compatible one. Keys are ``<tenant slug>/<yyyy>/<mm>/<random>.<ext>``: unguessable, so a
public URL reveals nothing about other files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from api.settings import Settings


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str: ...


def _safe(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad storage key {key!r}")
    return key


class LocalStorage:
    """Files under a directory; the gateway serves them at ``/media/<key>``."""

    def __init__(self, root: Path, public_url: str):
        self.root = root
        self.public_url = public_url.rstrip("/")

    def path(self, key: str) -> Path:
        return self.root / _safe(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        def write() -> None:
            path = self.path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a file

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    def url(self, key: str) -> str:
        return f"{self.public_url}/{_safe(key)}"


class S3Storage:
    """An S3-compatible bucket through boto3 (calls run in a thread)."""

    def __init__(self, settings: Settings):
        import boto3

        self.bucket = settings.s3_bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
        )
        base = settings.media_public_url or (
            f"{settings.s3_endpoint_url.rstrip('/')}/{self.bucket}"
            if settings.s3_endpoint_url
            else f"https://{self.bucket}.s3.{settings.s3_region}.amazonaws.com"
        )
        self.public_url = base.rstrip("/")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=_safe(key), Body=data,
            ContentType=content_type, CacheControl="public, max-age=31536000, immutable",
        )  # fmt: skip

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=_safe(key))["Body"].read()

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=_safe(key))

    def url(self, key: str) -> str:
        return f"{self.public_url}/{_safe(key)}"


def make_storage(settings: Settings) -> Storage:
    if settings.media_backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("ANJU_MEDIA_BACKEND=s3 needs ANJU_S3_BUCKET")
        return S3Storage(settings)
    public = settings.media_public_url or f"http://{settings.host}:{settings.port}/media"
    return LocalStorage(settings.media_dir, public)
