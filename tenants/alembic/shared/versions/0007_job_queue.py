"""the job queue (procrastinate's tables and functions) in the shared schema

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Procrastinate's own schema script (of the version pinned in pyproject.toml), run with the
shared schema first on the search path. Its later versions ship migration scripts: apply them
in new revisions of this stream when the pin moves.
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_only

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    raw = op.get_bind().connection.driver_connection  # asyncpg: one simple-protocol script
    assert raw is not None  # a connection open for the migration has its driver's connection
    await_only(
        raw.execute(
            "SET LOCAL search_path TO shared;\n"
            + SchemaManager.get_schema()
            + "\nSET LOCAL search_path TO DEFAULT;"
        )
    )


def downgrade() -> None:
    op.execute("""
        DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
                   JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'shared' AND p.proname LIKE 'procrastinate%' LOOP
            EXECUTE 'DROP FUNCTION ' || r.f || ' CASCADE';
          END LOOP;
        END $$;
        DROP TABLE IF EXISTS shared.procrastinate_events, shared.procrastinate_periodic_defers,
          shared.procrastinate_jobs, shared.procrastinate_workers CASCADE;
        DROP TYPE IF EXISTS shared.procrastinate_job_to_defer_v1,
          shared.procrastinate_job_event_type, shared.procrastinate_job_status CASCADE;
    """)
