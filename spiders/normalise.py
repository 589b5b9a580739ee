"""From a raw :class:`~earful.spiders.items.Mention` to a storable :class:`MentionIn`.

Extractors hand over what the page says; this module decides what it means, once, for every
spider: HTML becomes clean text (scripts dropped, entities decoded), dates in any common form
and language become UTC, ratings like ``"4,5"`` become numbers on the page's scale, the
language is identified when the page does not say it, and a mention without its own id gets a
key derived from its content. The item pipelines and the incremental-crawl check both call
:func:`normalise`, so a spider knows a mention's key exactly as the store will.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from earful.pipeline.store import MentionIn
from earful.spiders.items import Mention

logger = logging.getLogger(__name__)

_TAG = re.compile(r"<[a-zA-Z!/][^>]*>")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
MIN_CHARS_FOR_LANGUAGE = 20


class Dropped(ValueError):
    """The mention cannot be stored; the message is the reason, counted per crawl."""


@dataclass(frozen=True)
class Context:
    """What normalisation needs to know about the source."""

    source: str
    timezone: str = "UTC"  # for dates the page writes without a zone
    date_format: str | None = None  # strptime format, from a declarative source
    site_is_brand: bool = False


def clean_html(value: str) -> str:
    """Visible text of an HTML fragment: no tags, scripts or styles; entities decoded;
    paragraphs kept as blank-line breaks."""
    if _TAG.search(value):
        import html_text

        value = html_text.extract_text(value, guess_layout=True)
    else:
        value = html.unescape(value)
    lines = [_SPACES.sub(" ", line).strip() for line in value.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse_number(value: Any) -> float | None:
    """``4``, ``"4.5"``, ``"4,5"``, ``"4,5 / 5"`` -> a float; anything else -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _NUMBER.search(str(value))
    return float(match.group(0).replace(",", ".")) if match else None


def parse_date(value: str | datetime | None, context: Context) -> datetime | None:
    """A date as pages write it -> aware UTC, or None when it cannot be read.

    ISO 8601 first (what ``<time datetime>``, JSON-LD and feeds carry), then the source's
    declared format, then dateparser, which reads dates written out in many languages
    ("12. März 2026 um 09:41 Uhr"). A date without a zone is in the source's time zone.
    """
    if value is None or value == "":
        return None
    tz = ZoneInfo(context.timezone)
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if context.date_format:
            try:
                parsed = datetime.strptime(text, context.date_format)
            except ValueError:
                parsed = None
        if parsed is None:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
        if parsed is None:
            from email.utils import parsedate_to_datetime

            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                parsed = None
        if parsed is None:
            import dateparser

            parsed = dateparser.parse(
                text, settings={"PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}
            )
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None for text too short to tell."""
    letters = sum(ch.isalpha() for ch in text)
    if letters < MIN_CHARS_FOR_LANGUAGE:
        return None
    import py3langid

    code, _score = py3langid.classify(text)
    return str(code)


def normalise(item: Mention, context: Context) -> tuple[MentionIn, list[str]]:
    """The storable form of an item, and notes on what was discarded (e.g. a rating off its
    scale). Raises :class:`Dropped` when there is nothing worth storing."""
    notes: list[str] = []
    text = clean_html(item.text or "")
    if not text:
        raise Dropped("no text")
    title = clean_html(item.title) if item.title else None
    author = clean_html(item.author) if item.author else None
    published = parse_date(item.published, context)
    if item.published and published is None:
        notes.append("unreadable date")
    rating = parse_number(item.rating)
    best = parse_number(item.rating_best)
    worst = parse_number(item.rating_worst)
    if rating is not None:
        best = 5.0 if best is None else best
        worst = 1.0 if worst is None else worst
        if not (worst <= rating <= best) or best <= worst:
            notes.append("rating off its scale")
            rating = best = worst = None
    else:
        best = worst = None
    language = (item.language or "").split("-")[0].lower() or detect_language(text)
    values = {
        "source": context.source,
        "external_key": (item.external_key or None) and str(item.external_key)[:512],
        "text": text,
        "url": item.url,
        "kind": item.kind if item.kind in ("review", "comment", "post") else "review",
        "author": author or None,
        "published_at": published,
        "title": title or None,
        "rating": rating,
        "rating_worst": worst,
        "rating_best": best,
        "language": language,
        "parent_key": item.parent_key,
        "brand": item.brand,
        "is_brand_response": bool(item.is_brand_response),
    }
    try:
        return MentionIn.model_validate(values), notes
    except ValueError as exc:
        raise Dropped(str(exc).splitlines()[0] if str(exc) else "invalid") from None


def mention_key(item: Mention, context: Context) -> str:
    """The key the store will file this item under, cheaply when the site gave an id (no
    text cleaning or language detection: incremental crawls ask this of every item)."""
    if item.external_key:
        key = str(item.external_key)[:512].strip()
        if key:
            return key
    return normalise(item, context)[0].key()
