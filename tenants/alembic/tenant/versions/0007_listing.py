"""resale listings, their timeline, follows

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORIENTATIONS = "'N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW', 'NS', 'EW'"


def upgrade() -> None:
    op.create_table(
        "listing",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid()),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("community", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("latitude", sa.Numeric(9, 6)),
        sa.Column("longitude", sa.Numeric(9, 6)),
        sa.Column("gross_area", sa.Numeric(10, 2), nullable=False),
        sa.Column("rooms", sa.SmallInteger(), nullable=False),
        sa.Column("living_rooms", sa.SmallInteger(), nullable=False),
        sa.Column("bathrooms", sa.SmallInteger(), nullable=False),
        sa.Column("floor", sa.SmallInteger()),
        sa.Column("total_floors", sa.SmallInteger()),
        sa.Column("orientation", sa.String(4)),
        sa.Column("year_built", sa.SmallInteger()),
        sa.Column("decoration", sa.String(16)),
        sa.Column("property_right", sa.String(20)),
        sa.Column("right_years", sa.SmallInteger()),
        sa.Column("title_registered_on", sa.Date()),
        sa.Column("mortgaged", sa.Boolean(), nullable=False),
        sa.Column("only_home", sa.Boolean(), nullable=False),
        sa.Column("seller_name", sa.String(100), nullable=False),
        sa.Column("seller_phone_enc", sa.LargeBinary()),
        sa.Column("seller_phone_bidx", sa.LargeBinary()),
        sa.Column("agent_id", sa.Uuid()),
        sa.Column("asking_price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column(
            "price_per_m2",
            sa.BigInteger(),
            sa.Computed("round(asking_price / gross_area)::bigint", persisted=True),
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("verified_by", sa.Uuid()),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", pg.ARRAY(sa.String(50)), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("source_ref", sa.String(100)),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_listing"),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name="fk_listing_unit_id_unit", ondelete="SET NULL"
        ),
        sa.CheckConstraint(
            "status IN ('active', 'under_contract', 'sold', 'withdrawn', 'expired')",
            name="ck_listing_status",
        ),
        sa.CheckConstraint(
            "decoration IS NULL OR decoration IN ('rough', 'simple', 'fine', 'luxury')",
            name="ck_listing_deco",
        ),
        sa.CheckConstraint(
            "property_right IS NULL OR property_right IN ('commodity', 'affordable', "
            "'reformed_public', 'collective', 'other')",
            name="ck_listing_right",
        ),
        sa.CheckConstraint(
            f"orientation IS NULL OR orientation IN ({ORIENTATIONS})", name="ck_listing_ori"
        ),
        sa.CheckConstraint("gross_area > 0 AND asking_price > 0", name="ck_listing_positive"),
    )
    op.create_index("ix_listing_status_district", "listing", ["status", "district"])
    op.create_index("ix_listing_asking_price", "listing", ["asking_price"])
    op.create_index("ix_listing_unit_id", "listing", ["unit_id"])
    op.create_index("ix_listing_agent_id", "listing", ["agent_id"])
    op.create_index("ix_listing_seller_phone_bidx", "listing", ["seller_phone_bidx"])
    op.create_index("ix_listing_tags", "listing", ["tags"], postgresql_using="gin")
    op.create_index(
        "ix_listing_search_text",
        "listing",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "public.gin_trgm_ops"},
    )
    op.create_index(
        "ix_listing_source_ref",
        "listing",
        ["source_ref"],
        unique=True,
        postgresql_where=sa.text("source_ref IS NOT NULL"),
    )
    op.create_table(
        "listing_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("old_price", sa.BigInteger()),
        sa.Column("new_price", sa.BigInteger()),
        sa.Column("actor_id", sa.Uuid()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_listing_event"),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listing.id"],
            name="fk_listing_event_listing_id_listing",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_listing_event_listing_id_at", "listing_event", ["listing_id", "at"])
    op.create_table(
        "follow",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("target_kind", sa.String(10), nullable=False),
        sa.Column("target_id", sa.Uuid()),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("search", pg.JSONB()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_follow"),
        sa.CheckConstraint("target_kind IN ('unit', 'listing', 'search')", name="ck_follow_kind"),
        sa.CheckConstraint(
            "(target_kind = 'search') = (target_id IS NULL)", name="ck_follow_target"
        ),
    )
    op.create_index(
        "uq_follow_account_target",
        "follow",
        ["account_id", "target_kind", "target_id"],
        unique=True,
        postgresql_where=sa.text("target_id IS NOT NULL"),
    )
    op.create_index("ix_follow_target", "follow", ["target_kind", "target_id"])


def downgrade() -> None:
    op.drop_table("follow")
    op.drop_table("listing_event")
    op.drop_table("listing")
