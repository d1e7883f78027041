"""The registry of encrypted columns, and key rotation.

A ciphertext column is declared where its model is, with ``api.db.ciphertext_column(...)``:
the column carries a mark (``Column.info``) naming the logical column and the row id its
values are bound to. ``encrypted_fields()`` walks the shared and the tenant metadata for the
mark, so a new encrypted column is rotated without being listed anywhere else; a ``*_enc``
binary column without the mark is refused (``unmarked_ciphertext_columns``, checked by a test
and when the registry is built).

``rotate_keys`` re-encrypts every value not under the newest key, in small transactions (rows
locked with SKIP LOCKED, so the gateway keeps serving: reads decrypt with any configured key
version), in the shared schema and in every tenant's."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import LargeBinary, MetaData, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.db import CIPHERTEXT, SharedBase, TenantBase
from api.identity.service import SHARED_SCOPE
from api.security.kit import SecurityKit
from tenants.registry import list_tenants
from tenants.sessions import TenantDatabase


@dataclass(frozen=True)
class EncryptedField:
    table: Table
    name: str  # the database column, e.g. "phone_enc"
    column: str  # the logical column bound into the associated data, e.g. "phone"
    row_id: str  # the column whose value is bound as the row id
    shared: bool  # shared schema (scope "shared") or every tenant schema (scope tenant id)

    @property
    def key(self) -> str:
        return f"{self.table.name}.{self.name}"


def unmarked_ciphertext_columns(metadatas: Iterable[MetaData]) -> list[str]:
    """``table.column`` of every binary column named ``*_enc`` that is not marked as a
    ciphertext column (it would be left under an old key by rotation)."""
    return [
        f"{table.name}.{col.name}"
        for md in metadatas
        for table in md.tables.values()
        for col in table.columns
        if isinstance(col.type, LargeBinary)
        and col.name.endswith("_enc")
        and CIPHERTEXT not in col.info
    ]


def encrypted_fields() -> list[EncryptedField]:
    """Every marked ciphertext column of the shared and the tenant metadata (all domains'
    models loaded)."""
    from api.domains import load_models

    load_models()
    metadatas = ((True, SharedBase.metadata), (False, TenantBase.metadata))
    unmarked = unmarked_ciphertext_columns(md for _, md in metadatas)
    if unmarked:
        raise RuntimeError(f"ciphertext columns not declared with ciphertext_column: {unmarked}")
    return [
        EncryptedField(table, col.name, mark.column, mark.row_id, shared)
        for shared, md in metadatas
        for table in md.sorted_tables
        for col in table.columns
        if (mark := col.info.get(CIPHERTEXT)) is not None
    ]


async def _rotate_one(
    session: AsyncSession, kit: SecurityKit, f: EncryptedField, scope: str, batch: int
) -> int:
    col, row_id = f.table.c[f.name], f.table.c[f.row_id]
    current = kit.cipher.current
    # The first two bytes of a ciphertext are its key version.
    stale = func.get_byte(col, 0) * 256 + func.get_byte(col, 1) != current
    write = (
        update(f.table)
        .where(row_id == bindparam("_row"))
        .values({f.name: bindparam("_value")})
        .execution_options(synchronize_session=False)
    )
    done = 0
    skip_locked = True
    while True:
        query = select(row_id, col).where(col.is_not(None), stale).limit(batch)
        rows = (await session.execute(query.with_for_update(skip_locked=skip_locked))).all()
        if not rows:
            if skip_locked:
                # Rows busy in other transactions were skipped: a last pass waits for them,
                # so "nothing left" is true when this returns.
                skip_locked = False
                continue
            return done
        where = {"scope": scope, "table": f.table.name, "column": f.column}
        params = [
            {
                "_row": rid,
                "_value": kit.cipher.encrypt(
                    kit.cipher.decrypt(blob, **where, row_id=rid), **where, row_id=rid
                ),
            }
            for rid, blob in rows
        ]
        await session.execute(write, params)
        await session.commit()
        done += len(rows)


async def rotate_keys(engine: AsyncEngine, kit: SecurityKit, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every stale value under the newest key. Returns counts per column
    (``table.column``, summed over the tenants for a tenant table)."""
    counts: dict[str, int] = {}
    db = TenantDatabase(engine)
    tenants = None
    for f in encrypted_fields():
        if f.shared:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                counts[f.key] = await _rotate_one(session, kit, f, SHARED_SCOPE, batch)
            continue
        tenants = tenants if tenants is not None else await list_tenants(engine)
        counts[f.key] = 0
        for t in tenants:
            async with db.session(t) as session:
                counts[f.key] += await _rotate_one(session, kit, f, str(uuid.UUID(t.id)), batch)
    return counts
