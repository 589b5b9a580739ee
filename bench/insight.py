"""Benchmark: the weekly report and the alert check on a million classified mentions.

Issue 7 asks for both to stay fast however large the history grows: the weekly report of a
brand in under 5 s, the hourly alert check (every brand and brand × topic) in under 2 s, each
at least 10× a naive baseline measured in the same run. This script generates ``--n``
classified mentions (1,000,000 by default), loads them into SQLite and into PostgreSQL (a
fresh schema, created by the real migrations, dropped at the end) and measures on each:

* ``report``     — ``earful report --brand <largest brand>`` without the interpreter start-up:
  :func:`~earful.pipeline.report.write_reports` for one brand, queries, figures, the HTML page
  and the CSV files included;
* ``report_all`` — the same for every brand (``earful report``);
* ``alerts``     — the alert check as ``earful alerts`` runs it: :func:`~earful.pipeline.counts.compact`
  (fold the ``hourly_count`` rows added since the last run) and
  :func:`~earful.pipeline.alerts.detect` at one hour: every brand and brand × topic over the
  rule's window and ``baseline_weeks`` of history, and the explanation of each alert it
  raises (no alert is stored or sent). The counts come from ``hourly_count``, which the
  database's triggers filled while the mentions were loaded; the one compaction of those
  rows right after the bulk load is timed apart (``first_fold_s``).

Each next to a naive baseline that loads the rows it needs into Python and aggregates there:
for the report the brand's mentions of the report's weeks with their classification (texts
included, as the examples need them) and the brand's replies, then the weekly tallies per
source and sentiment, the topics of the last two weeks, the examples, the replies and the
syndicated texts; for the alerts every mention of the window and its history with sentiment
and topics, then the hourly series of every brand and brand × topic and the same rule
(:func:`~earful.pipeline.detect.check`, :func:`~earful.pipeline.detect.decide`). The baseline
does not render the report, so the report's ratio understates the gain. Its figures are
compared with the fast path's (weekly totals, sources, topics, replies, the tests' counts): a
difference is a failed check.

The data (seeded, the same for the same ``--n``): 10 brands with a heavy-tailed size mix (the
largest has 30% of the mentions), a review site and a blog per brand plus two shared sites,
12 weeks up to Wednesday 2026-11-25 14:00 UTC with a daily and a weekly cycle and a slow
rise; reviews with 1–5 ratings that mostly agree with their text, comments, a few posts and
brand replies to negative mentions, some texts syndicated on two sites, 2% without a date on
the page; classification rows of one model version with a sentiment and 0–4 of 32 topics
each ({topic: {score, sentiment, sentiment_score, sentences}}, as ``earful classify`` writes
them), 2% not judged, 1% not classified yet; and a negative spike about delivery for one
brand in the last two hours. Mentions are inserted in the order they were collected (as
crawls store them), SQLite by ``executemany``, PostgreSQL by ``COPY``; PostgreSQL's tables
are then vacuumed and analysed, as autovacuum would.

Each fast figure is the median of ``--repeat`` runs (3), each baseline one run after them
(warm caches, which favours it). Output: a table, then one JSON line of the figures, last.
The exit status is 1 when a check fails (not when a target is missed), 2 when a database
cannot be reached::

    python bench/insight.py [--n 1000000] [--skip-postgres] [--keep] [--repeat 3]
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from places import check_postgres, postgres_place
from sqlalchemy import Table, and_, or_, select, text

from earful.pipeline.alerts import Detection, detect, hour_floor
from earful.pipeline.classify import latest_version
from earful.pipeline.config import Config, load_config_text
from earful.pipeline.counts import COUNTED_KINDS, compact
from earful.pipeline.db import Database, safe_url
from earful.pipeline.detect import WEEK_HOURS, Rule, Series, check, decide
from earful.pipeline.errors import EarfulError
from earful.pipeline.report import BrandReport, find_brands, write_reports
from earful.pipeline.schema import Classification, Mention
from earful.pipeline.store import MentionStore
from earful.pipeline.trends import (
    HIGH_RATING,
    LOW_RATING,
    SYNDICATED_MIN_CHARS,
    WORD_OF_MOUTH,
    Tally,
)
from earful.pipeline.weeks import Week, last_complete_week

SEED = 20261125
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL_ENV = "EARFUL_BENCH_PG_URL"
AT = datetime(2026, 11, 25, 14, tzinfo=UTC)  # the alert check's hour; the data ends here
WEEKS = 12
TIMEZONE = "Europe/Berlin"
VERSION = "earful-sentiment-1.2-int8+topics-bench0001"
TARGET_REPORT_S = 5.0
TARGET_ALERTS_S = 2.0
TARGET_RATIO = 10.0
TASKS = ("report", "report_all", "alerts")

# Name, share of the mentions, usual negative share: a heavy tail, as real portfolios are.
BRANDS = (
    ("Acme", 0.30, 0.18),
    ("Globex", 0.20, 0.25),
    ("Initech", 0.13, 0.15),
    ("Umbrella", 0.10, 0.30),
    ("Hooli", 0.08, 0.20),
    ("Stark", 0.06, 0.12),
    ("Wayne", 0.05, 0.22),
    ("Wonka", 0.04, 0.16),
    ("Soylent", 0.025, 0.28),
    ("Cyberdyne", 0.015, 0.20),
)
SPIKE_BRAND = 2  # Initech: a delivery problem in the last two hours
SPIKE_TOPIC = "delivery"
TOPICS = (
    "customer_service", "price", "quality", "delivery", "response_time", "returns_refunds",
    "billing", "website_app", "fit_and_size", "packaging", "warranty", "battery", "screen",
    "installation", "subscription", "checkout", "login", "staff", "cleanliness", "noise",
    "location", "parking", "wifi", "breakfast", "room", "check_in", "menu", "portion_size",
    "wait_time", "sustainability", "accessibility", "loyalty_program",
)  # fmt: skip
SENTIMENTS = ("negative", "neutral", "positive")


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


WORDS = _split(
    """
    the a and but so very really quite not never always again still just also only delivery
    shipping order package parcel box refund return exchange warranty invoice price support
    service agent hotline chat email answer reply ticket manager staff team product quality
    battery screen charger cable app update login account password setting fast slow late early
    broken damaged perfect great good fine okay bad awful terrible excellent cheap expensive worth
    value recommend disappointed happy satisfied annoyed confused impressed arrived ordered waited
    called wrote asked received opened installed tried stopped worked day days week weeks month
    hour hours minutes yesterday today morning evening weekend store website checkout discount
    coupon subscription plan contract cancel renewal fee room breakfast menu table parking wifi
