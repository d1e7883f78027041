"""The registry of encrypted columns, and key rotation.

Each encrypted column is declared once here: its model, the ciphertext attribute, the logical
column name bound into the associated data, and whether it lives in the shared schema or in
each tenant's. ``rotate_keys`` re-encrypts every value not under the newest key, in small
transactions (rows locked with SKIP LOCKED, so the gateway keeps serving: reads decrypt with
any configured key version)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.identity.models import Account
from api.security.kit import SecurityKit
from tenants.registry import list_tenants
from tenants.sessions import TenantDatabase


@dataclass(frozen=True)
class EncryptedField:
    model: type
    attr: str  # the ciphertext attribute, e.g. "phone_enc"
    column: str  # the logical column bound into the associated data, e.g. "phone"
    shared: bool  # shared schema (scope "shared") or every tenant schema (scope tenant id)

    @property
    def table(self) -> str:
        return self.model.__tablename__


ENCRYPTED_FIELDS: list[EncryptedField] = [
    EncryptedField(Account, "phone_enc", "phone", shared=True),
    EncryptedField(Account, "email_enc", "email", shared=True),
]


async def _rotate_one(
    session: AsyncSession, kit: SecurityKit, f: EncryptedField, scope: str, batch: int
) -> int:
    col = getattr(f.model, f.attr)
    current = kit.cipher.current
    done = 0
    skip_locked = True
    while True:
        # The first two bytes of a ciphertext are its key version.
        stale = func.get_byte(col, 0) * 256 + func.get_byte(col, 1) != current
        rows = (
            await session.scalars(
                select(f.model)
                .where(col.is_not(None), stale)
                .limit(batch)
                .with_for_update(skip_locked=skip_locked)
            )
        ).all()
        if not rows:
            if skip_locked:
                # Rows busy in other transactions were skipped: a last pass waits for them,
                # so "nothing left" is true when this returns.
                skip_locked = False
                continue
            return done
        for row in rows:
            plain = kit.cipher.decrypt(
                getattr(row, f.attr), scope=scope, table=f.table, column=f.column, row_id=row.id
            )
            setattr(
                row,
                f.attr,
                kit.cipher.encrypt(
                    plain, scope=scope, table=f.table, column=f.column, row_id=row.id
                ),
            )
        await session.commit()
        done += len(rows)


async def rotate_keys(engine: AsyncEngine, kit: SecurityKit, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every stale value under the newest key. Returns counts per field."""
    counts: dict[str, int] = {}
    db = TenantDatabase(engine)
    tenants = None
    for f in ENCRYPTED_FIELDS:
        key = f"{f.table}.{f.column}"
        if f.shared:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                counts[key] = await _rotate_one(session, kit, f, "shared", batch)
            continue
        tenants = tenants if tenants is not None else await list_tenants(engine)
        counts[key] = 0
        for t in tenants:
            async with db.session(t) as session:
                counts[key] += await _rotate_one(session, kit, f, str(uuid.UUID(t.id)), batch)
    return counts
