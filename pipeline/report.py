"""The weekly word-of-mouth report: one self-contained HTML page and its CSV tables per brand.

:func:`write_reports` is what ``earful report`` and the weekly DAG call. For each brand it
counts the week and the weeks before it in the database (:mod:`earful.pipeline.trends`),
puts an interval on every share and every week-over-week change
(:mod:`earful.pipeline.stats`), and says in words whether a change is larger than the noise
of that many mentions: "+5 points" on 40 mentions is usually chance, and the report must say
so rather than let a reader act on it. A week with fewer than ``report.min_judged`` judged
mentions says that it is too thin to conclude from.

The page is meant to survive an e-mail client and a hostile web: inline CSS, the trend chart
as inline SVG (matplotlib, no fonts or URLs fetched, ids salted so the file is the same on
every run), no JavaScript, a Content-Security-Policy that forbids any, Jinja2 autoescaping of
every text that came from the web, and links only when they are http(s). CSV cells that a
spreadsheet would run as a formula are neutralised. Each report is recorded in the
``report`` table, once per brand and week (running it again rewrites the files and the row)::

    written = write_reports(db, config, week=parse_week("2026-W47", config.timezone))
    written[0].html  # reports/earful-report-acme-2026-W47.html
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.pool import SingletonThreadPool

from earful.pipeline.classify import latest_version
from earful.pipeline.config import Config
from earful.pipeline.db import Database
from earful.pipeline.errors import EarfulError
from earful.pipeline.render import (
    csv_tables,
    hours_text,
    interval_text,
    net_score,
    pct,
    points,
    ratio_change,
    render_html,
    signed,
    slug,
    write_csv,
    write_text,
)
from earful.pipeline.schema import Brand, Report, utcnow
from earful.pipeline.stats import (
    Interval,
    net_sentiment_change,
    net_sentiment_interval,
    newcombe_difference,
    poisson_ratio_interval,
    wilson_interval,
    within_noise,
)
from earful.pipeline.trends import (
    MentionRow,
    Responses,
    Scope,
    Syndicated,
    Tally,
    WeeklyTallies,
    examples,
    responses,
    syndicated,
    topic_tallies,
    weekly_tallies,
)
from earful.pipeline.weeks import Week, last_complete_week

logger = logging.getLogger(__name__)


class ReportError(EarfulError):
    """A report cannot be made as asked (an unknown brand)."""


# ------------------------------------------------------------------------------ figures


@dataclass(frozen=True)
class WeekFigures:
    """One week of one slice: its counts and the intervals on its shares."""

    week: Week
    tally: Tally
    negative_share: Interval | None
    positive_share: Interval | None
    net: Interval | None  # (positive - negative) / judged
    enough: bool  # judged mentions reach report.min_judged


def week_figures(week: Week, tally: Tally, min_judged: int) -> WeekFigures:
    n = tally.judged
    return WeekFigures(
        week=week,
        tally=tally,
        negative_share=wilson_interval(tally.negative, n),
        positive_share=wilson_interval(tally.positive, n),
        net=net_sentiment_interval(tally.positive, tally.negative, n),
        enough=n >= min_judged,
    )


@dataclass(frozen=True)
class SliceRow:
    """A source or a topic: this week, the week before, and the changes between them."""

    name: str
    now: WeekFigures
    before: WeekFigures
    volume_change: Interval | None  # ratio of mentions, this week over the week before
    negative_change: Interval | None  # difference of negative shares
    net_change: Interval | None


def compare(name: str, now: WeekFigures, before: WeekFigures) -> SliceRow:
    a, b = now.tally, before.tally
    return SliceRow(
        name=name,
        now=now,
        before=before,
        volume_change=poisson_ratio_interval(a.mentions, b.mentions),
        negative_change=newcombe_difference(a.negative, a.judged, b.negative, b.judged),
        net_change=net_sentiment_change(a.positive, a.negative, a.judged, b.positive, b.negative, b.judged),
    )


@dataclass(frozen=True)
class Driver:
    """How much one topic moved the brand's negative mentions and net sentiment.

    Topics overlap (a mention can be about delivery and price), so the contributions of all
    topics need not add up to the brand's change.
    """

    topic: str
    negative: int
    negative_before: int
    negative_change: int
    share_of_change: float | None  # of the brand's change in negative mentions
    net_points: float | None  # the topic's part of the change in net sentiment, in points


def drivers(topics: dict[str, list[Tally]], now: Tally, before: Tally) -> list[Driver]:
    """Topics ordered by how much they changed the number of negative mentions.

    A topic's part of net sentiment is its (positive - negative) mentions over all judged
    mentions of the brand, this week minus the week before.
    """
    total_change = now.negative - before.negative
    found = []
    for topic, (t_before, t_now) in topics.items():
        change = t_now.negative - t_before.negative
        net_now = (t_now.positive - t_now.negative) / now.judged if now.judged else None
        net_before = (t_before.positive - t_before.negative) / before.judged if before.judged else None
        net = None if net_now is None or net_before is None else (net_now - net_before) * 100
        if change == 0 and not net:
            continue
        found.append(
            Driver(
                topic=topic,
                negative=t_now.negative,
                negative_before=t_before.negative,
                negative_change=change,
                share_of_change=change / total_change if total_change else None,
                net_points=net,
            )
        )
    return sorted(found, key=lambda d: (-abs(d.negative_change), -abs(d.net_points or 0), d.topic))


@dataclass(frozen=True)
class ResponseFigures:
    week: Week
    negative: int
    replied: int
    share: Interval | None
    median_hours: float | None


@dataclass(frozen=True)
class BrandReport:
    """Everything one report shows; the HTML page and the CSV files are made from it."""

    brand: str
    brand_id: int | None
    slug: str
    week: Week
    version: str | None
    generated_at: datetime
    min_judged: int
    trend: list[WeekFigures]
    overall: SliceRow
    sources: list[SliceRow]
    topics: list[SliceRow]
    drivers: list[Driver]
    most_negative: list[MentionRow]
    most_positive: list[MentionRow]
    high_rating_negative: list[MentionRow]
    low_rating_positive: list[MentionRow]
    disagreements: tuple[int, int]  # this week: high rating + negative text, low rating + positive text
    responses: list[ResponseFigures]  # the week before, this week
    duplicates_left_out: int
    duplicates: list[Syndicated]
    summary: list[str] = field(default_factory=list)

    @property
    def now(self) -> WeekFigures:
        return self.trend[-1]

    @property
    def has_data(self) -> bool:
        return any(w.tally.mentions for w in self.trend)


def build_report(
    db: Database,
    config: Config,
    week: Week,
    brand: tuple[int, str] | None = None,
    *,
    now: datetime | None = None,
) -> BrandReport:
    """Count and compare ``week`` for ``brand`` (id, name); ``None`` means every mention."""
    settings = config.report
    weeks = [week.shift(i - settings.weeks + 1) for i in range(settings.weeks)]
    version = latest_version(db)
    scope = Scope(brand[0] if brand else None, version, weeks[0].start, weeks[-1].end, db.dialect)
    k = settings.examples
    with db.translate_errors():
        with _reading(db) as conn:
            scope = scope.with_syndicated(conn)
        # The counting queries are independent of each other: they run two at a time, each on
        # a connection of its own (both databases then use two cores), the largest first.
        # None of them saw one snapshot before either: each statement reads committed data.
        tasks: list[Callable[[Connection], Any]] = [
            lambda conn: weekly_tallies(conn, scope, weeks),
            lambda conn: topic_tallies(conn, scope, weeks[-2:]),
            lambda conn: responses(conn, scope, weeks[-2:]),
            lambda conn: examples(conn, scope, week, "negative", k),
            lambda conn: examples(conn, scope, week, "positive", k),
            lambda conn: examples(conn, scope, week, "negative", k, rating="high"),
            lambda conn: examples(conn, scope, week, "positive", k, rating="low"),
            lambda conn: syndicated(conn, scope, week, max(k, 10)),
        ]

        def run(task: Callable[[Connection], Any]) -> Any:
            with _reading(db) as conn:
                return task(conn)

        if isinstance(db.engine.pool, SingletonThreadPool):
            # An in-memory SQLite database exists on one connection only (one per thread).
            results = [run(task) for task in tasks]
        else:
            with ThreadPoolExecutor(max_workers=2) as pool:
                results = list(pool.map(run, tasks))
    tallies: WeeklyTallies = results[0]
    topic_counts: dict[str, list[Tally]] = results[1]
    replies: list[Responses] = results[2]
    most_negative, most_positive, high_rating_negative, low_rating_positive = results[3:7]
    left_out, duplicates = results[7]

    def figures(tallies_of: Sequence[Tally], i: int) -> WeekFigures:
        return week_figures(weeks[i], tallies_of[i], settings.min_judged)

    trend = [figures(tallies.total, i) for i in range(len(weeks))]
    last, prev = len(weeks) - 1, len(weeks) - 2
    overall = compare("all", trend[last], trend[prev])
    sources = [
        compare(name, figures(t, last), figures(t, prev))
        for name, t in tallies.sources.items()
        if t[last].mentions or t[prev].mentions
    ]
    topics = [
        compare(
            name,
            week_figures(weeks[last], t[1], settings.min_judged),
            week_figures(weeks[prev], t[0], settings.min_judged),
        )
        for name, t in topic_counts.items()
    ]
    by_volume = lambda row: (-row.now.tally.mentions, -row.before.tally.mentions, row.name)  # noqa: E731
    name = brand[1] if brand else "All brands"
    report = BrandReport(
        brand=name,
        brand_id=brand[0] if brand else None,
        slug=slug(name, brand[0]) if brand else "all",
        week=week,
        version=version,
        generated_at=now or utcnow(),
        min_judged=settings.min_judged,
        trend=trend,
        overall=overall,
        sources=sorted(sources, key=by_volume),
        topics=sorted(topics, key=by_volume),
        drivers=drivers(topic_counts, trend[last].tally, trend[prev].tally)[: max(k, 8)],
        disagreements=(tallies.high_rating_negative[last], tallies.low_rating_positive[last]),
        responses=[_response_figures(weeks[prev + i], r) for i, r in enumerate(replies)],
        duplicates_left_out=left_out,
        duplicates=duplicates,
        most_negative=most_negative,
        most_positive=most_positive,
        high_rating_negative=high_rating_negative,
        low_rating_positive=low_rating_positive,
    )
    return _with_summary(report)


@contextmanager
def _reading(db: Database) -> Iterator[Connection]:
    """A connection for the report's queries."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            # For this transaction only: JIT-compiling these one-off queries costs more than
            # it saves (1.5 s on a million mentions); grouping a quarter of a million rows by
            # text hash fits in 64 MB where the default 4 MB spills to disk; and the covering
            # indexes these queries read are in memory, so an index look-up is not 4 times
            # dearer than a sequential read (PostgreSQL then reads the classifications
            # through their index instead of hashing the whole table).
            conn.execute(text("SET LOCAL jit = off"))
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
            conn.execute(text("SET LOCAL random_page_cost = 1.1"))
        yield conn


