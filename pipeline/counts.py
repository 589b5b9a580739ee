"""Counting judged mentions per hour: from the mentions themselves, or from ``hourly_count``.

What counts (the alert check's rules): reviews and comments with a brand, not the brand's own
responses, classified ``ok`` by the model version in use, at the time they were published, or
collected when the page gave no date. A topic counts the mentions negative about it (the
topic's own sentiment, else the mention's).

Two ways to get the same figures:

* :func:`count_hours_direct` groups the mentions and their classifications in SQL. It reads
  every mention of the range (about two thirds of a million for the alert check's eight weeks
  at a million mentions);
* :func:`count_hours` reads ``hourly_count``, which triggers keep exact in the same
  transaction as every change (migration 0006), and sums each key's signed rows: about one
  row per brand (and topic with negatives) and hour. :func:`compact` folds the rows the
  triggers added since the last call into one per key; ``earful alerts`` calls it first.

``tests/test_rollup.py`` holds the two to the same figures after inserts, re-scoring, edited
and deleted mentions and compaction, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    column,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.sql.elements import ColumnElement

from earful.pipeline.db import Database
from earful.pipeline.migrations.triggers import false as sql_false
from earful.pipeline.schema import Classification, HourlyCount, HourlyTally, Mention

HOUR = timedelta(hours=1)
COUNTED_KINDS = ("review", "comment")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MENTION: Table = Mention.__table__  # type: ignore[assignment]
_CLASSIFICATION: Table = Classification.__table__  # type: ignore[assignment]
_HOURLY: Table = HourlyCount.__table__  # type: ignore[assignment]
_TALLY: Table = HourlyTally.__table__  # type: ignore[assignment]


Ints = np.ndarray[Any, np.dtype[np.int64]]


@dataclass
class Counts:
    """Hourly counts of one brand or brand × topic: index i is the i-th hour of the range."""

    negative: Ints
    total: Ints

    @classmethod
    def zeros(cls, hours: int) -> Counts:
        return cls(np.zeros(hours, dtype=np.int64), np.zeros(hours, dtype=np.int64))


#: Per brand id, and per (brand id, topic): the range's hourly counts.
Hourly = tuple[dict[int, Counts], dict[tuple[int, str], Counts]]


def _hours_in(start: datetime, end: datetime) -> int:
    return max(0, int((end - start) // HOUR))


def event_time() -> ColumnElement[Any]:
    m = _MENTION
    return func.coalesce(m.c.published_at, m.c.collected_at)


def in_range(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Mentions whose time (published, else collected) is in [start, end); written as two
    ranges so that each uses its index."""
    m = _MENTION
    return or_(
        and_(m.c.published_at >= start, m.c.published_at < end),
        and_(m.c.published_at.is_(None), m.c.collected_at >= start, m.c.collected_at < end),
    )


def counted() -> ColumnElement[bool]:
    m = _MENTION
    return and_(m.c.brand_id.is_not(None), m.c.kind.in_(COUNTED_KINDS), m.c.is_brand_response == false())


def judged(version: str) -> ColumnElement[bool]:
    c = _CLASSIFICATION
    return and_(c.c.mention_id == _MENTION.c.id, c.c.model_version == version, c.c.status == "ok")