"""
)
SHORT_TEXTS = ("Great!", "Terrible.", "Love it", "Never again", "ok", "Fine.", "Meh", "Five stars")

_MENTION: Table = Mention.__table__  # type: ignore[assignment]
_CLASSIFICATION: Table = Classification.__table__  # type: ignore[assignment]


# ------------------------------------------------------------------------ generated data


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str  # the config's source kind
    brand: int | None  # index into BRANDS; None: a shared site whose mentions name a brand
    domain: str


def source_specs() -> list[SourceSpec]:
    specs = []
    for i, (name, _, _) in enumerate(BRANDS):
        slug = name.lower()
        specs.append(SourceSpec(f"{slug}-reviews", "reviews", i, f"reviews.example.com/{slug}"))
        specs.append(SourceSpec(f"{slug}-blog", "blog", i, f"blog.{slug}.example"))
    specs.append(SourceSpec("tech-news", "feed", None, "news.example.net"))
    specs.append(SourceSpec("consumer-forum", "blog", None, "forum.example.org"))
    return specs


def config_text() -> str:
    lines = [f"timezone: {TIMEZONE}", "privacy:", "  pseudonymise_authors: true", "brands:"]
    lines += [f"  - name: {name}" for name, _, _ in BRANDS]
    lines.append("sources:")
    for s in source_specs():
        lines += [f"  - name: {s.name}", f"    kind: {s.kind}", f"    start_urls: [https://{s.domain}/]"]
        if s.brand is not None:
            lines.append(f"    brand: {BRANDS[s.brand][0]}")
    return "\n".join(lines) + "\n"


@dataclass
class Data:
    """The generated mentions (in id order: the order they were collected) and their
    classifications, as columns."""

    n: int
    brand: np.ndarray[Any, Any]  # brand index
    source: np.ndarray[Any, Any]  # source index
    kind: list[str]
    published: np.ndarray[Any, Any]  # microseconds since the epoch; -1: no date on the page
    collected: np.ndarray[Any, Any]
    texts: list[str]
    titles: list[str | None]
    authors: list[str]
    rating_raw: np.ndarray[Any, Any]  # 0: no rating
    parent: np.ndarray[Any, Any]  # row index of the parent, -1: none
    brand_response: np.ndarray[Any, Any]
    status: list[str | None]  # None: not classified yet
    sentiment: list[str | None]
    score: np.ndarray[Any, Any]
    probabilities: list[str]  # JSON
    topics: list[str]  # JSON
    in_alert_window: int = 0


def _sentences(rng: np.random.Generator, count: int) -> list[str]:
    words = np.array(WORDS)
    out = []
    for _ in range(count):
        picked = words[rng.integers(0, len(words), int(rng.integers(5, 22)))]
        sentence = " ".join(picked)
        out.append(sentence[0].upper() + sentence[1:] + str(rng.choice([".", ".", "!", "?"])))
    return out


def _hour_weights(rng: np.random.Generator, hours: int, start: datetime) -> np.ndarray[Any, Any]:
    """Relative volume of each hour: a daily cycle (night at a fifth of the evening peak,
    local time), quieter weekends, a slow rise, and ±10% from day to day."""
    h = np.arange(hours)
    utc_hour = (start.hour + h) % 24
    local = (utc_hour + 1) % 24  # Europe/Berlin, near enough for a shape
    daily = 0.2 + 0.8 * np.exp(-(((local - 17) / 5.0) ** 2))
    weekday = ((start.weekday() * 24 + start.hour + h) // 24) % 7
    weekly = np.where(weekday >= 5, 0.8, 1.0)
    rise = 1 + 0.2 * h / hours
    day_noise = rng.lognormal(0, 0.1, hours // 24 + 2)[(h + start.hour) // 24]
    w = daily * weekly * rise * day_noise
    return np.asarray(w / w.sum())


def generate(n: int, seed: int = SEED) -> Data:
    """``n`` mentions and their classifications, the same for the same seed."""
    rng = np.random.default_rng(seed)
    specs = source_specs()
    hours = WEEKS * WEEK_HOURS
    start = AT - timedelta(hours=hours)
    start_us = int(start.timestamp() * 1_000_000)
    hour_us = 3_600_000_000
    n_replies = n // 50
    shares = np.array([b[1] for b in BRANDS])
    neg_share = np.array([b[2] for b in BRANDS])
    # The spike: 2.5x the brand's usual negatives in each of the last two hours, about delivery.
    weights = _hour_weights(rng, hours, start)
    spike_base = n * shares[SPIKE_BRAND] * weights[-2:] * neg_share[SPIKE_BRAND]
    n_spike = max(30, int(2.5 * spike_base.sum()))
    n_base = n - n_replies - n_spike
    brand_counts = rng.multinomial(n_base, shares)

    brand_parts, hour_parts = [], []
    for b, count in enumerate(brand_counts):
        per_hour = rng.multinomial(count, _hour_weights(rng, hours, start))
        hour_parts.append(np.repeat(np.arange(hours), per_hour))
        brand_parts.append(np.full(count, b))
    brand = np.concatenate([*brand_parts, np.full(n_spike, SPIKE_BRAND)])
    hour = np.concatenate([*hour_parts, rng.integers(hours - 2, hours, n_spike)])
    published = start_us + hour * hour_us + rng.integers(0, hour_us, hour.size)
    spike = np.zeros(brand.size, dtype=bool)
    spike[-n_spike:] = True

    # Source: the brand's review site (55%), its blog (25%), the shared news (15%) and forum (5%).
    pick = rng.choice(4, brand.size, p=[0.55, 0.25, 0.15, 0.05])
    pick[spike] = 0
    source = np.where(pick < 2, 2 * brand + pick, np.where(pick == 2, len(specs) - 2, len(specs) - 1))
    kind = np.where(pick == 0, "review", "comment").astype(object)
    posts = (pick > 0) & (rng.random(brand.size) < 0.06)
    kind[posts] = "post"

    # Sentiment of the base mentions: the brand's usual shares, drifting a little by week.
    week_drift = rng.normal(0, 0.02, (len(BRANDS), WEEKS + 1))
    q_neg = np.clip(neg_share[brand] + week_drift[brand, hour // WEEK_HOURS], 0.02, 0.9)
    u = rng.random(brand.size)
    sent = np.where(u < q_neg, 0, np.where(u < q_neg + 0.25, 1, 2))
    sent[spike] = 0

    # Brand replies to negative mentions, hours later, on the same site.
    candidates = np.flatnonzero((sent == 0) & (kind != "post"))
    parents = rng.choice(candidates, min(n_replies, candidates.size), replace=False)
    reply_delay = (rng.lognormal(np.log(5), 1.0, parents.size) * hour_us).astype(np.int64)
    r_published = published[parents] + 600_000_000 + reply_delay
    brand = np.concatenate([brand, brand[parents]])
    source = np.concatenate([source, source[parents]])
    kind = np.concatenate([kind, np.full(parents.size, "comment", dtype=object)])
    published = np.concatenate([published, r_published])
    sent = np.concatenate([sent, rng.choice([1, 2], parents.size, p=[0.6, 0.4])])
    spike = np.concatenate([spike, np.zeros(parents.size, dtype=bool)])
    parent = np.concatenate([np.full(n_base + n_spike, -1), parents])
    brand_response = parent >= 0
    total = brand.size

    # Collected some minutes to a day after publication (crawls run hourly to daily); 2% of
    # the pages give no date. Rows are stored in the order they were collected; a reply is
    # never collected before its parent.
    lag = (rng.exponential(2.0, total) * hour_us).astype(np.int64) + 60_000_000
    collected = published + lag
    collected[brand_response] = np.maximum(collected[brand_response], collected[parents] + 60_000_000)
    order = np.argsort(collected, kind="stable")
    position = np.empty(total, dtype=np.int64)
    position[order] = np.arange(total)
    undated = rng.random(total) < 0.02
    undated[brand_response | spike] = False
    published = np.where(undated, -1, published)
    parent = np.where(parent >= 0, position[np.maximum(parent, 0)], -1)

    brand, source, kinds = brand[order], source[order], [str(k) for k in kind[order]]
    published, collected, sent = published[order], collected[order], sent[order]
    parent, brand_response, spike = parent[order], brand_response[order], spike[order]

    # Texts: a few sentences each (median ~250 characters), a few short ones, all distinct
    # but for the syndicated copies below.
    pool = _sentences(rng, 6000)
    n_sent = np.minimum(1 + rng.geometric(0.3, total), 12)
    first = rng.integers(0, len(pool), (total, 12))
    short = rng.random(total) < 0.03
    texts: list[str] = []
    seen: set[str] = set()
    for i in range(total):
        if short[i]:
            texts.append(SHORT_TEXTS[i % len(SHORT_TEXTS)])
            continue
        body = " ".join(pool[j] for j in first[i, : n_sent[i]])
        while body in seen:
            body += " " + pool[int(rng.integers(0, len(pool)))]
        seen.add(body)
        texts.append(body)
    # 0.4% of the reviews syndicated: the same text on the brand's blog, a little later.
    by_source_brand: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in np.flatnonzero(np.array([k != "post" for k in kinds]) & ~brand_response).tolist():
        by_source_brand[(int(brand[i]), int(source[i]))].append(i)
    reviews = np.flatnonzero(np.array([k == "review" for k in kinds]))
    for i in rng.choice(reviews, total // 250, replace=False).tolist():
        blog = by_source_brand.get((int(brand[i]), 2 * int(brand[i]) + 1))
        if blog:
            j = blog[min(bisect.bisect_right(blog, int(i)), len(blog) - 1)]
            if len(texts[i]) >= SYNDICATED_MIN_CHARS:
                texts[j] = texts[i]

    titles: list[str | None] = [
        pool[int(t)][:60] if k == "review" and keep else None
        for k, t, keep in zip(kinds, rng.integers(0, len(pool), total), rng.random(total) < 0.6, strict=True)
    ]
    author_pool = [f"anon-{h:016x}" for h in rng.integers(0, 2**62, 100_000)]
    authors = [author_pool[int(a)] for a in rng.integers(0, len(author_pool), total)]
    authors = [
        f"anon-brand-{BRANDS[int(b)][0].lower()}" if r else a
        for a, b, r in zip(authors, brand, brand_response, strict=True)
    ]
    # Ratings 1..5 on reviews, mostly agreeing with the text (3% contradict it).
    is_review = np.array([k == "review" for k in kinds])
    by_sentiment = np.array([[1, 1, 2, 2, 3], [3, 3, 3, 4, 2], [4, 5, 5, 5, 4]])
    rating_raw = by_sentiment[sent, rng.integers(0, 5, total)]
    contradict = rng.random(total) < 0.03
    rating_raw = np.where(contradict, np.where(sent == 0, 5, np.where(sent == 2, 1, 3)), rating_raw)
    rating_raw = np.where(is_review, rating_raw, 0)

    # Classifications: 1% not classified yet, 2% not judged (no words, another language).
    u = rng.random(total)
    status: list[str | None] = [
        None if x < 0.01 else ("no_text" if x < 0.02 else ("unsupported_language" if x < 0.03 else "ok"))
        for x in u
    ]
    for i in np.flatnonzero(spike | brand_response).tolist():
        status[i] = "ok"
    judged = np.array([s == "ok" for s in status])
    sentiment: list[str | None] = [SENTIMENTS[s] if j else None for s, j in zip(sent, judged, strict=True)]
    top = rng.uniform(0.45, 0.99, total)
    rest = rng.random(total)
    probs = np.empty((total, 3))
    probs[np.arange(total), sent] = top
    probs[np.arange(total), (sent + 1) % 3] = (1 - top) * rest
    probs[np.arange(total), (sent + 2) % 3] = (1 - top) * (1 - rest)
    probabilities = [
        json.dumps({"negative": round(a, 6), "neutral": round(b, 6), "positive": round(c, 6)}) if j else "{}"
        for (a, b, c), j in zip(probs.tolist(), judged, strict=True)
    ]
    score = np.where(judged, np.round(top, 6), np.nan)

    # Topics: 0-4 of 32 (Zipf-like popularity), each with its own sentiment (the mention's
    # three times in four).
    popularity = 1 / np.arange(1, len(TOPICS) + 1) ** 0.8
    n_topics = rng.choice(5, total, p=[0.25, 0.35, 0.25, 0.1, 0.05])
    topics: list[str] = []
    spike_topic = TOPICS.index(SPIKE_TOPIC)
    for begin in range(0, total, 100_000):
        end = min(total, begin + 100_000)
        keys = np.log(popularity)[None, :] + rng.gumbel(size=(end - begin, len(TOPICS)))
        ranked = np.argsort(-keys, axis=1)[:, :4]
        own = np.where(
            rng.random((end - begin, 4)) < 0.75, sent[begin:end, None], rng.integers(0, 3, (end - begin, 4))
        )
        t_score = np.round(rng.uniform(0.35, 0.95, (end - begin, 4)), 4).tolist()
        s_score = np.round(rng.uniform(0.5, 0.99, (end - begin, 4)), 4).tolist()
        sentences = rng.integers(1, 4, (end - begin, 4)).tolist()
        for k in range(end - begin):
            i = begin + k
            if not judged[i] or brand_response[i]:
                topics.append("{}")
                continue
            picked = ranked[k, : n_topics[i]].tolist()
            if spike[i]:
                picked = [spike_topic, *[t for t in picked if t != spike_topic]][:3]
            entry = {
                TOPICS[t]: {
                    "score": t_score[k][slot],
                    "sentiment": SENTIMENTS[0 if spike[i] and t == spike_topic else int(own[k, slot])],
                    "sentiment_score": s_score[k][slot],
                    "sentences": sentences[k][slot],
                }
                for slot, t in enumerate(picked)
            }
            topics.append(json.dumps(entry))
    return Data(
        n=total,
        brand=brand,
        source=source,
        kind=kinds,
        published=published,
        collected=collected,
        texts=texts,
        titles=titles,
        authors=authors,
        rating_raw=rating_raw,
        parent=parent,
        brand_response=brand_response,
        status=status,
        sentiment=sentiment,
        score=score,
        probabilities=probabilities,
        topics=topics,
    )


# ------------------------------------------------------------------------------ loading

MENTION_COLUMNS = (
    "id", "source_id", "external_key", "url", "kind", "brand_id", "author", "published_at",
    "collected_at", "updated_at", "title", "text", "rating_raw", "rating_worst", "rating_best",
    "rating", "language", "parent_key", "parent_id", "is_brand_response", "content_hash",
    "fingerprint",
)  # fmt: skip
CLASSIFICATION_COLUMNS = (
    "id", "mention_id", "model_version", "sentiment", "score", "probabilities", "topics",
    "language", "status", "note", "created_at",
)  # fmt: skip


def _times(us: np.ndarray[Any, Any], postgres: bool) -> list[str | None]:
    """Microseconds since the epoch as the column text each database stores (SQLAlchemy's
    SQLite format, ``YYYY-MM-DD HH:MM:SS.ffffff``, which compares as text)."""
    text_ = np.datetime_as_string(np.maximum(us, 0).astype("datetime64[us]"), unit="us")
    out: list[str | None] = [s.replace("T", " ") + ("+00" if postgres else "") for s in text_.tolist()]
    for i in np.flatnonzero(us < 0).tolist():
        out[i] = None
    return out


def mention_rows(
    data: Data, source_ids: list[int], brand_ids: list[int], postgres: bool
) -> Iterator[tuple[Any, ...]]:
    specs = source_specs()
    published = _times(data.published, postgres)
    collected = _times(data.collected, postgres)
    for i in range(data.n):
        s = int(data.source[i])
        body = data.texts[i]
        digest = hashlib.sha256(body.encode()).hexdigest()
        raw = int(data.rating_raw[i])
        p = int(data.parent[i])
        key = f"{i:08d}"
        yield (
            i + 1,
            source_ids[s],
            key,
            f"https://{specs[s].domain}/m/{key}",
            data.kind[i],
            brand_ids[int(data.brand[i])],
            data.authors[i],
            published[i],
            collected[i],
            collected[i],
            data.titles[i],
            body,
            float(raw) if raw else None,
            1.0 if raw else None,
            5.0 if raw else None,
            (raw - 1) / 4 if raw else None,
            "en",
            f"{p:08d}" if p >= 0 else None,
            p + 1 if p >= 0 else None,
            bool(data.brand_response[i]),
            digest,
            digest[:32],
        )


def classification_rows(data: Data, postgres: bool) -> Iterator[tuple[Any, ...]]:
    created = _times(data.collected + 300_000_000, postgres)
    row_id = 0
    for i in range(data.n):
        status = data.status[i]
        if status is None:
            continue
        row_id += 1
        score = float(data.score[i])
        yield (
            row_id,
            i + 1,
            VERSION,
            data.sentiment[i],
            None if np.isnan(score) else score,
            data.probabilities[i],
            data.topics[i],
            "en" if status != "unsupported_language" else "de",
            status,
            None,
            created[i],
        )


def load(db: Database, config: Config, data: Data) -> None:
    """Create the schema with the migrations, sync brands and sources, bulk-load the rows."""
    db.upgrade()
    MentionStore(db, config, pseudonym_key=b"earful-bench").sync_config()
    with db.engine.connect() as conn:
        sources = dict(conn.execute(text("SELECT name, id FROM source")).tuples().all())
        brands = dict(conn.execute(text("SELECT name, id FROM brand")).tuples().all())
    source_ids = [sources[s.name] for s in source_specs()]
    brand_ids = [brands[b[0]] for b in BRANDS]
    postgres = db.dialect == "postgresql"
    tables = (
        ("mention", MENTION_COLUMNS, mention_rows(data, source_ids, brand_ids, postgres)),
        ("classification", CLASSIFICATION_COLUMNS, classification_rows(data, postgres)),
    )
    if postgres:
        raw = db.engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            for table, columns, rows in tables:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
            raw.commit()
        finally:
            raw.close()
        vacuum_analyze(db, "mention", "classification")
        return
    for table, columns, rows in tables:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        batch: list[tuple[Any, ...]] = []
        with db.engine.begin() as conn:
            for row in rows:
                batch.append(row)
                if len(batch) == 50_000:
                    conn.exec_driver_sql(sql, batch)
                    batch = []
            if batch:
                conn.exec_driver_sql(sql, batch)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# ---------------------------------------------------------------------- naive baselines


def _utc(value: Any) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(when, datetime)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _bucket(status: str | None, sentiment: str | None) -> str:
    if status is None:
        return "unclassified"
    if status == "ok" and sentiment in SENTIMENTS:
        return sentiment
    return "unjudged"


@dataclass
class NaiveReport:
    """The report's figures, counted in Python."""

    total: list[dict[str, int]]
    sources: dict[str, list[dict[str, int]]]
    topics: dict[str, list[dict[str, int]]]
    negative: list[int]  # judged negative, the last two weeks (responses)
    replied: list[int]
    most_negative: list[int]
    disagreements: tuple[int, int]
    duplicates_left_out: int