def _response_figures(week: Week, r: Responses) -> ResponseFigures:
    median = statistics.median(r.reply_seconds) / 3600 if r.reply_seconds else None
    return ResponseFigures(week, r.negative, r.replied, wilson_interval(r.replied, r.negative), median)


# ------------------------------------------------------------------------------ wording


def _with_summary(r: BrandReport) -> BrandReport:
    """The plain-language lines at the top of the report."""
    lines: list[str] = []
    now, before = r.now, r.overall.before
    if not r.has_data:
        lines.append(
            f"No word-of-mouth mentions of {r.brand} in the {len(r.trend)} weeks up to {r.week.label}: "
            "nothing to report yet. Crawl, import and classify mentions first."
        )
        return _replace_summary(r, lines)
    t, b = now.tally, before.tally
    lines.append(
        f"{t.mentions:,} mentions this week ({t.judged:,} judged, {t.not_judged:,} not judged), "
        f"against {b.mentions:,} the week before."
    )
    volume = r.overall.volume_change
    if volume is not None and t.mentions and b.mentions:
        lines.append(
            f"Volume {ratio_change(volume.estimate)} {interval_text(volume, 'ratio')}: "
            + (
                "within week-to-week noise."
                if within_noise(volume, 1.0)
                else f"a real {'rise' if volume.estimate > 1 else 'fall'}, beyond week-to-week noise."
            )
        )
    if not now.enough:
        lines.append(
            f"Only {t.judged:,} mentions were judged this week, fewer than {r.min_judged}: the shares "
            "below are too uncertain to draw conclusions from."
        )
    else:
        lines.append(
            f"{pct(_estimate(now.negative_share))} of judged mentions are "
            f"negative {interval_text(now.negative_share, 'share')}, {pct(_estimate(now.positive_share))} "
            f"positive; net sentiment {net_score(_estimate(now.net))} "
            f"{interval_text(now.net, 'net')}."
        )
        if not before.enough:
            lines.append(
                f"The week before had only {b.judged:,} judged mentions: too few to compare this week with."
            )
        else:
            neg, net = r.overall.negative_change, r.overall.net_change
            if neg is not None and net is not None:
                lines.append(
                    f"Negative share {points(neg.estimate)} points {interval_text(neg)}, net sentiment "
                    f"{points(net.estimate)} {interval_text(net)} against the week before: "
                    + (
                        "both within week-to-week noise."
                        if within_noise(neg) and within_noise(net)
                        else "a change beyond week-to-week noise."
                    )
                )
    moved = [d for d in r.drivers if d.negative_change][:3]
    if moved and t.negative != b.negative:
        parts = ", ".join(f"{d.topic} ({signed(d.negative_change)})" for d in moved)
        lines.append(f"Negative mentions {signed(t.negative - b.negative)}; by topic: {parts}.")
    reply = r.responses[-1]
    if reply.negative:
        when = (
            f", after a median of {hours_text(reply.median_hours)}" if reply.median_hours is not None else ""
        )
        lines.append(
            f"The brand replied to {reply.replied:,} of {reply.negative:,} negative mentions "
            f"({pct(_estimate(reply.share))}){when}."
        )
    if r.duplicates_left_out:
        lines.append(
            f"{r.duplicates_left_out:,} {'copy' if r.duplicates_left_out == 1 else 'copies'} of texts "
            "syndicated to several sites left out (each text is counted once)."
        )
    return _replace_summary(r, lines)


