"""Media rules: what may be uploaded, the clean copy that is stored, the thumbnail. Never commits.

* The type comes from the bytes, never from the file name or the client's content type:
  images are decoded by Pillow (JPEG, PNG, WebP), videos recognised by their container header
  (MP4/QuickTime ``ftyp``, WebM). A mismatch with the declared kind is refused.
* Images are re-encoded without their metadata (phones write GPS positions into EXIF), turned
  upright first; a thumbnail (JPEG, longest side ``media_thumb_size``) is made for each.
* Decompression bombs are refused (more than ``MAX_PIXELS`` pixels).
* Bytes are stored before the row is written; if the transaction then fails, the files stay
  as orphans (harmless: unguessable keys, nothing points at them). A full disk is refused as
  ``StorageUnavailable`` with nothing kept (no partial file, no row).
* Visibility is decided at upload: documents (PDF or image: contracts, ID scans, proofs of
  payment) are always private; other kinds are public unless the uploader asks for private.
  Private files live under ``private/`` and are only reachable through signed, expiring links.
"""

from __future__ import annotations

import asyncio
import functools
import io
import secrets
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import Select, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.errors import DomainError, ErrorCode, NotFound, ValidationFailed
from api.listing.models import Listing
from api.media.models import Media
from api.media.storage import PRIVATE_PREFIX, Storage, StorageFull
from api.project.models import Project
from api.settings import Settings
from api.unit.models import Unit, UnitType
from api.validate import text

MAX_PIXELS = 60_000_000
IMAGE_TYPES = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
Owner = Project | UnitType | Unit | Listing
OWNERS: dict[str, type[Owner]] = {
    "project": Project,
    "unit_type": UnitType,
    "unit": Unit,
    "listing": Listing,
}
MAX_PER_OWNER = 200


class StorageUnavailable(DomainError):
    """The media storage is full: nothing was kept; the caller may try again later."""

    code = ErrorCode.INTERNAL


@dataclass
class Processed:
    data: bytes
    content_type: str
    ext: str
    width: int | None = None
    height: int | None = None
    thumb: bytes | None = None


def sniff_video(data: bytes) -> tuple[str, str] | None:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return ("video/quicktime", "mov") if data[8:10] == b"qt" else ("video/mp4", "mp4")
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ("video/webm", "webm")
    return None


