"""the job queue's functions find their tables whatever the caller's search path

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

Procrastinate's functions and triggers name their tables without a schema. Its own connections
put ``shared`` first on the search path; a job written by the gateway inside a tenant
transaction (api/jobs.py ``enqueue``) comes from a connection that does not. Each function is
pinned to ``shared, public``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _each(setting: str) -> str:
    return f"""
        DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
                   JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'shared' AND p.proname LIKE 'procrastinate%' LOOP
            EXECUTE 'ALTER FUNCTION ' || r.f || ' {setting}';
          END LOOP;
        END $$;
    """


def upgrade() -> None:
    op.execute(_each("SET search_path = shared, public"))


def downgrade() -> None:
    op.execute(_each("RESET search_path"))
