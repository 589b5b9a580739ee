"""Blog comment threads in HTML: WordPress markup and microformats2, replies linked to parents.

This module owns one job: given a blog post's HTML, find every published comment on it and hand
each back as a raw :class:`~earful.spiders.items.Mention` (``kind="comment"``) with its author,
date, permalink, the site's own key and the key of the comment it replies to. Two families of
markup cover most blogs, whatever their language:

* **WordPress**, in the variants its themes really print. Core's HTML5 walker (Twenty
  Twenty-One and most current themes: ``<li id="comment-123">`` holding an ``article.comment-body``
  with ``.fn``, ``.comment-metadata time[datetime]`` and ``.comment-content``), core's older XHTML
  walker and the Twenty Ten/Eleven callbacks (``ol.commentlist``, ``li#li-comment-123`` around
  ``#comment-123``, ``cite.fn``, a date written only as text in ``.commentmetadata``), and block
  themes (``wp-block-comment-template``, ``wp-block-comment-author-name``,
  ``wp-block-comment-date``, ``wp-block-comment-content``, replies in a bare ``<ol>``).
* **microformats2** (IndieWeb sites, Known, static site generators): ``h-cite``/``h-entry``
  comments in a post's ``p-comment``, nested replies, and replies elsewhere on the page that say
  what they answer with ``u-in-reply-to``; parsed with ``mf2py``.

Why markup and never words: themes print "says:", "sagt:", "Reply", "Antworten" or "Répondre",
dates as "12. März 2026 um 09:41 Uhr", and the moderation notice in the site's language. Only
ids, classes and microformat properties are the same everywhere, so nothing here reads a label.

What each field holds (raw, as :mod:`earful.spiders.items` asks; the pipeline normalises):

* ``text`` is the **inner HTML** of the comment's body (``.comment-content``,
  ``.wp-block-comment-content``, or the body paragraphs of an old ``.comment-body``; mf2's
  ``e-content`` HTML). HTML rather than text keeps paragraphs, links and line breaks for the
  pipeline's one HTML-to-text conversion, the same one feed content goes through.
* ``external_key`` is ``"comment-123"`` for WordPress (from ``li#comment-123``,
  ``li#li-comment-123`` or ``#div-comment-123``); comment ids are unique across a WordPress site,
  and :mod:`earful.spiders.feeds` maps a comment feed's ``…#comment-123`` guid to the same key.
  An mf2 comment's key is its absolute ``u-url`` (a ``#comment-123`` fragment gives the
  WordPress key), else its ``uid``, else none (the pipeline derives one).
* ``parent_key`` is the key of the comment it answers (the nearest enclosing comment, or mf2
  ``in-reply-to``); top-level comments answer the post and have none.
* ``published`` is the ``datetime`` attribute where there is one, else the permalink's text.
* ``is_brand_response`` is ``site_is_brand`` for replies by the post's author: WordPress marks
  them with the ``bypostauthor`` class (set only for the logged-in author, so it cannot be
  faked by a commenter); in mf2, a comment whose author URL is the post author's URL.
* ``language`` is set only when the comment's own markup declares one (a ``lang`` attribute on
  the comment); the page's ``<html lang>`` is the site's language, not the commenter's, so
  without a per-comment declaration the pipeline identifies the language from the text.

Skipped: comments awaiting moderation (WordPress shows them, with a notice, only to their
author; they are not public and may never be), pingbacks and trackbacks (link notifications,
not anybody's words), and comments with no body. A comment found both as WordPress markup and
as mf2 (themes that print both) is returned once, from WordPress. Nothing here raises on page
content: malformed HTML gives fewer or no comments and a log line.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

import mf2py  # type: ignore[import-untyped]
from parsel import Selector
from w3lib.encoding import html_to_unicode

from earful.spiders.items import Mention

logger = logging.getLogger(__name__)

__all__ = ["extract_comments", "join_url", "split_fragment", "wordpress_comment_key"]

# The ids WordPress gives a comment's elements: li#comment-N (core), li#li-comment-N with an
# inner #comment-N (Twenty Ten/Eleven), article#div-comment-N (core HTML5 walker).
_WP_ID = re.compile(r"^(?:li-|div-)?comment-(\d+)$")

_CONTENT_CLASSES = ("comment-content", "wp-block-comment-content", "e-content")
_BODY_CLASS = "comment-body"
# Parts of an old-style .comment-body that are not the comment's words.
_NOT_BODY_CLASSES = frozenset(
    {
        "comment-author",
        "vcard",
        "comment-meta",
        "commentmetadata",
        "comment-metadata",
        "reply",
        "comment-reply-link",
        "comment-awaiting-moderation",
        "edit-link",
        "comment-edit-link",
        "says",
        "children",
    }
)
_AUTHOR_CLASSES = ("fn", "wp-block-comment-author-name", "comment-author-name")
_META_CLASSES = frozenset(
    {"comment-metadata", "comment-meta", "commentmetadata", "wp-block-comment-date", "comment-date"}
)
_EDIT_CLASSES = frozenset({"edit-link", "comment-edit-link", "wp-block-comment-edit-link"})
_PENDING_CLASS = "comment-awaiting-moderation"
_PING_CLASSES = frozenset({"pingback", "trackback"})
_MF2_ROOTS = ("h-entry", "h-cite")
_MF2_ENTRY_TYPES = frozenset({"h-entry", "h-cite", "h-comment"})
_TAG = re.compile(r"<[^>]*>")


def wordpress_comment_key(ref: str | None) -> str | None:
    """``"comment-123"`` for a WordPress comment reference, else None.

    Accepts a comment permalink or guid (``https://blog.example/2026/03/post/#comment-123``,
    ``https://blog.example/?p=42#comment-123``), a bare fragment (``#comment-123``) or an element
    id (``comment-123``, ``li-comment-123``, ``div-comment-123``). The HTML extractor and the
    comment feed extractor both key WordPress comments through here, so the same comment gets
    the same key from a page and from a feed.
    """
    if not ref:
        return None
    ref = ref.strip()
    fragment = split_fragment(ref)[1] if "#" in ref else ref
    match = _WP_ID.match(fragment)
    return f"comment-{match.group(1)}" if match else None


def split_fragment(url: str) -> tuple[str, str]:
    """``(url without fragment, fragment)``, by string: unlike ``urldefrag`` it never raises on a
    malformed URL (``http://[::1``), and pages are full of those."""
    base, _, fragment = url.partition("#")
    return base, fragment


def join_url(base: str, href: str) -> str | None:
    """``href`` resolved against ``base``, or None where Python cannot parse the URL."""
    try:
        return urljoin(base, href.strip())
    except ValueError:
        return None


def extract_comments(body: str | bytes, url: str, *, site_is_brand: bool = False) -> list[Mention]:
    """The published comments on a blog post page, in page order, as raw mentions.

    ``body`` is the page (bytes are decoded by BOM, ``<meta charset>``, then UTF-8); ``url`` is
    where it was fetched from, for resolving links. ``site_is_brand`` says the blog is the
    brand's own, so the post author's replies are the brand's responses.
    """
    text = _decode(body)
    if not text.strip():
        return []
    try:
        root = Selector(text=text, type="html", base_url=url).root
    except Exception as exc:  # lxml can refuse pathological input; a page is never worth a crash
        logger.warning("%s: cannot parse page for comments: %s", url, exc)
        return []
    if root is None or not isinstance(getattr(root, "tag", None), str):
        return []
    base = _base_url(root, url)
    try:
        mentions = _wordpress_comments(root, base, site_is_brand)
    except Exception:  # a bug meeting a page nobody foresaw must not stop the crawl
        logger.exception("%s: WordPress comments could not be read", url)
        mentions = []
    if _has_mf2_entries(root):
        page_lang = next((str(v).strip() for v in root.xpath("/html/@lang")), None)
        try:
            found = _mf2_comments(text, base, site_is_brand, page_lang)
        except Exception:
            logger.exception("%s: microformats comments could not be read", url)
            found = []
        # Themes that print both WordPress and mf2 markup (SemPress, Autonomie) give each comment
        # twice: the mf2 copy is dropped when its key, or its words, are a WordPress comment's.
        seen_keys = {m.external_key for m in mentions if m.external_key}
        seen_words = {_words(m.text) for m in mentions}
        for mention in found:
            key, words = mention.external_key, _words(mention.text)
            if (key and key in seen_keys) or words in seen_words:
                continue
            mentions.append(mention)
            if key:
                seen_keys.add(key)
    return mentions


# --- parsing helpers -----------------------------------------------------------------------


def _decode(body: str | bytes) -> str:
    if isinstance(body, str):
        return body
    try:
        return html_to_unicode(None, bytes(body))[1]
    except Exception:  # w3lib falls back itself; this is belt and braces for odd codecs
        return bytes(body).decode("utf-8", errors="replace")


def _base_url(root: Any, url: str) -> str:
    """The URL relative links resolve against: ``<base href>`` if the page sets one."""
    for href in root.xpath("//head/base/@href"):
        joined = join_url(url, str(href)) if str(href).strip() else None
        if joined:
            return joined
    return url


def _classes(el: Any) -> set[str]:
    value = el.get("class") if isinstance(getattr(el, "tag", None), str) else None
    return set(value.split()) if value else set()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _words(fragment: str | None) -> str:
    """An HTML fragment's words, for telling two serialisations of one comment apart."""
    return _squash(html.unescape(_TAG.sub(" ", fragment or "")))


def _text_of(el: Any, skip_classes: frozenset[str] = frozenset()) -> str:
    """Visible text of an element, whitespace collapsed, minus descendants with skip classes."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if node.text:
            parts.append(node.text)
        for child in node:
            if isinstance(child.tag, str) and not (skip_classes & _classes(child)):
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    return _squash("".join(parts))


def _serialize(el: Any) -> str:
    return str(Selector(root=el, type="html").get())


def _inner_html(el: Any, keep: Callable[[Any], bool] | None = None) -> str:
    """The element's content as HTML (its children, not the element itself).

    ``keep`` filters child elements; text between children is kept, comments are dropped.
    """
    parts = [html.escape(el.text or "", quote=False)]
    for child in el:
        if isinstance(child.tag, str) and (keep is None or keep(child)):
            parts.append(_serialize(child))
        if child.tail:
            parts.append(html.escape(child.tail, quote=False))
    return "".join(parts).strip()


# --- WordPress -----------------------------------------------------------------------------


def _wordpress_comments(root: Any, url: str, site_is_brand: bool) -> list[Mention]:
    # Every element with a comment id belongs to that comment; the first one in document order
    # (the outermost: li#li-comment-N before its div#comment-N) is the comment's element.
    owner: dict[Any, str] = {}
    outer: dict[str, Any] = {}
    for el in root.xpath("//*[@id]"):
        match = _WP_ID.match((el.get("id") or "").strip())
        if not match:
            continue
        number = match.group(1)
        if number not in outer:
            outer[number] = el
            owner[el] = number
        elif any(anc is outer[number] for anc in el.iterancestors()):
            owner[el] = number
        # else: a second copy of the same id elsewhere on the page; the first one wins

    page = split_fragment(url)[0]
    mentions: list[Mention] = []
    for number, element in outer.items():
        mention = _wordpress_comment(element, number, owner, page, site_is_brand)
        if mention is not None:
            mentions.append(mention)
    return mentions


def _own_elements(element: Any, number: str, owner: dict[Any, str]) -> list[Any]:
    """The comment's elements in document order, without the subtrees of nested comments."""
    found: list[Any] = []
    stack = [element]
    while stack:
        el = stack.pop()
        found.append(el)
        for child in reversed(list(el)):
            if not isinstance(child.tag, str):
                continue
            child_owner = owner.get(child)
            if child_owner is not None and child_owner != number:
                continue
            stack.append(child)
    return found


def _first_with_class(elements: list[Any], classes: tuple[str, ...]) -> Any:
    for cls in classes:
        for el in elements:
            if cls in _classes(el):
                return el
    return None


def _wordpress_comment(
    element: Any, number: str, owner: dict[Any, str], page: str, site_is_brand: bool
) -> Mention | None:
    key = f"comment-{number}"
    own = _own_elements(element, number, owner)
    id_classes: set[str] = set()
    for el in own:
        if owner.get(el) == number:
            id_classes |= _classes(el)
    if id_classes & _PING_CLASSES or "unapproved" in id_classes:
        return None
    if any(_PENDING_CLASS in _classes(el) for el in own):
        return None

    content = _first_with_class(own, _CONTENT_CLASSES)
    if content is not None:
        text = _inner_html(content)
        in_content = set(content.iter())
    else:
        # Old markup: the words are the paragraphs of .comment-body (core's XHTML walker, Twenty
        # Ten), or of the comment element itself (core's walker with style "div").
        body = _first_with_class(own, (_BODY_CLASS,))
        if body is None and "comment" in id_classes:
            body = element
        if body is None:
            return None
        words = [
            child
            for child in body
            if isinstance(child.tag, str)
            and not (_classes(child) & _NOT_BODY_CLASSES)
            and owner.get(child, number) == number
        ]
        text = _inner_html(body, keep=lambda child: child in words)
        in_content = {el for child in words for el in child.iter()}
    if not text:
        return None
    # Author, date and permalink come from the comment's chrome, never from its words.
    chrome = [el for el in own if el not in in_content or el is element]

    author_el = _first_with_class(chrome, _AUTHOR_CLASSES)
    if author_el is not None:
        author = _text_of(author_el)
    else:
        author_box = _first_with_class(chrome, ("comment-author",))
        author = _text_of(author_box, frozenset({"says", "avatar"})) if author_box is not None else ""

    permalink = _permalink(chrome, number)
    published = _published(chrome, permalink)

    parent_key = None
    for ancestor in element.iterancestors():
        if ancestor in owner:
            parent_key = f"comment-{owner[ancestor]}"
            break

    href = permalink.get("href") if permalink is not None else None
    return Mention(
        text=text,
        external_key=key,
        url=(join_url(page, href) if href else None) or f"{page}#{key}",
        kind="comment",
        author=author or None,
        published=published or None,
        language=_own_language(element, content),
        parent_key=parent_key,
        is_brand_response=site_is_brand and "bypostauthor" in id_classes,
        found_by="wordpress",
    )


def _permalink(chrome: list[Any], number: str) -> Any:
    """The comment's own ``<a href="…#comment-N">`` (the date link in every WordPress theme)."""
    for el in chrome:
        if el.tag != "a" or "comment-reply-link" in _classes(el):
            continue
        href = el.get("href") or ""
        if "#" in href and split_fragment(href)[1] == f"comment-{number}":
            return el
    return None


def _published(chrome: list[Any], permalink: Any) -> str:
    """The ``datetime`` of the comment's ``<time>`` (metadata first), else the date as written."""
    times = [el for el in chrome if el.tag == "time" and (el.get("datetime") or "").strip()]
    in_meta = [el for el in times if any(_classes(a) & _META_CLASSES for a in el.iterancestors())]
    for el in in_meta or times:
        return str(el.get("datetime")).strip()
    if permalink is not None:
        written = _text_of(permalink)
        if written:
            return written
    for el in chrome:
        if _classes(el) & _META_CLASSES:
            written = _text_of(el, _EDIT_CLASSES | {_PENDING_CLASS})
            if written:
                return written
    return ""


def _own_language(*elements: Any) -> str | None:
    """A ``lang`` the comment itself declares (on its element or its body), not the page's."""
    for el in elements:
        lang = (el.get("lang") or "").strip() if el is not None else ""
        if lang:
            return lang
    return None


# --- microformats2 -------------------------------------------------------------------------


def _has_mf2_entries(root: Any) -> bool:
    condition = " or ".join(
        f"contains(concat(' ', normalize-space(@class), ' '), ' {c} ')" for c in _MF2_ROOTS
    )
    return bool(root.xpath(f"boolean(//*[{condition}])"))


def _mf2_comments(text: str, url: str, site_is_brand: bool, page_lang: str | None) -> list[Mention]:
    try:
        # doc is always given: with doc=None mf2py would fetch the URL itself.
        parsed = mf2py.parse(doc=text, url=url, html_parser="lxml")
    except Exception as exc:
        logger.warning("%s: microformats could not be parsed: %s", url, exc)
        return []
    items = [i for i in parsed.get("items", []) if isinstance(i, dict)]
    page = split_fragment(url)[0]

    # The post: top-level entries that reply to nothing. Their URLs are "the post" when a reply
    # says what it answers, and their authors' URLs identify the post author's own replies.
    posts = [i for i in items if _is_entry(i) and not _prop(i, "in-reply-to")]
    post_urls = {page} | {split_fragment(u)[0] for p in posts for u in _urls(p)}
    author_urls = {_norm_url(u) for p in posts for a in _prop(p, "author") for u in _author_urls(a)}

    walker = _Mf2Walker(page, post_urls, author_urls, site_is_brand, page_lang)
    for item in items:
        if _is_entry(item) and walker.is_reply_here(item):
            walker.emit(item, structural_parent=None)
        else:
            walker.visit(item, parent_key=None, is_comment=False)
    return walker.mentions


class _Mf2Walker:
    """Collects comments from a parsed mf2 tree, depth first, keeping reply links."""

    def __init__(
        self,
        page: str,
        post_urls: set[str],
        author_urls: set[str],
        site_is_brand: bool,
        page_lang: str | None,
    ) -> None:
        self.page = page
        self.post_urls = post_urls
        self.author_urls = author_urls
        self.site_is_brand = site_is_brand
        self.page_lang = page_lang
        self.mentions: list[Mention] = []
        self.seen: set[int] = set()

    def key_for(self, ref: str) -> str | None:
        """A comment's key from its URL; None when the URL is the post itself."""
        wordpress = wordpress_comment_key(ref)
        if wordpress:
            return wordpress
        base, fragment = split_fragment(ref)
        if not fragment and base in self.post_urls:
            return None
        return ref

    def is_reply_here(self, item: dict[str, Any]) -> bool:
        """An entry with in-reply-to pointing at this post or at a comment on this page."""
        return any(split_fragment(ref)[0] in self.post_urls for ref in _reply_refs(item))

    def visit(self, item: dict[str, Any], parent_key: str | None, is_comment: bool) -> None:
        for value in _prop(item, "comment"):
            if isinstance(value, dict) and _is_entry(value):
                self.emit(value, structural_parent=parent_key)
        for child in item.get("children", []) or []:
            if not isinstance(child, dict):
                continue
            # Under a comment every entry is a reply; elsewhere (a post, a feed of posts) only
            # entries answering this page are, not e.g. the blog's own reply posts to other sites.
            if _is_entry(child) and (is_comment or self.is_reply_here(child)):
                self.emit(child, structural_parent=parent_key)
            else:
                self.visit(child, parent_key, is_comment)

    def emit(self, item: dict[str, Any], structural_parent: str | None) -> None:
        if id(item) in self.seen:
            return
        self.seen.add(id(item))
        key = self.comment_key(item)
        parent = structural_parent
        for ref in _reply_refs(item):
            parent = self.key_for(ref)
            break
        text = _mf2_text(item)
        if text:
            authors = _prop(item, "author")
            author_urls = {_norm_url(u) for a in authors for u in _author_urls(a)}
            # mf2py copies <html lang> onto items that declare none: only a different one is
            # the comment's own declaration.
            lang = item.get("lang")
            self.mentions.append(
                Mention(
                    text=text,
                    external_key=key,
                    url=next(iter(_urls(item)), None) or self.page,
                    kind="comment",
                    author=_author_name(authors[0]) if authors else None,
                    published=_first_str(item, "published") or _first_str(item, "updated"),
                    language=lang if lang and lang != self.page_lang else None,
                    parent_key=parent if parent != key else None,
                    is_brand_response=self.site_is_brand and bool(author_urls & self.author_urls),
                    found_by="h-entry",
                )
            )
        self.visit(item, parent_key=key, is_comment=True)

    def comment_key(self, item: dict[str, Any]) -> str | None:
        """Key from the comment's own URL; a URL that is just the post's identifies nothing."""
        for u in _urls(item):
            return self.key_for(u)
        return _first_str(item, "uid")


def _is_entry(item: dict[str, Any]) -> bool:
    return bool(_MF2_ENTRY_TYPES & set(item.get("type", []) or []))


def _prop(item: dict[str, Any], name: str) -> list[Any]:
    props = item.get("properties")
    values = props.get(name, []) if isinstance(props, dict) else []
    return values if isinstance(values, list) else []


def _first_str(item: dict[str, Any], name: str) -> str | None:
    for value in _prop(item, name):
        if isinstance(value, dict):
            value = value.get("value")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _url_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        nested = _prop(value, "url")
        if nested:
            return _url_of(nested[0])
        if isinstance(value.get("value"), str):
            return str(value["value"]).strip() or None
    return None


def _urls(item: dict[str, Any]) -> Iterator[str]:
    for value in _prop(item, "url"):
        u = _url_of(value)
        if u:
            yield u


def _reply_refs(item: dict[str, Any]) -> list[str]:
    return [u for u in (_url_of(v) for v in _prop(item, "in-reply-to")) if u]


def _author_urls(author: Any) -> list[str]:
    return [u for u in (_url_of(v) for v in _prop(author, "url")) if u] if isinstance(author, dict) else []


def _author_name(author: Any) -> str | None:
    if isinstance(author, dict):
        name = _first_str(author, "name") or author.get("value")
        return _squash(name) if isinstance(name, str) and name.strip() else None
    return _squash(author) if isinstance(author, str) and author.strip() else None


def _norm_url(u: str) -> str:
    return split_fragment(u)[0].rstrip("/")


def _mf2_text(item: dict[str, Any]) -> str | None:
    """The comment's ``e-content`` HTML (or ``p-content``/``p-summary`` text); no implied name,
    which for a comment is its whole text, author and date included."""
    for name in ("content", "summary"):
        for value in _prop(item, name):
            body = (value.get("html") or value.get("value")) if isinstance(value, dict) else value
            if isinstance(body, str) and body.strip():
                return body.strip()
    return None
