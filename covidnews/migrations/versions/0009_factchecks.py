"""Fact-checks (schema.org ClaimReview): ``factchecks``, ``factcheck_appearances`` (where a claim
appeared, by canonical URL hash) and ``factcheck_links`` (article ↔ fact-check, and why).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "factchecks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("claim_hash", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("claim", sa.Text(), nullable=False),
        sa.Column("claimant", sa.Text(), nullable=True),
        sa.Column("appearances", JSON, nullable=False),
        sa.Column("verdict_text", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('false', 'misleading', 'mixed', 'true', 'unproven', 'other')",
            name=op.f("ck_factchecks_verdict_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_factchecks_source_id_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_factchecks")),
        sa.UniqueConstraint("url_hash", "claim_hash", name="uq_factchecks_review"),
    )
    op.create_index("ix_factchecks_reviewed_at", "factchecks", ["reviewed_at"])
    op.create_index("ix_factchecks_linked_at", "factchecks", ["linked_at"])
    op.create_index(op.f("ix_factchecks_url_hash"), "factchecks", ["url_hash"])
    op.create_index(op.f("ix_factchecks_source_id"), "factchecks", ["source_id"])

    op.create_table(
        "factcheck_appearances",
        sa.Column("factcheck_id", BIG_ID, nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["factcheck_id"],
            ["factchecks.id"],
            name=op.f("fk_factcheck_appearances_factcheck_id_factchecks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("factcheck_id", "url_hash", name=op.f("pk_factcheck_appearances")),
    )
    op.create_index(
        op.f("ix_factcheck_appearances_url_hash"), "factcheck_appearances", ["url_hash"]
    )

    op.create_table(
        "factcheck_links",
        sa.Column("factcheck_id", BIG_ID, nullable=False),
        sa.Column("article_id", BIG_ID, nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('appearance', 'similar')", name=op.f("ck_factcheck_links_reason_valid")
        ),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_factcheck_links_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["factcheck_id"],
            ["factchecks.id"],
            name=op.f("fk_factcheck_links_factcheck_id_factchecks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("factcheck_id", "article_id", name=op.f("pk_factcheck_links")),
    )
    op.create_index(op.f("ix_factcheck_links_article_id"), "factcheck_links", ["article_id"])


def downgrade() -> None:
    op.drop_table("factcheck_links")
    op.drop_table("factcheck_appearances")
    op.drop_table("factchecks")
