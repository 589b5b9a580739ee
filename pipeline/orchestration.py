"""What the Airflow tasks call: the CLI's building blocks, shaped for a task.

The DAG files in ``dags/`` only wire; each task body calls one function here, and each
function reads the config at run time, opens the database, calls the same pipeline function
as the ``earful`` command, and returns a small JSON-able summary (the task's XCom). Nothing here
runs when a DAG file is parsed except :func:`schedule_timezone`, which reads one key of the
config file.

Where things come from inside Airflow:

* the config file: ``$EARFUL_CONFIG`` (as for the CLI);
* the database: ``$EARFUL_DATABASE_URL``, else the Airflow connection ``earful_db`` when it
  exists (a ``postgres`` connection: host, login, password, schema = database; its extras
  become URL query parameters, e.g. ``options``), else ``database.url`` of the file;
* secrets (notifier URLs, SMTP passwords): ``${ENV}`` references in the file or a notifier's
  ``conn_id`` (an Airflow connection), resolved by :mod:`earful.pipeline.notify`; they are
  never logged, and neither is the database password.

Which sources a scheduled collect run crawls is :func:`due_sources`: those whose ``schedule``
fired since their last crawl started, so an hourly DAG honours every source's own cron.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

# Only what schedule_timezone() needs at parse time is imported here; the rest inside.
from earful.pipeline.config import (
    CONFIG_ENV,
    DATABASE_URL_ENV,
    Config,
    default_config_path,
    load_config,
    load_config_text,
)
from earful.pipeline.errors import CollectionError, ConfigError, DeliveryError

if TYPE_CHECKING:
    from earful.pipeline.db import Database

logger = logging.getLogger(__name__)

DB_CONN_ID = "earful_db"
CRAWL_LOG_TAIL = 40  # lines of the crawler's log copied into the task log

# What the DAG files share, as plain data (they build their Assets from these URIs).
# earful_collect updates MENTIONS when a run stored new mentions; earful_classify is scheduled
# on it and updates CLASSIFICATIONS. The ``x-`` scheme marks a URI of our own, which Airflow
# neither validates nor normalises through a provider.
MENTIONS_URI = "x-earful://mentions"
CLASSIFICATIONS_URI = "x-earful://classifications"
# Every task: three retries after 2, 4 and 8 minutes (capped at an hour), and a timeout.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "earful",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(minutes=30),
}


# ----------------------------------------------------------------------- configuration


def schedule_timezone(path: str | Path | None = None) -> str:
    """The config's ``timezone`` (default UTC), read without the rest of the file.

    DAG files call this at parse time for their timetables, so it reads one key: the other
    settings may need secrets that the DAG processor does not have. A ``${VAR}`` in it is
    expanded and the zone is checked like ``load_config`` checks it.
    """
    file = Path(path) if path is not None else default_config_path()
    if not file.exists():
        return "UTC"
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the time zone from {file}: {exc}") from None
    value = data.get("timezone") if isinstance(data, dict) else None
    if value is None:
        return "UTC"
    return load_config_text(yaml.safe_dump({"timezone": value}), path=file).timezone


def task_config() -> Config:
    """The config of a task: ``$EARFUL_CONFIG``, its database possibly from ``earful_db``."""
    from earful.pipeline.db import safe_url

    if CONFIG_ENV not in os.environ:
        logger.warning("%s is not set: using ./earful.yaml or the embedded defaults", CONFIG_ENV)
    config = load_config()
    if os.environ.get(DATABASE_URL_ENV):
        return config
    url = _connection_url(DB_CONN_ID)
    if url is None:
        return config
    logger.info("database from Airflow connection %s: %s", DB_CONN_ID, safe_url(url))
    return config.model_copy(update={"database": config.database.model_copy(update={"url": url})})


def _connection_url(conn_id: str) -> str | None:
    """The URL of an Airflow connection, or None when there is no such connection (or no
    Airflow)."""
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # pragma: no cover - Airflow is a dependency
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return str(conn.get_uri())


def open_database(config: Config) -> Database:
    """The config's database, checked to be at this Earful's revision, with brands and
    sources synced from the config (what the CLI's commands do first)."""
    from earful.pipeline.db import Database
    from earful.pipeline.store import MentionStore

    settings = config.database
    db = Database(settings.url, busy_timeout_s=settings.busy_timeout_s, echo=settings.echo)
    try:
        db.require_current()
        MentionStore(db, config).sync_config()
    except BaseException:
        db.dispose()
        raise
    return db


# -------------------------------------------------------------------------- collecting


def due_sources(db: Database, config: Config, at: datetime) -> list[str]:
    """The enabled sources whose ``schedule`` fired (at or before ``at``, in the config's time
    zone) after their last crawl started; a source never crawled is due, one without a
    schedule never is (crawl it by name)."""
    from croniter import croniter
    from sqlalchemy import func, select

    from earful.pipeline.crawl import enabled_sources
    from earful.pipeline.schema import CrawlRun, Source

    with db.translate_errors(), db.engine.connect() as conn:
        rows = conn.execute(
            select(Source.name, func.max(CrawlRun.started_at))
            .join(CrawlRun, CrawlRun.source_id == Source.id)
            .where(CrawlRun.kind == "crawl")
            .group_by(Source.name)
        ).all()
    last = {name: _utc(started) for name, started in rows}
    local = (at + timedelta(seconds=1)).astimezone(config.tz)  # a fire time at `at` counts
    due = []
    for name in enabled_sources(config):
        schedule = config.source(name).schedule
        if schedule is None:
            continue
        fired = None if schedule == "@once" else croniter(schedule, local).get_prev(datetime)
        if name not in last or (fired is not None and last[name] < fired):
            due.append(name)
    return due


def _utc(value: datetime) -> datetime:
    """A plain UTC datetime (Airflow hands tasks pendulum's, which the pipeline's arithmetic
    does not take); a naive one is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value.timestamp(), UTC)


def sources_to_crawl(
    names: Iterable[str] = (), *, every: bool = False, at: datetime | None = None
) -> list[str]:
    """The sources a collect run crawls: those named, else every enabled one with ``every``,
    else the ones due at ``at`` (default now)."""
    from earful.pipeline.crawl import enabled_sources

    config = task_config()
    if names or every:
        chosen = enabled_sources(config, list(names) or None)
    else:
        db = open_database(config)
        try:
            chosen = due_sources(db, config, _utc(at) if at else datetime.now(UTC))
        finally:
            db.dispose()
    logger.info("sources to crawl: %s", ", ".join(chosen) or "none")
    return chosen


def crawl(name: str, *, timeout_s: float | None = None) -> dict[str, Any]:
    """Crawl one source (in a child process) and return its counts; a crawl that failed
    raises :class:`CollectionError` so that Airflow retries it. The crawler's log tail is
    copied into the task log (it names keys and URLs, never authors or texts)."""
    from earful.pipeline.crawl import crawl_source

    config = task_config()
    with tempfile.TemporaryDirectory(prefix="earful-crawl-") as folder:
        log_file = Path(folder) / "crawl.log"
        try:
            outcome = crawl_source(config, name, timeout_s=timeout_s, log_file=str(log_file))
        finally:
            _log_tail(log_file, CRAWL_LOG_TAIL)
    counts: dict[str, Any] = {"source": name, "run_id": outcome.run_id, **outcome.counts()}
    logger.info("crawl of %s %s: %s", name, outcome.status, counts)
    if outcome.status != "succeeded":
        raise CollectionError(f"crawl of {name} {outcome.status}: {outcome.message or 'see the log above'}")
    return counts


def _log_tail(path: Path, lines: int) -> None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    tail = text.splitlines()[-lines:]
    if tail:
        logger.info("the crawler's log, last %d lines:\n%s", len(tail), "\n".join(tail))


def new_mentions(counts: Iterable[Mapping[str, Any] | None]) -> int:
    """New mentions stored by a collect run's crawls (a failed crawl has no counts)."""
    return sum(int(c.get("new", 0)) for c in counts if c)


# ------------------------------------------------------------------------ classifying


def classify(*, limit: int | None = None) -> dict[str, Any]:
    """Classify every mention the current model has not classified (at most ``limit``),
    committing in chunks: a retry after a timeout goes on where the last attempt stopped."""
    from earful.pipeline.classify import classify_mentions

    config = task_config()
    db = open_database(config)
    try:
        result = classify_mentions(db, config, limit=limit)
    finally:
        db.dispose()
    summary = {
        "version": result.version,
        "classified": result.classified,
        "judged": result.judged,
        "sentiments": result.sentiments,
        "unjudged": result.unjudged,
        "remaining": result.remaining,
        "seconds": result.seconds,
        "texts_per_s": result.texts_per_s,
    }
    logger.info("classification: %s", summary)
    return summary


# ---------------------------------------------------------------------- alerts, report


def alerts(*, at: datetime | None = None) -> dict[str, Any]:
    """``earful alerts`` as of ``at``: re-send pending deliveries, detect, store and send new
    alerts. A delivery still pending afterwards raises :class:`DeliveryError` (the task's
    retry sends it again; alerts are never stored or sent twice)."""
    from earful.pipeline.alerts import run_alerts

    config = task_config()
    db = open_database(config)
    try:
        result = run_alerts(db, config, at=_utc(at) if at else None)
    finally:
        db.dispose()
    summary = {
        "at": result.at.isoformat(),
        "model_version": result.model_version,
        "tests": sum(1 for t in result.tests if t.verdict.tested),
        "flagged": sum(1 for t in result.tests if t.significant),
        "alerts": [a.key for a in result.alerts],
        "untested": result.untested,
        "pending": result.pending,
    }
    logger.info("alerts: %s", summary)
    if result.pending:
        raise DeliveryError(
            f"{result.pending} alert deliveries still pending (see the warnings above); a retry sends them"
        )
    return summary


def weekly_report(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """Write the last complete week's report (as of ``now``) for every brand; returns what a
    delivery needs: brand, week, summary lines and the files."""
    from earful.pipeline.report import write_reports

    config = task_config()
    db = open_database(config)
    try:
        written = write_reports(db, config, now=_utc(now) if now else None)
    finally:
        db.dispose()
    out = [
        {
            "brand": w.brand,
            "week": w.week,
            "summary": list(w.report.summary),
            "html": str(w.html),
            "csv": [str(p) for p in w.csv],
        }
        for w in written
    ]
    return out


def deliver_reports(reports: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Send each report's summary and file location on every configured notifier; returns
    ``{"<brand> <week> -> <channel>": status}``. A channel still failing after its attempts
    raises :class:`DeliveryError` once all are tried (a retry sends them all again; receivers
    can drop a repeat by its ``X-Earful-Delivery`` key)."""
    from earful.pipeline.notify import Message, channels, deliver

    config = task_config()
    settings = config.alerts
    outcomes: dict[str, str] = {}
    pending = []
    for report in reports:
        html = Path(report["html"])
        message = Message(
            key=f"report-{report['brand']}-{report['week']}",
            title=f"Earful weekly report: {report['brand']}, {report['week']}",
            lines=(*report["summary"], f"Report: {report['html']}"),
            data={"kind": "report", **dict(report)},
            # The page is self-contained (inline CSS and charts, no scripts): it reads offline.
            attachments=((html.name, "text/html", html.read_bytes()),) if html.is_file() else (),
        )
        for channel in channels(config):
            outcome = deliver(
                channel,
                message,
                attempts=settings.delivery_attempts,
                backoff_s=settings.delivery_backoff_s,
                timeout_s=settings.delivery_timeout_s,
            )
            outcomes[f"{report['brand']} {report['week']} -> {channel.name}"] = outcome.status
            if outcome.status != "sent":
                pending.append(f"{channel.name} ({outcome.error})")
    if pending:
        raise DeliveryError("report not delivered on: " + ", ".join(pending))
    return outcomes
