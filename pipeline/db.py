"""Engines, sessions and migrations for SQLite (the embedded default) and PostgreSQL.

:class:`Database` owns one engine. SQLite gets WAL mode (readers never block the writer),
foreign keys on and a busy timeout, so a second process waits for a lock instead of failing
at once. ``postgresql://`` URLs use psycopg 3.

The schema is only ever changed by Alembic (``earful db upgrade``). :meth:`Database.require_current`
refuses to work on a database at another revision and says which command fixes it; Earful
never recreates a database it finds behind. Driver errors are turned into
:class:`~earful.pipeline.errors.DatabaseUnavailable` with the URL (password hidden) and a hint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from earful.pipeline.errors import ConfigError, DatabaseUnavailable, MigrationRequired, StorageError

logger = logging.getLogger(__name__)

MIGRATIONS = "earful.pipeline:migrations"


def parse_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}", key="database.url") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {parsed.get_backend_name()!r}; use sqlite:///FILE or postgresql://...",
            key="database.url",
        )
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL as it may be shown or logged: never with its password."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.render_as_string(hide_password=True)


class Database:
    """One database: an engine, a session factory and its migration state.

    >>> db = Database("sqlite:///:memory:")
    >>> db.upgrade()
    >>> db.current_revision() == db.head_revision()
    True
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0, echo: bool = False) -> None:
        self.url = parse_url(url)
        self.busy_timeout_s = busy_timeout_s
        self.engine = self._create_engine(echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def __repr__(self) -> str:
        return f"Database({safe_url(self.url)!r})"

    def _create_engine(self, echo: bool) -> Engine:
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                folder = Path(database).expanduser().resolve().parent
                if not folder.is_dir():
                    raise DatabaseUnavailable(
                        f"cannot open SQLite database {database}: folder {folder} does not exist"
                    )
            kwargs["connect_args"] = {"timeout": self.busy_timeout_s}
            engine = create_engine(self.url, **kwargs)
            timeout_ms = int(self.busy_timeout_s * 1000)

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                if database != ":memory:":
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                # WAL + NORMAL: durable against crashes of the process (not of the
                # machine's power), and no fsync per commit.
                cursor.execute("PRAGMA synchronous=NORMAL")
                # 64 MB of page cache keeps the mention indexes in memory past ~100k rows,
                # and a 40 MB WAL checkpoints less often during bulk stores (bench/store.py:
                # 16.8k -> 25.7k mentions/s together with 5,000-row batches).
                cursor.execute("PRAGMA cache_size=-65536")
                cursor.execute("PRAGMA wal_autocheckpoint=10000")
                cursor.execute(f"PRAGMA busy_timeout={timeout_ms}")
                cursor.close()

            return engine
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": max(1, int(self.busy_timeout_s))}
        return create_engine(self.url, **kwargs)

    # ------------------------------------------------------------------ sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.translate_errors(), self.sessions.begin() as session:
            yield session

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn driver errors about reaching the database into one readable error."""
        try:
            yield
        except OperationalError as exc:
            raise self._unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc: DBAPIError) -> StorageError:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        where = safe_url(self.url)
        if "locked" in detail:
            return DatabaseUnavailable(
                f"database {where} is locked by another process for more than "
                f"{self.busy_timeout_s:g} s; wait for it to finish or raise database.busy_timeout_s"
            )
        if self.dialect == "sqlite":
            return DatabaseUnavailable(f"cannot use SQLite database {where}: {detail}")
        return DatabaseUnavailable(
            f"cannot reach database {where}: {detail}. Is the server running and the URL right?"
        )

    def dispose(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- migrations

    def alembic_config(self) -> AlembicConfig:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", MIGRATIONS)
        cfg.attributes["database"] = self
        return cfg

    def head_revision(self) -> str:
        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        with self.translate_errors(), self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate forward (never drops data). Safe to run on an up-to-date database."""
        before = self.current_revision()
        with self.translate_errors():
            command.upgrade(self.alembic_config(), revision)
        after = self.current_revision()
        if before != after:
            logger.info("migrated %s from %s to %s", safe_url(self.url), before or "empty", after)

    def downgrade(self, revision: str) -> None:
        with self.translate_errors():
            command.downgrade(self.alembic_config(), revision)

    def require_current(self) -> None:
        """Refuse to work on a database that is not at this Earful's schema revision."""
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return
        where = safe_url(self.url)
        if current is None:
            with self.translate_errors(), self.engine.connect() as conn:
                tables = inspect(conn).get_table_names()
            if tables:
                raise MigrationRequired(
                    f"database {where} has tables but no Earful revision; it is not an Earful "
                    "database, or was made by hand. Point database.url at another database"
                )
            raise MigrationRequired(f"database {where} is empty: run `earful init` or `earful db upgrade`")
        script = ScriptDirectory.from_config(self.alembic_config())
        try:
            script.get_revision(current)
        except Exception:
            raise MigrationRequired(
                f"database {where} is at revision {current}, which this Earful does not know; "
                "it was migrated by a newer Earful: upgrade Earful"
            ) from None
        raise MigrationRequired(
            f"database {where} is at revision {current}, this Earful expects {head}: run `earful db upgrade`"
        )


def open_database(url: str, *, busy_timeout_s: float = 30.0, echo: bool = False) -> Database:
    return Database(url, busy_timeout_s=busy_timeout_s, echo=echo)
