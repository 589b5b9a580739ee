"""Reviews and aggregate ratings from a page's schema.org structured data.

This module owns one job: given a page, find every schema.org ``Review`` (and its subtypes
``UserReview``, ``CriticReview``, ``EmployerReview``) in the page's JSON-LD, Microdata and RDFa,
wherever it sits (top level, in ``@graph``, under a Product's or a LocalBusiness's
``review``/``reviews``, a bare list of Reviews pointing back through ``itemReviewed``, a node
referenced by ``@id``), and hand each back as a raw :class:`~earful.spiders.items.Mention`. It
also reads the ``AggregateRating`` of the reviewed things, for reports.

Why a module of its own: structured data is the one place where review sites, shops, booking
sites and small business pages say the same thing the same way, whatever their language and
markup, so one extractor covers them all, and a spider needs its own selectors only for pages
without any. It relies on schema.org vocabulary alone, never on class names or page language.

What it does not do: clean up. Values are picked, not normalised: ``text`` may hold HTML and
entities (``&amp;``, even ``<script>``), ``published`` is the page's string, ratings are
``"4,5"`` or ``7`` out of ``5`` as written. The item pipelines turn those into clean text, UTC
datetimes and 0..1 ratings, and drop what does not validate, with a reason.

extruct reads the three syntaxes; what it does not do is done here:

* JSON-LD is parsed script by script. extruct parses all JSON-LD scripts of a page in one go
  and a single invalid script loses them all, even with ``errors="log"``; here a broken script
  loses only itself, and sloppy ones (trailing commas, ``//`` comments, ``<!-- -->`` or CDATA
  wrappers, several documents in one script) are read leniently.
* References are resolved: a node written as ``{"@id": ...}`` is looked up among the page's
  node definitions of the same syntax (JSON-LD ``@graph``, RDFa's flattened output), and
  relative ``@id``\\s are made absolute against the page, so ``#review-1`` keys differ between
  pages.
* RDFa comes in document order (pyRdfa's output order changes from run to run), a
  ``<time property datetime>`` gives its datetime (pyRdfa gives the text), and pyRdfa reads a
  tree cut down to the RDFa-bearing elements (it walks every element in Python: seconds on a
  multi-megabyte page otherwise).

A review written in two syntaxes on one page (an SEO plugin's JSON-LD over a theme's Microdata)
is returned once, from the first syntax of ``json-ld``, ``microdata``, ``rdfa``; the copies only
fill fields the first one lacks. Nothing here raises on page content: bad input gives fewer or
no results, and a log line.
"""

from __future__ import annotations

import codecs
import dataclasses
import html
import json
import logging
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urljoin

import extruct  # type: ignore[import-untyped]
import jstyleson  # type: ignore[import-untyped]
from extruct.utils import parse_xmldom_html  # type: ignore[import-untyped]
from w3lib.encoding import html_to_unicode
from w3lib.html import get_base_url

from earful.spiders.items import Mention

__all__ = ["REVIEW_TYPES", "SYNTAXES", "AggregateRating", "extract_aggregate_ratings", "extract_reviews"]

logger = logging.getLogger(__name__)

#: The syntaxes read, in order of preference when one review is written in several.
SYNTAXES: tuple[str, ...] = ("json-ld", "microdata", "rdfa")

#: schema.org types taken as a review of something. ``ClaimReview`` (fact checks) and
#: ``MediaReview`` (is this photo authentic?) are reviews of claims, not word of mouth.
REVIEW_TYPES = frozenset({"Review", "UserReview", "CriticReview", "EmployerReview"})

# Properties whose values are reviews even when an object there forgets its @type.
_REVIEW_PROPERTIES = frozenset({"review", "reviews"})

_SCHEMA_PREFIXES = (
    "http://schema.org/",
    "https://schema.org/",
    "http://www.schema.org/",
    "https://www.schema.org/",
    "schema:",
)

# pyRdfa's output comes in an order that changes from run to run; each typed RDFa node is
# given its element's position in the document through this (made-up) property.
_RDFA_ORDER = "https://earful.invalid/rdfa-order"

# Structured data nested deeper than this is garbage or an attack; it is cut off there.
_MAX_DEPTH = 64
# The lenient JSON reader is pure Python; scripts larger than this only get the strict one.
_MAX_LENIENT_CHARS = 2_000_000