def hour_bucket(dialect: str, at: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
    """The UTC hour of a mention's time (``at``, by default published, else collected), as the
    database can group by it cheaply: the text ``YYYY-MM-DD HH`` on SQLite (which stores times
    as text), a timestamp on PostgreSQL."""
    when = event_time() if at is None else at
    if dialect == "sqlite":
        return func.substr(when, 1, 13)
    return func.date_trunc("hour", func.timezone("UTC", when))


class Hours:
    """Converts the database's hour buckets into hour indices from ``start`` (cached: a range
    has only about a thousand distinct hours)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self._seen: dict[Any, int] = {}

    def __call__(self, bucket: Any) -> int:
        index = self._seen.get(bucket)
        if index is None:
            if isinstance(bucket, str):
                when = datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC)
            else:
                when = bucket.replace(tzinfo=UTC) if bucket.tzinfo is None else bucket.astimezone(UTC)
            index = int((when - self.start) // HOUR)
            self._seen[bucket] = index
        return index


def negative_topic(value: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether a topic entry of ``classification.topics`` is negative (its own sentiment, else
    the mention's)."""
    c = _CLASSIFICATION
    return func.coalesce(value["sentiment"].as_string(), c.c.sentiment) == "negative"


def topics_table() -> Any:
    c = _CLASSIFICATION
    return func.json_each(c.c.topics).table_valued(column("key", String), column("value", JSON))


def counted_branches(start: datetime, end: datetime) -> list[tuple[ColumnElement[Any], ColumnElement[bool]]]:
    """The counted mentions whose time is in [start, end), as two (time, condition) pairs:
    dated ones by publication, undated ones by collection. Each is read from its covering
    index alone (``ix_mention_published_counted``, ``ix_mention_undated_counted``), which one
    condition with an OR between them would not be."""
    m = _MENTION
    counted = and_(m.c.brand_id.is_not(None), m.c.kind.in_(COUNTED_KINDS), m.c.is_brand_response == false())
    dated = and_(m.c.published_at >= start, m.c.published_at < end, counted)
    undated = and_(m.c.published_at.is_(None), m.c.collected_at >= start, m.c.collected_at < end, counted)
    return [(m.c.published_at, dated), (m.c.collected_at, undated)]


def negative_classification() -> ColumnElement[bool]:
    """:data:`~earful.pipeline.schema.NEGATIVE_CLASSIFICATION` as SQLAlchemy writes it, with its
    constants inline: the databases use the partial index ``ix_classification_negative`` only
    for a query whose conditions repeat the index's."""
    c = _CLASSIFICATION
    return or_(
        c.c.sentiment == literal_column("'negative'"),
        cast(c.c.topics, Text).like(literal_column("""'%"negative"%'""")),
    )


def count_hours_direct(db: Database, version: str, start: datetime, end: datetime) -> Hourly:
    """Per hour in [start, end): negative and all judged mentions per brand id, and negative
    mentions per brand id and topic. Two ``GROUP BY`` queries; the database does the counting.

    Both read the mentions from their covering indexes (migration 0005) and look each one up
    in an index of the classifications: the brand query in a covering one, so it reads no
    table row at all; the topic query in the partial index of the classifications with a
    negative in them, so only those are read and only their topics parsed (counting every
    mention's topics took three times as long, so a topic's share test uses the brand's total
    as its denominator). Grouping by the hour first keeps SQLite from walking a whole
    brand index in brand order to save a sort. ``tests/test_query_plans.py`` holds SQLite to
    these plans.
    """
    m, c = _MENTION, _CLASSIFICATION
    negative = func.sum(case((c.c.sentiment == "negative", 1), else_=0))
    # status = 'ok' inline too: with it SQLite picks the covering index over the unique one.
    judged = and_(
        c.c.mention_id == m.c.id, c.c.model_version == version, c.c.status == literal_column("'ok'")
    )
    with_negative = and_(judged, negative_classification())
    topics = topics_table()
    brand_parts, topic_parts = [], []
    # One query per branch, joined by UNION ALL at the top: SQLite would otherwise copy the
    # union of the two branches' rows into a temporary table before joining.
    for at, where in counted_branches(start, end):
        hour = hour_bucket(db.dialect, at)
        brand_parts.append(
            select(hour, m.c.brand_id, negative, func.count())
            .select_from(m.join(c, judged))
            .where(where)
            .group_by(hour, m.c.brand_id)
        )
        topic_parts.append(
            select(hour, m.c.brand_id, topics.c.key, func.count())
            .select_from(m.join(c, with_negative).join(topics, literal(True)))
            .where(where, negative_topic(topics.c.value))
            .group_by(hour, m.c.brand_id, topics.c.key)
        )
    brands_q, topics_q = union_all(*brand_parts), union_all(*topic_parts)

    def fetch(query: Any) -> list[Any]:
        with db.translate_errors(), db.engine.connect() as conn:
            if db.dialect == "postgresql":
                # For this transaction only: JIT-compiling a one-off query costs more than it
                # saves; the hash tables of the join and the groups fit in 64 MB where the
                # default 4 MB spills to disk; and the indexes these queries read are in
                # memory, so a look-up is not 4 times dearer than a sequential read.
                conn.execute(text("SET LOCAL jit = off"))
                conn.execute(text("SET LOCAL work_mem = '64MB'"))
                conn.execute(text("SET LOCAL random_page_cost = 1.1"))
            return list(conn.execute(query).all())

    # The two queries run side by side on two connections: both databases (SQLite releases
    # the GIL while it steps) then use two cores. An in-memory SQLite database exists on one
    # connection only (SQLAlchemy keeps one per thread), so it is asked in this thread.
    if isinstance(db.engine.pool, SingletonThreadPool):
        brand_rows, topic_rows = fetch(brands_q), fetch(topics_q)
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            brand_rows, topic_rows = pool.map(fetch, (brands_q, topics_q))
    index = Hours(start)
    hours = _hours_in(start, end)
    by_brand: dict[int, Counts] = defaultdict(lambda: Counts.zeros(hours))
    by_topic: dict[tuple[int, str], Counts] = defaultdict(lambda: Counts.zeros(hours))
    for bucket, brand_id, neg, total in brand_rows:
        counts = by_brand[brand_id]
        h = index(bucket)
        counts.negative[h] += int(neg or 0)
        counts.total[h] += int(total)
    for bucket, brand_id, topic, neg in topic_rows:
        by_topic[(brand_id, str(topic))].negative[index(bucket)] += int(neg)
    return dict(by_brand), dict(by_topic)


def has_history(db: Database, version: str, brand_id: int, before: datetime) -> bool:
    """Whether the brand has a counted mention before ``before`` (an index seek each way)."""
    m, c = _MENTION, _CLASSIFICATION
    joined = m.join(c, judged(version))
    dated = and_(m.c.brand_id == brand_id, m.c.published_at < before)
    undated = and_(m.c.brand_id == brand_id, m.c.published_at.is_(None), m.c.collected_at < before)
    with db.translate_errors(), db.engine.connect() as conn:
        for where in (dated, undated):
            if conn.scalar(select(m.c.id).select_from(joined).where(where, counted()).limit(1)):
                return True
    return False


def epoch_hour(when: datetime) -> int:
    """Whole hours since 1970-01-01 00:00 UTC (``hourly_count.hour``)."""
    return int((when - _EPOCH) // HOUR)


def count_hours(db: Database, version: str, start: datetime, end: datetime) -> Hourly:
    """The figures of :func:`count_hours_direct`, read from ``hourly_count``: per hour in
    [start, end), negative and all judged mentions per brand id, and negative mentions per
    brand id and topic.

    Two range scans of the covering index ``ix_hourly_count_read`` with no grouping in SQL
    (a GROUP BY in another order than the index's would sort); the rows of a key (its folded
    row and those added since) are summed here with numpy, which also lays them out as the
    dense hourly arrays the rule takes. The rows come through the driver's cursor: turning
    two hundred thousand of them into SQLAlchemy rows took longer than reading them.
    """
    first, hours = epoch_hour(start), _hours_in(start, end)
    mark = "?" if db.dialect == "sqlite" else "%s"
    where = f"model_version = {mark} AND hour >= {mark} AND hour < {mark}"
    brand_sql = f"SELECT brand_id, hour, negative, total FROM hourly_count WHERE topic = '' AND {where}"
    topic_sql = f"SELECT topic, brand_id, hour, negative FROM hourly_count WHERE topic > '' AND {where}"
    params = (version, first, first + hours)
    with db.translate_errors(), db.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(brand_sql, params)
            brand_rows = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 4)
            cursor.execute(topic_sql, params)
            topic_rows = cursor.fetchall()
        finally:
            cursor.close()
    by_brand: dict[int, Counts] = {}
    ids, where_of = np.unique(brand_rows[:, 0], return_inverse=True)
    for k, brand_id in enumerate(ids.tolist()):
        rows = brand_rows[where_of == k]
        counts = by_brand[brand_id] = Counts.zeros(hours)
        np.add.at(counts.negative, rows[:, 1] - first, rows[:, 2])
        np.add.at(counts.total, rows[:, 1] - first, rows[:, 3])
    by_topic: dict[tuple[int, str], Counts] = {}
    if topic_rows:
        codes: dict[tuple[int, str], int] = {}
        key_of = np.fromiter(
            (codes.setdefault((b, t), len(codes)) for t, b, _, _ in topic_rows), np.int64, len(topic_rows)
        )
        numbers = np.array([(h, n) for _, _, h, n in topic_rows], dtype=np.int64)
        grid = np.zeros((len(codes), hours), dtype=np.int64)
        np.add.at(grid, (key_of, numbers[:, 0] - first), numbers[:, 1])
        for (brand_id, topic), k in codes.items():
            if grid[k].any():
                by_topic[(brand_id, str(topic))] = Counts(grid[k], np.zeros(hours, dtype=np.int64))
    for brand_id in [b for b, c in by_brand.items() if not (c.total.any() or c.negative.any())]:
        del by_brand[brand_id]
    return by_brand, by_topic


def compact(db: Database) -> int:
    """Fold the rows the triggers added to ``hourly_count`` and ``hourly_tally`` since the last
    call into one row per key; keys that sum to nothing go. Returns the rows removed.

    One transaction per table: the rows deleted are exactly the rows summed (``DELETE ...
    RETURNING``), so a change committed meanwhile by another process keeps its own row and is
    folded next time; nothing is counted twice or lost.
    """
    return _fold(db, _HOURLY, ("model_version", "hour", "brand_id", "topic"), ("negative", "total")) + _fold(
        db, _TALLY, ("model_version", "hour", "brand_id", "source_id", "topic"), TALLY_VALUES
    )


#: The counts of ``hourly_tally``, in the order of its columns.
TALLY_VALUES = ("positive", "neutral", "negative", "unjudged", "high_neg", "low_pos", "mentions")


def _fold(db: Database, table: Table, key_names: Sequence[str], value_names: Sequence[str]) -> int:
    key = [table.c[name] for name in key_names]
    values = [table.c[name] for name in value_names]
    # Spelt as the partial index ix_*_fresh is, so that the databases use it.
    fresh = select(*key).where(text("NOT compacted")).distinct()
    with db.translate_errors(), db.engine.begin() as conn:
        gone = conn.execute(delete(table).where(tuple_(*key).in_(fresh)).returning(*key, *values)).all()
        if not gone:
            return 0
        width = len(key)
        sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(values))
        for row in gone:
            total = sums[tuple(row[:width])]
            for k, value in enumerate(row[width:]):
                total[k] += value
        rows = [
            {
                **dict(zip(key_names, k, strict=True)),
                **dict(zip(value_names, v, strict=True)),
                "compacted": True,
            }
            for k, v in sums.items()
            if any(v)
        ]
        if rows:
            conn.execute(insert(table), rows)
    return len(gone) - len(rows)


