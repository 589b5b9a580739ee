"""Storing mentions: each exactly once, in batches, on SQLite and PostgreSQL alike.

A mention is identified by ``(source, external_key)``. :meth:`MentionStore.store` upserts a
batch with one ``INSERT … ON CONFLICT (source_id, external_key) DO UPDATE … WHERE <changed>``,
so storing the same mention again updates it (when it changed) and never duplicates it; a
crawl or import interrupted halfway and run again converges to the same rows. The
``RETURNING`` of that statement plus one look-up of the keys already stored tell apart new,
updated and unchanged mentions without a round trip per row.

On the way in, each mention is normalised (:class:`MentionIn`): text cleaned of control
characters, a content hash of the normalised text (the same review syndicated on several
sites shares it), the author pseudonymised with a keyed hash unless the config keeps names,
and the rating kept raw and normalised to 0..1 with the page's worst/best rating::

    store = MentionStore(db, config)
    result = store.store([MentionIn(source="history", external_key="r1", text="Great!", rating=5)])
    result.new  # 1; storing it again gives result.unchanged == 1
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, String, Table, and_, any_, bindparam, case, null, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from earful.pipeline.config import Config
from earful.pipeline.config import Source as SourceConfig
from earful.pipeline.db import Database
from earful.pipeline.errors import ConfigError, EarfulError
from earful.pipeline.schema import Brand, Mention, Source

logger = logging.getLogger(__name__)

MentionKind = Literal["review", "comment", "post"]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
KEY_FILE = "earful.key"

# Columns a re-crawl may change; compared to decide whether a stored mention is updated.
_COMPARED = (
    "url",
    "kind",
    "brand_id",
    "author",
    "published_at",
    "title",
    "text",
    "rating_raw",
    "rating_worst",
    "rating_best",
    "rating",
    "language",
    "parent_key",
    "is_brand_response",
    "content_hash",
)


class RejectedMention(EarfulError):
    """One mention cannot be stored (bad rating, unknown brand, ...); the rest can."""


# ----------------------------------------------------------------------------- helpers


def clean_text(text: str) -> str:
    """Text as stored: Unicode NFC, no control characters, line breaks kept."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def normalise_for_hash(text: str) -> str:
    """Text as compared across sites: compatibility-folded, case-folded, one space."""
    if text.isascii():  # NFKC changes no ASCII text, and casefold is lower there
        return " ".join(text.lower().split())
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_hash(text: str) -> str:
    """SHA-256 of the normalised text: equal for the same review posted on several sites."""
    return hashlib.sha256(normalise_for_hash(text).encode("utf-8")).hexdigest()


def pseudonymise(author: str, key: bytes) -> str:
    """A stable pseudonym for an author name; without the key it cannot be reversed or
    matched against a list of names."""
    digest = hmac.new(key, normalise_for_hash(author).encode("utf-8"), hashlib.sha256).hexdigest()
    return f"anon-{digest[:20]}"


def normalise_rating(raw: float, worst: float, best: float) -> float:
    """Map a rating on the scale ``worst..best`` to 0..1."""
    if best <= worst:
        raise ValueError(f"best rating {best:g} must be above worst rating {worst:g}")
    if not worst <= raw <= best:
        raise ValueError(f"rating {raw:g} is outside {worst:g}..{best:g}; give rating_worst/rating_best")
    return (raw - worst) / (best - worst)


def derived_key(*parts: object) -> str:
    """An external key for a mention that has none of its own: a hash of what identifies it."""
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return "h:" + hashlib.sha256(joined.encode("utf-8")).hexdigest()[:40]


# Every column _row fills, and those that hold times.
_ROW_COLUMNS = (
    "source_id",
    "external_key",
    *_COMPARED,
    "collected_at",
    "updated_at",
    "crawl_run_id",
    "fingerprint",
)
_TIMES = {"published_at", "collected_at", "updated_at"}


def _sqlite_time(value: datetime | None) -> str | None:
    """A UTC time as SQLAlchemy's SQLite dialect stores it (see schema.UTCDateTime)."""
    if value is None:
        return None
    v = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 - the dialect's own format
        v.year,
        v.month,
        v.day,
        v.hour,
        v.minute,
        v.second,
        v.microsecond,
    )


