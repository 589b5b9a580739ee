"""The one item every Earful spider yields: a :class:`Mention`, as found on the page.

Values are raw: ``text`` may still hold HTML, ``published`` is whatever the page says (an
ISO 8601 string, ``"12. März 2026"``, a datetime), ``rating`` may be ``"4,5"``. The item
pipelines (:mod:`earful.spiders.pipelines`) validate and normalise them, drop bad items with
a reason, and store the rest; extractors stay small because they never clean up.

:class:`MentionLoader` is for spiders that pick fields with selectors: it strips whitespace on
input and keeps the first value found on output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itemloaders.processors import Join, MapCompose, TakeFirst
from scrapy.loader import ItemLoader


@dataclass
class Mention:
    """A review, comment or post found on a page, before normalisation.

    ``external_key`` is the site's own id for it (a review's ``@id``, a comment's ``comment-123``
    anchor); without one the pipelines derive a stable key from author, date and text.
    ``parent_key`` is the external key of the comment it replies to. ``rating_best`` and
    ``rating_worst`` are the page's scale (schema.org defaults: 5 and 1).
    """

    text: str | None = None
    source: str | None = None
    external_key: str | None = None
    url: str | None = None
    kind: str = "review"  # review | comment | post
    title: str | None = None
    author: str | None = None
    published: str | datetime | None = None
    rating: Any = None
    rating_best: Any = None
    rating_worst: Any = None
    language: str | None = None
    parent_key: str | None = None
    brand: str | None = None
    is_brand_response: bool = False
    # Which extractor found it (json-ld, microdata, rdfa, wordpress, h-entry, rss, atom, ...).
    found_by: str | None = None


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class MentionLoader(ItemLoader):
    """Selectors in, a :class:`Mention` out: first non-empty value of each field."""

    default_item_class = Mention
    default_input_processor = MapCompose(_strip)
    default_output_processor = TakeFirst()
    text_out = Join("\n")
