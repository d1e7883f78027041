"""All queries of the audit log (reads; the writes are the recorder's, in service.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit.models import AuditLog


async def entries(
    session: AsyncSession,
    *,
    limit: int,
    before: int | None = None,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Sequence[AuditLog]:
    """Entries newest first (by seq), at most ``limit``; each given filter narrows them."""
    stmt = select(AuditLog).order_by(AuditLog.seq.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(AuditLog.seq < before)
    if actor_id:
        stmt = stmt.where(AuditLog.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if target_type:
        stmt = stmt.where(AuditLog.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditLog.target_id == target_id)
    if since:
        stmt = stmt.where(AuditLog.at >= since)
    if until:
        stmt = stmt.where(AuditLog.at < until)
    return (await session.scalars(stmt)).all()
