"""Crawling sources: a ``crawl_run`` each, one child process, counts recorded.

:func:`crawl_source` (one source: the Airflow task) and :func:`crawl_sources` (several, side
by side: ``earful crawl``) record each ``crawl_run`` as running, start
``python -m earful.spiders.runner`` (Twisted's reactor cannot restart, so every crawl gets a
fresh process), and read back what the child recorded as each crawl ends. A child that dies
without recording (killed, out of memory) leaves the run
marked failed with its exit status; what it had stored stays stored, and the next crawl
converges (mentions are upserted on their key).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from earful.pipeline.config import Config
from earful.pipeline.db import Database
from earful.pipeline.errors import CollectionError, ConfigError
from earful.pipeline.schema import CrawlRun
from earful.pipeline.store import MentionStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlOutcome:
    """One crawl's result, as recorded in its ``crawl_run``."""

    source: str
    run_id: int
    status: str
    pages: int
    seen: int
    new: int
    updated: int
    unchanged: int
    dropped: int
    errors: int
    seconds: float
    message: str | None
    stats: dict[str, Any]

    def counts(self) -> dict[str, int]:
        """The numbers, for an Airflow task's return value (XCom)."""
        keys = ("pages", "seen", "new", "updated", "unchanged", "dropped", "errors")
        return {k: v for k, v in asdict(self).items() if k in keys}


def crawl_source(
    config: Config,
    name: str,
    *,
    settings: dict[str, Any] | None = None,
    timeout_s: float | None = None,
    log_file: str | None = None,
) -> CrawlOutcome:
    """Crawl one configured source in a child process and return what it recorded.

    ``settings`` overrides Scrapy settings for this crawl (tests turn throttling off;
    ``{"HTTPCACHE_ENABLED": True}`` replays cached pages in development).
    """
    (outcome,) = crawl_sources(config, [name], settings=settings, timeout_s=timeout_s, log_file=log_file)
    return outcome


def crawl_sources(
    config: Config,
    names: list[str],
    *,
    settings: dict[str, Any] | None = None,
    timeout_s: float | None = None,
    log_file: str | None = None,
) -> Iterator[CrawlOutcome]:
    """Crawl several sources side by side in one child process, yielding each outcome as
    its crawl ends (so a caller can show progress). One process pays Python's and Scrapy's
    start-up once for all of them."""
    for name in names:
        source = config.source(name)
        if not source.start_urls and source.kind != "api":
            raise ConfigError(f"source {name!r} has no start_urls to crawl", key="sources")
    db = Database(config.database.url, busy_timeout_s=config.database.busy_timeout_s)
    try:
        db.require_current()
        store = MentionStore(db, config)
        store.sync_config()
        runs: dict[int, str] = {}
        with db.session() as session:
            for name in names:
                source_id, _ = store.source_id(name)
                run = CrawlRun(source_id=source_id, kind="crawl", status="running")
                session.add(run)
                session.flush()
                runs[run.id] = name
        command = [sys.executable, "-m", "earful.spiders.runner", "--settings", json.dumps(settings or {})]
        for run_id, name in runs.items():
            command += ["--job", f"{run_id}:{name}"]
        if config.path is not None:
            command += ["--config", str(config.path)]
        env = dict(os.environ, EARFUL_DATABASE_URL=config.database.url)
        started = time.monotonic()
        logger.info("crawling %s", ", ".join(runs.values()))
        pending = dict(runs)
        with open(log_file or os.devnull, "ab") as log:
            child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, env=env, stdout=subprocess.PIPE, stderr=log, text=True
            )
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                child.kill()

            timer = threading.Timer(timeout_s, expire) if timeout_s else None
            if timer:
                timer.start()
            try:
                assert child.stdout is not None
                for line in child.stdout:  # the runner prints {"run_id": ...} as each crawl ends
                    try:
                        run_id = int(json.loads(line)["run_id"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    if run_id in pending:
                        yield _outcome(db, run_id, pending.pop(run_id), time.monotonic() - started, None)
                code = child.wait()
            finally:
                if timer:
                    timer.cancel()
                if child.poll() is None:  # the caller stopped early
                    child.kill()
                    child.wait()
        if pending:
            why = (
                f"timed out after {timeout_s:g} s"
                if expired.is_set()
                else f"crawler exited with status {code}"
            )
            for run_id, name in pending.items():
                yield _outcome(db, run_id, name, time.monotonic() - started, why)
    finally:
        db.dispose()


def _outcome(db: Database, run_id: int, name: str, seconds: float, died: str | None) -> CrawlOutcome:
    """Read back one run; a run the child never finished is marked failed with ``died``."""
    with db.session() as session:
        row = session.get(CrawlRun, run_id)
        if row is None:
            raise CollectionError(f"crawl run {run_id} of {name} vanished from the database")
        if row.status == "running":  # the child died before it could say how it went
            row.status = "failed"
            row.finished_at = datetime.now(UTC)
            row.message = died or "the crawler stopped without recording the run"
        return CrawlOutcome(
            source=name,
            run_id=run_id,
            status=row.status,
            pages=row.pages,
            seen=row.items_seen,
            new=row.items_new,
            updated=row.items_updated,
            unchanged=row.items_unchanged,
            dropped=row.items_dropped,
            errors=row.errors,
            seconds=seconds,
            message=row.message,
            stats=dict(row.stats),
        )


def enabled_sources(config: Config, names: list[str] | None = None) -> list[str]:
    """The sources to crawl: those named (each must exist), else every enabled crawlable one."""
    if names:
        for name in names:
            config.source(name)
        return list(names)
    return [s.name for s in config.sources if s.enabled and s.kind != "import"]
