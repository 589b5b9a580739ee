"""Comment feeds (RSS 2.0, RSS 1.0 and Atom) as raw mentions, and the comment feeds pages point at.

This module owns two jobs:

* :func:`extract_feed` reads a feed with ``feedparser`` and returns its entries as raw
  :class:`~earful.spiders.items.Mention` items: comments from a comment feed (WordPress's
  ``/comments/feed/``, a post's ``…/feed/``, any Atom feed with RFC 4685 threading), posts from a
  posts feed. It exists because a feed is the cheapest way to follow a blog's conversation: one
  small request per post, newest first, in a format that does not change with the theme.
* :func:`discover_comment_feeds` lists the comment feeds a page or a feed announces, so a crawl
  can start from a blog's front page, a post or its posts feed.

Keys agree with the HTML extractor. WordPress gives a comment feed item the guid
``<post guid>#comment-123`` (``https://blog.example/?p=42#comment-123``); its key here is
``"comment-123"``, exactly what :func:`earful.spiders.comments.extract_comments` gives the same
comment found in the page, so a blog crawled both ways stores each comment once. Other guids are
kept whole.

Threading. Atom feeds say what an entry answers with ``<thr:in-reply-to ref=… href=…>``
(feedparser drops its attributes, so they are read from the XML here): a ref that is a WordPress
comment, or another entry of the same feed, becomes ``parent_key``; a ref to the post means a
top-level comment. RSS has no threading element, but current WordPress starts a reply's
content with one translated paragraph, ``<p>In reply to <a href="…#comment-101">Jane</a>.</p>``;
that paragraph is recognised by its shape (a short paragraph whose only element is a link to a
``#comment-N`` permalink, never by its words), gives ``parent_key`` and is removed from ``text``,
so the text matches the page's. Feeds cannot tell the post author's replies from others, so
``is_brand_response`` is always False here; the HTML crawl knows better.

Fields are raw, like every extractor's: ``text`` is the entry's content (``content:encoded``,
Atom ``content``) as HTML, as feedparser's sanitiser leaves it (relative links made absolute),
else its description/summary; ``published`` is the feed's date string (``pubDate``, Atom
``published`` or ``updated``); comment titles ("By: Jane", "Comment on X by Y") are generated
boilerplate and are left out, post titles kept.

Errors. :func:`extract_feed` never raises on feed content. It returns a :class:`FeedResult`:
the mentions it could read and ``error``, a one-line description of what was wrong (feedparser's
"bozo" exception, "not a feed", "incomplete entries dropped"), or None for a clean feed. A
truncated feed keeps its complete entries and drops the one cut off mid-way, whose text would be
cut too. Declared-versus-actual encoding mismatches, which feedparser reports but reads through,
are not errors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

import feedparser  # type: ignore[import-untyped]
from parsel import Selector

from earful.spiders.comments import join_url, split_fragment, wordpress_comment_key
from earful.spiders.items import Mention

logger = logging.getLogger(__name__)

__all__ = ["FeedResult", "discover_comment_feeds", "extract_feed"]

FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)
_XML_FEED_TYPES = FEED_TYPES - {"application/feed+json"}
_THREAD_NS = "http://purl.org/syndication/thread/1.0"
_ATOM_NS = "http://www.w3.org/2005/Atom"

# A feed document starts (after an XML declaration, processing instructions, comments and a
# doctype) with one of these root elements.
_FEED_START = re.compile(
    r"^\s*(?:<\?xml[^>]*>\s*)?"  # XML declaration
    r"(?:(?:<\?[^>]*>|<!--.*?-->|<!DOCTYPE[^>]*>)\s*)*"  # stylesheets, comments, doctype
    r"<(?:[\w.-]+:)?(?:rss|feed|RDF)\b",  # the root: RSS 2.0, Atom, RSS 1.0 (rdf:RDF)
    re.DOTALL | re.IGNORECASE,
)
_CLOSED_ENTRY = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>")

# WordPress comment feed URLs: the site's (/comments/feed/, ?feed=comments-rss2) and a post's
# (<permalink>feed/, ?feed=rss2&p=42), each with optional atom/rss2/rdf variants.
_SITE_COMMENTS_PATH = re.compile(r"/comments/feed(?:/(?:rss2?|atom|rdf))?/?$")
_POST_FEED_PATH = re.compile(r"^(?P<base>.*/)feed(?:/(?:rss2?|atom|rdf))?/?$")
_SINGULAR_BODY_CLASSES = frozenset({"single", "page", "singular"})
_SINGULAR_BODY_PREFIXES = ("postid-", "page-id-")
# A hint only (titles are translated): URL shapes above are what discovery relies on.
_COMMENTS_TITLE = re.compile(r"comment|komment|comentario|reactie|kommentar", re.IGNORECASE)

# WordPress's translated "In reply to <a>Name</a>." paragraph at the start of a reply's content
# in comment feeds: a short paragraph whose only element is a link to a #comment-N permalink.
_REPLY_PREFIX = re.compile(
    r"^\s*<p>[^<>]{0,60}"  # "In reply to ", "Als Antwort auf ", or nothing
    r"<a\s(?:[^>]*?\s)?href=\"(?P<href>[^\"]*#comment-\d+)\"[^>]*>[^<>]{0,200}</a>"  # the parent
    r"[^<>]{0,40}</p>\s*",  # ".", " への返信。"
    re.IGNORECASE,
)

# feedparser reports these but parsed the document anyway: not a broken feed.
_BENIGN_BOZO: tuple[type[BaseException], ...] = (
    feedparser.CharacterEncodingOverride,
    feedparser.NonXMLContentType,
)


@dataclass(frozen=True)
class FeedResult:
    """What a feed held: ``mentions`` read from it, and ``error`` when it was not a clean feed.

    ``error`` is None for a well-formed feed; otherwise a one-line reason ("SAXParseException:
    unclosed CDATA section", "not a feed: no RSS or Atom root element") while ``mentions`` still
    holds whatever could be read, so a spider stores those and reports the source as broken.
    Iterating over a result iterates over its mentions.
    """

    mentions: list[Mention] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __iter__(self) -> Iterator[Mention]:
        """Iterates over ``mentions``, so callers that only want the mentions can loop over it."""
        return iter(self.mentions)

    def __len__(self) -> int:
        return len(self.mentions)


def extract_feed(body: bytes, url: str) -> FeedResult:
    """The entries of an RSS or Atom feed as raw mentions; see the module docs for fields.

    ``body`` is the feed as fetched (bytes; feedparser reads the XML declaration's encoding),
    ``url`` where it came from, against which relative links are resolved.
    """
    if isinstance(body, str):  # never hand feedparser a str: it would treat it as a URL or path
        body = body.encode("utf-8")
    body = bytes(body)
    try:
        parsed = feedparser.parse(
            body,
            response_headers={"content-location": url, "content-type": "application/xml"},
            resolve_relative_uris=True,
            sanitize_html=True,
        )
    except Exception as exc:  # feedparser is lenient, but a crawl must survive anything
        logger.warning("%s: feedparser failed: %s", url, exc)
        return FeedResult([], f"unreadable feed: {type(exc).__name__}: {exc}")

    version = str(parsed.get("version") or "")
    entries = list(parsed.get("entries") or [])
    errors: list[str] = []
    bozo = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if bozo is not None and not isinstance(bozo, _BENIGN_BOZO):
        errors.append(f"{type(bozo).__name__}: {bozo}")
        closed = len(_CLOSED_ENTRY.findall(body))
        if len(entries) > closed:
            dropped = len(entries) - closed
            entries = entries[:closed]
            errors.append(f"{dropped} incomplete {'entry' if dropped == 1 else 'entries'} dropped")
    if not version and not entries:
        errors.insert(0, "not a feed: no RSS or Atom root element")

    found_by = "atom" if version.startswith("atom") else "rss"
    feed_meta = parsed.get("feed") or {}
    comment_feed = _is_comment_feed_url(url) or any(
        _is_comment_feed_url(str(link.get("href") or ""))
        for link in feed_meta.get("links", []) or []
        if link.get("rel") == "self"
    )
    threading = _atom_threading(body, url) if _THREAD_NS.encode() in body else {}
    ids = {str(e.get("id") or "").strip() for e in entries} - {""}

    mentions: list[Mention] = []
    unreadable = 0
    for entry in entries:
        try:
            mention = _entry_mention(entry, url, found_by, feed_meta, comment_feed, threading, ids)
        except Exception:  # one odd entry must not lose the others
            logger.exception("%s: feed entry could not be read", url)
            unreadable += 1
            continue
        if mention is not None:
            mentions.append(mention)
    if unreadable:
        errors.append(f"{unreadable} unreadable {'entry' if unreadable == 1 else 'entries'} skipped")
    return FeedResult(mentions, "; ".join(errors) or None)


def _entry_mention(
    entry: Any,
    url: str,
    found_by: str,
    feed_meta: Any,
    comment_feed: bool,
    threading: dict[str, list[tuple[str, str]]],
    feed_ids: set[str],
) -> Mention | None:
    guid = str(entry.get("id") or "").strip()
    link = str(entry.get("link") or "").strip()
    link = (join_url(url, link) or "") if link else ""
    wordpress_key = wordpress_comment_key(guid) or wordpress_comment_key(link)
    refs = threading.get(guid) or threading.get(link)
    is_comment = wordpress_key is not None or refs is not None or comment_feed

    text, language = _entry_text(entry)
    feed_language = feed_meta.get("language") or None
    # A feed's language (RSS <language>, Atom xml:lang, inherited by every entry) is the site's,
    # not a commenter's: for a comment only an entry's own, different declaration counts.
    language = (language if language != feed_language else None) if is_comment else language or feed_language
    title = _squash(str(entry.get("title") or "")) or None
    if not text and not (title and not is_comment):
        return None

    parent_key: str | None = None
    if is_comment:
        for ref, href in refs or []:
            parent_key = (
                wordpress_comment_key(ref)
                or wordpress_comment_key(href)
                or (_entry_key(ref) if ref in feed_ids and ref != guid else None)
            )
            if parent_key:
                break
        if text:
            prefix_parent, rest = _split_reply_prefix(text)
            if prefix_parent and (parent_key is None or parent_key == prefix_parent):
                parent_key = prefix_parent
                text = rest

    author_detail = entry.get("author_detail") or {}
    author = _squash(str(author_detail.get("name") or entry.get("author") or "")) or None
    published = entry.get("published") or entry.get("updated") or None
    return Mention(
        text=text or None,
        external_key=wordpress_key or _entry_key(guid) or _entry_key(link),
        url=link or None,
        kind="comment" if is_comment else "post",
        title=None if is_comment else title,
        author=author,
        published=str(published).strip() if published else None,
        language=str(language) if language else None,
        parent_key=parent_key,
        found_by=found_by,
    )


def _entry_key(ref: str) -> str | None:
    ref = ref.strip()
    return (wordpress_comment_key(ref) or ref) if ref else None


def _entry_text(entry: Any) -> tuple[str | None, str | None]:
    """The entry's content (HTML as sanitised by feedparser), else its summary; and its language."""
    for content in entry.get("content") or []:
        value = str(content.get("value") or "").strip()
        if value:
            return value, content.get("language") or None
    summary = str(entry.get("summary") or "").strip()
    detail = entry.get("summary_detail") or {}
    return (summary or None), detail.get("language") or None


def _split_reply_prefix(text: str) -> tuple[str | None, str]:
    """(parent key, text without the paragraph) when ``text`` starts with WordPress's
    "In reply to <a href="…#comment-N">Name</a>." paragraph and has more after it."""
    match = _REPLY_PREFIX.match(text)
    if not match:
        return None, text
    rest = text[match.end() :].strip()
    key = wordpress_comment_key(match.group("href"))
    if not key or not rest:
        return None, text
    return key, rest


def _atom_threading(body: bytes, url: str) -> dict[str, list[tuple[str, str]]]:
    """Per Atom entry id (and alternate link), its ``thr:in-reply-to`` (ref, href) pairs."""
    try:
        root = Selector(body=body, type="xml", base_url=url).root
    except Exception as exc:
        logger.debug("%s: no threading read: %s", url, exc)
        return {}
    if root is None or not isinstance(getattr(root, "tag", None), str):
        return {}
    threading: dict[str, list[tuple[str, str]]] = {}
    for entry in root.iter(f"{{{_ATOM_NS}}}entry"):
        pairs = []
        for reply in entry.iter(f"{{{_THREAD_NS}}}in-reply-to"):
            href = (reply.get("href") or "").strip()
            pairs.append(
                ((reply.get("ref") or "").strip(), (join_url(reply.base or url, href) or "") if href else "")
            )
        if not pairs:
            continue
        entry_id = (entry.findtext(f"{{{_ATOM_NS}}}id") or "").strip()
        if entry_id:
            threading[entry_id] = pairs
        for link in entry.iter(f"{{{_ATOM_NS}}}link"):
            alternate = join_url(link.base or url, link.get("href") or "")
            if (link.get("rel") or "alternate") == "alternate" and link.get("href") and alternate:
                threading[alternate] = pairs
    return threading


def _squash(text: str) -> str:
    return " ".join(text.split())


# --- discovery -------------------------------------------------------------------------------


def discover_comment_feeds(body: str | bytes, url: str) -> list[str]:
    """Absolute URLs of the comment feeds a page or a feed points at, in document order.

    From a feed: each item's ``wfw:commentRss`` and each Atom ``<link rel="replies">`` of a feed
    type. From an HTML page: ``<link rel="alternate">`` feeds in the head that are comment feeds
    by their URL (WordPress's ``/comments/feed/``, ``?feed=comments-rss2``, and on a single post
    the post's own ``…/feed/`` or ``?feed=rss2&p=N``) or, as a hint, by a title that says
    "comment" in one of a few languages; plus ``<link rel="replies">``. The site's main posts
    feed is never returned. Never raises; garbage gives an empty list.
    """
    if not body or not body.strip():
        return []
    try:
        head = body[:4096].decode("utf-8", "replace") if isinstance(body, bytes) else body[:4096]
        if _FEED_START.match(head.lstrip("\ufeff")):
            found = _discover_in_feed(body, url)
        else:
            found = _discover_in_html(body, url)
    except Exception as exc:
        logger.warning("%s: comment feed discovery failed: %s", url, exc)
        return []
    unique: list[str] = []
    for feed_url in found:
        parts = _split(feed_url)
        if feed_url not in unique and parts is not None and parts.scheme in ("http", "https"):
            unique.append(feed_url)
    return unique


def _discover_in_feed(body: str | bytes, url: str) -> list[str]:
    sel = _selector(body, "xml", url)
    root = sel.root
    if root is None or not isinstance(getattr(root, "tag", None), str):
        return []
    found: list[str] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        namespace, _, local = el.tag[1:].partition("}") if el.tag.startswith("{") else ("", "", el.tag)
        if local.lower() == "commentrss" and "wellformedweb.org/commentapi" in namespace.lower():
            href = (el.text or "").strip()
            joined = join_url(el.base or url, href) if href else None
            if joined:
                found.append(joined)
        elif local == "link" and namespace == _ATOM_NS and _is_replies_feed_link(el):
            joined = join_url(el.base or url, el.get("href"))
            if joined:
                found.append(joined)
    return found


def _is_replies_feed_link(el: Any) -> bool:
    rels = (el.get("rel") or "").lower().split()
    link_type = (el.get("type") or "").split(";")[0].strip().lower()
    return "replies" in rels and bool((el.get("href") or "").strip()) and link_type in _XML_FEED_TYPES | {""}


def _discover_in_html(body: str | bytes, url: str) -> list[str]:
    sel = _selector(body, "html", url)
    base = url
    for href in sel.xpath("//head/base/@href").getall():
        joined = join_url(url, href) if href.strip() else None
        if joined:
            base = joined
            break
    body_classes = set(" ".join(sel.xpath("//body/@class").getall()).split())
    singular = bool(body_classes & _SINGULAR_BODY_CLASSES) or any(
        c.startswith(_SINGULAR_BODY_PREFIXES) for c in body_classes
    )
    page_parts = _split(base)
    page_dir = (page_parts.path if page_parts else "").rsplit("/", 1)[0] + "/"
    found: list[str] = []
    for link in sel.xpath("//link[@href]"):
        rels = (link.attrib.get("rel") or "").lower().split()
        link_type = (link.attrib.get("type") or "").split(";")[0].strip().lower()
        href = link.attrib["href"].strip()
        if not href or link_type not in FEED_TYPES:
            continue
        feed_url = join_url(base, href)
        if not feed_url:
            continue
        is_comment_feed = (
            _is_comment_feed_url(feed_url)
            or (singular and _is_post_feed_of(feed_url, page_dir))
            or bool(_COMMENTS_TITLE.search(link.attrib.get("title") or ""))
        )
        if "replies" in rels or ("alternate" in rels and is_comment_feed):
            found.append(feed_url)
    return found


def _is_comment_feed_url(feed_url: str) -> bool:
    """A WordPress site-wide comment feed URL (pretty or plain permalinks)."""
    if not feed_url:
        return False
    parts = _split(split_fragment(feed_url)[0])
    if parts is None:
        return False
    if _SITE_COMMENTS_PATH.search(parts.path):
        return True
    feed = parse_qs(parts.query).get("feed", [""])[0]
    return feed.startswith("comments-")


def _is_post_feed_of(feed_url: str, page_dir: str) -> bool:
    """A post's own comment feed, as linked from that post's page: ``<post>/feed/`` where
    ``<post>/`` is the page's path or one of its ancestors (but not the site root), or the
    plain-permalink ``?feed=rss2&p=42``."""
    parts = _split(feed_url)
    if parts is None:
        return False
    query = parse_qs(parts.query)
    if query.get("feed") and (query.get("p") or query.get("page_id")):
        return True
    match = _POST_FEED_PATH.match(parts.path)
    if not match:
        return False
    base = match.group("base")
    return base != "/" and page_dir.startswith(base)


def _selector(body: str | bytes, kind: str, url: str) -> Selector:
    if isinstance(body, bytes):
        return Selector(body=body, type=kind, base_url=url)
    return Selector(text=body, type=kind, base_url=url)


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:
        return None
