"""sales: contracts (签约) with their templates; electronic signing's seal, codes and events

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

A contract is drawn from an active subscription (its document hashed and stored), signed by
the buyer with an SMS code and sealed (PAdES); at most one contract in force per unit and one
draft per subscription. A subscription whose contract is signed is ``contracted``.
``signing_seal`` keeps the tenant's seal key (encrypted) and certificate, ``signing_code``
the one-time codes bound to a document, ``signing_event`` each subject's hash-chained steps.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUB_STATUSES = "'pending_approval', 'active', 'rejected', 'withdrawn', 'expired'"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_subscription_status"), "subscription", type_="check")
    op.create_check_constraint(
        op.f("ck_subscription_status"), "subscription", f"status IN ({_SUB_STATUSES}, 'contracted')"
    )
    op.create_table(
        "contract_template",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("clauses", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
        sa.UniqueConstraint("locale", "name"),
    )
    op.create_index(
        "ux_contract_template_default",
        "contract_template",
        ["locale"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "contract",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("amends_id", sa.Uuid()),
        sa.Column(
            "subscription_id",
            sa.Uuid(),
            sa.ForeignKey("subscription.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "project_id", sa.Uuid(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "unit_id", sa.Uuid(), sa.ForeignKey("unit.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid()),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_plan", postgresql.JSONB(), nullable=False),
        sa.Column("extra_clauses", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("note", sa.String(300), nullable=False),
        sa.Column("document_key", sa.String(300), nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("signed_key", sa.String(300)),
        sa.Column("signed_sha256", sa.String(64)),
        sa.Column("certificate_key", sa.String(300)),
        sa.Column("certificate", postgresql.JSONB()),
        sa.Column("signed_at", sa.DateTime(timezone=True)),
        sa.Column("registration_number", sa.String(64)),
        sa.Column("registered_at", sa.DateTime(timezone=True)),
        sa.Column("canceled_at", sa.DateTime(timezone=True)),
        sa.Column("cancel_reason", sa.String(300)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'signed', 'registered', 'superseded', 'canceled')", name="status"
        ),
        sa.CheckConstraint("price > 0", name="price"),
        sa.CheckConstraint("revision > 0", name="revision"),
        sa.CheckConstraint(
            "(status IN ('signed', 'registered', 'superseded')) <= (signed_at IS NOT NULL)",
            name="signed",
        ),
        sa.CheckConstraint(
            "(status = 'registered') <= (registration_number IS NOT NULL)", name="registered"
        ),
        sa.CheckConstraint("(status = 'canceled') = (canceled_at IS NOT NULL)", name="canceled"),
        sa.UniqueConstraint("number", "revision"),
    )
    op.create_index(
        "ux_contract_unit_in_force",
        "contract",
        ["unit_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('signed', 'registered')"),
    )
    op.create_index(
        "ux_contract_draft_subscription",
        "contract",
        ["subscription_id"],
        unique=True,
        postgresql_where=sa.text("status = 'draft'"),
    )
    op.create_index("ix_contract_unit", "contract", ["unit_id"])
    op.create_index("ix_contract_client", "contract", ["client_id"])
    op.create_index("ix_contract_project_status", "contract", ["project_id", "status"])

    op.create_table(
        "signing_seal",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ux_signing_seal_current",
        "signing_seal",
        ["provider"],
        unique=True,
        postgresql_where=sa.text("retired_at IS NULL"),
    )
    op.create_table(
        "signing_code",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("subject_type", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("phone_bidx", sa.LargeBinary(), nullable=False),
        sa.Column("code_hmac", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_signing_code_subject", "signing_code", ["subject_type", "subject_id", "created_at"]
    )
    op.create_index("ix_signing_code_phone", "signing_code", ["phone_bidx", "created_at"])
    op.create_index("ix_signing_code_ip", "signing_code", ["ip", "created_at"])
    op.create_table(
        "signing_event",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("subject_type", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("actor_id", sa.Uuid()),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("subject_type", "subject_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("signing_event")
    op.drop_table("signing_code")
    op.drop_table("signing_seal")
    op.drop_table("contract")
    op.drop_table("contract_template")
    op.execute("UPDATE subscription SET status = 'active' WHERE status = 'contracted'")
    op.drop_constraint(op.f("ck_subscription_status"), "subscription", type_="check")
    op.create_check_constraint(
        op.f("ck_subscription_status"), "subscription", f"status IN ({_SUB_STATUSES})"
    )
