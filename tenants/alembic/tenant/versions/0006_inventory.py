"""inventory: project facilities, unit types, units, unit timeline, price adjustments, settings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "'planned', 'available', 'on_hold', 'reserved', 'subscribed', 'contracted', 'sold', 'delivered'"
)
ORIENTATIONS = "'N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW', 'NS', 'EW'"


def _now() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.add_column(
        "project",
        sa.Column("facilities", pg.ARRAY(sa.String(50)), nullable=False, server_default="{}"),
    )
    op.add_column(
        "project", sa.Column("surroundings", sa.Text(), nullable=False, server_default="")
    )
    op.create_table(
        "unit_type",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("rooms", sa.SmallInteger(), nullable=False),
        sa.Column("living_rooms", sa.SmallInteger(), nullable=False),
        sa.Column("bathrooms", sa.SmallInteger(), nullable=False),
        sa.Column("gross_area", sa.Numeric(10, 2), nullable=False),
        sa.Column("net_area", sa.Numeric(10, 2)),
        sa.Column("orientation", sa.String(4)),
        sa.Column("layout", sa.Text(), nullable=False),
        sa.Column("floor_plan_url", sa.String(500), nullable=False),
        sa.Column("vr_url", sa.String(500), nullable=False),
        _now(),
        sa.PrimaryKeyConstraint("id", name="pk_unit_type"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name="fk_unit_type_project_id_project",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_unit_type_project_id_name"),
        sa.CheckConstraint("rooms BETWEEN 0 AND 20", name="ck_unit_type_rooms"),
    )
    op.create_index("ix_unit_type_project_id", "unit_type", ["project_id"])
    op.create_table(
        "unit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("building_id", sa.Uuid(), nullable=False),
        sa.Column("unit_type_id", sa.Uuid()),
        sa.Column("floor", sa.SmallInteger(), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("gross_area", sa.Numeric(10, 2), nullable=False),
        sa.Column("net_area", sa.Numeric(10, 2)),
        sa.Column("orientation", sa.String(4)),
        sa.Column("rooms", sa.SmallInteger()),
        sa.Column("list_price", sa.BigInteger()),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column(
            "price_per_m2",
            sa.BigInteger(),
            sa.Computed("round(list_price / gross_area)::bigint", persisted=True),
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True)),
        sa.Column("held_by", sa.Uuid()),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tags", pg.ARRAY(sa.String(50)), nullable=False, server_default="{}"),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_unit"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_unit_project_id_project", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["building.id"],
            name="fk_unit_building_id_building",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_type_id"],
            ["unit_type.id"],
            name="fk_unit_unit_type_id_unit_type",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("building_id", "number", name="uq_unit_building_id_number"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_unit_status"),
        sa.CheckConstraint(
            f"orientation IS NULL OR orientation IN ({ORIENTATIONS})", name="ck_unit_ori"
        ),
        sa.CheckConstraint(
            "gross_area > 0 AND (net_area IS NULL OR net_area <= gross_area)", name="ck_unit_area"
        ),
        sa.CheckConstraint("list_price IS NULL OR list_price >= 0", name="ck_unit_price"),
        sa.CheckConstraint(
            "status <> 'on_hold' OR hold_expires_at IS NOT NULL", name="ck_unit_hold"
        ),
    )
    op.create_index("ix_unit_unit_type_id", "unit", ["unit_type_id"])
    op.create_index("ix_unit_project_id_status", "unit", ["project_id", "status"])
    op.create_index("ix_unit_building_id_floor", "unit", ["building_id", "floor"])
    op.create_index("ix_unit_list_price", "unit", ["list_price"])
    op.create_index("ix_unit_gross_area", "unit", ["gross_area"])
    op.create_index(
        "ix_unit_hold_expires_at",
        "unit",
        ["hold_expires_at"],
        postgresql_where=sa.text("status = 'on_hold'"),
    )
    op.create_index("ix_unit_tags", "unit", ["tags"], postgresql_using="gin")
    op.create_index(
        "ix_unit_search_text",
        "unit",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "public.gin_trgm_ops"},
    )
    op.create_table(
        "unit_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("old_price", sa.BigInteger()),
        sa.Column("new_price", sa.BigInteger()),
        sa.Column("actor_id", sa.Uuid()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ref_id", sa.Uuid()),
        sa.Column("data", pg.JSONB(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_unit_event"),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name="fk_unit_event_unit_id_unit", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_unit_event_unit_id_at", "unit_event", ["unit_id", "at"])
    op.create_table(
        "price_adjustment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("rule", pg.JSONB(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("unit_count", sa.Integer(), nullable=False),
        sa.Column("max_discount_pct", sa.Numeric(6, 2), nullable=False),
        sa.Column("requested_by", sa.Uuid()),
        sa.Column("decided_by", sa.Uuid()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision_note", sa.Text(), nullable=False),
        _now(),
        sa.PrimaryKeyConstraint("id", name="pk_price_adjustment"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name="fk_price_adjustment_project_id_project",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('pending_approval', 'applied', 'rejected', 'stale')",
            name="ck_price_adjustment_status",
        ),
    )
    op.create_index("ix_price_adjustment_project_id", "price_adjustment", ["project_id"])
    op.create_table(
        "price_adjustment_line",
        sa.Column("adjustment_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("old_price", sa.BigInteger(), nullable=False),
        sa.Column("new_price", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("adjustment_id", "unit_id", name="pk_price_adjustment_line"),
        sa.ForeignKeyConstraint(
            ["adjustment_id"],
            ["price_adjustment.id"],
            name="fk_price_adjustment_line_adjustment_id_price_adjustment",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name="fk_price_adjustment_line_unit_id_unit",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "setting",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", pg.JSONB(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid()),
        sa.PrimaryKeyConstraint("key", name="pk_setting"),
    )


def downgrade() -> None:
    for table in (
        "setting",
        "price_adjustment_line",
        "price_adjustment",
        "unit_event",
        "unit",
        "unit_type",
    ):
        op.drop_table(table)
    op.drop_column("project", "surroundings")
    op.drop_column("project", "facilities")