_LEADING_WRAPPER = re.compile(r"^\s*(?:<!--|(?://|/\*)?\s*<!\[CDATA\[(?:\s*\*/)?)")
_TRAILING_WRAPPER = re.compile(r"(?:-->|(?://|/\*)?\s*\]\]>(?:\s*\*/)?)[\s;]*$")
_ISO_DATE = re.compile(r"\s*(\d{4}-\d{2}-\d{2})")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")

# Decoding a page declared UTF-8 that is not: bytes that are not UTF-8 are read as
# windows-1252 (the usual culprit: pages typed on Windows, declared utf-8 by the template),
# one invalid sequence at a time, so the valid UTF-8 around them is kept.
_CP1252_FALLBACK = "earful-cp1252-fallback"


def _decode_as_cp1252(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("cp1252", errors="replace"), exc.end


codecs.register_error(_CP1252_FALLBACK, _decode_as_cp1252)


@dataclass(frozen=True)
class AggregateRating:
    """The summary rating of a reviewed thing, as the page states it (raw, like a Mention's).

    ``count`` is the ``ratingCount``, else the ``reviewCount``; ``best`` and ``worst`` are
    ``None`` where the page leaves them out (schema.org defaults: 5 and 1).
    """

    item_name: str | None
    value: Any
    best: Any = None
    worst: Any = None
    count: Any = None
    item_type: str | None = None
    found_by: str | None = None


@dataclass
class _Graph:
    """One syntax's structured data on a page: top-level nodes and the node definitions by @id."""

    syntax: str
    roots: list[Any]
    index: dict[str, dict[str, Any]]
    base: str


def extract_reviews(
    body: str | bytes,
    url: str,
    *,
    encoding: str | None = None,
    syntaxes: Collection[str] = SYNTAXES,
) -> list[Mention]:
    """Every schema.org review in ``body`` (the page at ``url``) as a raw :class:`Mention`.

    ``encoding`` is the charset of the HTTP response, if known; it only matters for ``bytes``.
    Reviews come in syntax order (JSON-LD, Microdata, RDFa), each in document order. Reviews
    with neither text, nor title, nor rating are left out: there is nothing to monitor in them.
    """
    try:
        graphs = _structured_data(body, url, encoding=encoding, syntaxes=syntaxes)
        mentions: list[Mention] = []
        for graph in graphs:
            mentions.extend(_unique_keys(list(_reviews(graph, url))))
        return _unique_keys(_dedupe_reviews(mentions, url))
    except Exception:  # page content must never break a crawl
        logger.exception("reviews of %s could not be extracted", url)
        return []


def extract_aggregate_ratings(
    body: str | bytes,
    url: str,
    *,
    encoding: str | None = None,
    syntaxes: Collection[str] = SYNTAXES,
) -> list[AggregateRating]:
    """Every schema.org ``AggregateRating`` in ``body``, with the name of the thing it rates.

    The same rating written in several syntaxes is returned once (JSON-LD first).
    """
    try:
        graphs = _structured_data(body, url, encoding=encoding, syntaxes=syntaxes)
        ratings = [rating for graph in graphs for rating in _aggregate_ratings(graph)]
        return _dedupe_aggregates(ratings)
    except Exception:  # page content must never break a crawl
        logger.exception("aggregate ratings of %s could not be extracted", url)
        return []


# -- reading the page ----------------------------------------------------------------------


def _structured_data(
    body: str | bytes, url: str, *, encoding: str | None, syntaxes: Collection[str]
) -> list[_Graph]:
    text = _to_text(body, encoding)
    lowered = text.lower()
    # Cheap gates: a syntax's marker must appear somewhere before a tree is worth building.
    wanted = [
        syntax
        for syntax, marker in (("json-ld", "ld+json"), ("microdata", "itemscope"), ("rdfa", "typeof"))
        if syntax in syntaxes and marker in lowered
    ]
    if not wanted:
        return []
    base = get_base_url(text, url)
    try:
        # Parsed from UTF-8 bytes with the encoding given, so that a <meta charset> or an XML
        # declaration in the (already decoded) text cannot make lxml decode it again.
        tree = parse_xmldom_html(text.encode("utf-8", errors="replace"), encoding="utf-8")
    except Exception:
        logger.debug("%s is not parseable as HTML", url, exc_info=True)
        return []

    graphs: list[_Graph] = []
    if "json-ld" in wanted:
        graphs.append(_graph("json-ld", _jsonld_documents(tree, url), base))
    if "microdata" in wanted:
        items = _extruct(tree, base, "microdata", url)
        graphs.append(_graph("microdata", items, base, id_keys=("@id", "id")))
    if "rdfa" in wanted and _prune_for_rdfa(tree):
        _time_datetime_as_content(tree)
        _mark_rdfa_order(tree)
        graphs.append(_graph("rdfa", _extruct(tree, base, "rdfa", url), base))
    return graphs


def _to_text(body: str | bytes, encoding: str | None) -> str:
    if isinstance(body, str):
        return body
    raw = bytes(body)
    header = f"text/html; charset={encoding}" if encoding else None
    detected, text = html_to_unicode(header, raw)
    if codecs.lookup(detected).name == "utf-8" and "\ufffd" in text:
        data = raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors=_CP1252_FALLBACK)
    return text


