"""lead routing: rules, agents' availability, offers of leads to teams, the client's language

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("client", sa.Column("language", sa.String(16), nullable=False, server_default=""))
    op.alter_column("client", "language", server_default=None)
    op.add_column("client", sa.Column("offer_team_id", sa.Uuid()))
    op.add_column("client", sa.Column("offer_route_id", sa.Uuid()))
    op.add_column("client", sa.Column("offer_step", sa.Integer()))
    op.add_column("client", sa.Column("offer_expires_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        op.f("ck_client_offer"), "client", "(offer_team_id IS NULL) = (offer_expires_at IS NULL)"
    )
    op.create_index(
        "ix_client_offer",
        "client",
        ["offer_expires_at"],
        postgresql_where=sa.text("offer_team_id IS NOT NULL"),
    )
    op.create_table(
        "lead_route",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sources", postgresql.ARRAY(sa.String(12)), nullable=False),
        sa.Column("districts", postgresql.ARRAY(sa.String(100)), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.String(16)), nullable=False),
        sa.Column("budget_min", sa.BigInteger()),
        sa.Column("budget_max", sa.BigInteger()),
        sa.Column("team_id", sa.Uuid()),
        sa.Column("agent_id", sa.Uuid()),
        sa.Column("mode", sa.String(12), nullable=False),
        sa.Column("claim_minutes", sa.Integer(), nullable=False),
        sa.Column("fallback_team_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('round_robin', 'claim')", name="ck_lead_route_mode"),
        sa.CheckConstraint("(team_id IS NULL) <> (agent_id IS NULL)", name="ck_lead_route_target"),
        sa.CheckConstraint("claim_minutes BETWEEN 1 AND 1440", name="ck_lead_route_claim_minutes"),
    )
    op.create_table(
        "agent_routing",
        sa.Column("account_id", sa.Uuid(), primary_key=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True)),
        sa.Column("pause_reason", sa.String(200), nullable=False),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("agent_routing")
    op.drop_table("lead_route")
    op.drop_index("ix_client_offer", table_name="client")
    op.drop_constraint(op.f("ck_client_offer"), "client")
    for column in ("offer_expires_at", "offer_step", "offer_route_id", "offer_team_id", "language"):
        op.drop_column("client", column)
