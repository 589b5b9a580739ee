"""Weekly trends out of the database: ISO weeks in the team's time zone, counted in SQL.

A report compares weeks, so everything here is grouped by week. A week is the ISO week of
``config.timezone``: it starts on Monday 00:00 *local* time, and its UTC boundaries are
computed in Python one week at a time, so a week that holds a daylight-saving change is 167 or
169 hours long, as the team lives it. Timestamps are stored in UTC; the database only ever
compares them with these instants (``published_at >= start AND published_at < end``), which
is portable and reads the ``(brand_id, published_at)`` index.

What counts as word of mouth, in every figure:

* mentions of kind ``review`` or ``comment`` (a ``post`` from a feed is the brand's or a
  publisher's own article, not a customer talking), not written by the brand itself
  (``is_brand_response``), in the week they were published (collected, when the page gave
  no date);
* a text syndicated to several sites (the same ``content_hash`` from more than one source,
  at least :data:`SYNDICATED_MIN_CHARS` long, so two people writing "Great!" stay two) is
  counted once: its first stored copy in the report's weeks;
* sentiment comes from the classification rows of one model version (``latest_version``);
  a row whose ``status`` is not ``ok``, or no row yet, is counted as not judged.

Aggregation happens in the database (one ``GROUP BY`` per question; rows come back per week
and source, per topic, or as a handful of examples), so a report over a million mentions
reads kilobytes, not the mentions. The queries are SQLAlchemy Core and run on SQLite and
PostgreSQL alike; the only dialect difference is how a topic's sentiment is read out of the
``classification.topics`` JSON.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    literal_column,
    select,
    true,
    union_all,
)

from earful.pipeline.counts import TALLY_VALUES, epoch_hour
from earful.pipeline.schema import Classification, HourlyTally, Mention, Source, UTCDateTime
from earful.pipeline.weeks import Week

WORD_OF_MOUTH = ("review", "comment")
SYNDICATED_MIN_CHARS = 40
# Ratings (normalised to 0..1) that contradict a text's sentiment.
HIGH_RATING = 0.8
LOW_RATING = 0.4
EXCERPT_CHARS = 600  # read from the database per example; the report shortens further

_MENTION: Table = Mention.__table__  # type: ignore[assignment]
_CLASSIFICATION: Table = Classification.__table__  # type: ignore[assignment]
_TALLY: Table = HourlyTally.__table__  # type: ignore[assignment]
_SOURCE: Table = Source.__table__  # type: ignore[assignment]


# ------------------------------------------------------------------------------ tallies


@dataclass(frozen=True)
class Tally:
    """Mentions of one slice (a brand, a source, a topic) in one week, by sentiment."""

    positive: int = 0
    neutral: int = 0
    negative: int = 0
    unjudged: int = 0  # classified, but the model did not judge the text (status not ok)
    unclassified: int = 0  # no classification row of the version yet

    @property
    def judged(self) -> int:
        return self.positive + self.neutral + self.negative

    @property
    def not_judged(self) -> int:
        return self.unjudged + self.unclassified

    @property
    def mentions(self) -> int:
        return self.judged + self.not_judged

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.positive + other.positive,
            self.neutral + other.neutral,
            self.negative + other.negative,
            self.unjudged + other.unjudged,
            self.unclassified + other.unclassified,
        )


def _tally(counts: dict[str, int]) -> Tally:
    return Tally(
        counts.get("positive", 0),
        counts.get("neutral", 0),
        counts.get("negative", 0),
        counts.get("unjudged", 0),
        counts.get("unclassified", 0),
    )


def _bucket_of(status: str | None, sentiment: str | None) -> str:
    if status is None:
        return "unclassified"
    if status == "ok" and sentiment in ("positive", "neutral", "negative"):
        return sentiment
    return "unjudged"


@dataclass(frozen=True)
class WeeklyTallies:
    """Per week (in the order of ``weeks``): the whole brand, each source, and the mentions
    whose rating contradicts their text."""

    weeks: list[Week]
    total: list[Tally]
    sources: dict[str, list[Tally]]
    high_rating_negative: list[int]
    low_rating_positive: list[int]


@dataclass(frozen=True)
class MentionRow:
    """One mention shown as an example; ``excerpt`` is at most :data:`EXCERPT_CHARS` long."""

    id: int
    source: str
    url: str | None
    published_at: datetime | None
    title: str | None
    excerpt: str
    text_chars: int
    rating: float | None
    sentiment: str | None
    score: float | None
    topics: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Responses:
    """Negative mentions of one week and the brand's replies to them."""

    negative: int
    replied: int
    reply_seconds: list[float]  # first reply's delay, per replied mention that has both times