def _jsonld_documents(tree: Any, url: str) -> list[Any]:
    documents: list[Any] = []
    for script in tree.iter("script"):
        kind = (script.get("type") or "").strip().lower()
        if not kind.startswith("application/ld+json"):
            continue
        parsed = _parse_json_leniently(script.text or "")
        if not parsed:
            logger.debug("%s: skipped a JSON-LD script that is not JSON", url)
        for document in parsed:
            documents.extend(document if isinstance(document, list) else [document])
    return documents


def _parse_json_leniently(source: str) -> list[Any]:
    """The JSON documents in a script: strict JSON first, then the usual sloppiness forgiven."""
    try:
        return [json.loads(source, strict=False)]
    except (ValueError, RecursionError):
        pass
    if len(source) > _MAX_LENIENT_CHARS:
        return []
    cleaned = _TRAILING_WRAPPER.sub("", _LEADING_WRAPPER.sub("", source, count=1), count=1).strip()
    try:
        # jstyleson drops // and /* */ comments and trailing commas.
        cleaned = jstyleson.dispose(cleaned)
        return [json.loads(cleaned, strict=False)]
    except (ValueError, RecursionError, IndexError, TypeError):
        pass
    # Several documents in one script, one after the other.
    decoder = json.JSONDecoder(strict=False)
    documents: list[Any] = []
    position = 0
    while position < len(cleaned):
        while position < len(cleaned) and cleaned[position] in " \t\r\n,;":
            position += 1
        if position >= len(cleaned):
            break
        try:
            document, position = decoder.raw_decode(cleaned, position)
        except (ValueError, RecursionError):
            break
        documents.append(document)
    return documents


def _extruct(tree: Any, base: str, syntax: str, url: str) -> list[Any]:
    try:
        data = extruct.extract(tree, base_url=base, syntaxes=[syntax], uniform=True, errors="strict")
    except Exception:
        logger.warning("%s: extruct could not read the %s", url, syntax, exc_info=True)
        return []
    items = data.get(syntax)
    return items if isinstance(items, list) else []


_RDFA_ELEMENTS = (
    "//*[@property or @typeof or @about or @resource or @vocab or @prefix or @rel or @rev"
    " or @datatype or @inlist] | //base"
)


def _prune_for_rdfa(tree: Any) -> bool:
    """Cut the tree down to what RDFa reads; False when nothing is left to read.

    pyRdfa walks every element in Python (seconds on a multi-megabyte page). Only elements with
    RDFa attributes, their ancestors (for context: vocab, prefixes, language, subjects) and the
    whole content of ``@property`` elements (literal values are their text) can make a triple,
    so everything else goes. Runs last: the tree is not read again.
    """
    keep: set[Any] = set()
    whole: set[Any] = set()
    for element in tree.xpath(_RDFA_ELEMENTS):
        if element.get("property") is not None:
            whole.add(element)
        while element is not None and element not in keep:
            keep.add(element)
            element = element.getparent()
    if not keep:
        return False
    stack = [tree.getroottree().getroot()]
    while stack:
        element = stack.pop()
        if element in whole:
            continue
        for child in list(element):
            if child in keep:
                stack.append(child)
            elif isinstance(child.tag, str):  # comments and processing instructions can stay
                element.remove(child)
    return True


def _mark_rdfa_order(tree: Any) -> None:
    for position, element in enumerate(tree.xpath("//*[@typeof]")):
        marker = element.makeelement("meta", {"property": _RDFA_ORDER, "content": str(position)})
        element.insert(0, marker)


