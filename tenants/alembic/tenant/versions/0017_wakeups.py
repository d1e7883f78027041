"""wake-ups: the rows that fall due record when, so sweeps visit only tenants with work

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

Statement triggers (``shared.wake_tenant``, shared migration 0011) on the tables whose rows
fall due: for each kind, the expression gives the time a new or updated row needs its job
(see ``api/jobs.py``, "Wake-ups"). Rows already waiting are recorded once here.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ON_HOLD = "status = 'on_hold'"
WAKEUPS: dict[str, list[tuple[str, str]]] = {
    "unit": [
        ("holds", f"CASE WHEN {_ON_HOLD} THEN hold_expires_at END"),
        (
            "hold-reminders",
            f"CASE WHEN {_ON_HOLD} AND held_by IS NOT NULL "
            "THEN hold_expires_at - interval '10 minutes' END",
        ),
        # A pending deposit ends when its unit's hold does, or at once when the unit leaves it.
        (
            "deposit-expiry",
            f"CASE WHEN {_ON_HOLD} THEN hold_expires_at WHEN EXISTS ("
            "SELECT 1 FROM {s}.payment p WHERE p.unit_id = new_rows.id "
            "AND p.kind = 'deposit' AND p.status = 'pending') THEN now() END",
        ),
    ],
    # ... and a deposit touched while pending (its row may have been locked, and so skipped,
    # when the expiry job ran) is looked at again when its hold ends, or at once.
    "payment": [
        (
            "deposit-expiry",
            "CASE WHEN kind = 'deposit' AND status = 'pending' THEN COALESCE(("
            "SELECT u.hold_expires_at FROM {s}.unit u "
            "WHERE u.id = new_rows.unit_id AND u.status = 'on_hold' "
            "AND u.held_by = new_rows.agent_id), now()) END",
        ),
    ],
    "client": [("lead-offers", "offer_expires_at")],
    "client_follow_up": [
        (
            "follow-up-reminders",
            "CASE WHEN done_at IS NULL AND reminded_at IS NULL AND "
            "assignee_id IS NOT NULL THEN due_at - interval '15 minutes' END",
        ),
    ],
    "notification_delivery": [
        (
            "deliver-due",
            "CASE WHEN status IN ('pending', 'deferred') "
            "THEN next_attempt_at + interval '61 seconds' END",
        ),
    ],
}


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def upgrade() -> None:
    for tbl, kinds in WAKEUPS.items():
        args = ", ".join(_quote(x) for pair in kinds for x in pair)
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER wake_on_{event.lower()} AFTER {event} ON {tbl} "
                f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                f"EXECUTE FUNCTION shared.wake_tenant({args})"
            )
        for kind, expr in kinds:  # what is already waiting
            op.execute(
                "INSERT INTO shared.tenant_wakeup (schema_name, kind, due_at) "
                f"SELECT DISTINCT current_schema(), {_quote(kind)}, shared.ceil_minute(due) "
                f"FROM (SELECT ({expr.replace('{s}.', '')}) AS due FROM {tbl} AS new_rows) r "
                "WHERE due IS NOT NULL ON CONFLICT DO NOTHING"
            )


def downgrade() -> None:
    for tbl in WAKEUPS:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER wake_on_{event} ON {tbl}")
    op.execute("DELETE FROM shared.tenant_wakeup WHERE schema_name = current_schema()")
