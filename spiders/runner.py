"""Runs one source's crawl in this process; :mod:`earful.pipeline.crawl` starts it as a child.

Twisted's reactor cannot be restarted, so a process can run only one Scrapy crawl. Earful
therefore crawls each source in a child process (``python -m earful.spiders.runner``): the
CLI, the tests and Airflow's ``dag.test`` (which runs every task in one process) can crawl as
often as they like. The child records the run's counts in its ``crawl_run`` row when it ends.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from earful.pipeline.config import Config, load_config

logger = logging.getLogger(__name__)


def crawl_settings(config: Config, overrides: dict[str, Any] | None = None) -> Any:
    from scrapy.settings import Settings

    from earful.spiders import settings as defaults

    settings = Settings()
    settings.setmodule(defaults, priority="project")
    settings.update(overrides or {}, priority="cmdline")
    settings.set("EARFUL_CONFIG", config, priority="cmdline")
    return settings


def run_counts(stats: dict[str, Any]) -> dict[str, Any]:
    """What a crawl's Scrapy stats say, in crawl_run's terms."""
    dropped_reasons = {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("earful/dropped/")}
    dropped = int(stats.get("item_dropped_count", 0)) + int(stats.get("earful/rejected", 0))
    scraped = int(stats.get("item_scraped_count", 0)) - int(stats.get("earful/rejected", 0))
    return {
        "pages": int(stats.get("response_received_count", 0)) - int(stats.get("robotstxt/response_count", 0)),
        "items_seen": scraped + dropped,
        "items_new": int(stats.get("earful/new", 0)),
        "items_updated": int(stats.get("earful/updated", 0)),
        "items_unchanged": int(stats.get("earful/unchanged", 0)),
        "items_dropped": dropped,
        "errors": int(stats.get("log_count/ERROR", 0)),
        "stats": {
            "finish_reason": stats.get("finish_reason"),
            "dropped": dropped_reasons,
            "notes": {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("earful/notes/")},
            "requests": int(stats.get("downloader/request_count", 0)),
            "robots_forbidden": int(stats.get("robotstxt/forbidden", 0)),
            "retries": int(stats.get("retry/count", 0)),
            "stopped_at_known_page": int(stats.get("earful/stopped_at_known_page", 0)),
            "feed_errors": int(stats.get("earful/feed_errors", 0)),
            "api_errors": int(stats.get("earful/api_errors", 0)),
        },
    }


def finish_run(config: Config, run_id: int, counts: dict[str, Any], status: str, message: str | None) -> None:
    from earful.pipeline.db import Database
    from earful.pipeline.schema import CrawlRun

    db = Database(config.database.url, busy_timeout_s=config.database.busy_timeout_s)
    try:
        with db.session() as session:
            run = session.get(CrawlRun, run_id)
            if run is None:
                return
            for key, value in counts.items():
                setattr(run, key, value)
            run.status = status
            run.message = message
            run.finished_at = datetime.now(UTC)
    finally:
        db.dispose()


def run(config: Config, jobs: list[tuple[int, str]], overrides: dict[str, Any] | None = None) -> bool:
    """Crawl the sources of ``jobs`` (run id, source name) side by side in this process.

    As each crawl ends its run is recorded and ``{"run_id": N, "status": ...}`` is printed on
    stdout, which the parent reads to report progress. Returns whether all succeeded.
    """
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from earful.spiders.registry import spider_class, spider_name

    process = CrawlerProcess(crawl_settings(config, overrides))
    statuses: dict[int, str] = {}
    handlers = []  # Scrapy's signals hold receivers weakly; keep each closure alive
    for run_id, source_name in jobs:
        source = config.source(source_name)
        crawler = process.create_crawler(spider_class(spider_name(source)))

        def closed(spider: Any, reason: str, crawler: Any = crawler, run_id: int = run_id) -> None:
            statuses[run_id] = record(config, run_id, crawler.stats.get_stats(), reason)
            print(json.dumps({"run_id": run_id, "status": statuses[run_id]}), flush=True)

        handlers.append(closed)
        crawler.signals.connect(closed, signal=signals.spider_closed)
        process.crawl(crawler, source=source, run_id=run_id)
    process.start()
    return len(statuses) == len(jobs) and all(s == "succeeded" for s in statuses.values())


def record(config: Config, run_id: int, stats: dict[str, Any], reason: str) -> str:
    """Write a finished crawl's counts and status into its run; returns the status."""
    counts = run_counts(stats)
    failed = reason != "finished" or (counts["pages"] == 0 and counts["errors"] > 0)
    status = "failed" if failed else "succeeded"
    message = None
    if failed:
        message = f"finish reason {reason}; {counts['errors']} errors; {counts['pages']} pages"
    elif counts["errors"]:
        message = f"{counts['errors']} errors (see the crawl log)"
    counts["stats"]["finish_reason"] = reason
    finish_run(config, run_id, counts, status, message)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m earful.spiders.runner", description=__doc__)
    parser.add_argument("--config")
    parser.add_argument("--job", action="append", required=True, help="RUN_ID:SOURCE, once per source")
    parser.add_argument("--settings", default="{}", help="Scrapy settings to override, as JSON")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    jobs = []
    for job in args.job:
        run_id, _, source = job.partition(":")
        jobs.append((int(run_id), source))
    return 0 if run(config, jobs, json.loads(args.settings)) else 1


if __name__ == "__main__":
    code = main()
    # Every run is recorded and committed by now; skip the interpreter's slow teardown of
    # Scrapy, Twisted and SQLAlchemy (~0.3 s, a large part of an incremental re-crawl).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
