"""The database schema: SQLAlchemy 2 typed ORM models, one class per table.

The migrations in ``migrations/versions`` create exactly these tables (a test compares them
on SQLite and PostgreSQL), so a change here needs a new revision: ``earful db revision``.

Why it looks as it does:

* Every timestamp is timezone-aware UTC (:class:`UTCDateTime`). SQLite keeps no zone, so the
  type converts on the way in and attaches UTC on the way out; a naive datetime is refused
  rather than guessed.
* A mention is unique on ``(source_id, external_key)``: re-collecting it updates the row.
* Constraint names follow a naming convention, so later migrations can drop them by name on
  both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Columns that decide whether and where a mention counts in a report or an alert, carried by
# the covering indexes of migration 0005.
COUNTED_COLUMNS = ("kind", "is_brand_response")
REPORTED_COLUMNS = (*COUNTED_COLUMNS, "source_id", "rating", "content_hash")
#: The condition of the partial index ``ix_classification_negative``: negative as a whole or
#: about a topic (a text match on the JSON, so no row is parsed to decide).
NEGATIVE_CLASSIFICATION = "sentiment = 'negative' OR CAST(topics AS TEXT) LIKE '%\"negative\"%'"

# BIGINT keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; Earful stores UTC-aware times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Brand(Base):
    """What is monitored. Synced from the config's ``brands`` by name."""

    __tablename__ = "brand"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    aliases: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Source(Base):
    """Where mentions come from. Synced from the config; a source dropped from the config is
    disabled, not deleted, so its mentions keep their history."""

    __tablename__ = "source"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    spider: Mapped[str | None] = mapped_column(String(100))
    start_urls: Mapped[list[str]] = mapped_column(default=list)
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brand.id", ondelete="SET NULL"))
    schedule: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    brand: Mapped[Brand | None] = relationship()


class CrawlRun(Base):
    """One run of one source (a crawl, or an import into it) and what it stored."""

    __tablename__ = "crawl_run"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="crawl")  # crawl | import
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | succeeded | failed
    pages: Mapped[int] = mapped_column(default=0)
    items_seen: Mapped[int] = mapped_column(default=0)
    items_new: Mapped[int] = mapped_column(default=0)
    items_updated: Mapped[int] = mapped_column(default=0)
    items_unchanged: Mapped[int] = mapped_column(default=0)
    items_dropped: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)

    source: Mapped[Source] = relationship()


class Mention(Base):
    """One review or comment, stored once per (source, external key)."""

    __tablename__ = "mention"
    __table_args__ = (
        UniqueConstraint("source_id", "external_key"),
        # A mention counts when it was published, else collected (an expression index cannot
        # be reflected, so dated and undated mentions have indexes of their own). The report
        # reads a brand's weeks, `earful alerts` every brand's last weeks; both only these
        # columns, so the databases answer from the indexes without reading the texts
        # (migration 0005). The dated ones leave the undated mentions out, so that no planner
        # takes them for "published_at IS NULL" (the undated one ends with published_at, always
        # null, so that SQLite can check that from the index too).
        Index(
            "ix_mention_brand_counted",
            "brand_id",
            "published_at",
            *REPORTED_COLUMNS,
            postgresql_include=["id"],
            sqlite_where=text("published_at IS NOT NULL"),
            postgresql_where=text("published_at IS NOT NULL"),
        ),
        Index(
            "ix_mention_published_counted",
            "published_at",
            "brand_id",
            *COUNTED_COLUMNS,
            postgresql_include=["id"],
            sqlite_where=text("published_at IS NOT NULL"),
            postgresql_where=text("published_at IS NOT NULL"),
        ),
        Index(
            "ix_mention_undated_counted",
            "collected_at",
            "brand_id",
            *REPORTED_COLUMNS,
            "published_at",
            postgresql_include=["id"],
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
        # Mentions whose text another source carries too (migration 0008): the report groups
        # only these to find syndicated texts. Kept by a trigger; see ``has_copies``.
        Index(
            "ix_mention_copies",
            "brand_id",
            "published_at",
            "collected_at",
            "kind",
            "is_brand_response",
            "content_hash",
            "source_id",
            "has_copies",  # so that SQLite checks the condition from the index alone
            postgresql_include=["id"],
            sqlite_where=text("has_copies = 1"),
            postgresql_where=text("has_copies"),
        ),
        # Replies of a mention. Partial, so that SQLite's planner does not take it for the
        # "parent_id IS NULL" look-up below, which matches most of the table.
        Index(
            "ix_mention_parent_id",
            "parent_id",
            sqlite_where=text("parent_id IS NOT NULL"),
            postgresql_where=text("parent_id IS NOT NULL"),
        ),
        # Replies whose parent has not been stored yet: small, and looked up after each batch.
        Index(
            "ix_mention_orphans",
            "source_id",
            sqlite_where=text("parent_key IS NOT NULL AND parent_id IS NULL"),
            postgresql_where=text("parent_key IS NOT NULL AND parent_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"))
    external_key: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), default="review")  # review | comment | post
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brand.id", ondelete="SET NULL"))
    author: Mapped[str | None] = mapped_column(String(200))
    published_at: Mapped[datetime | None]
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    rating_raw: Mapped[float | None] = mapped_column(Float)
    rating_worst: Mapped[float | None] = mapped_column(Float)
    rating_best: Mapped[float | None] = mapped_column(Float)
    rating: Mapped[float | None] = mapped_column(Float)  # normalised to 0..1
    language: Mapped[str | None] = mapped_column(String(16))
    parent_key: Mapped[str | None] = mapped_column(String(512))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("mention.id", ondelete="SET NULL"))
    is_brand_response: Mapped[bool] = mapped_column(Boolean, default=False)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    # True when a mention of another source has the same content_hash (set by a trigger,
    # never cleared: a hint for the report's syndicated look-up, which checks the sources).
    has_copies: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Hash of every column a re-crawl may change: an unchanged mention is not rewritten.
    fingerprint: Mapped[str] = mapped_column(String(32))
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_run.id", ondelete="SET NULL"))

    source: Mapped[Source] = relationship()


