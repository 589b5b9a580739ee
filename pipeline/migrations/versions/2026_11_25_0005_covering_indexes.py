"""Covering indexes for the weekly report and the alert check.

Both read a few columns of hundreds of thousands of mentions and their classifications. With
only the times indexed, each of those rows was fetched from the tables, whose rows carry the
texts and the topics JSON: most of the time went into reading pages of text that nothing
looked at. These indexes hold every column the counting reads, so the databases answer from
the indexes alone (bench/insight.py: on a million mentions the counting reads a tenth of the
pages):

* the dated mentions by publication time (the alert check) and by brand and publication time
  (the report), and the undated ones by collection time (both), each with the columns that
  decide whether a mention counts and where (kind, brand response, brand, source, rating, text
  hash); they replace the three narrower indexes of 0001 and 0004. The dated ones leave the
  undated mentions out, so that no planner reads them for ``published_at IS NULL``;
* the classifications by mention and model version, with status, sentiment and score;
* the classifications with something negative in them (the whole text, or a topic), the
  only ones the alert check's topic counts look at.

PostgreSQL's indexes carry the mention id as an INCLUDE column: its index-only scans then need
no table row for the joins.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same text as schema.NEGATIVE_CLASSIFICATION: a query uses the partial index only when
# its conditions repeat it.
NEGATIVE = "sentiment = 'negative' OR CAST(topics AS TEXT) LIKE '%\"negative\"%'"
DATED = "published_at IS NOT NULL"
UNDATED = "published_at IS NULL"
COUNTED = ["kind", "is_brand_response"]
REPORTED = [*COUNTED, "source_id", "rating", "content_hash"]


def upgrade() -> None:
    op.drop_index("ix_mention_brand_published", table_name="mention")
    op.drop_index("ix_mention_published_at", table_name="mention")
    op.drop_index("ix_mention_undated", table_name="mention")
    op.create_index(
        "ix_mention_brand_counted",
        "mention",
        ["brand_id", "published_at", *REPORTED],
        postgresql_include=["id"],
        sqlite_where=sa.text(DATED),
        postgresql_where=sa.text(DATED),
    )
    op.create_index(
        "ix_mention_published_counted",
        "mention",
        ["published_at", "brand_id", *COUNTED],
        postgresql_include=["id"],
        sqlite_where=sa.text(DATED),
        postgresql_where=sa.text(DATED),
    )
    op.create_index(
        "ix_mention_undated_counted",
        "mention",
        ["collected_at", "brand_id", *REPORTED, "published_at"],
        postgresql_include=["id"],
        sqlite_where=sa.text(UNDATED),
        postgresql_where=sa.text(UNDATED),
    )
    op.create_index(
        "ix_classification_counted",
        "classification",
        ["mention_id", "model_version", "status", "sentiment", "score"],
    )
    op.create_index(
        "ix_classification_negative",
        "classification",
        ["mention_id", "model_version", "status"],
        sqlite_where=sa.text(NEGATIVE),
        postgresql_where=sa.text(NEGATIVE),
    )


def downgrade() -> None:
    op.drop_index("ix_classification_negative", table_name="classification")
    op.drop_index("ix_classification_counted", table_name="classification")
    op.drop_index("ix_mention_undated_counted", table_name="mention")
    op.drop_index("ix_mention_published_counted", table_name="mention")
    op.drop_index("ix_mention_brand_counted", table_name="mention")
    op.create_index(
        "ix_mention_undated",
        "mention",
        ["collected_at"],
        sqlite_where=sa.text(UNDATED),
        postgresql_where=sa.text(UNDATED),
    )
    op.create_index("ix_mention_published_at", "mention", ["published_at"])
    op.create_index("ix_mention_brand_published", "mention", ["brand_id", "published_at"])
