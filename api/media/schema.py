"""Media over GraphQL: the Media type (used by projects, unit types, units and listings),
uploads through GraphQL multipart requests, outside links, removal."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.file_uploads import Upload

from api.errors import Forbidden
from api.graphql.errors import (
    AuthError,
    NotFoundError,
    PermissionDeniedError,
    UserError,
    ValidationError,
    attempt,
    typed_as,
)
from api.graphql.loading import batch_loader, now_or_later, then
from api.graphql.permissions import requires
from api.graphql.types import Node, require_id
from api.listing.models import Listing
from api.media import service
from api.media.models import Media as MediaRow
from api.media.models import MediaKind, MediaOwner, MediaVisibility
from api.media.storage import Storage

strawberry.enum(
    MediaKind,
    description="Photos, videos, floor plans, and 360 tours (an image or a link); documents "
    "(PDF or image, always private).",
)
strawberry.enum(MediaOwner)
strawberry.enum(
    MediaVisibility,
    description="PUBLIC: a permanent URL. PRIVATE: the url field is a signed link that expires "
    "(ask again for a fresh one).",
)


@strawberry.type(description="The media storage is full; nothing was kept. Try again later.")
class StorageUnavailableError(UserError):
    pass


typed_as(service.StorageUnavailable, StorageUnavailableError)


@strawberry.type(description="A photo, video, floor plan or 360 tour of something for sale.")
class Media(Node):
    id: strawberry.ID
    kind: MediaKind
    visibility: MediaVisibility
    url: str = strawberry.field(
        description="Public media: a permanent URL. Private media: a signed link, valid a few "
        "minutes from this answer."
    )
    thumbnail_url: str | None
    content_type: str
    size: int
    width: int | None
    height: int | None
    position: int
    caption: str
    created_at: datetime

    @classmethod
    def of(cls, row: MediaRow, storage: Storage) -> Media:
        url = storage.private_url if row.visibility == "private" else storage.url
        if row.link_url:
            where = row.link_url
        else:  # a row has stored bytes or an outside link (the "source" constraint)
            assert row.storage_key is not None
            where = url(row.storage_key)
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=MediaKind(row.kind),
            visibility=MediaVisibility(row.visibility),
            url=where,
            thumbnail_url=url(row.thumb_key) if row.thumb_key else None,
            content_type=row.content_type,
            size=row.size,
            width=row.width,
            height=row.height,
            position=row.position,
            caption=row.caption,
            created_at=row.created_at,
        )


media_loader = batch_loader(service.media_by_owner_ids, list)


def first_photo_loader(ctx) -> DataLoader:
    """Keyed by (owner id, fallback owner id): the owner's first photo, else the fallback's
    (a unit without photos shows its unit type's). One query for the whole page."""

    async def load(keys: list[tuple[uuid.UUID, uuid.UUID | None]]):
        ids = {k for pair in keys for k in pair if k is not None}
        found = await service.media_by_owner_ids(
            ctx.session, list(ids), ["photo"], public_only=True
        )
        out = []
        for owner, fallback in keys:
            photos = found.get(owner) or (found.get(fallback) if fallback else None) or []
            out.append(photos[0] if photos else None)
        return out

    return DataLoader(load_fn=load)


async def media_of(info: strawberry.Info, owner_id: uuid.UUID) -> list[Media]:
    """The owner's media. Private ones (documents: contracts, ID scans...) only for callers who
    may read personal data (``pii.read``), each such read audited."""
    ctx = info.context
    rows = await ctx.loaders.get("media.by_owner", media_loader).load(owner_id)
    if any(r.visibility == "private" for r in rows):
        p = ctx.principal_now()
        if p is not None and p.can("pii.read"):
            for r in rows:
                if r.visibility == "private":
                    ctx.audit("media.private.read", target_type="media", target_id=r.id)
        else:
            rows = [r for r in rows if r.visibility == "public"]
    return [Media.of(r, ctx.storage) for r in rows]


def first_photo_of(info: strawberry.Info, owner_id: uuid.UUID, fallback: uuid.UUID | None = None):
    """The first photo (a Media, or None), now when prefetched, else awaitable."""
    loader = info.context.loaders.get("media.first_photo", first_photo_loader)
    storage = info.context.storage
    return then(
        now_or_later(loader, (owner_id, fallback)), lambda r: Media.of(r, storage) if r else None
    )


async def prefetch_first_photos(info: strawberry.Info, keys: list) -> None:
    await info.context.loaders.get("media.first_photo", first_photo_loader).load_many(keys)


@strawberry.input
class MediaTarget:
    owner_kind: MediaOwner
    owner_id: strawberry.ID
    kind: MediaKind
    caption: str = ""
    visibility: MediaVisibility | None = strawberry.field(
        default=None,
        description="Unset: DOCUMENT is private, everything else public. A DOCUMENT cannot be "
        "public.",
    )


@strawberry.input
class MediaLinkInput:
    owner_kind: MediaOwner
    owner_id: strawberry.ID
    kind: MediaKind = strawberry.field(description="VR (360 tour) or VIDEO")
    url: str
    caption: str = ""


@strawberry.type
class MediaPayload:
    media: Media


@strawberry.type
class DeleteMediaPayload:
    id: strawberry.ID


MediaResult = Annotated[
    MediaPayload
    | ValidationError
    | NotFoundError
    | PermissionDeniedError
    | AuthError
    | StorageUnavailableError,
    strawberry.union("MediaResult"),
]

DeleteMediaResult = Annotated[
    DeleteMediaPayload | NotFoundError | PermissionDeniedError | AuthError,
    strawberry.union("DeleteMediaResult"),
]


async def _may_change(info, owner_kind: str, owner_id: uuid.UUID) -> None:
    """Units, unit types and projects: unit.write. Listings: their agent (listing.write) or
    listing.manage."""
    p = await info.context.principal()
    owner = await service.owner_exists(info.context.session, owner_kind, owner_id)
    if isinstance(owner, Listing):  # OWNERS["listing"]
        if p.can("listing.manage") or (p.can("listing.write") and owner.agent_id == p.account_id):
            return
        raise Forbidden("only the listing agent or staff who manage listings can change its media")
    if not p.can("unit.write"):
        raise Forbidden("changing inventory media needs unit.write")


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("media.write")],
        description="Upload a photo, floor plan, 360 panorama or video (GraphQL multipart). "
        "Images are re-encoded without metadata and get a thumbnail.",
    )
    async def upload_media(
        self, info: strawberry.Info, input: MediaTarget, file: Upload
    ) -> MediaResult:
        ctx = info.context
        settings = ctx.request.app.state.settings

        async def work():
            owner_id = require_id(input.owner_id, input.owner_kind.value, "ownerId")
            await _may_change(info, input.owner_kind.value, owner_id)
            limit = max(settings.media_max_image_bytes, settings.media_max_video_bytes)
            data = await file.read(limit + 1)
            row = await service.upload(
                ctx.session,
                ctx.storage,
                settings,
                tenant_slug=ctx.tenant.slug,
                owner_kind=input.owner_kind.value,
                owner_id=owner_id,
                kind=input.kind.value,
                data=data,
                caption=input.caption,
                actor_id=(await ctx.principal()).account_id,
                visibility=input.visibility.value if input.visibility else None,
            )
            return MediaPayload(media=Media.of(row, ctx.storage))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("media.write")],
        description="Attach an outside link: a 360 tour or a hosted video (https only).",
    )
    async def add_media_link(self, info: strawberry.Info, input: MediaLinkInput) -> MediaResult:
        ctx = info.context

        async def work():
            owner_id = require_id(input.owner_id, input.owner_kind.value, "ownerId")
            await _may_change(info, input.owner_kind.value, owner_id)
            row = await service.add_link(
                ctx.session,
                owner_kind=input.owner_kind.value,
                owner_id=owner_id,
                kind=input.kind.value,
                url=input.url,
                caption=input.caption,
                actor_id=(await ctx.principal()).account_id,
            )
            return MediaPayload(media=Media.of(row, ctx.storage))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("media.write")],
        description="Remove a media item; its files are deleted once this commits.",
    )
    async def delete_media(self, info: strawberry.Info, id: strawberry.ID) -> DeleteMediaResult:
        ctx = info.context

        async def work():
            row = await service.get(ctx.session, require_id(id, "media", "id"))
            await _may_change(info, row.owner_kind, row.owner_id)
            return await service.remove(ctx.session, row)

        keys, error = await attempt(ctx.session, work)
        if error:
            return error

        async def delete_files() -> None:
            for key in keys:
                await ctx.storage.delete(key)

        ctx.after_commit(delete_files)
        return DeleteMediaPayload(id=id)