class Classification(Base):
    """A model's verdict on one mention; one row per (mention, model version)."""

    __tablename__ = "classification"
    __table_args__ = (
        UniqueConstraint("mention_id", "model_version"),
        # What the report and the alert check read of each classification (migration 0005).
        Index("ix_classification_counted", "mention_id", "model_version", "status", "sentiment", "score"),
        # The classifications with a negative in them, the only ones whose topics the alert
        # check counts. A query reaches it by repeating the condition word for word.
        Index(
            "ix_classification_negative",
            "mention_id",
            "model_version",
            "status",
            sqlite_where=text(NEGATIVE_CLASSIFICATION),
            postgresql_where=text(NEGATIVE_CLASSIFICATION),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mention.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(100))
    sentiment: Mapped[str | None] = mapped_column(String(10))  # negative | neutral | positive
    score: Mapped[float | None] = mapped_column(Float)
    probabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    topics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str | None] = mapped_column(String(16))
    # ok, or why the model did not judge the text (empty | no_text | unsupported_language):
    # an unjudged mention has its row too, so that it is not tried again on every run.
    status: Mapped[str] = mapped_column(String(24), server_default="ok")
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HourlyCount(Base):
    """Judged mentions per model version, UTC hour, brand and topic, kept by triggers.

    Written only by the database (migration 0006): every change of a classification, or of a
    mention's counting columns, inserts its signed contribution; ``earful alerts`` sums a key's
    rows and folds the fresh ones into one (:mod:`earful.pipeline.rollup`). ``topic`` is ``''``
    for the brand as a whole; a topic row counts the mentions negative about it (``total`` 0).
    """

    __tablename__ = "hourly_count"
    __table_args__ = (
        Index("ix_hourly_count_read", "model_version", "topic", "hour", "brand_id", "negative", "total"),
        Index(
            "ix_hourly_count_fresh",
            "model_version",
            "hour",
            "brand_id",
            "topic",
            sqlite_where=text("NOT compacted"),
            postgresql_where=text("NOT compacted"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100))
    hour: Mapped[int] = mapped_column(BigInteger)  # hours since 1970-01-01 00:00 UTC
    brand_id: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(String(100))
    negative: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    compacted: Mapped[bool] = mapped_column(Boolean)


class HourlyTally(Base):
    """Word-of-mouth mentions per model version, UTC hour, brand and source, by sentiment; kept
    by triggers (migration 0007) for the weekly report. Version ``''`` rows count the mentions
    themselves (``mentions``), classified or not; brand 0 is no brand. Topic rows count the
    judged mentions about a topic by the topic's own sentiment (not judged: no sentiment)."""

    __tablename__ = "hourly_tally"
    __table_args__ = (
        Index(
            "ix_hourly_tally_read",
            "brand_id",
            "model_version",
            "topic",
            "hour",
            "source_id",
            *("positive", "neutral", "negative", "unjudged", "high_neg", "low_pos", "mentions"),
        ),
        Index(
            "ix_hourly_tally_topics",
            "brand_id",
            "model_version",
            "hour",
            "topic",
            *("positive", "neutral", "negative", "unjudged"),
            sqlite_where=text("topic > ''"),
            postgresql_where=text("topic > ''"),
        ),
        Index(
            "ix_hourly_tally_fresh",
            "model_version",
            "hour",
            "brand_id",
            "source_id",
            "topic",
            sqlite_where=text("NOT compacted"),
            postgresql_where=text("NOT compacted"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100))
    hour: Mapped[int] = mapped_column(BigInteger)
    brand_id: Mapped[int] = mapped_column(BigInteger)
    source_id: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(String(100))  # '': the mentions as a whole
    positive: Mapped[int] = mapped_column(Integer)
    neutral: Mapped[int] = mapped_column(Integer)
    negative: Mapped[int] = mapped_column(Integer)
    unjudged: Mapped[int] = mapped_column(Integer)
    high_neg: Mapped[int] = mapped_column(Integer)
    low_pos: Mapped[int] = mapped_column(Integer)
    mentions: Mapped[int] = mapped_column(Integer)
    compacted: Mapped[bool] = mapped_column(Boolean)


class Alert(Base):
    """A detected spike (or source health problem); ``dedup_key`` keeps it to one alert."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="spike")  # spike | source_health
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brand.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"))
    topic: Mapped[str | None] = mapped_column(String(100))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    observed: Mapped[float | None] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deliveries: Mapped[dict[str, Any]] = mapped_column(default=dict)  # channel -> status
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(Base):
    """One generated weekly report and the files it wrote."""

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brand.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))  # ISO week, e.g. 2026-W47
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    files: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
