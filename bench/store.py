"""Benchmark: how fast :class:`~earful.pipeline.store.MentionStore` stores mentions.

A crawl or an import of history hands the store tens of thousands of mentions at once, and
re-crawls hand it mostly the same mentions again. This script stores ``--n`` generated
mentions (100,000 by default) into SQLite and into PostgreSQL and measures, on each:

* ``insert``   — the first store of all N mentions (all new);
* ``reupsert`` — storing the same N mentions again, unchanged (a re-crawl that found nothing new);
* ``update``   — storing them again with 10% of the texts edited.

Each figure is set next to a naive baseline measured in the same run on a database of its
own: one ORM ``session.add(Mention(...))`` + ``session.commit()`` per mention for the insert,
and one select by ``(source_id, external_key)`` + attribute update + commit per mention for the
re-upserts. The baseline normalises each mention exactly as the store does (the store's own
row builder), so the ratio isolates the write strategy: batched ``INSERT … ON CONFLICT`` versus
a round trip and a commit per mention. The naive way is slow, so it runs on the first
``--baseline-n`` mentions (2,000 by default) and its rate is reported; its table therefore stays
small, which favours it.

The target (from the storage issue) is ≥ 5,000 mentions/s and ≥ 10× the baseline for every
phase on both databases. Generated mentions are realistic and reproducible (fixed seed): three
sources, two brands, texts of 20–2,000 characters, pseudonymised authors, dates over a year,
ratings 1–5 and about 20% replies to an earlier mention of the same source.

Each run uses places of its own: temporary SQLite files, and fresh PostgreSQL schemas
(selected with ``?options=-csearch_path=<schema>``) that are dropped at the end, even on
failure. After the fast runs the row count must equal N. Output: a table, then one JSON line
of the figures, last. The exit status is 1 when a correctness check fails (not when a target
is missed), 2 when a database cannot be reached::

    python bench/store.py [--n 100000] [--baseline-n 2000] [--sqlite-only] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from places import check_postgres, postgres_place
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from earful.pipeline.config import Config, load_config_text
from earful.pipeline.db import Database, safe_url
from earful.pipeline.errors import EarfulError
from earful.pipeline.schema import Mention
from earful.pipeline.store import MentionIn, MentionKind, MentionStore, StoreResult

SEED = 20261125
PSEUDONYM_KEY = b"earful-bench-pseudonym-key"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL_ENV = "EARFUL_BENCH_PG_URL"
TARGET_PER_S = 5_000.0
TARGET_RATIO = 10.0
CHANGED_FRACTION = 0.10
PHASES = ("insert", "reupsert", "update")

CONFIG_TEXT = """\
privacy:
  pseudonymise_authors: true
brands:
  - name: Acme
    aliases: [ACME, Acme Corp]
  - name: Globex
    aliases: [Globex Corporation]
