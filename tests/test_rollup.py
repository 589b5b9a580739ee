"""``hourly_count``: the triggers keep it equal to a count from the mentions, whatever changes.

Every step below changes the tables the way Earful (or a person with SQL) can: classifications
inserted in bulk, re-scored, their status changed, deleted; mentions re-crawled with another
date, kind or brand, deleted; a brand deleted. After each, the hourly figures read from
``hourly_count`` (:func:`count_hours`) must equal those counted from the mentions
(:func:`count_hours_direct`), for both model versions, before and after :func:`compact`.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_alerts import AT, VERSION, Mentions, make_config

from earful.pipeline.cli import cli
from earful.pipeline.counts import Counts, compact, count_hours, count_hours_direct
from earful.pipeline.db import Database
from earful.pipeline.schema import Brand, Classification, HourlyCount, Mention, Source
from earful.pipeline.store import MentionStore
from earful.pipeline.trends import (
    Scope,
    topic_tallies_direct,
    topic_tallies_rolled,
    weekly_tallies_direct,
    weekly_tallies_rolled,
)
from earful.pipeline.weeks import last_complete_week

START = AT - timedelta(weeks=3)
OTHER = "other-model"
SENTIMENTS = ("negative", "neutral", "positive")
TOPICS = ("delivery", "price", "staff")
SOURCES = {"Acme": "acme-reviews", "Globex": "globex-reviews"}
SITES = {"Acme": ["acme-reviews", "acme-blog"], "Globex": ["globex-reviews"]}


def plain(counts: tuple[dict[int, Counts], dict[tuple[int, str], Counts]]) -> dict[Any, dict[int, int]]:
    """The figures as plain dicts without zeros, comparable across the two ways."""
    by_brand, by_topic = counts
    out: dict[Any, dict[int, int]] = {}
    for brand_id, c in by_brand.items():
        out[(brand_id, "", "negative")] = {int(h): int(c.negative[h]) for h in np.flatnonzero(c.negative)}
        out[(brand_id, "", "total")] = {int(h): int(c.total[h]) for h in np.flatnonzero(c.total)}
    for (brand_id, topic), c in by_topic.items():
        out[(brand_id, topic, "negative")] = {int(h): int(c.negative[h]) for h in np.flatnonzero(c.negative)}
    return {k: v for k, v in out.items() if v}


def assert_same_tallies(db: Database, what: str) -> None:
    """The report's weekly tallies from hourly_tally equal those counted from the mentions, for
    every brand and all brands, each model version and none, syndicated copies left out."""
    last = last_complete_week("Europe/Berlin", AT)  # weeks from local midnight: 23:00 UTC
    weeks = [last.shift(i - 3) for i in range(4)]
    dropped = 0
    with db.engine.connect() as conn:
        brand_ids: list[int | None] = [None, *conn.execute(sa.select(Brand.id)).scalars()]
        for brand_id in brand_ids:
            for version in (VERSION, OTHER, None):
                scope = Scope(brand_id, version, weeks[0].start, weeks[-1].end, db.dialect)
                unflagged = scope.with_syndicated(conn, flagged=False)
                scope = scope.with_syndicated(conn)
                assert scope == unflagged, f"{what}: the has_copies flags miss a syndicated text"
                dropped += len(scope.dropped)
                direct = weekly_tallies_direct(conn, scope, weeks)
                assert direct.total[-1].mentions or brand_id is not None
                assert weekly_tallies_rolled(conn, scope, weeks) == direct, (
                    f"{what}: hourly_tally differs for brand {brand_id}, version {version}"
                )
                for span in (weeks, weeks[-2:]):
                    topics = topic_tallies_direct(conn, scope, span)
                    assert topics or version is None or brand_id is not None
                    assert topic_tallies_rolled(conn, scope, span) == topics, (
                        f"{what}: hourly_tally's topics differ for brand {brand_id}, version {version}"
                    )
    assert dropped, "the data holds syndicated copies, which both must leave out"


def assert_same(db: Database, what: str) -> None:
    assert_same_tallies(db, what)
    for version in (VERSION, OTHER):
        direct = plain(count_hours_direct(db, version, START, AT + timedelta(hours=1)))
        rolled = plain(count_hours(db, version, START, AT + timedelta(hours=1)))
        assert rolled == direct, f"{what}: hourly_count differs from the mentions for {version}"
    assert any(plain(count_hours(db, VERSION, START, AT + timedelta(hours=1))).values())


def random_topics(rng: random.Random) -> dict[str, Any]:
    topics: dict[str, Any] = {}
    for topic in rng.sample(TOPICS, rng.randint(0, 3)):
        entry: dict[str, Any] = {"score": 0.6, "sentences": 1}
        if rng.random() < 0.8:  # an entry without a sentiment takes the mention's
            entry["sentiment"] = rng.choice(SENTIMENTS)
        topics[topic] = entry
    return topics


@pytest.fixture
def seeded(db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "test-pseudonym-key")
    monkeypatch.delenv("EARFUL_DATABASE_URL", raising=False)
    MentionStore(db, make_config(tmp_path, db_url)).sync_config()
    rng = random.Random(5)
    mentions = Mentions(db)
    for _ in range(400):
        brand = rng.choice(list(SOURCES))
        when: datetime | None = START + timedelta(minutes=rng.randrange(3 * 7 * 24 * 60))
        collected = None
        if rng.random() < 0.1:  # undated: counted when collected
            collected, when = when, None
        sentiment = rng.choice(SENTIMENTS)
        mentions.add(
            rng.choice(SITES[brand]),
            brand,
            when,
            sentiment,
            None,
            kind=rng.choice(["review", "review", "comment", "post"]),
            brand_response=rng.random() < 0.1,
            collected=collected,
            version=VERSION if rng.random() < 0.8 else OTHER,
        )
        mention = mentions.rows[-1]["mention"]
        mention["rating"] = rng.choice([None, 0.2, 0.4, 0.6, 0.8, 1.0])
        if rng.random() < 0.08:  # the same long text on both of a brand's sites: syndicated
            text = f"Syndicated review number {rng.randrange(12)} " + "about the service " * 10
            mention["text"] = text
            mention["content_hash"] = hashlib.sha256(text.encode()).hexdigest()
        row = mentions.rows[-1]["classification"]
        row["topics"] = random_topics(rng)
        if rng.random() < 0.1:
            row.update(status="unsupported_language", sentiment=None)
    mentions.commit()
    return db


def test_hourly_counts_follow_every_change(seeded: Database) -> None:
    db, rng = seeded, random.Random(11)
    assert_same(db, "inserted")
    c: sa.Table = Classification.__table__  # type: ignore[assignment]
    m: sa.Table = Mention.__table__  # type: ignore[assignment]
    with db.engine.connect() as conn:
        class_ids = list(conn.execute(sa.select(c.c.id).order_by(c.c.id)).scalars())
        mention_ids = list(conn.execute(sa.select(m.c.id).order_by(m.c.id)).scalars())
        brands = dict(conn.execute(sa.select(Brand.name, Brand.id)).tuples().all())
        sources = dict(conn.execute(sa.select(Source.name, Source.id)).tuples().all())
        syndicated_hashes = sorted(
            conn.execute(sa.select(m.c.content_hash).where(m.c.text.like("Syndicated%")).distinct()).scalars()
        )

    with db.engine.begin() as conn:  # re-scored: new sentiments and topics, some not judged now
        for cid in rng.sample(class_ids, 80):
            sentiment = rng.choice(SENTIMENTS)
            status = "ok" if rng.random() < 0.85 else "empty"
            conn.execute(
                sa.update(c)
                .where(c.c.id == cid)
                .values(sentiment=sentiment, topics=random_topics(rng), status=status)
            )
        # Written but unchanged: no contribution may move.
        conn.execute(sa.update(c).where(c.c.id.in_(class_ids[:20])).values(score=0.5))
    assert_same(db, "re-scored")
    assert compact(db) > 0
    assert_same(db, "compacted")

    with db.engine.begin() as conn:  # re-crawled mentions: another date, kind, brand
        for mid in rng.sample(mention_ids, 60):
            change = rng.choice(
                ["published", "undated", "kind", "brand", "response", "rating", "source", "text"]
            )
            options: dict[str, dict[str, Any]] = {
                "published": {"published_at": START + timedelta(hours=rng.randrange(500))},
                "undated": {"published_at": None},
                "kind": {"kind": rng.choice(["review", "comment", "post"])},
                "brand": {"brand_id": rng.choice(list(brands.values()))},
                "response": {"is_brand_response": rng.random() < 0.5},
                "rating": {"rating": rng.choice([None, 0.2, 1.0])},
                "source": {"source_id": rng.choice(list(sources.values()))},
                # Edited into (or out of) the text of a syndicated review: the flags follow.
                "text": {"content_hash": rng.choice([*syndicated_hashes, f"edited-{mid}"])},
            }
            conn.execute(sa.update(m).where(m.c.id == mid).values(**options[change]))
    assert_same(db, "mentions changed")

    with db.engine.begin() as conn:  # deleted: classifications, mentions (cascade), a brand
        conn.execute(sa.delete(c).where(c.c.id.in_(rng.sample(class_ids, 30))))
        conn.execute(sa.delete(m).where(m.c.id.in_(rng.sample(mention_ids, 30))))
    assert_same(db, "deleted")
    with db.engine.begin() as conn:
        conn.execute(sa.delete(Brand).where(Brand.name == "Globex"))
    assert_same(db, "brand deleted")

    compact(db)
    assert_same(db, "compacted again")
    assert compact(db) == 0, "a second compaction has nothing left to fold"
    h = HourlyCount.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(h)).scalar_one()
        keys = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(h.c.model_version, h.c.hour, h.c.brand_id, h.c.topic).distinct().subquery()
            )
        ).scalar_one()
        fresh = conn.execute(sa.select(sa.func.count()).where(h.c.compacted == sa.false())).scalar_one()
    assert rows == keys, "after compaction: one row per key"
    assert fresh == 0, "after compaction: no fresh row"


def test_upgrade_fills_hourly_counts_from_stored_classifications(seeded: Database) -> None:
    """Down to 0005 (no table, no triggers) and up again: the upgrade counts what is stored."""
    seeded.downgrade("0005")
    with seeded.engine.begin() as conn:  # changed while no trigger watched
        conn.execute(sa.update(Classification).values(sentiment="negative"))
    seeded.upgrade()
    assert_same(seeded, "upgraded")
    with seeded.engine.connect() as conn:
        fresh = conn.execute(
            sa.select(sa.func.count()).where(HourlyCount.__table__.c.compacted == sa.false())
        ).scalar_one()
    assert fresh == 0, "the upgrade writes folded rows"


def test_db_recount_repairs_counts_changed_behind_the_triggers(seeded: Database, tmp_path: Path) -> None:
    """Counts and flags spoilt as a bulk change with the triggers off would leave them;
    ``earful db recount`` counts them again from what is stored."""
    m: sa.Table = Mention.__table__  # type: ignore[assignment]
    compact(seeded)
    with seeded.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM hourly_count WHERE id % 3 = 0"))
        conn.execute(sa.text("DELETE FROM hourly_tally WHERE id % 2 = 0"))
        conn.execute(sa.update(m).values(has_copies=False))
        flagged_before = conn.execute(sa.select(sa.func.count()).where(m.c.has_copies)).scalar_one()
    assert flagged_before == 0
    path = tmp_path / "earful.yaml"  # written by the seeded fixture's make_config
    result = CliRunner().invoke(cli, ["--config", str(path), "db", "recount"])
    assert result.exit_code == 0, result.output
    assert "Recounted" in result.output
    assert "mentions with a copy on another source" in result.output
    assert_same(seeded, "recounted")
    with seeded.engine.connect() as conn:
        fresh = conn.execute(
            sa.select(sa.func.count()).where(HourlyCount.__table__.c.compacted == sa.false())
        ).scalar_one()
    assert fresh == 0, "a recount writes folded rows"
