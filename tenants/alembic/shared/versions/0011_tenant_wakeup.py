"""wake-ups: when each tenant next has time-driven work of each kind

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

The every-minute sweeps (expired holds, hold and follow-up reminders, lead offers, lost
deliveries, deposit expiry) used to queue one job per active tenant per kind: five jobs a minute
per tenant, nearly all of them finding nothing. Now a tenant's rows say when they next need
attention: ``shared.wake_tenant()`` is the statement trigger function of those tables (added by
the tenant migration 0017); it records, per kind, the minute something falls due (rounded up).
A sweep queues jobs only for tenants with a wake-up due; the job deletes the wake-ups it serves
in its own transaction, so a job that fails leaves them for the next sweep.

The trigger's arguments are pairs: a kind and an SQL expression over the statement's new rows
(``new_rows``) giving the time that row falls due for that kind (NULL: never). ``{s}`` in an
expression stands for the table's schema, quoted.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE shared.tenant_wakeup (
            schema_name varchar(63) NOT NULL,
            kind varchar(32) NOT NULL,
            due_at timestamptz NOT NULL,
            CONSTRAINT pk_tenant_wakeup PRIMARY KEY (schema_name, kind, due_at)
        )
    """)
    op.execute("CREATE INDEX ix_tenant_wakeup_due ON shared.tenant_wakeup (kind, due_at)")
    op.execute("""
        CREATE FUNCTION shared.ceil_minute(t timestamptz) RETURNS timestamptz
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN t = date_trunc('minute', t) THEN t
                        ELSE date_trunc('minute', t) + interval '1 minute' END
        $$
    """)
    op.execute("""
        CREATE FUNCTION shared.wake_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE i int := 0;
        BEGIN
            WHILE i < TG_NARGS LOOP
                EXECUTE format(
                    'INSERT INTO shared.tenant_wakeup (schema_name, kind, due_at) '
                    'SELECT DISTINCT %L, %L, shared.ceil_minute(due) '
                    'FROM (SELECT (%s) AS due FROM new_rows) r WHERE due IS NOT NULL '
                    'ON CONFLICT DO NOTHING',
                    TG_TABLE_SCHEMA, TG_ARGV[i],
                    replace(TG_ARGV[i + 1], '{s}', quote_ident(TG_TABLE_SCHEMA)));
                i := i + 2;
            END LOOP;
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION shared.wake_tenant()")
    op.execute("DROP FUNCTION shared.ceil_minute(timestamptz)")
    op.execute("DROP TABLE shared.tenant_wakeup")
