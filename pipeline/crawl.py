"""Crawling a source: one ``crawl_run``, one child process, counts recorded.

:func:`crawl_source` is what the CLI (``earful crawl``) and the Airflow DAG call. It records a
``crawl_run`` as running, starts ``python -m earful.spiders.runner`` for the source (Twisted's
reactor cannot restart, so every crawl gets a fresh process), waits, and reads back what the
child recorded. A child that dies without recording (killed, out of memory) leaves the run
marked failed with its exit status; what it had stored stays stored, and the next crawl
converges (mentions are upserted on their key).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
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
    source = config.source(name)
    if not source.start_urls and source.kind != "api":
        raise ConfigError(f"source {name!r} has no start_urls to crawl", key="sources")
    db = Database(config.database.url, busy_timeout_s=config.database.busy_timeout_s)
    try:
        db.require_current()
        store = MentionStore(db, config)
        store.sync_config()
        source_id, _ = store.source_id(name)
        with db.session() as session:
            run = CrawlRun(source_id=source_id, kind="crawl", status="running")
            session.add(run)
            session.flush()
            run_id = run.id
        command = [sys.executable, "-m", "earful.spiders.runner", "--source", name, "--run-id", str(run_id)]
        command += ["--settings", json.dumps(settings or {})]
        if config.path is not None:
            command += ["--config", str(config.path)]
        env = dict(os.environ, EARFUL_DATABASE_URL=config.database.url)
        started = time.monotonic()
        logger.info("crawling %s (run %d)", name, run_id)
        with open(log_file or os.devnull, "ab") as log:
            try:
                child = subprocess.run(  # noqa: S603 - our own interpreter and module
                    command, env=env, stdout=log, stderr=log, timeout=timeout_s, check=False
                )
                code: int | None = child.returncode
            except subprocess.TimeoutExpired:
                code = None
        seconds = time.monotonic() - started
        with db.session() as session:
            row = session.get(CrawlRun, run_id)
            if row is None:
                raise CollectionError(f"crawl run {run_id} of {name} vanished from the database")
            if row.status == "running":  # the child died before it could say how it went
                row.status = "failed"
                row.finished_at = datetime.now(UTC)
                row.message = (
                    f"timed out after {timeout_s:g} s"
                    if code is None
                    else f"crawler exited with status {code}"
                )
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
    finally:
        db.dispose()


def enabled_sources(config: Config, names: list[str] | None = None) -> list[str]:
    """The sources to crawl: those named (each must exist), else every enabled crawlable one."""
    if names:
        for name in names:
            config.source(name)
        return list(names)
    return [s.name for s in config.sources if s.enabled and s.kind != "import"]
