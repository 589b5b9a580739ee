"""Indexes for the hourly counts of alerts.

``earful alerts`` counts mentions per brand and hour over the last weeks, at the time a mention
was published, or collected when its date is unknown. These two indexes (dated mentions by
publication, undated ones by collection) let both databases read just those weeks instead of the
whole mention table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_mention_published_at", "mention", ["published_at"], unique=False)
    op.create_index(
        "ix_mention_undated",
        "mention",
        ["collected_at"],
        unique=False,
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_mention_undated", table_name="mention")
    op.drop_index("ix_mention_published_at", table_name="mention")