# ------------------------------------------------------------------------------ recount


@dataclass(frozen=True)
class Recount:
    """What :func:`recount` wrote: rows of each count table, mentions flagged, seconds."""

    hourly_count: int
    hourly_tally: int
    flagged: int
    seconds: float


def _revision(name: str) -> Any:
    """A migration module by file name (they start with a date, so no plain import)."""
    return importlib.import_module(f"earful.pipeline.migrations.versions.{name}")


def recount(db: Database) -> Recount:
    """Count ``hourly_count`` and ``hourly_tally`` again from the stored mentions, and set the
    ``has_copies`` flags again: the repair after a bulk change made with the triggers off, or
    a restore of only some tables. One transaction, with writers held off on PostgreSQL, so
    nothing committed meanwhile is counted twice or missed; readers go on meanwhile.

    The statements are those the upgrades ran (revisions 0006, 0007, 0008): a later revision
    that changes what these tables count must name its own here.
    """
    started = time.perf_counter()
    dialect = db.dialect
    counts = _revision("2026_12_07_0006_hourly_counts")._backfill(dialect)
    tallies = _revision("2026_12_07_0007_hourly_tallies")._backfill(dialect)
    flags = _revision("2026_12_07_0008_syndicated_flag")
    with db.translate_errors(), db.engine.begin() as conn:
        if dialect == "postgresql":
            # Writers wait until the recount commits; readers do not.
            conn.execute(text("LOCK TABLE mention, classification IN SHARE MODE"))
        conn.execute(delete(_HOURLY))
        conn.execute(delete(_TALLY))
        for statement in [*counts, *tallies]:
            conn.execute(text(statement))
        conn.execute(text(f"UPDATE mention SET has_copies = {sql_false(dialect)} WHERE has_copies"))
        conn.execute(text(flags.backfill_statement(dialect)))
        found = [
            conn.execute(select(func.count()).select_from(table)).scalar_one() for table in (_HOURLY, _TALLY)
        ]
        flagged = conn.execute(select(func.count()).where(Mention.__table__.c.has_copies)).scalar_one()
    return Recount(int(found[0]), int(found[1]), int(flagged), time.perf_counter() - started)
