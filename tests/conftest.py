"""Shared fixtures: real databases (SQLite and PostgreSQL), a config, a store.

Every store or database test runs twice, on a SQLite file and on the real PostgreSQL server
(``EARFUL_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``). Each test
gets its own PostgreSQL schema (selected through ``search_path``), dropped afterwards, so test
runs never collide. PostgreSQL being unreachable fails the tests; a laptop without it can opt
out with ``EARFUL_TEST_SKIP_POSTGRES=1``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from earful.pipeline import log as earful_log
from earful.pipeline.config import Config, load_config_text
from earful.pipeline.db import Database
from earful.pipeline.store import MentionStore

PG_URL = os.environ.get("EARFUL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SKIP_PG = os.environ.get("EARFUL_TEST_SKIP_POSTGRES") == "1"
REPO = Path(__file__).resolve().parents[1]
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]

CONFIG_YAML = """
timezone: Europe/Berlin
brands:
  - name: Acme
    aliases: [ACME, Acme Corp]
  - name: Globex
sources:
  - name: acme-reviews
    kind: reviews
    spider: reviews
    start_urls: [https://reviews.example/acme]
    brand: Acme
  - name: blog
    kind: blog
    spider: blog_comments
    start_urls: [https://blog.example/]
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs on the PostgreSQL server")
    # The ONNX files the classifier exports on first use go to a folder of this test run, not
    # to the user's ~/.cache (tests/test_models.py checks the cache itself).
    os.environ.setdefault("EARFUL_CACHE_DIR", tempfile.mkdtemp(prefix="earful-test-cache-"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_PG:
        return
    skip = pytest.mark.skip(reason="EARFUL_TEST_SKIP_POSTGRES=1")
    for item in items:
        if "postgresql" in item.keywords:
            item.add_marker(skip)


def pg_schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """An engine on the PostgreSQL server itself; failing here means the server is down."""
    engine = sa.create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({exc.orig}); start it, or set "
            "EARFUL_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL half of the tests"
        )
    yield engine
    engine.dispose()


@pytest.fixture
def pg_schema(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    admin: sa.Engine = request.getfixturevalue("pg_admin")
    schema = f"earful_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty database, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'earful.sqlite3'}"
    return pg_schema_url(request.getfixturevalue("pg_schema"))


@pytest.fixture
def empty_db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, busy_timeout_s=5)
    yield database
    database.dispose()


@pytest.fixture
def db(empty_db: Database) -> Database:
    """A database migrated to the newest revision."""
    empty_db.upgrade()
    return empty_db


@pytest.fixture
def config(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The test config, stored as a file in tmp_path and pointing at this test's database."""
    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "test-pseudonym-key")
    monkeypatch.delenv("EARFUL_DATABASE_URL", raising=False)
    path = tmp_path / "earful.yaml"
    path.write_text(CONFIG_YAML + f"database:\n  url: {db_url!r}\n  busy_timeout_s: 5\n", encoding="utf-8")
    return load_config_text(path.read_text(encoding="utf-8"), path=path)


@pytest.fixture
def store(db: Database, config: Config) -> MentionStore:
    mention_store = MentionStore(db, config)
    mention_store.sync_config()
    return mention_store


@pytest.fixture
def isolated_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No EARFUL_* setting from the caller's shell, and the CLI's logging set-up undone after."""
    import logging

    for name in ("EARFUL_CONFIG", "EARFUL_DATABASE_URL", "EARFUL_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    loggers = [logging.getLogger(name) for name in ("earful", "alembic", "sqlalchemy.engine")]
    saved = [(lg.level, list(lg.handlers), lg.propagate) for lg in loggers]
    monkeypatch.setattr(earful_log, "_configured", earful_log._configured)
    yield
    for lg, (level, handlers, propagate) in zip(loggers, saved, strict=True):
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def insert_raw_mention(conn: sa.Connection) -> None:
    """One source and one mention by plain SQL, for databases at an older revision."""
    conn.execute(
        sa.text(
            "INSERT INTO source (name, kind, start_urls, enabled, options, created_at, updated_at) "
            "VALUES ('s', 'import', '[]', true, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO mention (source_id, external_key, kind, collected_at, updated_at, text, "
            "is_brand_response, content_hash, fingerprint) SELECT id, 'k', 'review', CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP, 'kept', false, 'h', 'f' FROM source"
        )
    )