def naive_report(db: Database, config: Config, week: Week, brand_id: int) -> NaiveReport:
    """Load the brand's mentions of the report's weeks (with their classification) and its
    replies, and count the report's figures in Python."""
    weeks = [week.shift(i - config.report.weeks + 1) for i in range(config.report.weeks)]
    bounds = [w.start for w in weeks] + [weeks[-1].end]
    start, end = bounds[0], bounds[-1]
    version = latest_version(db)
    m, c = _MENTION, _CLASSIFICATION
    in_weeks = or_(
        and_(m.c.published_at >= start, m.c.published_at < end),
        and_(m.c.published_at.is_(None), m.c.collected_at >= start, m.c.collected_at < end),
    )
    query = (
        select(
            m.c.id,
            m.c.source_id,
            m.c.kind,
            m.c.is_brand_response,
            m.c.published_at,
            m.c.collected_at,
            m.c.rating,
            m.c.content_hash,
            m.c.title,
            m.c.text,
            m.c.url,
            c.c.status,
            c.c.sentiment,
            c.c.score,
            c.c.topics,
        )
        .select_from(m.outerjoin(c, and_(c.c.mention_id == m.c.id, c.c.model_version == version)))
        .where(m.c.brand_id == brand_id, in_weeks)
    )
    replies_q = select(m.c.parent_id, m.c.published_at, m.c.collected_at).where(
        m.c.brand_id == brand_id, m.c.is_brand_response.is_(True), m.c.parent_id.is_not(None)
    )
    with db.engine.connect() as conn:
        names = dict(conn.execute(text("SELECT id, name FROM source")).tuples().all())
        rows = [r for r in conn.execute(query) if r.kind in WORD_OF_MOUTH and not r.is_brand_response]
        first_reply: dict[int, datetime] = {}
        for parent_id, published, collected in conn.execute(replies_q):
            at = published or collected
            if parent_id not in first_reply or at < first_reply[parent_id]:
                first_reply[parent_id] = at
    # Syndicated texts: the same hash from several sources; the first copy counts.
    copies: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        copies[r.content_hash].append(r)
    dropped: set[int] = set()
    for group in copies.values():
        if len({r.source_id for r in group}) > 1:
            kept = min(group, key=lambda r: r.id)
            if len(kept.text) >= SYNDICATED_MIN_CHARS:
                dropped |= {r.id for r in group if r.id != kept.id}
    n = len(weeks)
    total: list[dict[str, int]] = [defaultdict(int) for _ in weeks]
    sources: dict[str, list[dict[str, int]]] = defaultdict(lambda: [defaultdict(int) for _ in weeks])
    topics: dict[str, list[dict[str, int]]] = defaultdict(lambda: [defaultdict(int) for _ in range(2)])
    negative, replied = [0, 0], [0, 0]
    high_neg = low_pos = 0
    last_week: list[Any] = []
    for r in rows:
        if r.id in dropped:
            continue
        at = _utc(r.published_at or r.collected_at)
        assert at is not None
        i = bisect.bisect_right(bounds, at) - 1
        bucket = _bucket(r.status, r.sentiment)
        total[i][bucket] += 1
        sources[names[r.source_id]][i][bucket] += 1
        if i >= n - 2 and r.status == "ok":
            for topic, value in (r.topics or {}).items():
                s = (value or {}).get("sentiment")
                topics[topic][i - n + 2][s if s in SENTIMENTS else "unjudged"] += 1
            if r.sentiment == "negative":
                negative[i - n + 2] += 1
                replied[i - n + 2] += r.id in first_reply
        if i == n - 1 and r.status == "ok":
            last_week.append(r)
            rating = r.rating
            high_neg += r.sentiment == "negative" and rating is not None and rating >= HIGH_RATING
            low_pos += r.sentiment == "positive" and rating is not None and rating <= LOW_RATING
    negatives = sorted((r for r in last_week if r.sentiment == "negative"), key=lambda r: (-r.score, r.id))
    return NaiveReport(
        total=total,
        sources=sources,
        topics=topics,
        negative=negative,
        replied=replied,
        most_negative=[r.id for r in negatives[: config.report.examples]],
        disagreements=(high_neg, low_pos),
        duplicates_left_out=sum(
            1 for r in rows if r.id in dropped and _utc(r.published_at or r.collected_at) >= week.start
        ),
    )