def process_image(data: bytes, thumb_size: int) -> Processed:
    """Decode, check, strip metadata and make the thumbnail (CPU work: run in a thread)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = img.format
            if fmt not in IMAGE_TYPES:
                raise ValidationFailed("images must be JPEG, PNG or WebP", "file")
            if img.width * img.height > MAX_PIXELS:
                raise ValidationFailed(f"images are at most {MAX_PIXELS:,} pixels", "file")
            img.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ValidationFailed("the file is not a readable image", "file") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValidationFailed(f"images are at most {MAX_PIXELS:,} pixels", "file") from exc
    img = ImageOps.exif_transpose(img)
    content_type, ext = IMAGE_TYPES[fmt]
    out = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(out, "JPEG", quality=90, optimize=True)
    elif fmt == "PNG":
        img.save(out, "PNG", optimize=True)
    else:
        img.save(out, "WEBP", quality=90)
    thumb = img.copy()
    thumb.thumbnail((thumb_size, thumb_size))
    tout = io.BytesIO()
    thumb.convert("RGB").save(tout, "JPEG", quality=80, optimize=True)
    return Processed(out.getvalue(), content_type, ext, img.width, img.height, tout.getvalue())


async def owner_exists(session: AsyncSession, owner_kind: str, owner_id: uuid.UUID) -> Owner:
    model = OWNERS.get(owner_kind)
    if model is None:
        raise ValidationFailed("unknown owner kind", "ownerKind")
    row = await session.get(model, owner_id)
    if row is None:
        raise NotFound(f"{owner_kind.replace('_', ' ')} not found", "ownerId")
    return cast(Owner, row)  # a row of ``model``: session.get types it as their common base


async def _next_position(session: AsyncSession, owner_id: uuid.UUID) -> int:
    count, top = (
        await session.execute(
            select(func.count(), func.max(Media.position)).where(Media.owner_id == owner_id)
        )
    ).one()
    if count >= MAX_PER_OWNER:
        raise ValidationFailed(f"at most {MAX_PER_OWNER} media per item", "ownerId")
    return 0 if top is None else top + 1


def _key(slug: str, ext: str, private: bool = False) -> str:
    now = utcnow()
    key = f"{slug}/{now:%Y/%m}/{secrets.token_urlsafe(18)}.{ext}"
    return PRIVATE_PREFIX + key if private else key


def visibility_for(kind: str, asked: str | None) -> str:
    if kind == "document":
        if asked == "public":
            raise ValidationFailed("documents are always private", "visibility")
        return "private"
    return asked or "public"


async def _store(storage: Storage, items: list[tuple[str, bytes, str]]) -> None:
    """Store every file, or none: a failure removes what was already stored."""
    done: list[str] = []
    try:
        for key, data, content_type in items:
            await storage.put(key, data, content_type)
            done.append(key)
    except StorageFull as exc:
        for key in done:
            await storage.delete(key)
        raise StorageUnavailable("media storage is full; try again later", "file") from exc


async def upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    *,
    tenant_slug: str,
    owner_kind: str,
    owner_id: uuid.UUID,
    kind: str,
    data: bytes,
    caption: str,
    actor_id: uuid.UUID | None,
    visibility: str | None = None,
) -> Media:
    caption = text(caption, "caption", required=False, max_len=200)
    visibility = visibility_for(kind, visibility)
    await owner_exists(session, owner_kind, owner_id)
    if not data:
        raise ValidationFailed("the file is empty", "file")
    video = sniff_video(data[:64])
    if kind == "video":
        if video is None:
            raise ValidationFailed("videos must be MP4, QuickTime or WebM", "file")
        if len(data) > settings.media_max_video_bytes:
            raise ValidationFailed(
                f"videos are at most {settings.media_max_video_bytes // 2**20} MB", "file"
            )
        processed = Processed(data, video[0], video[1])
    elif kind == "document" and data[:5] == b"%PDF-":
        if len(data) > settings.media_max_image_bytes:
            raise ValidationFailed(
                f"documents are at most {settings.media_max_image_bytes // 2**20} MB", "file"
            )
        processed = Processed(data, "application/pdf", "pdf")
    else:  # photo, floor plan, 360 panorama: images
        if len(data) > settings.media_max_image_bytes:
            raise ValidationFailed(
                f"images are at most {settings.media_max_image_bytes // 2**20} MB", "file"
            )
        if video is not None:
            raise ValidationFailed(f"a {kind.replace('_', ' ')} must be an image", "file")
        processed = await asyncio.to_thread(process_image, data, settings.media_thumb_size)
    position = await _next_position(session, owner_id)
    key = _key(tenant_slug, processed.ext, private=visibility == "private")
    files = [(key, processed.data, processed.content_type)]
    thumb_key = None
    if processed.thumb is not None:
        thumb_key = key.rsplit(".", 1)[0] + "-thumb.jpg"
        files.append((thumb_key, processed.thumb, "image/jpeg"))
    await _store(storage, files)
    row = Media(
        owner_kind=owner_kind,
        owner_id=owner_id,
        kind=kind,
        storage_key=key,
        thumb_key=thumb_key,
        content_type=processed.content_type,
        size=len(processed.data),
        width=processed.width,
        height=processed.height,
        position=position,
        caption=caption,
        created_by=actor_id,
        visibility=visibility,
    )
    session.add(row)
    await session.flush()
    return row


async def add_link(
    session: AsyncSession,
    *,
    owner_kind: str,
    owner_id: uuid.UUID,
    kind: str,
    url: str,
    caption: str,
    actor_id: uuid.UUID | None,
) -> Media:
    url = text(url, "url", required=True, max_len=500)
    if not url.startswith("https://"):
        raise ValidationFailed("links must be https:// URLs", "url")
    if kind not in ("vr", "video"):
        raise ValidationFailed("links are for 360 tours (vr) and videos", "kind")
    await owner_exists(session, owner_kind, owner_id)
    row = Media(
        owner_kind=owner_kind,
        owner_id=owner_id,
        kind=kind,
        link_url=url,
        position=await _next_position(session, owner_id),
        caption=text(caption, "caption", required=False, max_len=200),
        created_by=actor_id,
    )
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, media_id: uuid.UUID) -> Media:
    row = await session.get(Media, media_id)
    if row is None:
        raise NotFound("media not found", "id")
    return row


async def remove(session: AsyncSession, row: Media) -> list[str]:
    """Delete the row; returns the storage keys to delete once the transaction committed."""
    await session.execute(delete(Media).where(Media.id == row.id))
    return [k for k in (row.storage_key, row.thumb_key) if k]


@functools.cache
def _by_owners(kinds: tuple[str, ...], public_only: bool) -> Select[Media]:
    stmt = select(Media).where(Media.owner_id.in_(bindparam("ids", expanding=True)))
    if kinds:
        stmt = stmt.where(Media.kind.in_(kinds))
    if public_only:
        stmt = stmt.where(Media.visibility == "public")
    return stmt.order_by(Media.position, Media.id)


async def media_by_owner_ids(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    kinds: Sequence[str] = (),
    public_only: bool = False,
) -> dict[uuid.UUID, list[Media]]:
    out: dict[uuid.UUID, list[Media]] = {i: [] for i in ids}
    stmt = _by_owners(tuple(kinds or ()), public_only)
    for m in await session.scalars(stmt, {"ids": list(ids)}):
        out[m.owner_id].append(m)
    return out
