"""Migrations: from empty, from the previous revision, round trips; never a silent recreate."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import insert_raw_mention

from earful.pipeline.db import Database
from earful.pipeline.errors import DatabaseUnavailable, MigrationRequired
from earful.pipeline.schema import Base

TABLES = {
    "brand",
    "source",
    "crawl_run",
    "mention",
    "classification",
    "alert",
    "report",
    "hourly_count",
    "hourly_tally",
}


def tables(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_creates_the_schema_of_the_models(empty_db: Database) -> None:
    empty_db.upgrade()
    assert empty_db.current_revision() == empty_db.head_revision()
    assert tables(empty_db) == TABLES
    with empty_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], "schema.py and the migrations disagree; add a revision"


def test_upgrade_from_previous_revision_keeps_the_data(empty_db: Database) -> None:
    empty_db.upgrade("0001")
    assert tables(empty_db) == {"brand", "source", "crawl_run", "mention"}
    with empty_db.engine.begin() as conn:
        insert_raw_mention(conn)
    empty_db.upgrade()
    assert tables(empty_db) == TABLES
    with empty_db.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT text FROM mention")) == "kept"


def test_downgrade_and_upgrade_round_trip(db: Database) -> None:
    db.downgrade("0001")
    assert db.current_revision() == "0001"
    db.upgrade()
    db.downgrade("base")
    assert tables(db) == set()
    db.upgrade()
    assert tables(db) == TABLES
    assert db.current_revision() == db.head_revision()


def test_upgrade_twice_is_harmless(db: Database) -> None:
    db.upgrade()
    assert db.current_revision() == db.head_revision()


def test_older_database_is_refused_with_the_command_that_fixes_it(empty_db: Database) -> None:
    empty_db.upgrade("0001")
    with pytest.raises(
        MigrationRequired, match=r"at revision 0001, this Earful expects 0008: run `earful db upgrade`"
    ):
        empty_db.require_current()
    assert tables(empty_db) == {"brand", "source", "crawl_run", "mention"}  # untouched


def test_empty_database_is_refused(empty_db: Database) -> None:
    with pytest.raises(MigrationRequired, match="is empty: run `earful init`"):
        empty_db.require_current()


def test_foreign_database_is_not_taken_over(empty_db: Database) -> None:
    with empty_db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    with pytest.raises(MigrationRequired, match="not an Earful database"):
        empty_db.require_current()


def test_database_from_a_newer_earful_is_refused(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(MigrationRequired, match="newer Earful"):
        db.require_current()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    path = f"{tmp_path}/wal.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_missing_sqlite_folder_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        Database(f"sqlite:///{tmp_path}/no/such/folder/x.sqlite3")


def test_postgres_that_is_down_is_a_clear_error_without_password() -> None:
    db = Database("postgresql://earful:s3cret@127.0.0.1:1/earful", busy_timeout_s=1)
    with pytest.raises(DatabaseUnavailable) as info:
        db.upgrade()
    message = str(info.value)
    assert "s3cret" not in message
    assert "cannot reach database postgresql+psycopg://earful:***@127.0.0.1:1/earful" in message
