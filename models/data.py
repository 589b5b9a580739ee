"""Readers for the public labelled datasets in ``../shared/data``, with fixed, seeded splits.

Only training, evaluation and benchmarks read these; the product never needs them at run time.
Each reader follows the quirks its ``SOURCE.md`` documents (cleaning, de-duplication, CSV
quoting) and returns :class:`Example` rows. Splits are stratified on the label with a fixed seed,
so the held-back test rows are the same on every machine and are never trained on.

Label mapping for star ratings: 1-2 negative, 3 neutral, 4-5 positive.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

LABELS = ("negative", "neutral", "positive")
SPLIT_SEED = 20261125
# train / validation / test fractions for sets that ship without splits
FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Example:
    """One labelled text. ``label`` is a sentiment label or, for topic sets, ``""``."""

    text: str
    label: str
    dataset: str
    topics: tuple[str, ...] = ()
    # aspect -> polarity, for aspect-based sets (MAMS)
    aspects: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    title: str = field(default="", compare=False)  # the review's title, where it has one
    stars: int = field(default=0, compare=False)  # the review's 1-5 star rating; 0 when none


class DataMissing(FileNotFoundError):
    """A dataset under the data directory is missing; the message names the file."""


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Where the datasets live: ``path``, ``$EARFUL_DATA_DIR``, or ``../shared/data`` from the repo."""
    if path is not None:
        return Path(path)
    env = os.environ.get("EARFUL_DATA_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    return repo.parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataMissing(
            f"{path} not found: point --data-dir (or EARFUL_DATA_DIR) at the labelled datasets "
            "(the repository's ../shared/data)"
        )
    return path


def stars_to_label(stars: int) -> str:
    return "negative" if stars <= 2 else "neutral" if stars == 3 else "positive"


def split(examples: Iterable[Example], name: str, seed: int = SPLIT_SEED) -> dict[str, list[Example]]:
    """Stratified train/val/test split of ``examples``; deterministic for a given order and seed."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_label[ex.label].append(ex)
    out: dict[str, list[Example]] = {"train": [], "val": [], "test": []}
    for label in sorted(by_label):
        rows = by_label[label]
        random.Random(f"{seed}:{name}:{label}").shuffle(rows)
        n_train = round(len(rows) * FRACTIONS[0])
        n_val = round(len(rows) * FRACTIONS[1])
        out["train"] += rows[:n_train]
        out["val"] += rows[n_train : n_train + n_val]
        out["test"] += rows[n_train + n_val :]
    for rows in out.values():
        random.Random(f"{seed}:{name}:order").shuffle(rows)
    return out


def clothing(root: Path | None = None) -> dict[str, list[Example]]:
    """Women's e-commerce clothing reviews (CC0): title + text, de-duplicated on the text."""
    path = _need(
        data_dir(root) / "womens-ecommerce-clothing-reviews" / "womens_clothing_ecommerce_reviews.csv.gz"
    )
    seen: set[str] = set()
    rows: list[Example] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            body = (row.get("Review Text") or "").strip()
            if not body or body in seen:
                continue
            seen.add(body)
            title = (row.get("Title") or "").strip()
            text = f"{title}. {body}" if title else body
            stars = int(row["Rating"])
            rows.append(Example(text, stars_to_label(stars), "clothing", title=title, stars=stars))
    return split(rows, "clothing")


def hotels(root: Path | None = None) -> dict[str, list[Example]]:
    """TripAdvisor hotel reviews (MIT as packaged): long reviews; debris and duplicates dropped."""
    path = _need(data_dir(root) / "tripadvisor-hotel-reviews" / "hotel_reviews.csv")
    seen: set[str] = set()
    rows: list[Example] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = row["text"].strip()
            rating = int(row["rating"])
            if rating == 0 or "showReview(" in text or row["review_id"] in seen or not text:
                continue
            seen.add(row["review_id"])
            rows.append(Example(text, stars_to_label(rating), "hotels", stars=rating))
    return split(rows, "hotels")