def _time_datetime_as_content(tree: Any) -> None:
    # HTML+RDFa 1.1 reads a <time property> from its datetime attribute; pyRdfa, as extruct
    # calls it, takes the element's text ("2 March 2025"). An explicit @content says the same.
    for element in tree.iter("time"):
        if element.get("property") and element.get("datetime") and element.get("content") is None:
            element.set("content", element.get("datetime"))


# -- one shape for all syntaxes ------------------------------------------------------------


def _graph(syntax: str, documents: list[Any], base: str, *, id_keys: tuple[str, ...] = ("@id",)) -> _Graph:
    roots = [_normalise(document, base, id_keys, 0) for document in documents]
    return _Graph(syntax=syntax, roots=roots, index=_index(roots), base=base)


def _local_name(term: str) -> str:
    for prefix in _SCHEMA_PREFIXES:
        if term.startswith(prefix):
            return term[len(prefix) :]
    return term


def _normalise(value: Any, base: str, id_keys: tuple[str, ...], depth: int) -> Any:
    """Compact-ish JSON-LD: schema.org terms by local name, ``@value`` unwrapped, ``@type``
    always a list, ``@id`` absolute."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, list):
        return [_normalise(item, base, id_keys, depth + 1) for item in value]
    if not isinstance(value, dict):
        return value
    if "@value" in value:
        return _normalise(value["@value"], base, id_keys, depth + 1)
    node: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or key == "@context":
            continue
        if key in id_keys:
            if isinstance(item, str) and "@id" not in node:
                node["@id"] = _absolute_id(item, base)
        elif key == "@type":
            types = item if isinstance(item, list) else [item]
            node["@type"] = [_local_name(t) for t in types if isinstance(t, str)]
        else:
            node.setdefault(_local_name(key), _normalise(item, base, id_keys, depth + 1))
    return node


def _absolute_id(identifier: str, base: str) -> str:
    identifier = identifier.strip()
    if identifier.startswith("_:"):
        return identifier
    try:
        return urljoin(base, identifier)
    except ValueError:
        return identifier


def _index(roots: list[Any]) -> dict[str, dict[str, Any]]:
    """Node definitions by @id; the properties of a node defined in several places are merged."""
    index: dict[str, dict[str, Any]] = {}
    merged: set[str] = set()
    stack: list[Any] = list(reversed(roots))  # popped in document order: the first definition wins
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(reversed(value))
            continue
        if not isinstance(value, dict):
            continue
        stack.extend(reversed(list(value.values())))
        identifier = value.get("@id")
        if not isinstance(identifier, str) or not set(value) - {"@id"}:
            continue
        known = index.get(identifier)
        if known is None:
            index[identifier] = value
        elif known is not value:
            if identifier not in merged:
                known = index[identifier] = dict(known)
                merged.add(identifier)
            for key, item in value.items():
                if key == "@type":
                    known["@type"] = [
                        *known.get("@type", []),
                        *(t for t in item if t not in known.get("@type", [])),
                    ]
                else:
                    known.setdefault(key, item)
    return index


def _resolve(value: Any, index: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, dict):
        identifier = value.get("@id")
        if isinstance(identifier, str):
            return index.get(identifier, value)
    return value


def _walk(graph: _Graph) -> list[tuple[dict[str, Any], dict[str, Any] | None, str | None]]:
    """Every node once, in document order, references followed: (node, parent, property)."""
    found = list(_walk_unordered(graph))
    # A stable sort: only RDFa nodes carry a position, the other syntaxes keep the walk's order.
    return sorted(found, key=lambda entry: _rdfa_position(entry[0]))


def _rdfa_position(node: dict[str, Any]) -> int:
    position = _text(node.get(_RDFA_ORDER))
    return int(position) if position is not None and position.isdigit() else -1


def _walk_unordered(graph: _Graph) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None, str | None]]:
    seen: set[int] = set()
    stack: list[tuple[Any, dict[str, Any] | None, str | None]] = [
        (root, None, None) for root in reversed(graph.roots)
    ]
    while stack:
        value, parent, key = stack.pop()
        if isinstance(value, list):
            stack.extend((item, parent, key) for item in reversed(value))
            continue
        node = _resolve(value, graph.index)
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        yield node, parent, key
        stack.extend(
            (item, node, name) for name, item in reversed(node.items()) if isinstance(item, (dict, list))
        )


# -- picking values ------------------------------------------------------------------------


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    """The first non-blank string (or number, as a string) among the values, as written."""
    for item in _values(value):
        if isinstance(item, str) and item.strip():
            return item
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            return str(item)
    return None


def _scalar(value: Any) -> Any:
    """The first string or number among the values, as written (``"4,5"``, ``7``, ``""``)."""
    for item in _values(value):
        if isinstance(item, str) or (isinstance(item, (int, float)) and not isinstance(item, bool)):
            return item
    return None


def _iri(value: Any) -> str | None:
    for item in _values(value):
        if isinstance(item, str) and item.strip():
            return item.strip()
        if isinstance(item, dict):
            identifier = item.get("@id")
            if isinstance(identifier, str) and not identifier.startswith("_:"):
                return identifier
    return None


def _name(value: Any, index: dict[str, dict[str, Any]]) -> str | None:
    """A plain string, or the name of a Person / Organization / Language object."""
    for item in _values(value):
        item = _resolve(item, index)
        if isinstance(item, dict):
            name = _text(item.get("name")) or _text(item.get("alternateName"))
            if name:
                return name
        elif (text := _text(item)) is not None:
            return text
    return None


def _language(value: Any, index: dict[str, dict[str, Any]]) -> str | None:
    for item in _values(value):
        item = _resolve(item, index)
        if isinstance(item, dict):
            # A Language object: its code (alternateName) rather than its English name.
            code = _text(item.get("alternateName")) or _text(item.get("name"))
            if code:
                return code
        elif (text := _text(item)) is not None:
            return text
    return None


def _types(node: dict[str, Any]) -> list[str]:
    types = node.get("@type")
    return types if isinstance(types, list) else []


# -- reviews -------------------------------------------------------------------------------


def _is_review(node: dict[str, Any], key: str | None) -> bool:
    types = _types(node)
    if types:
        return any(t in REVIEW_TYPES for t in types)
    return key in _REVIEW_PROPERTIES


def _reviews(graph: _Graph, url: str) -> Iterator[Mention]:
    for node, _parent, key in _walk(graph):
        if _is_review(node, key):
            mention = _review(node, graph, url)
            if mention is not None:
                yield mention


def _review(node: dict[str, Any], graph: _Graph, url: str) -> Mention | None:
    index = graph.index
    rating = best = worst = None
    for value in _values(node.get("reviewRating")):
        value = _resolve(value, index)
        if isinstance(value, dict):
            rating = _scalar(value.get("ratingValue"))
            best = _scalar(value.get("bestRating"))
            worst = _scalar(value.get("worstRating"))
        else:
            rating = _scalar(value)
        if rating is not None:
            break
    text = _text(node.get("reviewBody")) or _text(node.get("description"))
    title = _text(node.get("name")) or _text(node.get("headline"))
    if text is None and title is None and rating is None:
        return None

    own_url = _iri(node.get("url"))
    if own_url is not None:
        try:
            own_url = urljoin(graph.base, own_url)
        except ValueError:
            own_url = None
    identifier = node.get("@id")
    key: str | None = None
    if isinstance(identifier, str) and not identifier.startswith("_:"):
        key = identifier
    elif own_url is not None and own_url not in (url, graph.base):
        # A review "url" that is just the page is no key: the page holds other reviews.
        key = own_url

    return Mention(
        text=text,
        external_key=key,
        url=own_url or url,
        kind="review",
        title=title,
        author=_name(node.get("author"), index) or _name(node.get("creator"), index),
        published=_text(node.get("datePublished")) or _text(node.get("dateCreated")),
        rating=rating,
        rating_best=best,
        rating_worst=worst,
        language=_language(node.get("inLanguage"), index),
        found_by=graph.syntax,
    )


def _unique_keys(mentions: list[Mention]) -> list[Mention]:
    """A key that several different reviews share identifies none of them: dropped."""
    counts: dict[str, int] = {}
    for mention in mentions:
        if mention.external_key is not None:
            counts[mention.external_key] = counts.get(mention.external_key, 0) + 1
    for mention in mentions:
        if mention.external_key is not None and counts[mention.external_key] > 1:
            mention.external_key = None
    return mentions


def _fold(value: str | None) -> str:
    if not value:
        return ""
    return _SPACE.sub(" ", _TAG.sub(" ", html.unescape(value))).strip().casefold()


def _number(value: Any) -> str:
    if isinstance(value, str):
        value = value.strip().replace(",", ".")
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return _fold(str(value)) if value is not None else ""


def _day(value: str | datetime | None) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()[:10]
    if not value:
        return ""
    match = _ISO_DATE.match(value)
    return match.group(1) if match else _fold(value)


def _content_key(mention: Mention) -> tuple[str, ...] | None:
    author, text = _fold(mention.author), _fold(mention.text)
    if text:
        return (author, text)
    if author:
        return (author, "", _fold(mention.title), _number(mention.rating))
    return None


def _same_day(first: Mention, second: Mention) -> bool:
    # Syntaxes often differ in precision ("2025-09-14T21:47:00+02:00" against "2025-09-14"),
    # and one of them may leave the date out.
    days = _day(first.published), _day(second.published)
    return not all(days) or days[0] == days[1]


def _same_review(first: Mention, second: Mention) -> bool:
    """Same author and text: the same review, unless the dates or one syntax's own keys differ."""
    if (
        first.found_by == second.found_by
        and first.external_key is not None
        and second.external_key is not None
        and first.external_key != second.external_key
    ):
        return False
    return _same_day(first, second)


