"""The demo's site: the pages of the four places Norrow is talked about, written from its
history once per demo folder (see :mod:`earful.pipeline.demo`)."""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from earful.pipeline.demo_history import (
    BRAND,
    SEED,
    TIMEZONE,
    History,
    Item,
    Post,
    Product,
    anchor_hour,
    make_history,
)

#: Bumped when the generator writes a different site for the same anchor and seed.
GENERATOR_VERSION = 1
SITE_INFO = "earful-demo.json"
REVIEWS_PER_PAGE = 25
BLOG_POSTS_PER_PAGE = 5


# --------------------------------------------------------------------------- the site

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d2a22;background:#f6f5f0}
header.site{background:#23402f;color:#fff;padding:.8rem 1.5rem}header.site a{color:#fff}
main{max-width:46rem;margin:1.5rem auto;padding:0 1rem}
article.review,li.comment>article{background:#fff;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
.meta{color:#5b665f;font-size:.85rem}.stars{color:#c47f00}ol.children{list-style:none}
nav.pages a{margin-right:1rem}
""".strip()


def _page(title: str, body: str, *, head: str = "", lang: str = "en", body_class: str = "") -> str:
    cls = f' class="{body_class}"' if body_class else ""
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n{head}</head>\n"
        f"<body{cls}>\n{body}\n</body>\n</html>\n"
    )


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(when: datetime) -> str:
    local = when.astimezone(ZoneInfo(TIMEZONE))
    return f"{local.day} {local:%B %Y}, {local:%H:%M}"


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))


def _chunks(items: list[Item], size: int) -> list[list[Item]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _page_name(stem: str, page: int) -> str:
    return f"{stem}.html" if page == 1 else f"{stem}-{page}.html"


def _pager(stem: str, page: int, pages: int) -> tuple[str, str]:
    """``<link>`` tags for the head and the visible links, ``rel="next"`` to older items."""
    head, links = "", []
    if page > 1:
        head += f'<link rel="prev" href="{_page_name(stem, page - 1)}">\n'
        links.append(f'<a rel="prev" href="{_page_name(stem, page - 1)}">Newer</a>')
    if page < pages:
        head += f'<link rel="next" href="{_page_name(stem, page + 1)}">\n'
        links.append(f'<a rel="next" href="{_page_name(stem, page + 1)}">Older</a>')
    return head, f'<nav class="pages">{"".join(links)}</nav>'


def _json_ld(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, indent=1).replace("</", "<\\/")
    return f'<script type="application/ld+json">\n{text}\n</script>\n'


def _stars(rating: int) -> str:
    return "★" * rating + "☆" * (5 - rating)


def write_site(history: History, folder: Path) -> list[str]:
    """Write the site into ``folder`` (which must be empty or missing); the start URLs' paths."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    by_channel: dict[str, list[Item]] = {}
    for item in history.items:
        by_channel.setdefault(item.channel, []).append(item)
    start: list[str] = []
    for product in history.products:
        reviews = [i for i in by_channel.get("shop", []) if i.product == product.slug]
        start.append(f"/shop/{product.slug}/reviews.html")
        files.update(_shop_pages(product, reviews))
    files.update(_revuo_pages(by_channel.get("revuo", []), {p.slug: p.name for p in history.products}))
    files.update(_blog_pages(history.blog_posts, by_channel.get("blog", [])))
    files.update(_magazine_files(history.magazine_posts, by_channel.get("magazine", [])))
    files["robots.txt"] = (
        "# The demo's crawl obeys this, like every Earful crawl.\n"
        "User-agent: *\nDisallow: /shop/account/\nDisallow: /shop/checkout/\n"
    )
    files["index.html"] = _index_page(history)
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return start


def _index_page(history: History) -> str:
    products = "".join(
        f'<li><a href="shop/{p.slug}/reviews.html">{html.escape(p.name)}</a> reviews</li>'
        for p in history.products
    )
    body = (
        f'<header class="site"><strong>{BRAND}</strong> sample site for <code>earful demo</code></header>\n'
        "<main><p>Everything here is made up: the brand, its products, the people and what they say. "
        f"The history ends at {_iso(history.anchor)} (seed {history.seed}).</p>"
        f"<h2>Norrow shop</h2><ul>{products}</ul>"
        '<h2>Elsewhere</h2><ul><li><a href="revuo/norrow.html">Norrow on Revuo</a> (a review portal)</li>'
        '<li><a href="blog/index.html">The Norrow blog</a></li>'
        '<li><a href="trailnotes/feed.xml">Trail Notes</a> (a magazine; RSS)</li></ul></main>'
    )
    return _page(f"{BRAND} sample site", body)


def _shop_pages(product: Product, reviews: list[Item]) -> dict[str, str]:
    """A product's review pages: schema.org Product with its Reviews in JSON-LD."""
    slug, name, price = product.slug, product.name, product.price
    newest = sorted(reviews, key=lambda i: (i.published, i.number), reverse=True)
    ratings = [i.rating for i in reviews if i.rating is not None]
    average = round(sum(ratings) / len(ratings), 1) if ratings else 0
    pages = _chunks(newest, REVIEWS_PER_PAGE)
    out: dict[str, str] = {}
    for n, chunk in enumerate(pages, start=1):
        page = _page_name("reviews", n)
        data = {
            "@context": "https://schema.org",
            "@type": "Product",
            "@id": f"/shop/{slug}/#product",
            "name": name,
            "brand": {"@type": "Brand", "name": BRAND},
            "offers": {"@type": "Offer", "price": str(price), "priceCurrency": "EUR"},
            "aggregateRating": {
                "@type": "AggregateRating",
                "ratingValue": str(average),
                "reviewCount": str(len(reviews)),
                "bestRating": "5",
                "worstRating": "1",
            },
            "review": [
                {
                    "@type": "Review",
                    "@id": f"/shop/reviews/{i.number}",
                    "url": f"{page}#review-{i.number}",
                    "author": {"@type": "Person", "name": i.author},
                    "datePublished": _iso(i.published),
                    "name": i.title,
                    "reviewBody": i.text,
                    "inLanguage": i.language,
                    "reviewRating": {
                        "@type": "Rating",
                        "ratingValue": str(i.rating),
                        "bestRating": "5",
                        "worstRating": "1",
                    },
                }
                for i in chunk
            ],
        }
        head, pager = _pager("reviews", n, len(pages))
        cards = "".join(
            f'<article class="review" id="review-{i.number}" lang="{i.language}">'
            f'<div class="stars" title="{i.rating} out of 5">{_stars(i.rating or 0)}</div>'
            f"<h3>{html.escape(i.title or '')}</h3>{_paragraphs(i.text)}"
            f'<p class="meta">{html.escape(i.author)}, <time datetime="{_iso(i.published)}">'
            f"{_shown(i.published)}</time></p></article>\n"
            for i in chunk
        )
        body = (
            f'<header class="site"><a href="../../index.html">{BRAND}</a> shop</header>\n<main>'
            f"<h1>{html.escape(name)}</h1><p>€{price} · {average} out of 5 from {len(reviews)} reviews"
            f" · page {n} of {len(pages)}</p>\n{cards}{pager}"
            '<p class="meta"><a href="../account/wishlist.html">Add to wishlist</a></p></main>'
        )
        out[f"shop/{slug}/{page}"] = _page(f"{name} reviews | {BRAND}", body, head=head + _json_ld(data))
    return out


def _revuo_pages(reviews: list[Item], product_names: dict[str, str]) -> dict[str, str]:
    """The review portal's pages about Norrow: schema.org Reviews in microdata."""
    newest = sorted(reviews, key=lambda i: (i.published, i.number), reverse=True)
    pages = _chunks(newest, REVIEWS_PER_PAGE)
    out: dict[str, str] = {}
    for n, chunk in enumerate(pages, start=1):
        head, pager = _pager("norrow", n, len(pages))
        cards = "".join(
            f'<article class="review" id="r-{i.number}" itemprop="review" itemscope '
            f'itemtype="https://schema.org/Review" itemid="/revuo/r/{i.number}">'
            f'<div itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating" class="stars">'
            f'<meta itemprop="worstRating" content="1"><meta itemprop="bestRating" content="5">'
            f'<span itemprop="ratingValue" content="{i.rating}">{_stars(i.rating or 0)}</span></div>'
            f'<h3 itemprop="name">{html.escape(i.title or "")}</h3>'
            f'<div itemprop="reviewBody">{_paragraphs(i.text)}</div>'
            f'<p class="meta">Bought: {html.escape(product_names.get(i.product or "", ""))} · '
            f'<span itemprop="author" itemscope itemtype="https://schema.org/Person">'
            f'<span itemprop="name">{html.escape(i.author)}</span></span> · '
            f'<time itemprop="datePublished" datetime="{_iso(i.published)}">{_shown(i.published)}</time>'
            f'<meta itemprop="inLanguage" content="{i.language}"> · '
            f'<a itemprop="url" href="{_page_name("norrow", n)}#r-{i.number}">link</a></p></article>\n'
            for i in chunk
        )
        body = (
            '<header class="site">Revuo, honest reviews</header>\n<main itemscope '
            'itemtype="https://schema.org/Organization"><h1 itemprop="name">Norrow</h1>'
            f"<p>{len(reviews)} reviews · page {n} of {len(pages)}</p>\n{cards}{pager}</main>"
        )
        out[f"revuo/{_page_name('norrow', n)}"] = _page(f"Norrow reviews | Revuo (page {n})", body, head=head)
    return out


_BLOG_HEADER = '<header class="site"><a href="index.html">The Norrow blog</a></header>\n'


def _blog_pages(posts: list[Post], comments: list[Item]) -> dict[str, str]:
    """The brand's blog: WordPress-style listing pages and posts with nested comments."""
    out: dict[str, str] = {}
    newest = list(reversed(posts))
    listing = [newest[i : i + BLOG_POSTS_PER_PAGE] for i in range(0, len(newest), BLOG_POSTS_PER_PAGE)]
    for n, chunk in enumerate(listing or [[]], start=1):
        head, pager = _pager("index", n, len(listing))
        entries = "".join(
            f'<article class="post type-post"><h2 class="entry-title"><a href="{p.slug}.html">'
            f'{html.escape(p.title)}</a></h2><p class="meta"><time datetime="{_iso(p.published)}">'
            f"{_shown(p.published)}</time></p></article>\n"
            for p in chunk
        )
        body = f"{_BLOG_HEADER}<main>{entries}{pager}</main>"
        out[f"blog/{_page_name('index', n)}"] = _page("The Norrow blog", body, head=head, body_class="blog")
    for post in posts:
        top = sorted(
            (c for c in comments if c.post is post and c.parent is None),
            key=lambda c: (c.published, c.number),
        )
        thread = "".join(_wp_comment(c, post, 1) for c in top)
        body = (
            f'{_BLOG_HEADER}<main><article id="post-{post.number}" '
            f'class="post-{post.number} post type-post status-publish hentry">'
            f'<h1 class="entry-title">{html.escape(post.title)}</h1>'
            f'<div class="entry-content">{post.body}</div><footer class="entry-footer">'
            f'<time class="entry-date published" datetime="{_iso(post.published)}">'
            f"{_shown(post.published)}</time> by {html.escape(post.author)}</footer></article>\n"
            f'<div id="comments" class="comments-area">'
            f'<h2 class="comments-title">{_count(post, comments)}</h2>'
            f'<ol class="comment-list">{thread}</ol></div></main>'
        )
        out[f"blog/{post.slug}.html"] = _page(
            f"{post.title} – The Norrow blog",
            body,
            body_class=f"post-template-default single single-post postid-{post.number}",
        )
    return out


def _count(post: Post, comments: list[Item]) -> str:
    n = sum(1 for c in comments if c.post is post)
    return f"{n} comment{'' if n == 1 else 's'}"


def _wp_comment(item: Item, post: Post, depth: int) -> str:
    """One comment in the markup of WordPress's HTML5 comment walker, with its replies."""
    classes = f"comment depth-{depth}" + (" byuser bypostauthor" if item.brand_reply else "")
    children = sorted(item.replies, key=lambda c: (c.published, c.number))
    nested = (
        '<ol class="children">' + "".join(_wp_comment(c, post, depth + 1) for c in children) + "</ol>"
        if children
        else ""
    )
    return (
        f'<li id="comment-{item.number}" class="{classes}"><article id="div-comment-{item.number}" '
        f'class="comment-body"><footer class="comment-meta"><div class="comment-author vcard">'
        f'<b class="fn">{html.escape(item.author)}</b> <span class="says">says:</span></div>'
        f'<div class="comment-metadata"><a href="{post.slug}.html#comment-{item.number}">'
        f'<time datetime="{_iso(item.published)}">{_shown(item.published)}</time></a></div></footer>'
        f'<div class="comment-content">{_paragraphs(item.text)}</div>'
        f'<div class="reply"><a rel="nofollow" class="comment-reply-link" '
        f'href="?replytocom={item.number}#respond">Reply</a></div></article>{nested}</li>\n'
    )


_RSS_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
)


def _magazine_files(posts: list[Post], comments: list[Item]) -> dict[str, str]:
    """The magazine: a posts feed whose items name each post's comment feed, the comment
    feeds (WordPress's RSS: a reply starts with "In reply to" and a link to its parent), and
    the articles as pages."""
    x = html.escape
    out: dict[str, str] = {}
    items = "".join(
        f"<item><title>{x(p.title)}</title><link>{p.slug}.html</link>"
        f'<guid isPermaLink="false">trailnotes-post-{p.number}</guid>'
        f"<pubDate>{format_datetime(p.published)}</pubDate><dc:creator>{x(p.author)}</dc:creator>"
        f"<description>{x(p.body)}</description>"
        f"<wfw:commentRss>{p.slug}/comments.xml</wfw:commentRss></item>\n"
        for p in reversed(posts)
    )
    out["trailnotes/feed.xml"] = (
        f"{_RSS_OPEN}<channel><title>Trail Notes</title><link>index.html</link>"
        f"<description>Outdoor gear, tested</description><language>en</language>\n{items}</channel></rss>\n"
    )
    for post in posts:
        mine = sorted(
            (c for c in comments if c.post is post), key=lambda c: (c.published, c.number), reverse=True
        )
        entries = []
        for c in mine:
            content = _paragraphs(c.text)
            if c.parent is not None:
                content = (
                    f'<p>In reply to <a href="../{post.slug}.html#comment-{c.parent.number}">'
                    f"{x(c.parent.author)}</a>.</p>{content}"
                )
            entries.append(
                f"<item><title>By: {x(c.author)}</title><link>../{post.slug}.html#comment-{c.number}</link>"
                f"<dc:creator>{x(c.author)}</dc:creator><pubDate>{format_datetime(c.published)}</pubDate>"
                f'<guid isPermaLink="false">../{post.slug}.html#comment-{c.number}</guid>'
                f"<description>{x(c.text)}</description><content:encoded>{x(content)}</content:encoded></item>\n"
            )
        out[f"trailnotes/{post.slug}/comments.xml"] = (
            f"{_RSS_OPEN}<channel><title>Comments on: {x(post.title)}</title><link>../{post.slug}.html</link>"
            f"<description>Comments</description><language>en</language>\n{''.join(entries)}</channel></rss>\n"
        )
        body = (
            f'<header class="site"><a href="feed.xml">Trail Notes</a></header>\n'
            f"<main><h1>{x(post.title)}</h1>"
            f"{post.body}<p>{len(mine)} comments (see the comment feed).</p></main>"
        )
        out[f"trailnotes/{post.slug}.html"] = _page(f"{post.title} | Trail Notes", body)
    return out


# --------------------------------------------------------------------------- generating once


@dataclass(frozen=True)
class Site:
    """The demo folder's generated site: where it is, the hour its history ends, its start URLs."""

    folder: Path
    anchor: datetime
    generated: bool  # by this run (else reused)
    counts: dict[str, int]
    spike: int


def ensure_site(folder: Path, now: datetime | None = None) -> Site:
    """The site in ``folder``: generated (seeded, history ending at the current hour) when it
    is not there, else reused as it is, so that a re-run finds exactly the same pages."""
    info = folder / SITE_INFO
    if info.exists():
        data = json.loads(info.read_text(encoding="utf-8"))
        return Site(folder, datetime.fromisoformat(data["anchor"]), False, data["counts"], data["spike"])
    history = make_history(anchor_hour(now), SEED)
    # Written beside the final folder and renamed into place: a run killed halfway leaves no
    # half-written site that a later run would take for a finished one.
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if folder.exists():
        shutil.rmtree(folder)
    write_site(history, partial)
    counts = history.counts()
    data = {
        "anchor": history.anchor.isoformat(),
        "seed": SEED,
        "generator": GENERATOR_VERSION,
        "counts": counts,
        "spike": len(history.spike),
        "note": "Generated by `earful demo`; delete this folder's parent for a fresh history.",
    }
    (partial / SITE_INFO).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.rename(folder)
    return Site(folder, history.anchor, True, counts, len(history.spike))
