"""Classification status and note.

A mention the model cannot judge (empty, no words, a language it does not know) gets a
classification row too, with ``status`` saying why and ``note`` in words, so that it is not
tried again on every run. Existing rows were all judged: they get status ``ok``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=24), server_default="ok", nullable=False))
        batch_op.add_column(sa.Column("note", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("status")
