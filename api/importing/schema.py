"""Bulk import over GraphQL: upload a CSV or XLSX file (GraphQL multipart request)."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from api.errors import NotFound
from api.graphql.errors import (
    AuthError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import requires
from api.importing import service
from api.importing.files import MAX_BYTES


@strawberry.type(description="A bad row: its number in the file, the column, and why.")
class ImportRowError:
    row: int
    field: str
    message: str


@strawberry.type(description="What an import did. Bad rows were not imported at all.")
class ImportReport:
    batch_id: strawberry.ID
    rows_total: int
    imported: int
    skipped: int = strawberry.field(description="Rows already imported before (no duplicate)")
    failed: int
    errors: list[ImportRowError]

    @classmethod
    def of(cls, r: service.Report) -> ImportReport:
        return cls(
            batch_id=strawberry.ID(str(r.batch_id)),
            rows_total=r.rows_total,
            imported=r.imported,
            skipped=r.skipped,
            failed=r.failed,
            errors=[ImportRowError(row=e.row, field=e.field, message=e.message) for e in r.errors],
        )


ImportResult = Annotated[
    ImportReport | ValidationError | NotFoundError | PermissionDeniedError | AuthError,
    strawberry.union("ImportResult"),
]


async def _read(file: Upload) -> tuple[str, bytes]:
    # strawberry types Upload as bytes; what arrives is the multipart part the GraphQL view
    # read (api/graphql/view.py), a Starlette UploadFile.
    upload = cast(UploadFile, file)
    data = await upload.read(MAX_BYTES + 1)
    return (getattr(upload, "filename", None) or "upload"), data


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("unit.write")],
        description="Import units of a project from CSV or XLSX (columns: building, floor, "
        "number, unit_type, gross_area, net_area, orientation, rooms, list_price in yuan, "
        "status, tags; Chinese headers accepted). Missing buildings are created.",
    )
    async def import_units(
        self, info: strawberry.Info, project_id: strawberry.ID, file: Upload
    ) -> ImportResult:
        p = await info.context.principal()

        async def work():
            try:
                pid = uuid.UUID(str(project_id))
            except ValueError:
                raise NotFound("project not found", "projectId") from None
            filename, data = await _read(file)
            report = await service.import_units(
                info.context.session, pid, filename, data, actor_id=p.account_id
            )
            return ImportReport.of(report)

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("listing.write")],
        description="Import resale listings from CSV or XLSX (columns: ref, community, "
        "district, city, address, gross_area, rooms, living_rooms, bathrooms, floor, "
        "total_floors, orientation, year_built, decoration, asking_price in yuan, seller_name, "
        "seller_phone, tags, description; Chinese headers accepted). You are their agent.",
    )
    async def import_listings(self, info: strawberry.Info, file: Upload) -> ImportResult:
        ctx = info.context
        p = await ctx.principal()

        async def work():
            filename, data = await _read(file)
            report = await service.import_listings(
                ctx.session, ctx.kit, ctx.tenant.id, filename, data, actor_id=p.account_id
            )
            return ImportReport.of(report)

        result, error = await attempt(info.context.session, work)
        return error or result
