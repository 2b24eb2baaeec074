"""``articles.published_offset``: the UTC offset (minutes) an article was dated in by its outlet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: rows stored before are "offset unknown" and show in UTC as before.
    # Plain ALTER TABLE on both backends: SQLite's batch mode would rebuild the table and drop
    # the change-sequence triggers of 0005 with it.
    op.add_column("articles", sa.Column("published_offset", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE articles DROP COLUMN published_offset")  # SQLite ≥ 3.35, PostgreSQL