def _estimate(interval: Interval | None) -> float | None:
    return None if interval is None else interval.estimate


def _replace_summary(r: BrandReport, lines: list[str]) -> BrandReport:
    return replace(r, summary=lines)


@dataclass(frozen=True)
class WrittenReport:
    brand: str
    week: str
    html: Path
    csv: list[Path]
    report: BrandReport


def default_out_dir(config: Config) -> Path:
    """``report.out_dir`` (relative to the config file), else ``reports/`` beside the config
    file, else ``reports/`` in the working directory."""
    base = config.path.parent if config.path else Path.cwd()
    folder = config.report.out_dir
    if folder is None:
        return base / "reports"
    folder = folder.expanduser()
    return folder if folder.is_absolute() else base / folder


def find_brands(db: Database, name: str | None) -> list[tuple[int, str]]:
    """The brands to report on: the one named (by name or alias, any case), else all of them.

    An unknown name is a :class:`ReportError` that lists the known brands.
    """
    with db.translate_errors(), db.engine.connect() as conn:
        rows = conn.execute(select(Brand.id, Brand.name, Brand.aliases).order_by(Brand.name)).all()
    if name is None:
        return [(row.id, row.name) for row in rows]
    wanted = name.strip().casefold()
    for row in rows:
        if wanted in {row.name.casefold(), *(a.casefold() for a in row.aliases or [])}:
            return [(row.id, row.name)]
    known = ", ".join(row.name for row in rows) or "none; add brands to the config"
    raise ReportError(f"no brand named {name!r} (known: {known})")


