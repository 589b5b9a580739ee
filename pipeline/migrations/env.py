"""Alembic's entry point for Earful: runs migrations on the connection Earful hands it.

Earful calls Alembic through :meth:`earful.pipeline.db.Database.upgrade`, which puts the
:class:`~earful.pipeline.db.Database` into ``config.attributes``; the URL therefore comes from
earful.yaml (or ``EARFUL_DATABASE_URL``), never from an alembic.ini. ``render_as_batch`` lets
SQLite, whose ALTER TABLE is limited, run the same revisions as PostgreSQL.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from earful.pipeline.schema import Base, UTCDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write our UTC type as the plain column type it is in the database, so revisions do
    not import the live schema module (which will have changed by the time they run)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL for a DBA instead of running it."""
    database = context.config.attributes["database"]
    context.configure(
        url=database.url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=database.dialect == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """The usual case: migrate through Earful's engine, in one transaction."""
    database = context.config.attributes["database"]
    with database.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=database.dialect == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