def fingerprint(row: dict[str, Any]) -> str:
    """A hash of every column a re-crawl may change: equal fingerprints, nothing to update."""
    values = repr(tuple(row[column] for column in _COMPARED))
    return hashlib.blake2b(values.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def load_pseudonym_key(config: Config) -> bytes | None:
    """The key for author pseudonyms: the environment variable, else ``earful.key`` beside
    the config file (written by ``earful init``); ``None`` when neither exists."""
    value = os.environ.get(config.privacy.key_env)
    if value:
        return value.encode("utf-8")
    folder = config.path.parent if config.path else Path.cwd()
    key_file = folder / KEY_FILE
    if key_file.exists():
        data = key_file.read_bytes().strip()
        if data:
            return data
    return None


# ------------------------------------------------------------------------------ input


class MentionIn(BaseModel):
    """A mention on its way into the database, validated.

    ``published_at`` must carry a time zone (or be UTC by contract of the caller who
    converts it); ``rating`` is on the scale ``rating_worst..rating_best`` (schema.org's
    defaults, 1..5, when not given).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source: str = Field(min_length=1, max_length=100)
    external_key: str | None = Field(None, max_length=512)
    text: str
    url: str | None = Field(None, max_length=4096)
    kind: MentionKind = "review"
    author: str | None = Field(None, max_length=500)
    published_at: datetime | None = None
    title: str | None = Field(None, max_length=2000)
    rating: float | None = None
    rating_worst: float | None = None
    rating_best: float | None = None
    language: str | None = Field(None, max_length=16)
    parent_key: str | None = Field(None, max_length=512)
    brand: str | None = None
    is_brand_response: bool = False

    @field_validator("text", "title", "author", "url")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            raise ValueError("contains bytes that are not valid UTF-8")
        return clean_text(value)

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                "has no time zone; write it as ISO 8601 with an offset, e.g. 2026-11-02T14:05:00Z"
            )
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _check(self) -> MentionIn:
        if not self.text:
            raise ValueError("text is empty")
        if self.rating is not None:
            worst = 1.0 if self.rating_worst is None else self.rating_worst
            best = 5.0 if self.rating_best is None else self.rating_best
            normalise_rating(self.rating, worst, best)
        return self

    def key(self) -> str:
        # Not the URL: the same review shows on page 1 today and on page 2 tomorrow.
        return self.external_key or derived_key(self.author, self.published_at, self.text)


@dataclass
class StoreResult:
    """What one call to :meth:`MentionStore.store` did."""

    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in input, reason)

    def add(self, other: StoreResult, offset: int = 0) -> None:
        self.seen += other.seen
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected.extend((i + offset, reason) for i, reason in other.rejected)


class MentionStore:
    """Batch upserts of mentions into one database, with brands and sources from the config."""

    def __init__(self, db: Database, config: Config, *, pseudonym_key: bytes | None = None) -> None:
        self.db = db
        self.config = config
        self.batch_size = config.store.batch_size
        self.max_text_chars = config.store.max_text_chars
        self.pseudonymise = config.privacy.pseudonymise_authors
        self._key = pseudonym_key if pseudonym_key is not None else load_pseudonym_key(config)
        self._sources: dict[str, tuple[int, int | None]] = {}
        self._brands: dict[str, int] = {}
        self._table: Table = Mention.__table__  # type: ignore[assignment]
        # PostgreSQL plans the key look-up from table statistics; a bulk load into a new
        # table outgrows them long before autovacuum (if it runs at all) refreshes them.
        self._grown = 0
        self._analyze_at = 5_000
        self._compiled: tuple[str, list[str]] | None = None
        self._pseudonyms: dict[str, str] = {}  # the same commenters come back, page after page

    # ------------------------------------------------------------ reference data

    def sync_config(self) -> None:
        """Make the brand and source tables match the config (by name).

        Sources no longer in the config are disabled, not deleted: their mentions stay.
        """
        with self.db.session() as session:
            brands = {b.name.casefold(): b for b in session.scalars(select(Brand))}
            for brand in self.config.brands:
                brand_row = brands.get(brand.name.casefold())
                if brand_row is None:
                    brand_row = Brand(name=brand.name, aliases=list(brand.aliases))
                    session.add(brand_row)
                    brands[brand.name.casefold()] = brand_row
                else:
                    brand_row.name = brand.name
                    brand_row.aliases = list(brand.aliases)
            session.flush()
            sources = {s.name: s for s in session.scalars(select(Source))}
            configured = set()
            for src in self.config.sources:
                configured.add(src.name)
                values = self._source_values(src, brands)
                row = sources.get(src.name)
                if row is None:
                    session.add(Source(name=src.name, **values))
                else:
                    for attr, value in values.items():
                        if getattr(row, attr) != value:
                            setattr(row, attr, value)
            for name, row in sources.items():
                if name not in configured and row.kind != "import" and row.enabled:
                    row.enabled = False
        self._sources.clear()
        self._brands.clear()

    @staticmethod
    def _source_values(src: SourceConfig, brands: dict[str, Brand]) -> dict[str, Any]:
        brand = brands.get(src.brand.casefold()) if src.brand else None
        return {
            "kind": src.kind,
            "spider": src.spider,
            "start_urls": [str(u) for u in src.start_urls],
            "brand_id": brand.id if brand else None,
            "schedule": src.schedule,
            "enabled": src.enabled,
            "options": dict(src.options),
        }

    def source_id(self, name: str, *, create: bool = False) -> tuple[int, int | None]:
        """(source id, its brand id). ``create`` adds an unconfigured source of kind
        ``import`` (history brought from another tool); otherwise it must be configured."""
        if name in self._sources:
            return self._sources[name]
        with self.db.session() as session:
            row = session.scalars(select(Source).where(Source.name == name)).one_or_none()
            if row is None:
                if not create:
                    known = ", ".join(s.name for s in self.config.sources) or "none configured"
                    raise ConfigError(f"no source named {name!r} (known: {known})", key="sources")
                row = Source(name=name, kind="import", schedule=None, enabled=True)
                session.add(row)
                session.flush()
                logger.info("created source %s (kind import) for imported mentions", name)
            self._sources[name] = (row.id, row.brand_id)
            return self._sources[name]

    def brand_id(self, name: str) -> int:
        """A brand by its name or one of its aliases, case-insensitive."""
        if not self._brands:
            with self.db.session() as session:
                for brand in session.scalars(select(Brand)):
                    self._brands[brand.name.casefold()] = brand.id
                    for alias in brand.aliases:
                        self._brands.setdefault(alias.casefold(), brand.id)
        found = self._brands.get(name.casefold())
        if found is None:
            known = ", ".join(b.name for b in self.config.brands) or "none configured"
            raise RejectedMention(f"unknown brand {name!r} (known: {known})")
        return found

    # ------------------------------------------------------------------- storing

    def store(
        self,
        mentions: Iterable[MentionIn],
        *,
        crawl_run_id: int | None = None,
        create_sources: bool = False,
    ) -> StoreResult:
        """Upsert mentions in batches of ``store.batch_size``, one transaction each.

        A mention that cannot be stored (see :class:`RejectedMention`) is reported in
        ``result.rejected`` with its index and reason; the others are stored. A batch that is
        committed stays committed if a later one fails.
        """
        total = StoreResult()
        batch: list[MentionIn] = []
        offset = 0
        for mention in mentions:
            batch.append(mention)
            if len(batch) >= self.batch_size:
                total.add(self._store_batch(batch, crawl_run_id, create_sources), offset)
                offset += len(batch)
                batch = []
        if batch:
            total.add(self._store_batch(batch, crawl_run_id, create_sources), offset)
        return total

    def _row(
        self, mention: MentionIn, now: datetime, crawl_run_id: int | None, create: bool
    ) -> dict[str, Any]:
        if len(mention.text) > self.max_text_chars:
            raise RejectedMention(
                f"text is {len(mention.text):,} characters; the limit is {self.max_text_chars:,} "
                "(store.max_text_chars)"
            )
        source_id, source_brand = self.source_id(mention.source, create=create)
        brand_id = self.brand_id(mention.brand) if mention.brand else source_brand
        author = mention.author or None
        if author and self.pseudonymise:
            if self._key is None:
                raise ConfigError(
                    f"author names are pseudonymised but {self.config.privacy.key_env} is not set and "
                    f"there is no {KEY_FILE}; run `earful init` or set the variable",
                    key="privacy.pseudonymise_authors",
                )
            pseudonym = self._pseudonyms.get(author)
            if pseudonym is None:
                if len(self._pseudonyms) > 100_000:
                    self._pseudonyms.clear()
                pseudonym = self._pseudonyms[author] = pseudonymise(author, self._key)
            author = pseudonym
        elif author:
            author = author[:200]
        rating = None
        worst = best = None
        if mention.rating is not None:
            worst = 1.0 if mention.rating_worst is None else mention.rating_worst
            best = 5.0 if mention.rating_best is None else mention.rating_best
            rating = normalise_rating(mention.rating, worst, best)
        row = {
            "source_id": source_id,
            "external_key": mention.key(),
            "url": mention.url,
            "kind": mention.kind,
            "brand_id": brand_id,
            "author": author,
            "published_at": mention.published_at,
            "collected_at": now,
            "updated_at": now,
            "title": mention.title or None,
            "text": mention.text,
            "rating_raw": mention.rating,
            "rating_worst": worst,
            "rating_best": best,
            "rating": rating,
            "language": mention.language,
            "parent_key": mention.parent_key,
            "is_brand_response": mention.is_brand_response,
            "content_hash": content_hash(mention.text),
            "crawl_run_id": crawl_run_id,
        }
        row["fingerprint"] = fingerprint(row)
        return row

    def _store_batch(self, batch: Sequence[MentionIn], crawl_run_id: int | None, create: bool) -> StoreResult:
        result = StoreResult()
        now = datetime.now(UTC)
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        for i, mention in enumerate(batch):
            try:
                row = self._row(mention, now, crawl_run_id, create)
            except RejectedMention as exc:
                result.rejected.append((i, str(exc)))
                continue
            # The same mention twice in one batch: the last one wins, as it would across batches.
            rows[(row["source_id"], row["external_key"])] = row
        result.seen = len(batch) - len(result.rejected)
        if not rows:
            return result
        with self.db.translate_errors(), self.db.engine.begin() as conn:
            stored = self._stored_fingerprints(conn, list(rows))
            changed = [row for key, row in rows.items() if stored.get(key) != row["fingerprint"]]
            if changed:
                self._upsert(conn, changed)
                self._resolve_parents(conn, {row["source_id"] for row in changed})
        result.new = sum(1 for key in rows if key not in stored)
        result.updated = len(changed) - result.new
        result.unchanged = result.seen - result.new - result.updated
        self._grown += result.new
        if self._grown >= self._analyze_at and self.db.dialect == "postgresql":
            self._analyze_at *= 2
            with self.db.translate_errors(), self.db.engine.begin() as conn:
                conn.execute(text("ANALYZE mention"))
        return result

    def _stored_fingerprints(
        self, conn: Connection, keys: list[tuple[int, str]]
    ) -> dict[tuple[int, str], str]:
        """The fingerprint of each of these mentions that is already stored."""
        t = self._table
        found: dict[tuple[int, str], str] = {}
        by_source: dict[int, list[str]] = {}
        for source_id, key in keys:
            by_source.setdefault(source_id, []).append(key)
        postgres = self.db.dialect == "postgresql"
        for source_id, source_keys in by_source.items():
            # PostgreSQL takes the keys as one array (a short statement psycopg parses once);
            # SQLite takes chunks below its bound-parameter limit.
            step = len(source_keys) if postgres else 900
            for start in range(0, len(source_keys), step):
                chunk = source_keys[start : start + step]
                match = (
                    t.c.external_key == any_(bindparam("keys", chunk, type_=postgresql.ARRAY(String)))
                    if postgres
                    else t.c.external_key.in_(chunk)
                )
                query = select(t.c.external_key, t.c.fingerprint).where(t.c.source_id == source_id, match)
                found.update(((source_id, k), f) for k, f in conn.execute(query))
        return found

    def _upsert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """INSERT … ON CONFLICT DO UPDATE, only where the stored fingerprint differs, so a
        concurrent writer that stored the same version first is not overwritten for nothing.

        The statement is compiled once and run through the driver's ``executemany``: past
        validation, per-row type processing in SQLAlchemy was a third of the time on SQLite.
        """
        sql, names = self._upsert_sql()
        params: list[Any] = rows
        if self.db.dialect == "sqlite":
            times = [i for i, name in enumerate(names) if name in _TIMES]
            formatted: dict[datetime, str | None] = {}  # collected_at/updated_at repeat per batch
            params = []
            for row in rows:
                values = [row[name] for name in names]
                for i in times:
                    value = values[i]
                    if value is not None:
                        text = formatted.get(value)
                        if text is None:
                            text = formatted[value] = _sqlite_time(value)
                        values[i] = text
                params.append(tuple(values))
        conn.exec_driver_sql(sql, params)

    def _upsert_sql(self) -> tuple[str, list[str]]:
        """The compiled upsert and the order of its parameters (for positional drivers)."""
        if self._compiled is None:
            t = self._table
            insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
            stmt = insert(t).values({c: bindparam(c) for c in _ROW_COLUMNS})
            excluded = stmt.excluded
            values: dict[str, Any] = {
                c: excluded[c] for c in (*_COMPARED, "fingerprint", "updated_at", "crawl_run_id")
            }
            # A reply moved under another parent is re-linked by _resolve_parents.
            values["parent_id"] = case(
                (t.c.parent_key.is_distinct_from(excluded.parent_key), null()), else_=t.c.parent_id
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.source_id, t.c.external_key],
                set_=values,
                where=t.c.fingerprint.is_distinct_from(excluded.fingerprint),
            )
            compiled = stmt.compile(dialect=self.db.engine.dialect)
            names = list(compiled.positiontup or [])
            assert set(names) <= set(_ROW_COLUMNS), names
            self._compiled = (compiled.string, names)
        return self._compiled

    def _resolve_parents(self, conn: Connection, source_ids: set[int]) -> None:
        """Link replies to their parent, in the same source, once both are stored."""
        t = self._table
        parent = aliased(Mention, name="parent")
        parent_id = (
            select(parent.id)
            .where(and_(parent.source_id == t.c.source_id, parent.external_key == t.c.parent_key))
            .scalar_subquery()
        )
        conn.execute(
            update(t)
            .where(t.c.source_id.in_(source_ids), t.c.parent_key.is_not(None), t.c.parent_id.is_(None))
            .values(parent_id=parent_id)
        )
