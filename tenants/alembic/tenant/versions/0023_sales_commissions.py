"""sales: channels, registrations (报备) with visit codes and disputes; commission rules and
commissions with their split lines

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

Issue #19 items 6 and 7. ``sales_channel`` (agencies and individual brokers), their
``channel_registration`` of a client for a project (a visit code, protected until
``expires_at``), ``attribution_dispute`` (two channels, one client, the evidence);
``commission_rule`` per project and channel (one active per pair), ``commission`` per signed
contract and its ``commission_line`` split. Follows 0022 (payment plans).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sales_channel",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("account_id", sa.Uuid()),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('agency', 'broker')", name="kind"),
    )
    op.create_index("ux_sales_channel_name", "sales_channel", ["name"], unique=True)

    op.create_table(
        "channel_registration",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "project_id", sa.Uuid(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "channel_id",
            sa.Uuid(),
            sa.ForeignKey("sales_channel.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("phone_mask", sa.String(24), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("registered_by", sa.Uuid(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True)),
        sa.Column("visited_by", sa.Uuid()),
        sa.Column("note", sa.String(300), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('registered', 'visited', 'disputed', 'lost', 'rejected')", name="status"
        ),
        sa.CheckConstraint("(visited_at IS NULL) = (visited_by IS NULL)", name="visit"),
        sa.CheckConstraint("status <> 'visited' OR visited_at IS NOT NULL", name="visited"),
    )
    op.create_index("ux_channel_registration_code", "channel_registration", ["code"], unique=True)
    op.create_index(
        "ix_channel_registration_client", "channel_registration", ["project_id", "client_id"]
    )
    op.create_index(
        "ix_channel_registration_channel", "channel_registration", ["channel_id", "registered_at"]
    )

    op.create_table(
        "attribution_dispute",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "project_id", sa.Uuid(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "first_id",
            sa.Uuid(),
            sa.ForeignKey("channel_registration.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "second_id",
            sa.Uuid(),
            sa.ForeignKey("channel_registration.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("winner_id", sa.Uuid()),
        sa.Column("resolved_by", sa.Uuid()),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolution_note", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="status"),
        sa.CheckConstraint(
            "(status = 'resolved') = (winner_id IS NOT NULL AND resolved_at IS NOT NULL)",
            name="resolved",
        ),
    )
    op.create_index(
        "ix_attribution_dispute_status", "attribution_dispute", ["status", "created_at"]
    )
    op.create_index(
        "ux_attribution_dispute_second", "attribution_dispute", ["second_id"], unique=True
    )

    op.create_table(
        "commission_rule",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "project_id", sa.Uuid(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel_id", sa.Uuid(), sa.ForeignKey("sales_channel.id", ondelete="CASCADE")),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger()),
        sa.Column("rate_bp", sa.Integer()),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tier_measure", sa.String(8)),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("tiers", postgresql.JSONB(), nullable=False),
        sa.Column("splits", postgresql.JSONB(), nullable=False),
        sa.Column("condition", sa.String(10), nullable=False),
        sa.Column("collected_bp", sa.Integer()),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("basis IN ('fixed', 'percent')", name="basis"),
        sa.CheckConstraint("period IN ('month', 'quarter', 'year')", name="period"),
        sa.CheckConstraint("condition IN ('signed', 'collected')", name="condition"),
        sa.CheckConstraint(
            "tier_measure IS NULL OR tier_measure IN ('count', 'amount')", name="tm"
        ),
        sa.CheckConstraint(
            "(basis = 'fixed' AND amount > 0 AND rate_bp IS NULL) OR "
            "(basis = 'percent' AND rate_bp BETWEEN 1 AND 10000 AND amount IS NULL)",
            name="value",
        ),
        sa.CheckConstraint(
            "(condition = 'collected') = (collected_bp IS NOT NULL) "
            "AND (collected_bp IS NULL OR collected_bp BETWEEN 1 AND 10000)",
            name="collected",
        ),
    )
    op.create_index(
        "ux_commission_rule_active",
        "commission_rule",
        [
            "project_id",
            sa.text("COALESCE(channel_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
        ],
        unique=True,
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "commission",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "contract_id",
            sa.Uuid(),
            sa.ForeignKey("contract.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column(
            "project_id", sa.Uuid(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column(
            "rule_id",
            sa.Uuid(),
            sa.ForeignKey("commission_rule.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("channel_id", sa.Uuid()),
        sa.Column("registration_id", sa.Uuid()),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tier", sa.SmallInteger()),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("rate_bp", sa.Integer()),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("condition", sa.String(10), nullable=False),
        sa.Column("collected_bp", sa.Integer()),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payable_at", sa.DateTime(timezone=True)),
        sa.Column("approved_by", sa.Uuid()),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("decision_note", sa.String(300), nullable=False),
        sa.Column("paid_by", sa.Uuid()),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.Column("pay_reference", sa.String(100), nullable=False),
        sa.Column("clawed_back", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'payable', 'approved', 'paid', 'rejected', 'canceled', "
            "'clawed_back')",
            name="status",
        ),
        sa.CheckConstraint("condition IN ('signed', 'collected')", name="condition"),
        sa.CheckConstraint("amount > 0 AND price > 0", name="amount"),
        sa.CheckConstraint("clawed_back BETWEEN 0 AND amount", name="clawed_back"),
        sa.CheckConstraint("status <> 'paid' OR paid_at IS NOT NULL", name="paid"),
        sa.CheckConstraint(
            "status NOT IN ('approved', 'paid') OR approved_at IS NOT NULL", name="approved"
        ),
    )
    op.create_index("ux_commission_contract", "commission", ["contract_id"], unique=True)
    op.create_index("ix_commission_subscription", "commission", ["subscription_id"])
    op.create_index("ix_commission_project_status", "commission", ["project_id", "status"])
    op.create_index("ix_commission_rule_signed", "commission", ["rule_id", "signed_at"])

    op.create_table(
        "commission_line",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "commission_id",
            sa.Uuid(),
            sa.ForeignKey("commission.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("account_id", sa.Uuid()),
        sa.Column("team_id", sa.Uuid()),
        sa.Column("channel_id", sa.Uuid()),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('agent', 'team', 'channel')", name="kind"),
        sa.CheckConstraint("share_bp BETWEEN 1 AND 10000 AND amount >= 0", name="share"),
        sa.CheckConstraint(
            "(kind = 'agent') = (account_id IS NOT NULL) AND (kind = 'team') = "
            "(team_id IS NOT NULL) AND (kind = 'channel') = (channel_id IS NOT NULL)",
            name="payee",
        ),
    )
    op.create_index(
        "ix_commission_line_commission",
        "commission_line",
        ["commission_id", "position"],
        unique=True,
    )
    op.create_index("ix_commission_line_account", "commission_line", ["account_id"])
    op.create_index("ix_commission_line_channel", "commission_line", ["channel_id"])


def downgrade() -> None:
    op.drop_table("commission_line")
    op.drop_table("commission")
    op.drop_table("commission_rule")
    op.drop_table("attribution_dispute")
    op.drop_table("channel_registration")
    op.drop_table("sales_channel")