def _dedupe_reviews(mentions: Iterable[Mention], url: str) -> list[Mention]:
    """One review per (author, date, text), or per external key; the first copy is kept."""
    kept: list[Mention] = []
    by_key: dict[str, Mention] = {}
    by_content: dict[tuple[str, ...], list[Mention]] = {}
    for mention in mentions:
        earlier = by_key.get(mention.external_key) if mention.external_key is not None else None
        content = _content_key(mention)
        if earlier is None and content is not None:
            earlier = next((m for m in by_content.get(content, []) if _same_review(m, mention)), None)
        if earlier is not None:
            _fill_missing(earlier, mention, url)
            mention = earlier
        else:
            kept.append(mention)
            if content is not None:
                by_content.setdefault(content, []).append(mention)
        if mention.external_key is not None:
            by_key.setdefault(mention.external_key, mention)
    return kept


def _fill_missing(kept: Mention, other: Mention, url: str) -> None:
    for name in ("text", "title", "author", "published", "language", "external_key"):
        if getattr(kept, name) is None and getattr(other, name) is not None:
            setattr(kept, name, getattr(other, name))
    if kept.rating is None and other.rating is not None:
        kept.rating, kept.rating_best, kept.rating_worst = other.rating, other.rating_best, other.rating_worst
    if kept.url == url and other.url != url:
        kept.url = other.url


