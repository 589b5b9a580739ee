"""What is stored, per source, and which sources look broken.

``earful status`` and ``earful sources list`` print these; the DAGs and the alerts read the
same functions. A source is flagged when its last three crawl runs all failed or stored
nothing: a broken selector or a blocked crawler shows up here first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from earful.pipeline.db import Database
from earful.pipeline.schema import Brand, CrawlRun, Mention, Source

UNHEALTHY_RUNS = 3


@dataclass(frozen=True)
class RunSummary:
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    seen: int
    new: int
    updated: int
    unchanged: int
    dropped: int
    errors: int
    message: str | None


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    spider: str | None
    brand: str | None
    schedule: str | None
    enabled: bool
    start_urls: list[str]
    mentions: int
    last_published: datetime | None
    last_run: RunSummary | None
    problem: str | None  # why the source looks broken, if it does


def _summary(run: CrawlRun) -> RunSummary:
    return RunSummary(
        kind=run.kind,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        seen=run.items_seen,
        new=run.items_new,
        updated=run.items_updated,
        unchanged=run.items_unchanged,
        dropped=run.items_dropped,
        errors=run.errors,
        message=run.message,
    )


def health_problem(runs: list[CrawlRun]) -> str | None:
    """Why the latest crawl runs (newest first) say a source is broken, or ``None``."""
    recent = [r for r in runs if r.kind == "crawl" and r.status != "running"][:UNHEALTHY_RUNS]
    if len(recent) < UNHEALTHY_RUNS:
        return None
    if all(r.status == "failed" for r in recent):
        return f"last {UNHEALTHY_RUNS} crawls failed"
    if all(r.status == "failed" or r.items_seen == 0 for r in recent):
        return f"last {UNHEALTHY_RUNS} crawls stored no mentions"
    return None


def source_statuses(db: Database) -> list[SourceStatus]:
    with db.session() as session:
        counts: dict[int, int] = dict(
            session.execute(select(Mention.source_id, func.count(Mention.id)).group_by(Mention.source_id))
            .tuples()
            .all()
        )
        latest: dict[int, datetime | None] = dict(
            session.execute(
                select(Mention.source_id, func.max(Mention.published_at)).group_by(Mention.source_id)
            )
            .tuples()
            .all()
        )
        brands = dict(session.execute(select(Brand.id, Brand.name)).tuples().all())
        out = []
        for source in session.scalars(select(Source).order_by(Source.name)):
            runs = list(
                session.scalars(
                    select(CrawlRun)
                    .where(CrawlRun.source_id == source.id)
                    .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
                    .limit(10)
                )
            )
            out.append(
                SourceStatus(
                    name=source.name,
                    kind=source.kind,
                    spider=source.spider,
                    brand=brands.get(source.brand_id) if source.brand_id else None,
                    schedule=source.schedule,
                    enabled=source.enabled,
                    start_urls=list(source.start_urls),
                    mentions=counts.get(source.id, 0),
                    last_published=latest.get(source.id),
                    last_run=_summary(runs[0]) if runs else None,
                    problem=health_problem(runs),
                )
            )
        return out
