"""Bot posts: payload (facets, link, remote cid), send attempts, indexes for caps and reports.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bot_posts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "payload",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.create_index(
            "ix_bot_posts_channel_created", ["channel", "created_at"], unique=False
        )
        batch_op.create_index("ix_bot_posts_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bot_posts", schema=None) as batch_op:
        batch_op.drop_index("ix_bot_posts_status")
        batch_op.drop_index("ix_bot_posts_channel_created")
        batch_op.drop_column("attempts")
        batch_op.drop_column("payload")
