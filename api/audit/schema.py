"""GraphQL of the audit log (read-only, newest first)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.audit import repository
from api.audit.models import AuditLog
from api.graphql.permissions import requires

MAX_PAGE = 200


@strawberry.type
class AuditEntry:
    seq: int
    id: strawberry.ID
    at: datetime
    actor_id: strawberry.ID | None
    actor_ip: str
    actor_app: str
    action: str
    outcome: str
    target_type: str
    target_id: str
    details: JSON

    @classmethod
    def of(cls, r: AuditLog) -> AuditEntry:
        return cls(
            seq=r.seq,
            id=strawberry.ID(str(r.id)),
            at=r.at,
            actor_id=strawberry.ID(str(r.actor_id)) if r.actor_id else None,
            actor_ip=r.actor_ip,
            actor_app=r.actor_app,
            action=r.action,
            outcome=r.outcome,
            target_type=r.target_type,
            target_id=r.target_id,
            details=JSON(r.details),
        )


@strawberry.input
class AuditFilter:
    actor_id: strawberry.ID | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("audit.read")],
        description="Audit entries, newest first; `before` is a seq for paging.",
    )
    async def audit_log(
        self,
        info: strawberry.Info,
        filter: AuditFilter | None = None,
        first: int = 50,
        before: int | None = None,
    ) -> list[AuditEntry]:
        f = filter or AuditFilter()
        actor_id = None
        if f.actor_id:
            try:
                actor_id = uuid.UUID(str(f.actor_id))
            except ValueError:
                return []
        rows = await repository.entries(
            info.context.session,
            limit=max(0, min(first, MAX_PAGE)),
            before=before,
            actor_id=actor_id,
            action=f.action,
            target_type=f.target_type,
            target_id=f.target_id,
            since=f.since,
            until=f.until,
        )
        return [AuditEntry.of(r) for r in rows]