@dataclass(frozen=True)
class Syndicated:
    """A text found on several sites: counted once (its first stored copy)."""

    content_hash: str
    copies: int
    sources: list[str]
    first_published: datetime | None
    kept: MentionRow


# ------------------------------------------------------------------------------ queries


# Syndicated texts (and their other copies) are excluded by a list up to this many; beyond,
# by a subquery.
MAX_LISTED_SYNDICATED = 5000


@dataclass(frozen=True)
class Scope:
    """What a report reads: one brand (``None``: every mention), one model version, and the
    weeks whose syndicated copies are looked for (``window``: first start, last end).

    ``syndicated`` holds the (content_hash, kept id) of every syndicated text in the window
    once :meth:`with_syndicated` has looked them up, and ``dropped`` the ids of their other
    copies, so that each query excludes those with one short list instead of grouping the
    window again; ``None`` (too many to list) falls back to the grouping subquery.
    """

    brand_id: int | None
    version: str | None
    window_start: datetime
    window_end: datetime
    dialect: str = "sqlite"
    syndicated: tuple[tuple[str, int], ...] | None = None
    dropped: tuple[int, ...] = ()

    def branches(self, m: Any, start: datetime, end: datetime) -> list[Branch]:
        """The brand's word of mouth that counts in ``[start, end)`` (see :func:`when`), as
        two branches, each a time column and its conditions on a mention table (or alias)
        ``m``: the dated mentions by publication, the undated ones by collection.

        Every query runs once per branch (their rows are added up), because each branch is
        then read from one covering index alone (``ix_mention_brand_counted`` and
        ``ix_mention_undated_counted``, migration 0005): a single condition with an OR between
        the two makes both databases fetch every row from the table, texts and all.
        """
        kinds = [m.c.kind.in_(WORD_OF_MOUTH), m.c.is_brand_response.is_(False)]
        brand = [] if self.brand_id is None else [m.c.brand_id == self.brand_id]
        dated = [*brand, m.c.published_at >= start, m.c.published_at < end, *kinds]
        undated = [
            *brand,
            m.c.published_at.is_(None),
            m.c.collected_at >= start,
            m.c.collected_at < end,
            *kinds,
        ]
        return [Branch(m.c.published_at, dated), Branch(m.c.collected_at, undated)]

    def counted(self, m: Any, start: datetime, end: datetime) -> list[Branch]:
        """:meth:`branches`, less the second and later copies of syndicated texts."""
        out = []
        for branch in self.branches(m, start, end):
            if self.syndicated is None:
                extra = [m.c.id.not_in(self._duplicate_ids())]
            elif self.dropped:
                extra = [m.c.id.not_in(self.dropped)]
            else:
                extra = []
            out.append(Branch(branch.at, [*branch.conditions, *extra]))
        return out

    def with_syndicated(self, conn: Connection, *, flagged: bool = True) -> Scope:
        """This scope with its syndicated texts looked up (one grouping of the window's
        flagged mentions; ``flagged=False`` groups all of them, the check of the flag)."""
        query = self.syndicated_groups(flagged=flagged)
        rows = conn.execute(
            query.order_by(query.selected_columns.kept).limit(MAX_LISTED_SYNDICATED + 1)
        ).all()
        if len(rows) > MAX_LISTED_SYNDICATED:
            return replace(self, syndicated=None)
        if not rows:
            return replace(self, syndicated=())
        # The other copies, looked up by their hashes (an index seek per text).
        m = _MENTION
        copies = select(m.c.id).where(
            m.c.content_hash.in_([row.content_hash for row in rows]),
            *self.row_conditions(m, self.window_start, self.window_end),
            m.c.id.not_in([row.kept for row in rows]),
        )
        dropped = tuple(conn.execute(copies.order_by(m.c.id).limit(MAX_LISTED_SYNDICATED + 1)).scalars())
        if len(dropped) > MAX_LISTED_SYNDICATED:
            return replace(self, syndicated=None)
        return replace(self, syndicated=tuple((row.content_hash, row.kept) for row in rows), dropped=dropped)

    def row_conditions(self, m: Any, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
        """The word of mouth of :meth:`branches` as plain conditions on each row, for queries
        that reach their few rows through the content-hash index.

        They are spelt so that no other index can serve them (``coalesce(...)``, ``brand_id
        + 0``): without table statistics, SQLite would otherwise walk all of the brand's rows
        once per text instead of looking up each text's copies.
        """
        conditions = [
            when(m) >= start,
            when(m) < end,
            m.c.kind.in_(WORD_OF_MOUTH),
            m.c.is_brand_response.is_(False),
        ]
        if self.brand_id is not None:
            conditions.append(m.c.brand_id + 0 == self.brand_id)
        return conditions

    def syndicated_groups(self, *, flagged: bool = True) -> Select[Any]:
        """(content_hash, kept id) of each text that several sources carry in the window.

        Only mentions flagged ``has_copies`` (another source has the same text: migration
        0008, kept by a trigger) can be in such a group, so only they are grouped by text
        hash, read from their partial index ``ix_mention_copies`` (no text is read);
        ``flagged=False`` groups every mention of the window instead, from the covering
        indexes. The length check then reads one text per group. "Several sources" is spelt
        ``min(source) < max(source)``: the same as counting distinct sources, without a sort
        per group.
        """
        d = _MENTION.alias("d")
        # Spelt as the partial index's condition (``has_copies = 1`` on SQLite, bare on
        # PostgreSQL), which SQLAlchemy renders for a bare boolean column.
        copies = [d.c.has_copies] if flagged else []
        rows = union_all(
            *(
                select(d.c.id, d.c.content_hash, d.c.source_id).where(*branch.conditions, *copies)
                for branch in self.branches(d, self.window_start, self.window_end)
            )
        ).subquery("w")
        groups = (
            select(rows.c.content_hash, func.min(rows.c.id).label("kept"))
            .group_by(rows.c.content_hash)
            .having(func.min(rows.c.source_id) < func.max(rows.c.source_id))
            .subquery("g")
        )
        k = _MENTION.alias("k")
        # A look-up per group (not a join, which PostgreSQL may answer by reading every text).
        length = select(func.length(k.c.text)).where(k.c.id == groups.c.kept).scalar_subquery()
        return select(groups.c.content_hash, groups.c.kept).where(length >= SYNDICATED_MIN_CHARS)

    def _duplicate_ids(self) -> Select[Any]:
        groups = self.syndicated_groups().subquery("s")
        x = _MENTION.alias("x")
        return (
            select(x.c.id)
            .join(groups, x.c.content_hash == groups.c.content_hash)
            .where(*self.row_conditions(x, self.window_start, self.window_end), x.c.id != groups.c.kept)
        )

    def classification_join(self, m: Any) -> ColumnElement[bool]:
        """The join of a mention and its classification of the scope's version.

        On SQLite it also says ``status >= ''`` (true of every row: status is never null):
        with a condition on its third column, SQLite reads the covering index
        ``ix_classification_counted`` instead of the unique one, which lacks the sentiment.
        """
        c = _CLASSIFICATION
        if self.version is None:
            return and_(c.c.mention_id == m.c.id, false())
        join = and_(c.c.mention_id == m.c.id, c.c.model_version == self.version)
        if self.dialect == "sqlite":
            join = and_(join, c.c.status >= literal_column("''"))
        return join


@dataclass(frozen=True)
class Branch:
    """Mentions that count, by one time column: the time (``at``) and the conditions."""

    at: Any
    conditions: list[ColumnElement[bool]]


def when(m: Any) -> ColumnElement[datetime]:
    """When a mention counts: its publication time, else (no date on the page) when it was
    collected, as ``earful alerts`` counts it."""
    return func.coalesce(m.c.published_at, m.c.collected_at, type_=UTCDateTime())


def _week_index(column: Any, weeks: Sequence[Week]) -> ColumnElement[Any]:
    """0, 1, ... for the week a timestamp falls in (the rows are already inside the weeks)."""
    whens = [(column < week.end, literal(i)) for i, week in enumerate(weeks[:-1])]
    return case(*whens, else_=literal(len(weeks) - 1)) if whens else literal(0)


def source_names(conn: Connection) -> dict[int, str]:
    return {row.id: row.name for row in conn.execute(select(_SOURCE.c.id, _SOURCE.c.name))}


def weekly_tallies(conn: Connection, scope: Scope, weeks: Sequence[Week]) -> WeeklyTallies:
    """Mentions per week, source and sentiment over ``weeks`` (consecutive): from
    ``hourly_tally`` when it can answer (:func:`weekly_tallies_rolled`), else counted from the
    mentions (:func:`weekly_tallies_direct`). Both give the same figures (tests/test_rollup.py)."""
    rolled = weekly_tallies_rolled(conn, scope, weeks)
    return rolled if rolled is not None else weekly_tallies_direct(conn, scope, weeks)


def _weekly_rows(
    conn: Connection, scope: Scope, weeks: Sequence[Week], only: Sequence[int] | None = None
) -> list[Any]:
    """(week, source_id, status, sentiment, n, high_neg, low_pos) of the counted mentions, or,
    with ``only``, of those mention ids among the scope's word of mouth."""
    m, c = _MENTION, _CLASSIFICATION
    judged = c.c.status == "ok"
    parts = []
    for branch in _branches(scope, m, weeks, only):
        week = _week_index(branch.at, weeks)
        high_neg = case((and_(judged, c.c.sentiment == "negative", m.c.rating >= HIGH_RATING), 1), else_=0)
        low_pos = case((and_(judged, c.c.sentiment == "positive", m.c.rating <= LOW_RATING), 1), else_=0)
        parts.append(
            select(
                week.label("week"),
                m.c.source_id,
                c.c.status,
                c.c.sentiment,
                func.count().label("n"),
                func.sum(high_neg).label("high_neg"),
                func.sum(low_pos).label("low_pos"),
            )
            .select_from(m.outerjoin(c, scope.classification_join(m)))
            .where(*branch.conditions)
            .group_by(week, m.c.source_id, c.c.status, c.c.sentiment)
        )
    return list(conn.execute(union_all(*parts)))


def _weekly(
    conn: Connection, weeks: Sequence[Week], counts: dict[int, list[dict[str, int]]], flags: list[list[int]]
) -> WeeklyTallies:
    names = source_names(conn)
    by_name: dict[str, list[dict[str, int]]] = defaultdict(lambda: [defaultdict(int) for _ in weeks])
    for source_id, per_week in counts.items():
        if not any(any(w.values()) for w in per_week):
            continue
        target = by_name[names.get(source_id, f"source {source_id}")]
        for i, w in enumerate(per_week):
            for bucket, n in w.items():
                target[i][bucket] += n
    sources = {name: [_tally(w) for w in per_week] for name, per_week in sorted(by_name.items())}
    total = [sum((per_week[i] for per_week in sources.values()), Tally()) for i in range(len(weeks))]
    return WeeklyTallies(list(weeks), total, sources, flags[0], flags[1])


def weekly_tallies_direct(conn: Connection, scope: Scope, weeks: Sequence[Week]) -> WeeklyTallies:
    """Mentions per week, source and sentiment over ``weeks``, counted from the mentions and
    their classifications in one query."""
    counts: dict[int, list[dict[str, int]]] = defaultdict(lambda: [defaultdict(int) for _ in weeks])
    flags = [[0] * len(weeks), [0] * len(weeks)]
    for row in _weekly_rows(conn, scope, weeks):
        counts[row.source_id][row.week][_bucket_of(row.status, row.sentiment)] += int(row.n)
        flags[0][row.week] += int(row.high_neg or 0)
        flags[1][row.week] += int(row.low_pos or 0)
    return _weekly(conn, weeks, counts, flags)


def weekly_tallies_rolled(conn: Connection, scope: Scope, weeks: Sequence[Week]) -> WeeklyTallies | None:
    """The figures of :func:`weekly_tallies_direct` from ``hourly_tally`` (migration 0007):
    the hours of the weeks summed per source, less the second copies of syndicated texts
    (their few rows counted directly and taken away). ``None`` when it cannot answer: weeks
    that do not start on a whole UTC hour (a time zone offset by a half or a quarter hour), or
    more syndicated copies than the scope lists."""
    starts = _rollup_weeks(scope, weeks)
    if starts is None:
        return None
    t = _TALLY
    versions = ["", scope.version] if scope.version is not None else [""]
    query = (
        select(t.c.model_version, t.c.source_id, t.c.hour, *(func.sum(t.c[name]) for name in TALLY_VALUES))
        .where(*_rolled(scope, weeks, versions, topics=False))
        .group_by(t.c.model_version, t.c.source_id, t.c.hour)
    )
    counts: dict[int, list[dict[str, int]]] = defaultdict(lambda: [defaultdict(int) for _ in weeks])
    flags = [[0] * len(weeks), [0] * len(weeks)]
    for version, source_id, hour, pos, neu, neg, unjudged, high_neg, low_pos, mentions in conn.execute(query):
        week = bisect.bisect_right(starts, hour) - 1
        w = counts[source_id][week]
        if version == "":
            w["unclassified"] += int(mentions)  # less the classified ones, below
            continue
        for bucket, n in (("positive", pos), ("neutral", neu), ("negative", neg), ("unjudged", unjudged)):
            w[bucket] += int(n)
            w["unclassified"] -= int(n)
        flags[0][week] += int(high_neg)
        flags[1][week] += int(low_pos)
    if scope.dropped:
        for row in _weekly_rows(conn, scope, weeks, only=scope.dropped):
            w = counts[row.source_id][row.week]
            w[_bucket_of(row.status, row.sentiment)] -= int(row.n)
            flags[0][row.week] -= int(row.high_neg or 0)
            flags[1][row.week] -= int(row.low_pos or 0)
    return _weekly(conn, weeks, counts, flags)


def _topic_sentiment(conn: Connection, value: Any) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return value.op("->>")(literal("sentiment"))  # type: ignore[no-any-return]
    return func.json_extract(value, "$.sentiment")


def topic_tallies(conn: Connection, scope: Scope, weeks: Sequence[Week]) -> dict[str, list[Tally]]:
    """Judged mentions per week and topic, by the topic's own sentiment (the sentences that
    talk about it): from ``hourly_tally`` when it can answer, else counted from the topics
    JSON (:func:`topic_tallies_direct`). Both give the same figures (tests/test_rollup.py)."""
    rolled = topic_tallies_rolled(conn, scope, weeks)
    return rolled if rolled is not None else topic_tallies_direct(conn, scope, weeks)


def _branches(scope: Scope, m: Any, weeks: Sequence[Week], only: Sequence[int] | None) -> list[Branch]:
    """The scope's counted mentions in ``weeks``; with ``only``, just those ids among its word
    of mouth, each looked up by id (the row conditions use no other index)."""
    start, end = weeks[0].start, weeks[-1].end
    if only is None:
        return scope.counted(m, start, end)
    return [Branch(when(m), [m.c.id.in_(only), *scope.row_conditions(m, start, end)])]


def _topic_rows(
    conn: Connection, scope: Scope, weeks: Sequence[Week], only: Sequence[int] | None = None
) -> list[Any]:
    """(week, topic, sentiment, n) of the judged counted mentions (or of the ids ``only``)."""
    m, c = _MENTION, _CLASSIFICATION
    topic = func.json_each(c.c.topics).table_valued("key", "value", joins_implicitly=True).alias("t")
    parts = []
    for branch in _branches(scope, m, weeks, only):
        week = _week_index(branch.at, weeks)
        sentiment = _topic_sentiment(conn, topic.c.value)
        parts.append(
            select(
                week.label("week"),
                topic.c.key.label("topic"),
                sentiment.label("sentiment"),
                func.count().label("n"),
            )
            .select_from(m.join(c, scope.classification_join(m)).join(topic, true()))
            .where(*branch.conditions, c.c.status == "ok")
            .group_by(week, topic.c.key, sentiment)
        )
    return list(conn.execute(union_all(*parts)))


def topic_tallies_direct(conn: Connection, scope: Scope, weeks: Sequence[Week]) -> dict[str, list[Tally]]:
    """:func:`topic_tallies` counted from the topics JSON (``json_each`` on both databases)."""
    counts: dict[str, list[dict[str, int]]] = defaultdict(lambda: [defaultdict(int) for _ in weeks])
    for row in _topic_rows(conn, scope, weeks):
        counts[str(row.topic)][row.week][_bucket_of("ok", row.sentiment)] += int(row.n)
    return {name: [_tally(w) for w in per_week] for name, per_week in sorted(counts.items())}


def _rollup_weeks(scope: Scope, weeks: Sequence[Week]) -> list[int] | None:
    """The weeks' first hours (hours since 1970) when ``hourly_tally`` can answer for them:
    weeks that start on whole UTC hours, syndicated copies listed; else None."""
    if scope.syndicated is None or any(w.start.minute or w.start.second for w in weeks):
        return None
    return [epoch_hour(w.start) for w in weeks]


def _rolled(scope: Scope, weeks: Sequence[Week], versions: Sequence[str], topics: bool) -> list[Any]:
    """The conditions on ``hourly_tally`` for the scope's brand and weeks: the rows of
    ``versions``, either the whole mentions' (topic ``''``) or the topics'."""
    t = _TALLY
    conditions = [
        t.c.model_version.in_(versions),
        t.c.topic > "" if topics else t.c.topic == "",
        t.c.hour >= epoch_hour(weeks[0].start),
        t.c.hour < epoch_hour(weeks[-1].end),
    ]
    if scope.brand_id is not None:
        conditions.append(t.c.brand_id == scope.brand_id)
    return conditions


def topic_tallies_rolled(
    conn: Connection, scope: Scope, weeks: Sequence[Week]
) -> dict[str, list[Tally]] | None:
    """:func:`topic_tallies` from the topic rows of ``hourly_tally``, less the syndicated
    copies (counted directly by id); ``None`` when the table cannot answer."""
    starts = _rollup_weeks(scope, weeks)
    if starts is None:
        return None
    if scope.version is None:
        return {}
    t = _TALLY
    buckets = ("positive", "neutral", "negative", "unjudged")
    query = (
        select(t.c.topic, t.c.hour, *(func.sum(t.c[name]) for name in buckets))
        .where(*_rolled(scope, weeks, [scope.version], topics=True))
        .group_by(t.c.topic, t.c.hour)
    )
    counts: dict[str, list[dict[str, int]]] = defaultdict(lambda: [defaultdict(int) for _ in weeks])
    for topic, hour, *values in conn.execute(query):
        w = counts[str(topic)][bisect.bisect_right(starts, hour) - 1]
        for bucket, n in zip(buckets, values, strict=True):
            w[bucket] += int(n)
    if scope.dropped:
        for row in _topic_rows(conn, scope, weeks, only=scope.dropped):
            counts[str(row.topic)][row.week][_bucket_of("ok", row.sentiment)] -= int(row.n)
    return {
        name: [_tally(w) for w in per_week]
        for name, per_week in sorted(counts.items())
        if any(any(w.values()) for w in per_week)
    }


def _mention_columns(m: Any, s: Any) -> list[Any]:
    c = _CLASSIFICATION
    return [
        m.c.id,
        s.c.name.label("source"),
        m.c.url,
        when(m).label("published_at"),
        func.substr(m.c.title, 1, 300).label("title"),
        func.substr(m.c.text, 1, EXCERPT_CHARS).label("excerpt"),
        func.length(m.c.text).label("text_chars"),
        m.c.rating,
        c.c.sentiment,
        c.c.score,
        c.c.topics,
    ]


def _mention_row(row: Any) -> MentionRow:
    topics = row.topics if isinstance(row.topics, dict) else {}
    return MentionRow(
        id=row.id,
        source=row.source,
        url=row.url,
        published_at=_utc(row.published_at),
        title=row.title,
        excerpt=row.excerpt or "",
        text_chars=int(row.text_chars or 0),
        rating=row.rating,
        sentiment=row.sentiment,
        score=row.score,
        topics=sorted(topics, key=lambda t: -float((topics[t] or {}).get("score") or 0)),
    )


def _utc(value: datetime | str | None) -> datetime | None:
    """A timestamp from a raw column read: SQLite hands back text through ``func`` columns."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def examples(
    conn: Connection, scope: Scope, week: Week, sentiment: str, limit: int, *, rating: str | None = None
) -> list[MentionRow]:
    """The week's most confidently ``sentiment`` mentions (highest model score first).

    ``rating="high"`` keeps only mentions rated :data:`HIGH_RATING` or more, ``"low"`` those
    rated :data:`LOW_RATING` or less: the rating/text disagreements.

    The candidates are ranked from the covering indexes (id and score only); just the
    ``limit`` chosen ones are then read with their texts.
    """
    m, c, s = _MENTION, _CLASSIFICATION, _SOURCE
    chosen = [c.c.status == "ok", c.c.sentiment == sentiment]
    if rating == "high":
        chosen.append(m.c.rating >= HIGH_RATING)
    elif rating == "low":
        chosen.append(m.c.rating <= LOW_RATING)
    candidates = union_all(
        *(
            select(m.c.id, c.c.score)
            .select_from(m.join(c, scope.classification_join(m)))
            .where(*branch.conditions, *chosen)
            for branch in scope.counted(m, week.start, week.end)
        )
    ).subquery("candidates")
    top = select(candidates.c.id).order_by(candidates.c.score.desc(), candidates.c.id).limit(limit)
    ids = list(conn.execute(top).scalars())
    if not ids:
        return []
    query = (
        select(*_mention_columns(m, s))
        .select_from(m.join(c, scope.classification_join(m)).join(s, s.c.id == m.c.source_id))
        .where(m.c.id.in_(ids))
        .order_by(c.c.score.desc(), m.c.id)
    )
    return [_mention_row(row) for row in conn.execute(query)]


def responses(conn: Connection, scope: Scope, weeks: Sequence[Week]) -> list[Responses]:
    """Per week: judged-negative mentions, how many got a reply from the brand (a child
    mention with ``is_brand_response``), and each reply's delay after the mention.

    Replies count whenever they came (also after the week), up to the time of the report.
    Each negative mention's first reply is looked up through the replies' index.
    """
    m, c = _MENTION, _CLASSIFICATION
    r = _MENTION.alias("r")
    first_reply = (
        select(func.min(func.coalesce(r.c.published_at, r.c.collected_at)))
        .where(r.c.parent_id == m.c.id, r.c.is_brand_response.is_(True))
        .scalar_subquery()
    )
    query = union_all(
        *(
            select(
                _week_index(branch.at, weeks).label("week"),
                branch.at.label("published_at"),
                first_reply.label("first_reply"),
            )
            .select_from(m.join(c, scope.classification_join(m)))
            .where(*branch.conditions, c.c.status == "ok", c.c.sentiment == "negative")
            for branch in scope.counted(m, weeks[0].start, weeks[-1].end)
        )
    )
    # One row per negative mention: a week's worth is thousands at most, and the median
    # delay is not portable SQL.
    negative = [0] * len(weeks)
    replied = [0] * len(weeks)
    delays: list[list[float]] = [[] for _ in weeks]
    for row in conn.execute(query):
        negative[row.week] += 1
        if row.first_reply is None:
            continue
        replied[row.week] += 1
        published, reply = _utc(row.published_at), _utc(row.first_reply)
        if published is not None and reply is not None:
            delays[row.week].append(max(0.0, (reply - published).total_seconds()))
    return [Responses(negative[i], replied[i], delays[i]) for i in range(len(weeks))]


def syndicated(conn: Connection, scope: Scope, week: Week, limit: int) -> tuple[int, list[Syndicated]]:
    """Texts carried by several sources that have a copy in ``week``: how many such copies
    the week's figures leave out, and the ``limit`` texts with the most copies."""
    m, c, s = _MENTION, _CLASSIFICATION, _SOURCE
    if scope.syndicated is None:
        groups = scope.syndicated_groups().subquery("sg")
        hashes: Any = select(groups.c.content_hash)
        kept: Any = select(groups.c.kept)
    elif scope.syndicated:
        hashes = [h for h, _ in scope.syndicated]
        kept = [k for _, k in scope.syndicated]
    else:
        return 0, []
    this_week = when(m) >= week.start
    # The copies in the window, so the first of each is the kept one: min(id).
    query = (
        select(
            m.c.content_hash,
            func.min(m.c.id).label("kept"),
            func.count().label("copies"),
            func.min(when(m)).label("first_published"),
            func.sum(case((and_(this_week, m.c.id.not_in(kept)), 1), else_=0)).label("left_out"),
        )
        .where(m.c.content_hash.in_(hashes), *scope.row_conditions(m, scope.window_start, week.end))
        .group_by(m.c.content_hash)
        .having(func.max(when(m)) >= week.start)
    )
    rows = sorted(conn.execute(query).all(), key=lambda row: (-row.copies, row.kept))
    left_out = sum(int(row.left_out or 0) for row in rows)
    shown = rows[:limit]
    if not shown:
        return left_out, []
    kept_rows = {
        row.id: _mention_row(row)
        for row in conn.execute(
            select(*_mention_columns(m, s))
            .select_from(m.outerjoin(c, scope.classification_join(m)).join(s, s.c.id == m.c.source_id))
            .where(m.c.id.in_([row.kept for row in shown]))
        )
    }
    where: dict[str, set[str]] = defaultdict(set)
    for row in conn.execute(
        select(m.c.content_hash, s.c.name)
        .join(s, s.c.id == m.c.source_id)
        .where(
            m.c.content_hash.in_([row.content_hash for row in shown]),
            *scope.row_conditions(m, scope.window_start, week.end),
        )
        .distinct()
    ):
        where[row.content_hash].add(row.name)
    return left_out, [
        Syndicated(
            content_hash=row.content_hash,
            copies=int(row.copies),
            sources=sorted(where[row.content_hash]),
            first_published=_utc(row.first_published),
            kept=kept_rows[row.kept],
        )
        for row in shown
    ]