def _tally_dict(t: Tally) -> dict[str, int]:
    d = {
        "positive": t.positive,
        "neutral": t.neutral,
        "negative": t.negative,
        "unjudged": t.unjudged,
        "unclassified": t.unclassified,
    }
    return {k: v for k, v in d.items() if v}


def _clean(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


def compare_report(fast: BrandReport, naive: NaiveReport) -> list[str]:
    """Where the report and the naive count disagree (empty when they agree)."""
    problems = []
    if [_tally_dict(w.tally) for w in fast.trend] != [_clean(d) for d in naive.total]:
        problems.append(f"{fast.brand}: weekly totals differ")
    fast_sources = {r.name: (_tally_dict(r.before.tally), _tally_dict(r.now.tally)) for r in fast.sources}
    naive_sources = {
        name: (_clean(weeks[-2]), _clean(weeks[-1]))
        for name, weeks in naive.sources.items()
        if sum(weeks[-1].values()) or sum(weeks[-2].values())
    }
    if fast_sources != naive_sources:
        problems.append(f"{fast.brand}: per-source tallies differ")
    fast_topics = {r.name: (_tally_dict(r.before.tally), _tally_dict(r.now.tally)) for r in fast.topics}
    naive_topics = {name: (_clean(w[0]), _clean(w[1])) for name, w in naive.topics.items()}
    if fast_topics != naive_topics:
        problems.append(f"{fast.brand}: topic tallies differ")
    if [(r.negative, r.replied) for r in fast.responses] != list(
        zip(naive.negative, naive.replied, strict=True)
    ):
        problems.append(f"{fast.brand}: responses differ")
    if [r.id for r in fast.most_negative] != naive.most_negative:
        problems.append(f"{fast.brand}: most negative examples differ")
    if fast.disagreements != naive.disagreements:
        problems.append(f"{fast.brand}: rating/text disagreements differ")
    if fast.duplicates_left_out != naive.duplicates_left_out:
        problems.append(f"{fast.brand}: syndicated copies left out differ")
    return problems


@dataclass
class NaiveAlerts:
    tests: dict[tuple[str, str | None], tuple[int, float]]  # (brand, topic) -> observed, expected
    flagged: set[tuple[str, str | None]]


def naive_alerts(db: Database, config: Config, end: datetime) -> NaiveAlerts:
    """Load every mention of the window and its baseline weeks with its classification,
    build each brand's and brand × topic's hourly series in Python, and apply the rule.

    Every brand here has history before the range, so each series starts with the range.
    """
    rule = Rule.from_settings(config.alerts)
    end = hour_floor(end)
    span = rule.window_hours + rule.baseline_weeks * WEEK_HOURS
    start = end - timedelta(hours=span)
    version = latest_version(db)
    m, c = _MENTION, _CLASSIFICATION
    query = (
        select(
            m.c.brand_id,
            m.c.kind,
            m.c.is_brand_response,
            m.c.published_at,
            m.c.collected_at,
            c.c.status,
            c.c.sentiment,
            c.c.topics,
        )
        .select_from(m.join(c, and_(c.c.mention_id == m.c.id, c.c.model_version == version)))
        .where(
            or_(
                and_(m.c.published_at >= start, m.c.published_at < end),
                and_(m.c.published_at.is_(None), m.c.collected_at >= start, m.c.collected_at < end),
            )
        )
    )
    negative: dict[int, np.ndarray[Any, Any]] = {}
    total: dict[int, np.ndarray[Any, Any]] = {}
    topic_negative: dict[tuple[int, str], np.ndarray[Any, Any]] = {}
    with db.engine.connect() as conn:
        brands = dict(conn.execute(text("SELECT id, name FROM brand")).tuples().all())
        for row in conn.execute(query):
            if row.brand_id is None or row.kind not in COUNTED_KINDS or row.is_brand_response:
                continue
            if row.status != "ok":
                continue
            at = _utc(row.published_at or row.collected_at)
            assert at is not None
            h = int((at - start) // timedelta(hours=1))
            if row.brand_id not in total:
                total[row.brand_id] = np.zeros(span, dtype=np.int64)
                negative[row.brand_id] = np.zeros(span, dtype=np.int64)
            total[row.brand_id][h] += 1
            if row.sentiment == "negative":
                negative[row.brand_id][h] += 1
            for topic, value in (row.topics or {}).items():
                if ((value or {}).get("sentiment") or row.sentiment) == "negative":
                    key = (row.brand_id, topic)
                    if key not in topic_negative:
                        topic_negative[key] = np.zeros(span, dtype=np.int64)
                    topic_negative[key][h] += 1
    series: list[tuple[str, str | None, Series]] = []
    for brand_id in sorted(total, key=lambda b: brands[b]):
        series.append((brands[brand_id], None, Series(start, negative[brand_id], total[brand_id])))
    for (brand_id, topic), counts in sorted(topic_negative.items()):
        series.append((brands[brand_id], topic, Series(start, counts, np.maximum(total[brand_id], counts))))
    verdicts = [check(s, end, rule) for _, _, s in series]
    flags = decide(verdicts, rule, groups=[b for b, _, _ in series])
    return NaiveAlerts(
        tests={
            (b, t): (v.observed, round(v.expected, 6)) for (b, t, _), v in zip(series, verdicts, strict=True)
        },
        flagged={(b, t) for (b, t, _), f in zip(series, flags, strict=True) if f},
    )


def compare_alerts(fast: Detection, naive: NaiveAlerts) -> list[str]:
    tests = {(t.brand, t.topic): (t.verdict.observed, round(t.verdict.expected, 6)) for t in fast.tests}
    problems = []
    if tests != naive.tests:
        differ = sorted(
            {k for k in tests.keys() | naive.tests.keys() if tests.get(k) != naive.tests.get(k)}, key=str
        )
        problems.append(f"alert tests differ for {len(differ)} series, e.g. {differ[:3]}")
    flagged = {(t.brand, t.topic) for t in fast.tests if t.significant}
    if flagged != naive.flagged:
        problems.append(
            f"flagged tests differ: {sorted(flagged, key=str)} vs {sorted(naive.flagged, key=str)}"
        )
    return problems


# -------------------------------------------------------------------------- measuring


@dataclass
class Figures:
    """One database's measurements, in seconds."""

    database: str
    fast: dict[str, float] = field(default_factory=dict)
    naive: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    tests: int = 0
    alerts: int = 0
    problems: list[str] = field(default_factory=list)
    load_s: float = 0.0
    fold_s: float = 0.0  # the first compaction of hourly_count after the bulk load

    def ratio(self, task: str) -> float:
        return self.naive[task] / self.fast[task] if self.fast[task] else float("inf")

    def met(self, task: str) -> bool | None:
        """Whether the task meets its target; None for figures without one (all brands)."""
        if task == "report":
            return self.fast[task] < TARGET_REPORT_S and self.ratio(task) >= TARGET_RATIO
        if task == "alerts":
            return self.fast[task] < TARGET_ALERTS_S and self.ratio(task) >= TARGET_RATIO
        return None


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def measure(figures: Figures, db: Database, config: Config, largest: str, repeat: int, out: Path) -> None:
    week = last_complete_week(config.timezone, AT)
    brands = find_brands(db, None)
    largest_id = next(i for i, name in brands if name == largest)

    def fast(task: str, work: Callable[[], Any]) -> Any:
        result = None
        runs = []
        for _ in range(repeat):
            result, seconds = _timed(work)
            runs.append(seconds)
        figures.runs[task] = runs
        figures.fast[task] = statistics.median(runs)
        _progress(f"{figures.database} {task}: {', '.join(f'{s:.2f}' for s in runs)} s")
        return result

    def naive(task: str, work: Callable[[], Any]) -> Any:
        result, seconds = _timed(work)
        figures.naive[task] = seconds
        _progress(f"{figures.database} {task} naive: {seconds:.2f} s")
        return result

    written = fast("report", lambda: write_reports(db, config, week=week, brand=largest, out_dir=out, now=AT))
    counted = naive("report", lambda: naive_report(db, config, week, largest_id))
    figures.problems += compare_report(written[0].report, counted)

    written_all = fast("report_all", lambda: write_reports(db, config, week=week, out_dir=out, now=AT))
    counted_all = naive("report_all", lambda: [naive_report(db, config, week, b) for b, _ in brands])
    for w, c in zip(written_all, counted_all, strict=True):
        figures.problems += compare_report(w.report, c)

    # As `earful alerts` runs it: fold the hourly counts added since the last run, then test.
    found = fast("alerts", lambda: (compact(db), detect(db, config, AT))[1])
    checked = naive("alerts", lambda: naive_alerts(db, config, AT))
    figures.tests = len(found.tests)
    figures.alerts = len(found.alerts)
    figures.problems += compare_alerts(found, checked)
    spiked = {a.brand for a in found.alerts}
    if BRANDS[SPIKE_BRAND][0] not in spiked:
        figures.problems.append(f"{figures.database}: the spike of {BRANDS[SPIKE_BRAND][0]} raised no alert")


# ---------------------------------------------------------------------------- output


def print_table(all_figures: Sequence[Figures], data: Data, largest: str, largest_n: int) -> None:
    print(
        f"Report and alert check on {data.n:,} mentions ({len(BRANDS)} brands, {len(TOPICS)} topics, "
        f"{WEEKS} weeks; {data.in_alert_window:,} in the alert check's weeks; largest brand "
        f"{largest}, {largest_n:,} mentions)"
    )
    header = ("database", "task", "seconds", "naive s", "speed-up", "target", "met")
    widths = (10, 26, 8, 8, 9, 14, 4)
    names = {
        "report": f"report, {largest}",
        "report_all": "report, all brands",
        "alerts": f"alert check ({all_figures[0].tests} tests)" if all_figures else "alert check",
    }
    targets = {
        "report": f"< {TARGET_REPORT_S:g} s, ≥ {TARGET_RATIO:g}×",
        "report_all": "",
        "alerts": f"< {TARGET_ALERTS_S:g} s, ≥ {TARGET_RATIO:g}×",
    }

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 1, 5) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print()
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for f in all_figures:
        for task in TASKS:
            met = f.met(task)
            print(
                line(
                    (
                        f.database,
                        names[task],
                        f"{f.fast[task]:.2f}",
                        f"{f.naive[task]:.2f}",
                        f"{f.ratio(task):.1f}×",
                        targets[task],
                        "" if met is None else ("yes" if met else "NO"),
                    )
                )
            )
    print(
        f"(seconds: median of {len(all_figures[0].runs['report']) if all_figures else 0} runs; "
        "naive: one run)"
    )
    for f in all_figures:
        print(
            f"  {f.database}: {f.alerts} alert(s) raised; loading took {f.load_s:.0f} s, "
            f"then folding the hourly counts once {f.fold_s:.1f} s"
        )
        for problem in f.problems:
            print(f"CHECK FAILED: {problem}")


def figures_json(all_figures: Sequence[Figures], data: Data, largest_n: int) -> str:
    out: dict[str, Any] = {}
    for f in all_figures:
        for task in TASKS:
            out[f"{f.database}_{task}_s"] = round(f.fast[task], 3)
            out[f"{f.database}_{task}_naive_s"] = round(f.naive[task], 3)
            out[f"{f.database}_{task}_speedup"] = round(f.ratio(task), 1)
        out[f"{f.database}_alert_tests"] = f.tests
        out[f"{f.database}_alerts_raised"] = f.alerts
        out[f"{f.database}_load_s"] = round(f.load_s, 1)
        out[f"{f.database}_first_fold_s"] = round(f.fold_s, 2)
    out["n_mentions"] = data.n
    out["n_alert_window"] = data.in_alert_window
    out["largest_brand_mentions"] = largest_n
    out["targets_met"] = all(f.met(t) is not False for f in all_figures for t in TASKS)
    out["checks_passed"] = not any(f.problems for f in all_figures)
    return json.dumps(out)


# ------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="classified mentions generated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each fast path (the median counts)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file (its path is printed)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(PG_URL_ENV, DEFAULT_PG_URL),
        help=f"server to create a throw-away schema on (default: ${PG_URL_ENV} or {DEFAULT_PG_URL})",
    )
    args = parser.parse_args(argv)
    if args.n < 10_000:
        parser.error("--n must be at least 10,000")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def fold(db: Database) -> int:
    """The first fold of the hourly counts after the bulk load; on PostgreSQL the two tables
    are then vacuumed and analysed, as autovacuum would after a rewrite of that size."""
    folded = compact(db)
    if db.dialect == "postgresql":
        vacuum_analyze(db, "hourly_count", "hourly_tally")
    return folded


