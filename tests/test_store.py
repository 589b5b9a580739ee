"""Storing mentions: exactly once, updated when changed, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import func, select

from earful.pipeline.config import Config
from earful.pipeline.db import Database
from earful.pipeline.errors import ConfigError
from earful.pipeline.schema import Brand, Mention, Source, UTCDateTime
from earful.pipeline.store import (
    MentionIn,
    MentionStore,
    _sqlite_time,
    content_hash,
    normalise_rating,
    pseudonymise,
)

WHEN = datetime(2026, 11, 2, 14, 5, tzinfo=UTC)


def review(key: str | None = "r1", **kw: object) -> MentionIn:
    values: dict[str, object] = {
        "source": "acme-reviews",
        "external_key": key,
        "text": "Great kettle, boils fast.",
        "author": "Jane Doe",
        "published_at": WHEN,
        "rating": 4,
    }
    values.update(kw)
    return MentionIn.model_validate(values)


def count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Mention.id))) or 0


def mention(db: Database, key: str) -> Mention:
    with db.session() as session:
        return session.scalars(select(Mention).where(Mention.external_key == key)).one()


def test_storing_same_mention_twice_does_not_duplicate_it(store: MentionStore, db: Database) -> None:
    first = store.store([review()])
    second = store.store([review()])
    assert (first.new, first.updated, first.unchanged) == (1, 0, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 1)
    assert count(db) == 1


def test_storing_changed_mention_updates_it(store: MentionStore, db: Database) -> None:
    store.store([review()])
    before = mention(db, "r1")
    result = store.store([review(text="Broke after a week.", rating=1)])
    after = mention(db, "r1")
    assert (result.new, result.updated) == (0, 1)
    assert count(db) == 1
    assert after.text == "Broke after a week."
    assert after.rating == 0.0
    assert after.collected_at == before.collected_at  # first seen stays
    assert after.updated_at >= before.updated_at


def test_same_key_in_other_source_is_another_mention(store: MentionStore, db: Database) -> None:
    store.store([review(), review(source="blog", kind="comment")])
    assert count(db) == 2


def test_duplicates_inside_one_batch_keep_the_last(store: MentionStore, db: Database) -> None:
    result = store.store([review(text="first"), review(text="second")])
    assert count(db) == 1
    assert mention(db, "r1").text == "second"
    assert result.seen == 2


def test_many_mentions_are_stored_in_batches(db: Database, config: Config) -> None:
    small_batches = config.model_copy(update={"store": config.store.model_copy(update={"batch_size": 7})})
    mention_store = MentionStore(db, small_batches)
    mention_store.sync_config()
    result = mention_store.store(review(f"k{i}", text=f"text {i}") for i in range(100))
    assert (result.seen, result.new) == (100, 100)
    assert count(db) == 100
    again = mention_store.store(review(f"k{i}", text=f"text {i}") for i in range(100))
    assert again.unchanged == 100


def test_authors_are_pseudonymised_by_default(store: MentionStore, db: Database) -> None:
    store.store([review()])
    stored = mention(db, "r1").author
    assert stored is not None
    assert stored.startswith("anon-")
    assert "Jane" not in stored
    assert stored == pseudonymise("jane  DOE", b"test-pseudonym-key")


def test_authors_kept_clear_when_config_says_so(db: Database, config: Config) -> None:
    clear = config.model_copy(
        update={"privacy": config.privacy.model_copy(update={"pseudonymise_authors": False})}
    )
    mention_store = MentionStore(db, clear)
    mention_store.sync_config()
    mention_store.store([review()])
    assert mention(db, "r1").author == "Jane Doe"


def test_pseudonymising_without_a_key_is_a_clear_error(
    db: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EARFUL_PSEUDONYM_KEY")
    mention_store = MentionStore(db, config)
    mention_store.sync_config()
    with pytest.raises(ConfigError, match="EARFUL_PSEUDONYM_KEY"):
        mention_store.store([review()])


def test_rating_is_kept_raw_and_normalised(store: MentionStore, db: Database) -> None:
    store.store([review("a", rating=4), review("b", rating=7, rating_worst=0, rating_best=10)])
    a, b = mention(db, "a"), mention(db, "b")
    assert (a.rating_raw, a.rating_worst, a.rating_best, a.rating) == (4, 1, 5, 0.75)
    assert (b.rating_raw, b.rating) == (7, 0.7)


def test_rating_outside_its_scale_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"outside 1\.\.5"):
        review(rating=9)
    with pytest.raises(ValueError, match="must be above"):
        normalise_rating(3, 5, 5)


def test_same_text_on_two_sites_shares_a_content_hash(store: MentionStore, db: Database) -> None:
    store.store(
        [
            review(text="Great  kettle,\nboils FAST."),
            review("x", source="blog", text="great kettle, boils fast."),
        ]
    )
    with db.session() as session:
        hashes = set(session.scalars(select(Mention.content_hash)))
    assert hashes == {content_hash("Great kettle, boils fast.")}


def test_times_are_stored_in_utc(store: MentionStore, db: Database) -> None:
    berlin = datetime(2026, 11, 2, 15, 5, tzinfo=timezone(timedelta(hours=1)))
    store.store([review(published_at=berlin)])
    stored = mention(db, "r1").published_at
    assert stored == WHEN
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError, match="no time zone"):
        review(published_at=datetime(2026, 11, 2, 14, 5))


def test_source_brand_is_attributed(store: MentionStore, db: Database) -> None:
    store.store([review(), review("c", source="blog", kind="comment", brand="acme corp")])
    with db.session() as session:
        acme = session.scalars(select(Brand).where(Brand.name == "Acme")).one()
        brands = set(session.scalars(select(Mention.brand_id)))
    assert brands == {acme.id}


def test_unknown_brand_rejects_only_that_mention(store: MentionStore, db: Database) -> None:
    result = store.store([review("a"), review("b", brand="Initech"), review("c")])
    assert result.new == 2
    assert result.rejected == [(1, "unknown brand 'Initech' (known: Acme, Globex)")]
    assert count(db) == 2


def test_too_long_text_is_rejected_with_its_size(store: MentionStore) -> None:
    result = store.store([review(text="x" * 300_000)])
    assert result.new == 0
    assert "300,000 characters" in result.rejected[0][1]


def test_replies_are_linked_to_their_parent_whatever_the_order(store: MentionStore, db: Database) -> None:
    store.store([review("reply", source="blog", kind="comment", parent_key="top")])
    assert mention(db, "reply").parent_id is None
    store.store([review("top", source="blog", kind="comment")])
    assert mention(db, "reply").parent_id == mention(db, "top").id


def test_control_characters_and_nul_are_removed(store: MentionStore, db: Database) -> None:
    store.store([review(text="good\x00 value\x07\r\nreally")])
    assert mention(db, "r1").text == "good value\nreally"


def test_mentions_without_a_key_get_a_stable_derived_one(store: MentionStore, db: Database) -> None:
    store.store([review(None), review(None)])
    assert count(db) == 1
    assert mention(db, review(None).key()).external_key.startswith("h:")


def test_unconfigured_source_is_refused_unless_created(store: MentionStore, db: Database) -> None:
    with pytest.raises(ConfigError, match="no source named 'elsewhere'"):
        store.store([review(source="elsewhere")])
    store.store([review(source="elsewhere")], create_sources=True)
    with db.session() as session:
        created = session.scalars(select(Source).where(Source.name == "elsewhere")).one()
    assert created.kind == "import"


def test_sources_dropped_from_config_are_disabled_not_deleted(
    store: MentionStore, db: Database, config: Config
) -> None:
    store.store([review(source="blog", kind="comment")])
    MentionStore(db, config.model_copy(update={"sources": config.sources[:1]})).sync_config()
    with db.session() as session:
        blog = session.scalars(select(Source).where(Source.name == "blog")).one()
    assert blog.enabled is False
    assert count(db) == 1


def test_times_written_by_the_fast_path_match_the_orm_format(tmp_path: Path) -> None:
    """The upsert bypasses SQLAlchemy's type processing; its SQLite time text must be the
    dialect's own, or comparisons and ordering against ORM-written rows would break."""
    db = Database(f"sqlite:///{tmp_path / 'times.sqlite3'}")
    db.upgrade()
    with db.engine.begin() as conn:
        # The bound value goes through UTCDateTime and the dialect's DATETIME processor.
        orm_text = conn.scalar(sa.select(sa.cast(sa.literal(WHEN, UTCDateTime()), sa.String)))
    assert _sqlite_time(WHEN.replace(microsecond=120)) == "2026-11-02 14:05:00.000120"
    assert orm_text == _sqlite_time(WHEN)


def test_a_text_on_several_sources_is_flagged_has_copies(store: MentionStore, db: Database) -> None:
    """The trigger flags every copy of a text once another source carries it, whichever
    batch or transaction stored each copy; a text repeated on one source is not flagged."""
    text = "The same long review, posted on the shop and on a blog."

    def flags() -> dict[str, bool]:
        with db.engine.connect() as conn:
            return dict(conn.execute(select(Mention.external_key, Mention.has_copies)).tuples().all())

    store.store([review("a", text=text), review("b", text=text), review("c", text="Only here.")])
    assert flags() == {"a": False, "b": False, "c": False}, "one source: no copies"
    store.store([review("blog-1", source="blog", text=text, rating=None)])  # a later transaction
    assert flags() == {"a": True, "b": True, "c": False, "blog-1": True}
    store.store([review("c", text=text)])  # edited into the syndicated text: an update
    assert flags()["c"] is True