def uci(root: Path | None = None) -> dict[str, list[Example]]:
    """UCI sentiment labelled sentences (CC BY 4.0): binary, Amazon/Yelp/IMDb."""
    base = data_dir(root) / "uci-sentiment-labelled-sentences"
    rows: list[Example] = []
    for name in ("amazon_cells", "yelp", "imdb"):
        with _need(base / f"{name}_labelled.txt").open(encoding="utf-8", newline="") as fh:
            for parts in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(parts) < 2 or parts[-1].strip() not in ("0", "1"):
                    continue
                text = "\t".join(parts[:-1]).strip()
                rows.append(Example(text, "positive" if parts[-1].strip() == "1" else "negative", "uci"))
    return split(rows, "uci")


def airline(root: Path | None = None) -> dict[str, list[Example]]:
    """Twitter US airline sentiment (CC BY-NC-SA: non-commercial); ``negativereason`` as topic."""
    path = _need(data_dir(root) / "twitter-us-airline-sentiment" / "Tweets.csv")
    rows: list[Example] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            reason = (row.get("negativereason") or "").strip()
            topics = (reason,) if reason and reason != "Can't Tell" else ()
            rows.append(Example(row["text"].strip(), row["airline_sentiment"], "airline", topics))
    return split(rows, "airline")


def tweeteval(root: Path | None = None) -> list[Example]:
    """TweetEval sentiment val+test (licence unclear: evaluation only, never trained on)."""
    base = data_dir(root) / "tweeteval-sentiment"
    rows: list[Example] = []
    for part in ("val", "test"):
        texts = _need(base / f"{part}_text.txt").read_text(encoding="utf-8").splitlines()
        labels = _need(base / f"{part}_labels.txt").read_text(encoding="utf-8").split()
        rows += [
            Example(t.strip(), LABELS[int(lab)], "tweeteval") for t, lab in zip(texts, labels, strict=True)
        ]
    return rows


def mams(part: str, root: Path | None = None) -> list[Example]:
    """MAMS aspect-category sentences (Apache-2.0); ``part`` is train, val or test."""
    path = _need(data_dir(root) / "mams-absa" / "MAMS-ACSA" / f"{part}.jsonl")
    rows: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        aspects = {a["category"]: a["polarity"] for a in doc["aspect_categories"]}
        rows.append(Example(doc["text"].strip(), "", "mams", tuple(sorted(aspects)), aspects))
    return rows


# Where a sentence breaks into clauses that can carry different sentiments.
_CLAUSE_BREAK = re.compile(
    r"[.!?;]+\s+|\n+|\s+-+\s+|--+|,?\s+\b(?:but|however|although|though|whereas|while|yet)\b", re.I
)


def clause_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each clause: sentence ends and contrastive words ("but") cut the text."""
    spans = []
    start = 0
    for m in _CLAUSE_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.start() if m.group(0).strip(" ,").lower() in _CONTRAST else m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if len(text[a:b].split()) >= 2]


_CONTRAST = {"but", "however", "although", "though", "whereas", "while", "yet"}


def mams_clauses(root: Path | None = None, part: str = "train") -> list[Example]:
    """Clauses of MAMS aspect-term sentences (``part``: train, val or test) labelled with their
    terms' polarity.

    Short texts with a neutral class (what review sentences about a table or a menu sound
    like), which the star-rated reviews cannot give. A clause is kept when its terms agree;
    sentences that also occur in the aspect-category validation or test sets (used to evaluate
    topics) are left out.
    """
    base = data_dir(root) / "mams-absa"
    held = {doc.text for part in ("val", "test") for doc in mams(part, root)}
    rows: list[Example] = []
    path = _need(base / "MAMS-ATSA" / f"{part}.jsonl")
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        text = doc["text"].strip()
        if text in held:
            continue
        for a, b in clause_spans(doc["text"]):
            polarities = {t["polarity"] for t in doc["aspect_terms"] if a <= t["from"] and t["to"] <= b}
            if len(polarities) == 1:
                clause = doc["text"][a:b].strip(" ,;")
                rows.append(Example(clause, polarities.pop(), "mams_clauses"))
    return rows


def review_test_set(root: Path | None = None) -> list[Example]:
    """The held-back review split: clothing and hotel test rows (never trained on)."""
    return clothing(root)["test"] + hotels(root)["test"]


def iter_csv(path: Path) -> Iterator[tuple[str, str]]:
    """``text,label`` rows of a user's CSV file (header required)."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path}: needs a header with the columns text,label (found {reader.fieldnames})"
            )
        for row in reader:
            yield row["text"] or "", (row["label"] or "").strip()