def vacuum_analyze(db: Database, *tables: str) -> None:
    """PostgreSQL: vacuum and analyse ``tables`` (outside a transaction), as autovacuum would."""
    raw = db.engine.raw_connection()
    try:
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
        # Back to transactions before the pool hands the connection out again.
        raw.driver_connection.autocommit = False  # type: ignore[union-attr]
    finally:
        raw.close()


def run_database(name: str, url: str, config: Config, data: Data, largest: str, repeat: int) -> Figures:
    figures = Figures(name)
    db = Database(url)
    try:
        _, figures.load_s = _timed(lambda: load(db, config, data))
        _progress(f"{name}: loaded {data.n:,} mentions in {figures.load_s:.1f} s")
        # The triggers wrote a row per classification (and negative topic): the first alert run
        # folds them, once; later runs fold only the last hour's.
        folded, figures.fold_s = _timed(lambda: fold(db))
        _progress(f"{name}: folded {folded:,} rows of hourly counts in {figures.fold_s:.1f} s")
        with tempfile.TemporaryDirectory(prefix="earful-bench-reports-") as out:
            measure(figures, db, config, largest, repeat, Path(out))
    finally:
        db.dispose()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config_text(config_text())
    if not args.skip_postgres:
        check_postgres(args.postgres_url)
    data, seconds = _timed(lambda: generate(args.n))
    rule = Rule.from_settings(config.alerts)
    window_start = AT - timedelta(hours=rule.window_hours + rule.baseline_weeks * WEEK_HOURS)
    when = np.where(data.published >= 0, data.published, data.collected)
    data.in_alert_window = int(
        ((when >= int(window_start.timestamp() * 1e6)) & (when < int(AT.timestamp() * 1e6))).sum()
    )
    largest = BRANDS[0][0]
    largest_n = int((data.brand == 0).sum())
    _progress(
        f"generated {data.n:,} mentions in {seconds:.1f} s ({data.in_alert_window:,} in the alert weeks)"
    )

    all_figures: list[Figures] = []
    folder = Path(tempfile.mkdtemp(prefix="earful-bench-insight-"))
    sqlite_file = folder / "insight.sqlite3"
    try:
        all_figures.append(
            run_database("sqlite", f"sqlite:///{sqlite_file}", config, data, largest, args.repeat)
        )
        if not args.skip_postgres:
            _progress(f"PostgreSQL: {safe_url(args.postgres_url)}")
            with postgres_place(args.postgres_url, "insight") as url:
                all_figures.append(run_database("postgresql", url, config, data, largest, args.repeat))
    finally:
        if args.keep:
            _progress(f"kept {sqlite_file}")
        else:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()

    print_table(all_figures, data, largest, largest_n)
    print(figures_json(all_figures, data, largest_n), flush=True)
    return 1 if any(f.problems for f in all_figures) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EarfulError as exc:
        print(f"error: {exc} (--skip-postgres skips PostgreSQL)", file=sys.stderr)
        sys.exit(2)
