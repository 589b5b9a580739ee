"""A flag on each mention whose text another source carries too: the report's syndicated look-up.

The weekly report counts a text found on several sites once. To find those texts it grouped
every mention of the brand's twelve weeks by text hash (three hundred thousand index entries
for the largest brand of bench/insight.py): 40% of the report's time, to find about a
thousand texts. This revision adds ``mention.has_copies``, true when a mention of another
source has the same ``content_hash``, and a partial index of the flagged mentions with the
columns that grouping reads, so the report groups only those.

Triggers keep the flag in the transaction of the change: a mention stored, or one whose text
or source changes, flags every mention of its hash when another source carries it. The
flag is never cleared (a copy deleted, or moved to the same source, leaves it set): the
report still checks the sources of each group, so a stale flag costs a row read, never a
wrong figure. What the flag may miss: on PostgreSQL, two copies stored at the same moment
by two transactions that do not see each other's uncommitted rows; ``earful db recount``
sets the flags again from the stored mentions. The upgrade sets them from what is stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from earful.pipeline.migrations.triggers import changed, sqlite_body, true

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same text as ix_mention_copies in schema.Mention: a query uses the partial index only
# when its conditions repeat it.
FLAGGED = {"sqlite": "has_copies = 1", "postgresql": "has_copies"}
# has_copies itself too: SQLite checks the query's ``has_copies = 1`` from the index only when it
# holds the column (being in the index's WHERE is not enough), else it reads every table row.
INDEXED = [
    "brand_id",
    "published_at",
    "collected_at",
    "kind",
    "is_brand_response",
    "content_hash",
    "source_id",
    "has_copies",
]
# A mention's copies change when its text or its source does.
_MOVED = ("content_hash", "source_id")


def flag_statement(dialect: str, row: str) -> str:
    """Flag every mention of ``row``'s text hash when another source carries it."""
    return (
        f"UPDATE mention SET has_copies = {true(dialect)} "
        f"WHERE content_hash = {row}.content_hash AND NOT has_copies "
        f"AND EXISTS (SELECT 1 FROM mention AS o "
        f"WHERE o.content_hash = {row}.content_hash AND o.source_id <> {row}.source_id)"
    )


def backfill_statement(dialect: str) -> str:
    """Flag the mentions of every text that several sources carry (the upgrade; a recount)."""
    return (
        f"UPDATE mention SET has_copies = {true(dialect)} WHERE NOT has_copies AND content_hash IN "
        "(SELECT content_hash FROM mention GROUP BY content_hash HAVING min(source_id) < max(source_id))"
    )


def _triggers(dialect: str) -> list[str]:
    if dialect == "sqlite":
        body = sqlite_body([flag_statement(dialect, "NEW")])
        return [
            f"CREATE TRIGGER mention_copies_insert AFTER INSERT ON mention {body}",
            "CREATE TRIGGER mention_copies_update AFTER UPDATE OF content_hash, source_id ON mention "
            f"WHEN {changed(_MOVED, dialect)} {body}",
        ]
    # PostgreSQL: inserts are flagged once per statement, from the statement's new rows (a COPY
    # or a crawl's batch: a row trigger's function call per row made bulk loads 70% slower).
    # An update keeps a row trigger: transition tables cannot go with UPDATE OF columns.
    inserted = (
        "UPDATE mention AS m SET has_copies = true "
        "FROM (SELECT DISTINCT n.content_hash FROM inserted AS n WHERE EXISTS (SELECT 1 FROM mention AS o "
        "WHERE o.content_hash = n.content_hash AND o.source_id <> n.source_id)) AS h "
        "WHERE m.content_hash = h.content_hash AND NOT m.has_copies"
    )
    return [
        "CREATE FUNCTION mention_copies_inserted() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {inserted}; RETURN NULL; END $$",
        "CREATE FUNCTION mention_copies() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {flag_statement(dialect, 'NEW')}; RETURN NULL; END $$",
        "CREATE TRIGGER mention_copies_insert AFTER INSERT ON mention REFERENCING NEW TABLE AS inserted "
        "FOR EACH STATEMENT EXECUTE FUNCTION mention_copies_inserted()",
        "CREATE TRIGGER mention_copies_update AFTER UPDATE OF content_hash, source_id ON mention "
        f"FOR EACH ROW WHEN ({changed(_MOVED, dialect)}) EXECUTE FUNCTION mention_copies()",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column(
        "mention",
        sa.Column("has_copies", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(backfill_statement(dialect))
    op.create_index(
        "ix_mention_copies",
        "mention",
        INDEXED,
        postgresql_include=["id"],
        sqlite_where=sa.text(FLAGGED["sqlite"]),
        postgresql_where=sa.text(FLAGGED["postgresql"]),
    )
    for statement in _triggers(dialect):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name in ("mention_copies_insert", "mention_copies_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + ("" if dialect == "sqlite" else " ON mention"))
    if dialect != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS mention_copies()")
        op.execute("DROP FUNCTION IF EXISTS mention_copies_inserted()")
    op.drop_index("ix_mention_copies", table_name="mention")
    # A plain ALTER TABLE (SQLite 3.35+): a batch rebuild of the table would drop the triggers
    # of 0006 and 0007 with the old table.
    op.drop_column("mention", "has_copies")
