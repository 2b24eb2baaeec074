"""Sources in the real web: ``source_endpoints`` (every feed and sitemap a source is read from —
configured or discovered — with how and when it was found and whether it still works) and
``articles.text_complete`` (false when a paywall or consent wall kept the full text from us).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "source_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("news", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=24), nullable=False),
        sa.Column("found_via", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("new_items_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("demoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('feed', 'sitemap')", name=op.f("ck_source_endpoints_kind_valid")
        ),
        sa.CheckConstraint(
            "state IN ('active', 'demoted')", name=op.f("ck_source_endpoints_state_valid")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_source_endpoints_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_endpoints")),
        sa.UniqueConstraint("source_id", "url_hash", name="uq_source_endpoints_url"),
    )
    op.create_index(
        op.f("ix_source_endpoints_source_id"), "source_endpoints", ["source_id"], unique=False
    )
    # Plain ALTER TABLE on both backends (see 0007: SQLite's batch mode would rebuild the table,
    # drop the change-sequence triggers of 0005 and fire the foreign keys' ON DELETE actions).
    op.add_column(
        "articles",
        sa.Column("text_complete", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE articles DROP COLUMN text_complete")  # SQLite ≥ 3.35, PostgreSQL
    op.drop_index(op.f("ix_source_endpoints_source_id"), table_name="source_endpoints")
    op.drop_table("source_endpoints")
