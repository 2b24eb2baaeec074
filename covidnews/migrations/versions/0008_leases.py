"""``articles.lease_owner`` / ``articles.lease_until``: leases on NLP work (nlp_worker.leases).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: rows stored before hold no lease, so the sweep treats a `processing` one as
    # expired and a `pending` one by its age. Plain ALTER TABLE (see 0007: no batch mode).
    op.add_column("articles", sa.Column("lease_owner", sa.String(120), nullable=True))
    op.add_column("articles", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE articles DROP COLUMN lease_until")
    op.execute("ALTER TABLE articles DROP COLUMN lease_owner")
