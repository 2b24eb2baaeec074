"""The change sequence the nodes' indexes follow: ``article_changes`` and its triggers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An article is noted when it is inserted or updated as (or from) ``done``, when it is
# deleted, and when its vectors change. A note only says "look at this article again": the
# follower reads the article's current state.
POSTGRES = [
    """
    CREATE FUNCTION covidnews_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_TABLE_NAME = 'embeddings' THEN
        INSERT INTO article_changes (article_id, xid, changed_at)
        VALUES (NEW.article_id, pg_current_xact_id()::text::bigint, now());
      ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO article_changes (article_id, xid, changed_at)
        VALUES (OLD.id, pg_current_xact_id()::text::bigint, now());
      ELSE
        INSERT INTO article_changes (article_id, xid, changed_at)
        VALUES (NEW.id, pg_current_xact_id()::text::bigint, now());
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER article_changes_insert AFTER INSERT ON articles
    FOR EACH ROW WHEN (NEW.state = 'done') EXECUTE FUNCTION covidnews_note_change()
    """,
    """
    CREATE TRIGGER article_changes_update AFTER UPDATE ON articles
    FOR EACH ROW WHEN (NEW.state = 'done' OR OLD.state = 'done')
    EXECUTE FUNCTION covidnews_note_change()
    """,
    """
    CREATE TRIGGER article_changes_delete AFTER DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION covidnews_note_change()
    """,
    """
    CREATE TRIGGER article_changes_vectors AFTER INSERT OR UPDATE ON embeddings
    FOR EACH ROW EXECUTE FUNCTION covidnews_note_change()
    """,
]
_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE = [
    f"""
    CREATE TRIGGER article_changes_insert AFTER INSERT ON articles WHEN NEW.state = 'done'
    BEGIN INSERT INTO article_changes (article_id, changed_at) VALUES (NEW.id, {_NOW}); END
    """,
    f"""
    CREATE TRIGGER article_changes_update AFTER UPDATE ON articles
    WHEN NEW.state = 'done' OR OLD.state = 'done'
    BEGIN INSERT INTO article_changes (article_id, changed_at) VALUES (NEW.id, {_NOW}); END
    """,
    f"""
    CREATE TRIGGER article_changes_delete AFTER DELETE ON articles
    BEGIN INSERT INTO article_changes (article_id, changed_at) VALUES (OLD.id, {_NOW}); END
    """,
    f"""
    CREATE TRIGGER article_changes_vectors_insert AFTER INSERT ON embeddings
    BEGIN INSERT INTO article_changes (article_id, changed_at)
    VALUES (NEW.article_id, {_NOW}); END
    """,
    f"""
    CREATE TRIGGER article_changes_vectors_update AFTER UPDATE ON embeddings
    BEGIN INSERT INTO article_changes (article_id, changed_at)
    VALUES (NEW.article_id, {_NOW}); END
    """,
]


def upgrade() -> None:
    op.create_table(
        "article_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("article_id", sa.BigInteger(), nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_article_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_article_changes_xid_seq", "article_changes", ["xid", "seq"])
    statements = POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in (
            ("article_changes_insert", "articles"),
            ("article_changes_update", "articles"),
            ("article_changes_delete", "articles"),
            ("article_changes_vectors", "embeddings"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS covidnews_note_change()")
    else:
        for name in (
            "article_changes_insert",
            "article_changes_update",
            "article_changes_delete",
            "article_changes_vectors_insert",
            "article_changes_vectors_update",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_article_changes_xid_seq", table_name="article_changes")
    op.drop_table("article_changes")