sources:
  - name: acme-reviews
    kind: reviews
    spider: reviews
    start_urls: [https://reviews.example.com/acme]
    brand: Acme
  - name: globex-forum
    kind: blog
    spider: blog
    start_urls: [https://forum.example.org/globex]
    brand: Globex
  - name: tech-news
    kind: feed
    spider: feed
    start_urls: [https://news.example.net/feed.xml]
    schedule: "@hourly"
"""


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


WORDS = _split(
    """
    the a and but so very really quite not never always again still just also only
    delivery shipping order package parcel box refund return exchange warranty invoice price
    support service agent hotline chat email answer reply ticket manager staff team
    product quality battery screen charger cable app update login account password setting
    fast slow late early broken damaged perfect great good fine okay bad awful terrible excellent
    cheap expensive worth value recommend disappointed happy satisfied annoyed confused impressed
    arrived ordered waited called wrote asked received opened installed tried stopped worked
    day days week weeks month hour hours minutes yesterday today morning evening weekend
    store website checkout discount coupon subscription plan contract cancel renewal fee
    I we they it this that my our their your after before because when while with without
    """
)
FIRST_NAMES = _split(
    """
    Anna Ben Carla David Emma Felix Greta Hugo Ida Jonas Klara Leon Mia Noah Olga Paul
    Quinn Rosa Sam Tara Uwe Vera Will Xenia Yusuf Zoe Ahmed Bea Chen Dana
    """
)
LAST_NAMES = _split(
    """
    Meyer Schmidt Novak Rossi Garcia Smith Kowalski Jensen Dubois Silva Tanaka Kim Okafor
    Larsen Weber Fischer Moreau Costa Nagy Horvat
    """
)


# ------------------------------------------------------------------------ generated data


@dataclass(frozen=True)
class SourcePlan:
    """How one configured source's mentions look."""

    name: str
    weight: float
    url: str
    top_kind: MentionKind  # kind of a mention that is not a reply
    rated: bool  # whether its top-level mentions carry a 1–5 rating
    titled: bool
    brands: tuple[str | None, ...]  # brand named on the mention (None: the source's brand)
    responder: str  # who answers for the brand in replies


SOURCES = (
    SourcePlan(
        name="acme-reviews",
        weight=0.5,
        url="https://reviews.example.com/acme/r",
        top_kind="review",
        rated=True,
        titled=True,
        brands=(None,),
        responder="Acme Support",
    ),
    SourcePlan(
        name="globex-forum",
        weight=0.3,
        url="https://forum.example.org/globex/t",
        top_kind="post",
        rated=False,
        titled=True,
        brands=(None,),
        responder="Globex Team",
    ),
    SourcePlan(
        name="tech-news",
        weight=0.2,
        url="https://news.example.net/c",
        top_kind="comment",
        rated=False,
        titled=False,
        brands=("Acme", "globex corporation"),  # no source brand: each mention names one
        responder="ACME",
    ),
)


def _words_text(rng: random.Random, length: int) -> str:
    """Words from the word list, with sentence breaks, cut to ``length`` characters."""
    parts: list[str] = []
    size = 0
    capital = True
    while size < length:
        word = rng.choice(WORDS)
        if capital:
            word = word.capitalize()
        capital = rng.random() < 0.1
        if capital:
            word += rng.choice((".", ".", "!", "?"))
        parts.append(word)
        size += len(word) + 1
    return " ".join(parts)[:length].rstrip() or "Fine."


def _text_length(rng: random.Random) -> int:
    """Short texts are common, long ones rare: log-normal, median ~250, within 20..2,000."""
    return max(20, min(2_000, int(rng.lognormvariate(5.5, 1.0))))


def generate_mentions(n: int, seed: int = SEED) -> list[MentionIn]:
    """``n`` realistic mentions, the same for the same seed; replies follow their parent."""
    rng = random.Random(seed)
    authors = [f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" for _ in range(600)]
    start = datetime(2025, 11, 25, tzinfo=UTC)
    year_s = 365 * 24 * 3600
    earlier: dict[str, list[tuple[str, datetime]]] = {s.name: [] for s in SOURCES}
    weights = [s.weight for s in SOURCES]
    mentions: list[MentionIn] = []
    for i in range(n):
        plan = rng.choices(SOURCES, weights)[0]
        key = f"{plan.name[:2]}-{i:08d}"
        previous = earlier[plan.name]
        reply_to = previous[rng.randrange(len(previous))] if previous and rng.random() < 0.2 else None
        kind: MentionKind
        if reply_to is None:
            published = start + timedelta(seconds=rng.randrange(year_s))
            kind = plan.top_kind
            rating = float(rng.choices((1, 2, 3, 4, 5), (10, 8, 12, 30, 40))[0]) if plan.rated else None
            title = _words_text(rng, rng.randint(12, 60)) if plan.titled else None
            brand_response = False
        else:
            published = reply_to[1] + timedelta(minutes=rng.randrange(1, 7 * 24 * 60))
            kind = "comment"
            rating, title = None, None
            brand_response = rng.random() < 0.25
        author = plan.responder if brand_response else rng.choice(authors)
        mentions.append(
            MentionIn(
                source=plan.name,
                external_key=key,
                text=_words_text(rng, _text_length(rng)),
                url=f"{plan.url}/{key}",
                kind=kind,
                author=author if rng.random() < 0.95 else None,
                published_at=published,
                title=title,
                rating=rating,
                language="en" if rng.random() < 0.85 else "de",
                parent_key=reply_to[0] if reply_to else None,
                brand=rng.choice(plan.brands),
                is_brand_response=brand_response,
            )
        )
        previous.append((key, published))
    return mentions


def edit_some(
    mentions: Sequence[MentionIn], fraction: float, seed: int = SEED
) -> tuple[list[MentionIn], int]:
    """The same mentions with ``fraction`` of the texts edited (a re-crawl after edits)."""
    rng = random.Random(seed + 1)
    chosen = set(rng.sample(range(len(mentions)), round(len(mentions) * fraction)))
    edited = [
        m.model_copy(update={"text": f"{m.text} Edit: {_words_text(rng, rng.randint(20, 120))}"})
        if i in chosen
        else m
        for i, m in enumerate(mentions)
    ]
    return edited, len(chosen)


# ----------------------------------------------------------------------------- places


@contextmanager
def sqlite_place(folder: Path, name: str) -> Iterator[str]:
    """A fresh SQLite file in the run's temporary folder."""
    yield f"sqlite:///{folder / name}.sqlite3"


def open_fresh(url: str, config: Config) -> tuple[Database, MentionStore]:
    db = Database(url)
    db.upgrade()
    store = MentionStore(db, config, pseudonym_key=PSEUDONYM_KEY)
    store.sync_config()
    return db, store


# ------------------------------------------------------------------------- fast path


@dataclass
class Figures:
    """One database's measurements, in mentions per second."""

    database: str
    fast: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    unlinked_replies: int = 0
    problems: list[str] = field(default_factory=list)

    def ratio(self, phase: str) -> float:
        return self.fast[phase] / self.baseline[phase] if self.baseline[phase] else float("inf")

    def met(self, phase: str) -> bool:
        return self.fast[phase] >= TARGET_PER_S and self.ratio(phase) >= TARGET_RATIO


def _timed(work: Callable[[], StoreResult]) -> tuple[StoreResult, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def _expect(
    figures: Figures, phase: str, result: StoreResult, new: int, updated: int, unchanged: int
) -> None:
    """Record a problem unless the store reported exactly these counts and no rejection."""
    got = (result.new, result.updated, result.unchanged, len(result.rejected))
    expected = (new, updated, unchanged, 0)
    if got != expected:
        figures.problems.append(
            f"{figures.database} {phase}: new/updated/unchanged/rejected {got}, expected {expected}"
        )


def run_fast(
    figures: Figures,
    url: str,
    config: Config,
    mentions: list[MentionIn],
    edited: list[MentionIn],
    n_edited: int,
) -> None:
    """Store, re-store and re-store-with-edits through MentionStore, timing each."""
    n = len(mentions)
    db, store = open_fresh(url, config)
    try:
        phases: list[tuple[str, list[MentionIn], tuple[int, int, int]]] = [
            ("insert", mentions, (n, 0, 0)),
            ("reupsert", mentions, (0, 0, n)),
            ("update", edited, (0, n_edited, n - n_edited)),
        ]
        for phase, batch, expected in phases:
            start = time.perf_counter()
            result = store.store(iter(batch))  # a generator: the store batches it itself
            seconds = time.perf_counter() - start
            figures.fast[phase] = n / seconds
            _expect(figures, phase, result, *expected)
            _progress(f"{figures.database} {phase}: {n:,} in {seconds:.2f} s")
        with db.engine.connect() as conn:
            figures.rows = conn.execute(select(func.count()).select_from(Mention)).scalar_one()
            figures.unlinked_replies = conn.execute(
                select(func.count())
                .select_from(Mention)
                .where(Mention.parent_key.is_not(None), Mention.parent_id.is_(None))
            ).scalar_one()
        if figures.rows != n:
            figures.problems.append(f"{figures.database}: {figures.rows:,} rows for {n:,} mentions")
        if figures.unlinked_replies:
            figures.problems.append(f"{figures.database}: {figures.unlinked_replies:,} replies not linked")
    finally:
        db.dispose()


# --------------------------------------------------------------------------- baseline

# What a re-crawl may change: everything but the identity and the first-seen time.
_UPDATED = _split(
    """
    url kind brand_id author published_at updated_at title text rating_raw rating_worst rating_best
    rating language parent_key is_brand_response content_hash fingerprint crawl_run_id
    """
)


def _naive_row(store: MentionStore, mention: MentionIn) -> dict[str, Any]:
    # The store's own normalisation (clean text, hashes, pseudonym, rating), so the baseline
    # differs only in how it writes.
    return store._row(mention, datetime.now(UTC), None, False)


def _naive_new(session: Session, row: dict[str, Any]) -> Mention:
    mention = Mention(**row)
    if row["parent_key"] is not None:
        mention.parent_id = session.scalar(
            select(Mention.id).where(
                Mention.source_id == row["source_id"], Mention.external_key == row["parent_key"]
            )
        )
    session.add(mention)
    return mention


def naive_insert(db: Database, store: MentionStore, mentions: Sequence[MentionIn]) -> StoreResult:
    """One ``add`` + ``commit`` per mention (replies linked to their parent by a select)."""
    result = StoreResult(seen=len(mentions))
    with db.sessions() as session:
        for mention in mentions:
            _naive_new(session, _naive_row(store, mention))
            session.commit()
            result.new += 1
    return result


def naive_upsert(db: Database, store: MentionStore, mentions: Sequence[MentionIn]) -> StoreResult:
    """One select by (source_id, external_key), the attributes set when the fingerprint
    differs, and a commit per mention."""
    result = StoreResult(seen=len(mentions))
    with db.sessions() as session:
        for mention in mentions:
            row = _naive_row(store, mention)
            stored = session.scalars(
                select(Mention).where(
                    Mention.source_id == row["source_id"], Mention.external_key == row["external_key"]
                )
            ).one_or_none()
            if stored is None:
                _naive_new(session, row)
                result.new += 1
            elif stored.fingerprint != row["fingerprint"]:
                for attr in _UPDATED:
                    setattr(stored, attr, row[attr])
                result.updated += 1
            else:
                result.unchanged += 1
            session.commit()
    return result


def run_baseline(
    figures: Figures, url: str, config: Config, mentions: list[MentionIn], edited: list[MentionIn]
) -> None:
    n = len(mentions)
    n_edited = sum(1 for m, e in zip(mentions, edited, strict=True) if m is not e)
    db, store = open_fresh(url, config)
    try:
        phases = (
            ("insert", lambda: naive_insert(db, store, mentions), (n, 0, 0)),
            ("reupsert", lambda: naive_upsert(db, store, mentions), (0, 0, n)),
            ("update", lambda: naive_upsert(db, store, edited), (0, n_edited, n - n_edited)),
        )
        for phase, work, expected in phases:
            result, seconds = _timed(work)
            figures.baseline[phase] = n / seconds
            _expect(figures, f"baseline {phase}", result, *expected)
            _progress(f"{figures.database} baseline {phase}: {n:,} in {seconds:.2f} s")
    finally:
        db.dispose()


# ---------------------------------------------------------------------------- output


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def print_table(all_figures: Sequence[Figures], n: int, baseline_n: int) -> None:
    print(f"Storing {n:,} mentions (baseline: naive ORM, {baseline_n:,} mentions, same run)")
    for f in all_figures:
        print(f"  {f.database}: {f.rows:,} rows after the fast runs, {f.unlinked_replies:,} replies unlinked")
    header = ("database", "phase", "mentions/s", "baseline/s", "ratio", "target met")
    widths = (10, 9, 12, 12, 8, 10)
    target = f"(target: ≥ {TARGET_PER_S:,.0f}/s and ≥ {TARGET_RATIO:g}× baseline)"
    print()
    print(
        "  ".join(
            h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("  ".join("-" * w for w in widths))
    for f in all_figures:
        for phase in PHASES:
            cells = (
                f.database,
                phase,
                f"{f.fast[phase]:,.0f}",
                f"{f.baseline[phase]:,.0f}",
                f"{f.ratio(phase):.1f}×",
                "yes" if f.met(phase) else "NO",
            )
            print(
                "  ".join(
                    c.ljust(w) if i < 2 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                )
            )
    print(target)
    for f in all_figures:
        for problem in f.problems:
            print(f"CHECK FAILED: {problem}")


def figures_json(all_figures: Sequence[Figures], n: int, baseline_n: int) -> str:
    out: dict[str, Any] = {}
    for f in all_figures:
        for phase in PHASES:
            out[f"{f.database}_{phase}_per_s"] = round(f.fast[phase], 1)
            out[f"{f.database}_{phase}_baseline_per_s"] = round(f.baseline[phase], 1)
            out[f"{f.database}_{phase}_ratio"] = round(f.ratio(phase), 2)
        out[f"{f.database}_rows"] = f.rows
    out["n"] = n
    out["baseline_n"] = baseline_n
    out["targets_met"] = all(f.met(phase) for f in all_figures for phase in PHASES)
    out["checks_passed"] = not any(f.problems for f in all_figures)
    return json.dumps(out)


# ------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="mentions stored by the fast path")
    parser.add_argument("--baseline-n", type=int, default=2_000, help="mentions stored the naive way")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(PG_URL_ENV, DEFAULT_PG_URL),
        help=f"server to create throw-away schemas on (default: ${PG_URL_ENV} or {DEFAULT_PG_URL})",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.baseline_n < 1:
        parser.error("--n and --baseline-n must be at least 1")
    args.baseline_n = min(args.baseline_n, args.n)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config_text(CONFIG_TEXT)
    if not args.sqlite_only:
        check_postgres(args.postgres_url)
    start = time.perf_counter()
    mentions = generate_mentions(args.n)
    edited, n_edited = edit_some(mentions, CHANGED_FRACTION)
    chars = sum(len(m.text) for m in mentions)
    _progress(
        f"generated {args.n:,} mentions ({chars / args.n:,.0f} chars of text on average, "
        f"{sum(m.parent_key is not None for m in mentions):,} replies) in {time.perf_counter() - start:.1f} s"
    )
    base_mentions = mentions[: args.baseline_n]
    base_edited = edited[: args.baseline_n]

    all_figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="earful-bench-") as tmp:
        places: list[tuple[str, Callable[[str], AbstractContextManager[str]]]] = [
            ("sqlite", lambda label: sqlite_place(Path(tmp), label))
        ]
        if not args.sqlite_only:
            places.append(("postgres", lambda label: postgres_place(args.postgres_url, label)))
            _progress(f"PostgreSQL: {safe_url(args.postgres_url)}")
        for database, place in places:
            figures = Figures(database)
            with place("fast") as url:
                run_fast(figures, url, config, mentions, edited, n_edited)
            with place("naive") as url:
                run_baseline(figures, url, config, base_mentions, base_edited)
            all_figures.append(figures)

    print_table(all_figures, args.n, args.baseline_n)
    print(figures_json(all_figures, args.n, args.baseline_n), flush=True)
    return 1 if any(f.problems for f in all_figures) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EarfulError as exc:
        print(f"error: {exc} (--sqlite-only skips PostgreSQL)", file=sys.stderr)
        sys.exit(2)