def write_reports(
    db: Database,
    config: Config,
    *,
    week: Week | None = None,
    brand: str | None = None,
    out_dir: Path | None = None,
    now: datetime | None = None,
) -> list[WrittenReport]:
    """Write the report of ``week`` (default: the last complete week in ``config.timezone``)
    for ``brand`` (default: every brand; every mention when no brand is configured) and
    record each in the ``report`` table."""
    now = now or utcnow()
    week = week or last_complete_week(config.timezone, now)
    if week.timezone != config.timezone:
        week = Week(week.year, week.number, config.timezone)
    folder = out_dir or default_out_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    brands = find_brands(db, brand)
    written = []
    targets: list[tuple[int, str] | None] = [*brands] or [None]
    for target in targets:
        report = build_report(db, config, week, target, now=now)
        stem = f"earful-report-{report.slug}-{week.label}"
        html = folder / f"{stem}.html"
        write_text(html, render_html(report, config.timezone))
        files = []
        for table, rows in csv_tables(report, config.timezone).items():
            path = folder / f"{stem}-{table}.csv"
            write_csv(path, rows)
            files.append(path)
        _record(db, report, [html, *files], now)
        logger.info("wrote the %s report of %s to %s", week.label, report.brand, html)
        written.append(WrittenReport(report.brand, week.label, html, files, report))
    return written


def _record(db: Database, report: BrandReport, files: list[Path], now: datetime) -> None:
    """One ``report`` row per brand and week: a report made again updates its row."""
    with db.session() as session:
        query = select(Report).where(Report.week == report.week.label)
        query = query.where(
            Report.brand_id.is_(None) if report.brand_id is None else Report.brand_id == report.brand_id
        )
        row = session.scalars(query.order_by(Report.id).limit(1)).first()
        if row is None:
            row = Report(brand_id=report.brand_id, week=report.week.label)
            session.add(row)
        row.period_start = report.week.start
        row.period_end = report.week.end
        row.files = [str(f.resolve()) for f in files]
        row.created_at = now.astimezone(UTC)