# -- aggregate ratings ---------------------------------------------------------------------


def _aggregate_ratings(graph: _Graph) -> Iterator[AggregateRating]:
    for node, parent, key in _walk(graph):
        types = _types(node)
        if not ("AggregateRating" in types or (not types and key == "aggregateRating")):
            continue
        item = parent if key == "aggregateRating" else None
        if item is None:
            reviewed = [_resolve(value, graph.index) for value in _values(node.get("itemReviewed"))]
            item = next((value for value in reviewed if isinstance(value, dict)), None)
        value = _scalar(node.get("ratingValue"))
        count = _scalar(node.get("ratingCount"))
        if count is None:
            count = _scalar(node.get("reviewCount"))
        if value is None and count is None:
            continue
        item_types = _types(item) if item is not None else []
        yield AggregateRating(
            item_name=_text(item.get("name")) if item is not None else None,
            value=value,
            best=_scalar(node.get("bestRating")),
            worst=_scalar(node.get("worstRating")),
            count=count,
            item_type=item_types[0] if item_types else None,
            found_by=graph.syntax,
        )


def _dedupe_aggregates(ratings: list[AggregateRating]) -> list[AggregateRating]:
    kept: dict[tuple[str, str, str], AggregateRating] = {}
    for rating in ratings:
        key = (_fold(rating.item_name), _number(rating.value), _number(rating.count))
        earlier = kept.get(key)
        if earlier is None:
            kept[key] = rating
            continue
        missing = {
            field.name: getattr(rating, field.name)
            for field in dataclasses.fields(rating)
            if getattr(earlier, field.name) is None and getattr(rating, field.name) is not None
        }
        if missing:
            kept[key] = dataclasses.replace(earlier, **missing)
    return list(kept.values())
