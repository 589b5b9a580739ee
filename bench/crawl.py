"""Benchmark: how fast Earful crawls a site, and how much faster it re-crawls an unchanged one.

A monitor crawls the same sources every day, and on most days most of what it finds is
already stored. The incremental crawl (``options.incremental``, see
:mod:`earful.spiders.base`) is meant to make that second crawl cheap: review listing pages are
newest first, so pagination stops at the first page that holds only stored mentions, and the
blog spider stops paginating its listing once a listing page's posts hold no new comment. This
script measures it on a generated local site (fixed seed, ``--pages`` pages, 4,200 by default)
served from memory by a thread in this process, and reports:

* ``first``   — the first crawl of both sources into an empty database, as ``earful crawl``
  does it: one ``crawl_sources(config, ["reviews", "blog"])`` call, one child process crawling
  the sources side by side, timed as the user sees it (wall seconds of the whole call): pages
  fetched (counted by the server), mentions seen, pages/s and mentions/s;
* ``recrawl`` — the same call again over the unchanged site: the same figures, the speed-up
  (first seconds / re-crawl seconds; target ≥ 10×) and the pages fetched as a fraction of the
  first crawl's;
* ``fetch``   — the baseline for "download": both sources crawled the same way (one call) by
  spiders whose extractor finds nothing and with ``incremental: false`` (same requests,
  pagination and Scrapy machinery; nothing normalised or stored);
* ``parse``   — what the crawl does with a page apart from downloading, scheduling and storing
  it (the extractor, :func:`~earful.spiders.normalise.normalise` and the link selectors), in
  this process over every generated page. The issue asks for "parse cost small next to
  download (report the parse-only pages/s too)"; the target read here is that parsing a page
  costs less than Scrapy fetching it even over loopback with politeness off (parse-only pages/s
  ≥ fetch-only pages/s), and the output puts the parse time next to the ≥ 0.5 s a page waits
  under the politeness settings real crawls use;
* ``startup`` — the fixed cost of a crawl's child process, timed as
  ``python -c "import scrapy, earful.spiders.runner"`` and, more completely, as the crawl of a
  one-page source with nothing on it. The speed-up is given as a user sees it (wall time,
  start-up included) and without the import time.

Each crawl's wall time is split by the server's clock into start-up (the call's start to the
first request the child makes), fetching (first to last request) and wind-down (last request to
the call's end), next to the child's CPU time; per source, the same clock gives when its first
and last pages were requested and when its outcome reached the parent. Where
``PYTHONDONTWRITEBYTECODE`` is set, the children get a bytecode cache in the temporary folder (an
installed Earful has its ``__pycache__``); ``--no-bytecode-cache`` keeps the setting, and every
child then compiles its imports (about 1.5 s more per crawl). Before the timed crawls, one
untimed crawl fills the cache.

The site is realistic HTML: review listing pages for the brand's products carry schema.org
``Product``/``Organization`` JSON-LD with ``review`` arrays (stable ``@id`` per review, 5–10
per page, ``<link rel="next">``), inline CSS, navigation, a JSON state blob and a footer
(20–60 KB a page); the brand's WordPress blog has listing pages (``rel="next"``, post links
in ``h2.entry-title``) and posts with nested comment threads (``ol.comment-list``,
``li.comment.depth-N``, ``ol.children``, replies by the post's author). Politeness
(AutoThrottle, the download delay, the per-site concurrency of 2) is switched off for the
benchmark only: the server is local.

Correctness is checked too: every generated mention is stored exactly once (row count), the
re-crawl stores nothing new, every crawl succeeds, the fetch-only crawl fetches every page, and
parse-only finds every mention. Each run uses a temporary folder (the site's files, the config,
the crawl logs, SQLite) and, with ``--postgres-url``, a fresh PostgreSQL schema
(``?options=-csearch_path=<schema>``) dropped at the end. Output: a table, then one JSON line of
the figures, last. The exit status is 1 when a check fails (not when a target is missed), 2 when
a database cannot be reached::

    python bench/crawl.py [--pages 4200] [--postgres-url URL] [--keep] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from places import check_postgres, postgres_place
from scrapy.http import TextResponse
from sqlalchemy import func, select

from earful.pipeline.config import Config, load_config
from earful.pipeline.crawl import CrawlOutcome, crawl_sources
from earful.pipeline.db import Database, safe_url
from earful.pipeline.errors import EarfulError
from earful.pipeline.schema import Mention as MentionRow
from earful.pipeline.schema import Source as SourceRow
from earful.spiders import settings as polite
from earful.spiders.blog_comments import BlogCommentsSpider
from earful.spiders.items import Mention
from earful.spiders.reviews import ReviewsSpider

SEED = 20261201
# The re-crawl of an unchanged site costs a near-constant ~2 s here (a crawl's fixed ~1.1 s of
# process start-up and shutdown, plus the first page of each listing), while the first crawl
# grows with the site: 8-9x at 2,100 pages, ~15x at 4,200 (measured). The default is 4,200
# pages (the issue asks for >= 2,000); `--pages 2100` shows the smaller site.
DEFAULT_PAGES = 4_200
PAGES_PER_PRODUCT = 30  # review listing pages per product (the last one may be shorter)
POSTS_PER_BLOG_PAGE = 8
TARGET_SPEEDUP = 10.0
PSEUDONYM_KEY = "earful-bench-crawl-pseudonym-key"
DB_URL_ENV = "EARFUL_BENCH_CRAWL_DATABASE_URL"
BRAND = "Acme"
FOLLOW = "h2.entry-title a::attr(href)"
REVIEWS, BLOG, EMPTY = "reviews", "blog", "fixed-cost"
REVIEWS_FETCH, BLOG_FETCH = "reviews-fetch-only", "blog-fetch-only"
# The server's page kinds each source requests (the about page is not a generated kind).
SOURCE_KINDS: dict[str, tuple[str, ...]] = {
    REVIEWS: ("review-listing",),
    REVIEWS_FETCH: ("review-listing",),
    BLOG: ("blog-listing", "post"),
    BLOG_FETCH: ("blog-listing", "post"),
    EMPTY: ("other",),
}
# Throttling off, for this benchmark only: the site is local and ours.
SETTINGS: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
    "CONCURRENT_REQUESTS": 32,
    "LOG_LEVEL": "WARNING",
}
ROBOTS = b"User-agent: *\nDisallow: /wp-admin/\nAllow: /wp-admin/admin-ajax.php\n"
CANONICAL = "https://www.revuo.example"  # where the review site says it lives (@ids)
BLOG_HOME = "https://blog.acme.example"


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


FIRST_NAMES = _split(
    """
    Anna Ben Carla David Emma Felix Greta Hugo Ida Jonas Klara Leon Mia Noah Olga Paul Quinn Rosa
    Sam Tara Uwe Vera Will Xenia Yusuf Zoe Ahmed Bea Chen Dana Elif Farid Gina Hana Igor Jana
    """
)
LAST_NAMES = _split(
    """
    Meyer Schmidt Novak Rossi Garcia Smith Kowalski Jensen Dubois Silva Tanaka Kim Okafor Larsen
    Weber Fischer Moreau Costa Nagy Horvat O'Brien Nguyen Haddad Ivanova
    """
)
PRODUCTS = _split(
    """
    kettle toaster blender coffee-grinder espresso-machine air-fryer rice-cooker hand-mixer
    food-processor juicer waffle-iron sandwich-maker milk-frother slow-cooker stand-mixer
    water-filter vacuum-sealer bread-maker egg-cooker popcorn-maker ice-cream-maker steam-iron
    hair-dryer fan heater humidifier dehumidifier air-purifier robot-vacuum stick-vacuum
    """
)
FEATURES = _split(
    """
    lid handle switch cable display timer thermostat filter jug button motor blade hinge base
    light plug seal valve dial tray basket nozzle
    """
)
WHEN = (
    "the next day",
    "within two days",
    "a week late",
    "on time",
    "earlier than promised",
    "after three reminders",
)
EN_SENTENCES = (
    "Ordered the {product} on a {weekday} and it arrived {when}.",
    "The {feature} feels solid and the whole thing looks better than in the pictures.",
    "After {n} weeks the {feature} started to wobble, which is disappointing at this price.",
    "Customer service answered my email within {n} hours and sent a replacement {feature}.",
    "Honestly the best {product} I have owned; it is quiet, fast and easy to clean.",
    "The manual is confusing & the app keeps logging me out, so I gave up on the smart features.",
    "It does exactly what it should, nothing more and nothing less.",
    "Packaging was damaged but the {product} itself was fine.",
    "I returned it because the {feature} got hot enough to leave a mark on the counter.",
    "My partner says it's \"the only {product} that didn't break within a year\".",
    "Setup took {n} minutes, most of them spent removing stickers.",
    "Refund took {n} days and two phone calls; the agent was polite but clearly overworked.",
    "Compared with my old one it uses less power and the {feature} is much better designed.",
    "Would buy again, although the price went up by {n} euros since last spring.",
    "The warranty claim was painless: photo, form, new {feature} in the post.",
    "It's loud. Really loud. The kids leave the kitchen when I switch it on.",
    "Five stars for the design, two for the {feature}, which feels cheap.",
    "Support told me to reset it, which did nothing; a firmware update {n} days later fixed it.",
    "Great value for money — I bought a second one for my parents.",
    "The {feature} broke on day {n} and the replacement took another two weeks.",
)
DE_SENTENCES = (
    "Der {product} kam {when_de} an und funktioniert bisher einwandfrei.",
    "Nach {n} Wochen klemmt der Deckel, sonst bin ich zufrieden.",
    "Der Kundendienst war freundlich, aber die Erstattung dauerte {n} Tage.",
    "Sehr leise und schnell, die Verarbeitung wirkt hochwertig.",
    "Leider ist das Kabel viel zu kurz für unsere Küche.",
    "Würde ich wieder kaufen, auch wenn der Preis inzwischen gestiegen ist.",
    "Die Anleitung ist unverständlich, die App stürzt ständig ab.",
    "Für den Preis eine klare Empfehlung – besser als mein altes Gerät.",
)
WHEN_DE = ("am nächsten Tag", "nach zwei Tagen", "pünktlich", "eine Woche zu spät")
HEADLINES_EN = (
    "Does the job",
    "Broke after a month",
    "Great value",
    "Refund took ages",
    "Quiet and fast",
    "Not worth the money",
    "Better than expected",
    "Support was helpful",
    "Disappointed",
    "Would buy again",
    "Loud but reliable",
    "Five stars",
)
HEADLINES_DE = ("Top Gerät", "Leider enttäuscht", "Schnelle Lieferung", "Preis-Leistung stimmt")
COMMENT_SENTENCES = (
    "Thanks for the write-up, this is exactly what I was looking for.",
    "Does this also work with the older {product}? Mine is from {year}.",
    "I tried the descaling trick and the {feature} works like new again.",
    "Mine has the same problem with the {feature}, support sent me a new one within {n} days.",
    "Any news on when the {product} will be back in stock?",
    "We use ours every morning; {n} years and still going strong.",
    "The recipe is great but I needed {n} more minutes than you say.",
    "Please bring back the old {feature}, the new one is much harder to clean.",
    "Is there a way to turn off the beeping? It wakes the whole house.",
    "Great post! Shared it with my neighbours who just bought the {product}.",
    "I disagree about the price — the competition is {n} euros cheaper for the same thing.",
    "Update: the firmware from last week fixed the timer for me.",
)
BRAND_REPLIES = (
    "Thanks for the feedback! Could you email our support team with your order number? We'll sort it out.",
    "Good question: yes, the {feature} fits every {product} made since {year}.",
    "We're sorry to hear that. A replacement {feature} is on its way to you.",
    "It's back in stock from next week; sign up on the product page to get a reminder.",
)
POST_TITLES = (
    "How to descale your {product} in five minutes",
    "Five recipes for your new {product}",
    "What's new in the {product} firmware",
    "Behind the scenes: testing the {product} {feature}",
    "Your questions about the {product}, answered",
    "Why we redesigned the {feature}",
    "Winter tips: getting the most from your {product}",
)
CATEGORIES = _split(
    """
    Kitchen Appliances Cleaning Heating Cooling Coffee Baking Personal-Care Smart-Home Outdoor Garden
    Electronics Lighting Furniture Bathroom Laundry Pets Kids Sports Travel Office Gaming Audio
    Photography Health Beauty Books Music Tools Automotive
    """
)
WEEKDAYS = _split("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        product=rng.choice(PRODUCTS).replace("-", " "),
        feature=rng.choice(FEATURES),
        weekday=rng.choice(WEEKDAYS),
        when=rng.choice(WHEN),
        when_de=rng.choice(WHEN_DE),
        n=rng.randint(2, 30),
        year=rng.randint(2015, 2025),
    )


def _sentences(rng: random.Random, bank: Sequence[str], low: int, high: int) -> list[str]:
    return [_fill(rng.choice(bank), rng) for _ in range(rng.randint(low, high))]


def _person(rng: random.Random) -> str:
    first = rng.choice(FIRST_NAMES)
    return (
        f"{first} {rng.choice(LAST_NAMES)}" if rng.random() < 0.5 else f"{first} {rng.choice(LAST_NAMES)[0]}."
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ------------------------------------------------------------------------------ the site


@dataclass
class Site:
    """The generated site: every page by its URL path, and what it holds."""

    pages: dict[str, bytes] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # path -> review-listing | blog-listing | post
    review_starts: list[str] = field(default_factory=list)
    blog_start: str = "/blog/"
    empty_page: str = "/about/"
    reviews: int = 0
    comments: int = 0
    brand_replies: int = 0

    def add(self, path: str, kind: str, body: str) -> None:
        self.pages[path] = body.encode("utf-8")
        self.kinds[path] = kind

    def count(self, kind: str) -> int:
        return sum(1 for k in self.kinds.values() if k == kind)

    @property
    def mentions(self) -> int:
        return self.reviews + self.comments


def _css(rng: random.Random, rules: int) -> str:
    """Inline CSS of the kind page builders emit: many small rules."""
    props = ("margin", "padding", "color", "background", "border", "font-size", "line-height", "gap")
    out = []
    for i in range(rules):
        body = ";".join(f"{rng.choice(props)}:{rng.randint(0, 48)}px" for _ in range(rng.randint(2, 6)))
        out.append(f".c-{i:x}-{rng.choice(FEATURES)}{{{body}}}")
    return "\n".join(out)


def _nav(prefix: str) -> str:
    links = "".join(
        f'<li class="menu-item"><a href="{prefix}/categories/{c.lower()}/">{c.replace("-", " ")}</a></li>'
        for c in CATEGORIES
    )
    return f'<nav class="main-navigation" aria-label="Main"><ul class="menu">{links}</ul></nav>'


def _footer(rng: random.Random, prefix: str) -> str:
    columns = []
    for heading in ("About", "Community", "Businesses", "Legal", "Follow us"):
        items = "".join(
            f'<li><a href="{prefix}/{heading.lower().replace(" ", "-")}/{i}/">{rng.choice(CATEGORIES)} '
            f"{rng.choice(FEATURES)}</a></li>"
            for i in range(12)
        )
        columns.append(f'<div class="footer-col"><h3>{heading}</h3><ul>{items}</ul></div>')
    return (
        '<footer class="site-footer">' + "".join(columns) + '<p class="legal">© 2026 — all rights '
        "reserved. Prices include VAT. Reviews are the opinions of their authors.</p></footer>"
    )


def _padding(rng: random.Random, size: int) -> str:
    """Related-items cards: the bulk at the end of real pages."""
    cards = []
    total = 0
    while total < size:
        product = rng.choice(PRODUCTS).replace("-", " ")
        card = (
            f'<li class="related-card"><a href="/r/related-{rng.randint(1, 9999)}/">'
            f'<img src="/img/{rng.randint(1, 999)}.webp" alt="{product}" width="64" height="64" '
            'loading="lazy">'
            f'<span class="name">Acme {product}</span><span class="score">{rng.randint(10, 50) / 10} / 5'
            f'</span><span class="count">{rng.randint(3, 4000):,} reviews</span></a></li>'
        )
        cards.append(card)
        total += len(card)
    return '<aside class="related"><h2>People also looked at</h2><ul>' + "".join(cards) + "</ul></aside>"


def _review(rng: random.Random, review_id: int, moment: datetime) -> dict[str, Any]:
    german = rng.random() < 0.15
    sentences = _sentences(rng, DE_SENTENCES if german else EN_SENTENCES, 2, 9)
    return {
        "@type": "Review",
        "@id": f"{CANONICAL}/reviews/{review_id}",
        "author": {
            "@type": "Person",
            "name": _person(rng),
            "url": f"{CANONICAL}/users/{rng.randint(1, 10**6)}",
        },
        "datePublished": _iso(moment),
        "headline": rng.choice(HEADLINES_DE if german else HEADLINES_EN),
        "reviewBody": " ".join(sentences),
        "reviewRating": {
            "@type": "Rating",
            "bestRating": "5",
            "worstRating": "1",
            "ratingValue": str(rng.randint(1, 5)),
        },
        "inLanguage": "de" if german else "en",
        "publisher": {"@id": f"{CANONICAL}/#organization"},
    }


def _review_card(review: dict[str, Any]) -> str:
    rid = review["@id"].rsplit("/", 1)[1]
    rating = review["reviewRating"]["ratingValue"]
    return (
        f'<article class="review-card" id="review-{rid}" data-review-id="{rid}">'
        f'<aside class="consumer-info"><a href="/users/{rid}/" class="consumer-name" rel="nofollow">'
        f'{html.escape(review["author"]["name"])}</a><span class="consumer-meta">1 review</span></aside>'
        f'<section class="review-content" lang="{review["inLanguage"]}"><header class="review-header">'
        f'<div class="star-rating" data-rating="{rating}"><img src="/assets/stars-{rating}.svg" '
        f'alt="Rated {rating} out of 5 stars"></div><time datetime="{review["datePublished"]}">'
        f"{review['datePublished'][:10]}</time></header>"
        f'<h2 class="review-title"><a href="#review-{rid}">{html.escape(review["headline"])}</a></h2>'
        f'<p class="review-text">{html.escape(review["reviewBody"])}</p>'
        f'<footer class="review-actions"><button type="button" class="useful">Useful</button> '
        f'<a href="/report/?review={rid}" rel="nofollow">Report</a></footer></section></article>'
    )


def _review_page(
    rng: random.Random, slug: str, name: str, page: int, pages: int, reviews: list[dict[str, Any]]
) -> str:
    base = f"/r/{slug}/"
    url = base if page == 1 else f"{base}page/{page}/"
    next_url = f"{base}page/{page + 1}/" if page < pages else None
    prev_url = None if page == 1 else (base if page == 2 else f"{base}page/{page - 1}/")
    is_org = slug == "acme-corp"
    item: dict[str, Any] = {
        "@type": "Organization" if is_org else "Product",
        "@id": f"{CANONICAL}{base}#{'organization' if is_org else 'product'}",
        "name": name,
        "aggregateRating": {
            "@type": "AggregateRating",
            "ratingValue": f"{rng.uniform(2.5, 4.8):.1f}",
            "reviewCount": str(pages * 8),
            "bestRating": "5",
            "worstRating": "1",
        },
        "review": reviews,
    }
    if not is_org:
        item["brand"] = {"@type": "Brand", "name": BRAND}
        item["sku"] = hashlib.md5(slug.encode()).hexdigest()[:10].upper()
    graph = [
        {"@type": "Organization", "@id": f"{CANONICAL}/#organization", "name": "Revuo", "url": CANONICAL},
        item,
        {
            "@type": "BreadcrumbList",
            "itemListElement": [
                {
                    "@type": "ListItem",
                    "position": 1,
                    "name": "Kitchen",
                    "item": f"{CANONICAL}/categories/kitchen/",
                },
                {"@type": "ListItem", "position": 2, "name": name, "item": f"{CANONICAL}{base}"},
            ],
        },
    ]
    ld = json.dumps({"@context": "https://schema.org", "@graph": graph}, ensure_ascii=False)
    state = json.dumps(
        {"props": {"pageProps": {"page": page, "reviews": reviews, "filters": {"stars": [1, 2, 3, 4, 5]}}}},
        ensure_ascii=False,
    )
    links = f'<link rel="canonical" href="{CANONICAL}{url}">'
    if prev_url:
        links += f'<link rel="prev" href="{prev_url}">'
    if next_url:
        links += f'<link rel="next" href="{next_url}">'
    pager = "".join(
        f'<a class="pagination-link" href="{base if p == 1 else f"{base}page/{p}/"}">{p}</a>'
        for p in range(max(1, page - 3), min(pages, page + 3) + 1)
    )
    if next_url:
        pager += f'<a class="pagination-link next" rel="next" href="{next_url}">Next page</a>'
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(name)} Reviews | Page {page} | Revuo</title>"
        f'<meta name="description" content="Read {pages * 8} customer reviews of {html.escape(name)}.">'
        f"{links}<style>{_css(rng, rng.randint(60, 160))}</style>"
        f'<script type="application/ld+json">{ld}</script>'
        '<script src="/assets/runtime.js" defer></script></head>'
    )
    body = (
        f'<body class="business-unit"><header class="site-header"><a href="/" class="logo">Revuo</a>'
        f'{_nav("")}</header><main><section class="summary"><h1>{html.escape(name)}</h1>'
        f'<p class="trust-score">TrustScore <span>{item["aggregateRating"]["ratingValue"]}</span></p>'
        "</section>"
        '<section class="reviews" aria-label="Reviews">'
        + "".join(_review_card(r) for r in reviews)
        + f'<nav class="pagination" aria-label="Reviews">{pager}</nav></section></main>'
        f"{_footer(rng, '')}"
        f'<script id="__NEXT_DATA__" type="application/json">{state}</script>'
    )
    page_html = head + body
    target = rng.randint(20_000, 60_000)
    if len(page_html) < target:
        page_html += _padding(rng, target - len(page_html))
    return page_html + "</body></html>"


def _comment_tree(
    rng: random.Random, count: int, first_id: int, start: datetime
) -> list[tuple[int, int | None, datetime, bool]]:
    """``count`` comments as (id, parent id, time, by the post's author), oldest first."""
    out: list[tuple[int, int | None, datetime, bool]] = []
    depth: dict[int, int] = {}
    moment = start
    for i in range(count):
        cid = first_id + i
        moment += timedelta(minutes=rng.randint(3, 3000))
        parent = None
        if out and rng.random() < 0.35:
            candidate = rng.choice(out)[0]
            if depth[candidate] < 5:
                parent = candidate
        depth[cid] = 1 if parent is None else depth[parent] + 1
        by_author = parent is not None and rng.random() < 0.3
        out.append((cid, parent, moment, by_author))
    return out


def _comment_html(
    rng: random.Random,
    tree: list[tuple[int, int | None, datetime, bool]],
    post_url: str,
    post_id: int,
) -> str:
    children: dict[int | None, list[tuple[int, int | None, datetime, bool]]] = {}
    for node in tree:
        children.setdefault(node[1], []).append(node)
    counter = 0

    def render(node: tuple[int, int | None, datetime, bool], depth: int) -> str:
        nonlocal counter
        cid, _parent, moment, by_author = node
        counter += 1
        parity = "even" if counter % 2 else "odd alt"
        author = "Acme Team" if by_author else _person(rng)
        classes = f"comment {parity} depth-{depth}"
        if by_author:
            classes = f"comment byuser comment-author-acme-team bypostauthor {parity} depth-{depth}"
        kids = children.get(cid, [])
        if kids:
            classes += " parent"
        name = html.escape(author)
        if not by_author and rng.random() < 0.3:
            home = rng.choice(LAST_NAMES).lower().replace("'", "")
            name = f'<a href="https://{home}.example/" class="url" rel="ugc external nofollow">{name}</a>'
        bank = BRAND_REPLIES if by_author else COMMENT_SENTENCES
        paragraphs = "".join(f"<p>{html.escape(s)}</p>" for s in _sentences(rng, bank, 1, 4))
        avatar = hashlib.md5(str(cid).encode()).hexdigest()
        out = (
            f'<li id="comment-{cid}" class="{classes}"><article id="div-comment-{cid}" class="comment-body">'
            '<footer class="comment-meta"><div class="comment-author vcard">'
            f'<img alt="" src="https://secure.gravatar.com/avatar/{avatar}?s=60&amp;d=mm&amp;r=g" '
            'class="avatar avatar-60 photo" height="60" width="60" loading="lazy" decoding="async">'
            f'<b class="fn">{name}</b> <span class="says">says:</span></div>'
            f'<div class="comment-metadata"><a href="{post_url}#comment-{cid}">'
            f'<time datetime="{moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")}">'
            f"{moment.strftime('%B %-d, %Y at %-I:%M %p').replace('AM', 'am').replace('PM', 'pm')}</time></a>"
            "</div></footer>"
            f'<div class="comment-content">{paragraphs}</div>'
            f'<div class="reply"><a rel="nofollow" class="comment-reply-link" '
            f'href="{post_url}?replytocom={cid}#respond" '
            f'data-commentid="{cid}" data-postid="{post_id}" data-belowelement="div-comment-{cid}" '
            f'data-respondelement="respond" aria-label="Reply to {html.escape(author)}">Reply</a></div>'
            "</article>"
        )
        if kids:
            out += '<ol class="children">' + "".join(render(k, depth + 1) for k in kids) + "</ol>"
        return out + "</li>"

    return '<ol class="comment-list">' + "".join(render(n, 1) for n in children.get(None, [])) + "</ol>"


def _blog_shell(rng: random.Random, title: str, links: str, main: str, sidebar: str) -> str:
    head = (
        '<!DOCTYPE html><html lang="en-US"><head><meta charset="UTF-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} – The Acme Blog</title>{links}"
        '<link rel="stylesheet" id="wp-block-library-css" '
        'href="/wp-includes/css/dist/block-library/style.min.css" media="all">'
        f'<style id="global-styles-inline-css">{_css(rng, rng.randint(80, 200))}</style>'
        '<script src="/wp-includes/js/jquery/jquery.min.js" id="jquery-core-js"></script></head>'
    )
    body = (
        '<body class="wp-singular"><div id="page" class="site"><header id="masthead" class="site-header">'
        f'<p class="site-title"><a href="/blog/" rel="home">The Acme Blog</a></p>{_nav("/blog")}</header>'
        f'<div id="content" class="site-content"><main id="main" class="site-main">{main}</main>'
        f'<aside id="secondary" class="widget-area">{sidebar}</aside></div>{_footer(rng, "/blog")}</div>'
    )
    page = head + body
    target = rng.randint(20_000, 60_000)
    if len(page) < target:
        page += _padding(rng, target - len(page))
    return page + "</body></html>"


def _sidebar(rng: random.Random, recent: list[tuple[str, str]]) -> str:
    """WordPress's default widgets; "Recent Comments" is not comment-list markup."""
    posts = "".join(f'<li><a href="{url}">{html.escape(t)}</a></li>' for url, t in recent[:5])
    comments = "".join(
        f'<li class="recentcomments"><span class="comment-author-link">{_person(rng)}</span> on '
        f'<a href="{url}#comment-{rng.randint(1, 99999)}">{html.escape(t)}</a></li>'
        for url, t in recent[:5]
    )
    archives = "".join(f'<li><a href="/blog/2026/{m:02d}/">{m:02d}/2026</a></li>' for m in range(1, 13))
    return (
        f'<section class="widget widget_recent_entries"><h2>Recent Posts</h2><ul>{posts}</ul></section>'
        f'<section class="widget widget_recent_comments"><h2>Recent Comments</h2><ul id="recentcomments">'
        f"{comments}</ul></section>"
        f'<section class="widget widget_archive"><h2>Archives</h2><ul>{archives}</ul></section>'
    )


def generate_site(total_pages: int, seed: int = SEED) -> Site:
    """A site of about ``total_pages`` pages: review listings (4/7), blog listings (1/21) and
    posts (8 per blog listing page). Listings are newest first."""
    rng = random.Random(seed)
    site = Site()
    blog_pages = max(1, round(total_pages / 21))
    posts = blog_pages * POSTS_PER_BLOG_PAGE
    review_pages = max(1, total_pages - blog_pages - posts)
    products = math.ceil(review_pages / PAGES_PER_PRODUCT)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    review_id = 100_000
    for p in range(products):
        pages = min(PAGES_PER_PRODUCT, review_pages - p * PAGES_PER_PRODUCT)
        slug = "acme-corp" if p == 0 else f"acme-{PRODUCTS[p % len(PRODUCTS)]}-{p}"
        name = "Acme Corp" if p == 0 else f"Acme {PRODUCTS[p % len(PRODUCTS)].replace('-', ' ')} {p}"
        moment = now - timedelta(minutes=rng.randint(0, 600))
        for page in range(1, pages + 1):
            reviews = []
            for _ in range(rng.randint(5, 10)):
                review_id += rng.randint(1, 40)
                reviews.append(_review(rng, review_id, moment))
                moment -= timedelta(minutes=rng.randint(20, 4000))
            path = f"/r/{slug}/" if page == 1 else f"/r/{slug}/page/{page}/"
            site.add(path, "review-listing", _review_page(rng, slug, name, page, pages, reviews))
            site.reviews += len(reviews)
        site.review_starts.append(f"/r/{slug}/")

    comment_id = 1
    moment = now
    entries: list[tuple[str, str, int, datetime]] = []  # url, title, post id, date; newest first
    for i in range(posts):
        moment -= timedelta(hours=rng.randint(6, 120))
        title = _fill(rng.choice(POST_TITLES), rng)
        url = f"/blog/{moment:%Y/%m}/{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}-{i}/"
        entries.append((url, title, 5000 + i, moment))
    recent = [(url, title) for url, title, _, _ in entries]
    counts: dict[str, str] = {}  # post URL -> what the listing says about its comments
    for url, title, post_id, published in entries:
        tree = _comment_tree(rng, rng.choice((0, 2, 5, 8, 12, 20, 30)), comment_id, published)
        comment_id += len(tree) + rng.randint(0, 5)  # ids are site-wide; spam took some
        counts[url] = f"{len(tree)} Comment{'' if len(tree) == 1 else 's'}" if tree else "Leave a comment"
        site.comments += len(tree)
        site.brand_replies += sum(1 for node in tree if node[3])
        content = "".join(f"<p>{html.escape(s)}</p>" for s in _sentences(rng, EN_SENTENCES, 10, 30))
        thread = (
            f'<div id="comments" class="comments-area"><h2 class="comments-title">{len(tree)} thoughts on '
            f"“{html.escape(title)}”</h2>{_comment_html(rng, tree, BLOG_HOME + url, post_id) if tree else ''}"
            '<div id="respond" class="comment-respond"><h3 id="reply-title">Leave a Reply</h3>'
            f'<form action="/wp-comments-post.php" method="post" id="commentform"><textarea id="comment" '
            f'name="comment" cols="45" rows="8" required></textarea>'
            '<input type="hidden" name="comment_post_ID" '
            f'value="{post_id}"><input name="submit" type="submit" value="Post Comment"></form></div></div>'
        )
        main = (
            f'<article id="post-{post_id}" class="post-{post_id} post type-post status-publish hentry">'
            f'<header class="entry-header"><h1 class="entry-title">{html.escape(title)}</h1>'
            '<div class="entry-meta"><time class="entry-date published" '
            f'datetime="{published:%Y-%m-%dT%H:%M:%S+00:00}">'
            f'{published:%B %d, %Y}</time> by <span class="author vcard">Acme Team</span></div></header>'
            f'<div class="entry-content">{content}</div></article>{thread}'
        )
        links = f'<link rel="canonical" href="{BLOG_HOME}{url}">'
        site.add(url, "post", _blog_shell(rng, title, links, main, _sidebar(rng, recent)))

    for page in range(1, blog_pages + 1):
        chunk = entries[(page - 1) * POSTS_PER_BLOG_PAGE : page * POSTS_PER_BLOG_PAGE]
        path = "/blog/" if page == 1 else f"/blog/page/{page}/"
        next_url = f"/blog/page/{page + 1}/" if page < blog_pages else None
        articles = "".join(
            f'<article id="post-{pid}" class="post-{pid} post type-post status-publish hentry">'
            f'<header class="entry-header"><h2 class="entry-title"><a href="{url}" rel="bookmark">'
            f'{html.escape(title)}</a></h2><time class="entry-date published" '
            f'datetime="{when:%Y-%m-%dT%H:%M:%S+00:00}">'
            f'{when:%B %d, %Y}</time></header><div class="entry-summary"><p>'
            f"{html.escape(' '.join(_sentences(rng, EN_SENTENCES, 2, 4)))} […]</p></div>"
            f'<footer class="entry-footer"><a href="{url}#comments" class="comments-link">{counts[url]}</a>'
            "</footer></article>"
            for url, title, pid, when in chunk
        )
        pager = f'<a class="next page-numbers" href="{next_url}">Older posts</a>' if next_url else ""
        links = f'<link rel="next" href="{next_url}">' if next_url else ""
        main = f'{articles}<nav class="navigation pagination"><div class="nav-links">{pager}</div></nav>'
        site.add(
            path, "blog-listing", _blog_shell(rng, f"Blog – page {page}", links, main, _sidebar(rng, recent))
        )

    about = "<p>Acme makes small appliances for kitchens and homes. Nothing to review here.</p>"
    site.pages[site.empty_page] = _blog_shell(rng, "About", "", about, "").encode("utf-8")
    return site


def write_site(site: Site, folder: Path) -> None:
    """The pages as files (``/a/b/`` -> ``a/b/index.html``), for a look with ``--keep``."""
    for path, body in site.pages.items():
        file = folder / path.lstrip("/")
        if path.endswith("/"):
            file = file / "index.html"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(body)


# ---------------------------------------------------------------------------- the server


class SiteServer(ThreadingHTTPServer):
    """Serves a :class:`Site` from memory on 127.0.0.1 and counts the requests by kind."""

    daemon_threads = True
    request_queue_size = (
        256  # socketserver's 5 drops connections when a crawl opens 16 at once (1 s SYN retry)
    )

    def __init__(self, site: Site) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.site = site
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        # time.perf_counter() of the first and the last request of each kind
        self.times: dict[str, tuple[float, float]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take_counts(self) -> Counter[str]:
        """The counts since the last call, and start again."""
        with self.lock:
            counts, self.counts = self.counts, Counter()
        return counts

    def take_times(self) -> dict[str, tuple[float, float]]:
        """When the first and the last request of each kind since the last call came, and
        start again."""
        with self.lock:
            times, self.times = self.times, {}
        return times


class _Handler(BaseHTTPRequestHandler):
    server: SiteServer
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        path = self.path.split("#", 1)[0]
        if path == "/robots.txt":
            kind, status, body, ctype = "robots", 200, ROBOTS, "text/plain"
        elif path in self.server.site.pages:
            kind = self.server.site.kinds.get(path, "other")
            status, body, ctype = 200, self.server.site.pages[path], "text/html; charset=UTF-8"
        else:
            kind, status, body, ctype = "missing", 404, b"<h1>Not Found</h1>", "text/html"
        now = time.perf_counter()
        with self.server.lock:
            self.server.counts[kind] += 1
            first, _ = self.server.times.get(kind, (now, now))
            self.server.times[kind] = (first, now)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve(site: Site) -> Iterator[SiteServer]:
    server = SiteServer(site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# -------------------------------------------------------------------- fetch-only spiders


class FetchOnlyReviewsSpider(ReviewsSpider):
    """The review spider with an extractor that finds nothing: the same requests, pagination
    and Scrapy machinery, no extraction, normalisation or storage (the download baseline).
    The children import it from this file (``crawl:FetchOnlyReviewsSpider``, see PYTHONPATH)."""

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        return []


class FetchOnlyBlogSpider(BlogCommentsSpider):
    """The blog spider with an extractor that finds nothing (see FetchOnlyReviewsSpider)."""

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        return []


# ------------------------------------------------------------------------------ databases


@contextmanager
def sqlite_place(folder: Path) -> Iterator[str]:
    yield f"sqlite:///{folder / 'earful-bench.sqlite3'}"


def write_config(folder: Path, db_url: str, base: str, site: Site) -> Config:
    """The benchmark's config file: one brand, the review and blog sources, their fetch-only
    twins (``incremental: false``: their extractors find nothing, so the blog spider would
    stop after one listing page), and the one-page source that times a crawl's fixed cost
    (``max_pages`` counts listing pages per start URL; set high so a large ``--pages`` is read
    whole). The database URL travels in an environment variable (a PostgreSQL URL may hold a
    password, which the config file must not)."""
    os.environ[DB_URL_ENV] = db_url
    starts = "\n".join(f"      - '{base}{path}'" for path in site.review_starts)
    module = Path(__file__).stem
    config_text = f"""\
database:
  url: '${{{DB_URL_ENV}}}'
timezone: UTC
privacy:
  pseudonymise_authors: true
brands:
  - name: {BRAND}
    aliases: [ACME, Acme Corp]
sources:
  - name: {REVIEWS}
    kind: reviews
    spider: reviews
    brand: {BRAND}
    start_urls:
{starts}
    options:
      max_pages: 1000000
  - name: {BLOG}
    kind: blog
    spider: blog_comments
    brand: {BRAND}
    start_urls: ['{base}{site.blog_start}']
    options:
      follow: '{FOLLOW}'
      max_pages: 1000000
  - name: {EMPTY}
    kind: reviews
    spider: reviews
    brand: {BRAND}
    enabled: false
    start_urls: ['{base}{site.empty_page}']
  - name: {REVIEWS_FETCH}
    kind: reviews
    spider: {module}:FetchOnlyReviewsSpider
    brand: {BRAND}
    enabled: false
    start_urls:
{starts}
    options:
      incremental: false
      max_pages: 1000000
  - name: {BLOG_FETCH}
    kind: blog
    spider: {module}:FetchOnlyBlogSpider
    brand: {BRAND}
    enabled: false
    start_urls: ['{base}{site.blog_start}']
    options:
      follow: '{FOLLOW}'
      incremental: false
      max_pages: 1000000
"""
    path = folder / "earful.yaml"
    path.write_text(config_text, encoding="utf-8")
    return load_config(path)


def stored_rows(db_url: str) -> dict[str, int]:
    """Rows in ``mention`` per source name, and the distinct keys overall."""
    db = Database(db_url)
    try:
        with db.session() as session:
            per_source = session.execute(
                select(SourceRow.name, func.count(MentionRow.id))
                .join(MentionRow, MentionRow.source_id == SourceRow.id)
                .group_by(SourceRow.name)
            ).all()
            distinct = session.scalar(
                select(func.count()).select_from(
                    select(MentionRow.source_id, MentionRow.external_key).distinct().subquery()
                )
            )
        rows = {str(name): int(count) for name, count in per_source}
        rows["distinct keys"] = int(distinct or 0)
        return rows
    finally:
        db.dispose()


# ------------------------------------------------------------------------------ measuring


@dataclass
class Crawl:
    """One crawl of several sources, side by side in one child (one ``crawl_sources`` call)."""

    label: str
    seconds: float = 0.0  # wall seconds of the whole call, as the user waits for it
    outcomes: list[CrawlOutcome] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    # Seconds from the call's start to the child's first request, from the first to the last
    # request, and from the last request to the call's end; the child's CPU seconds.
    phases: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpu: float = 0.0
    # Per outcome, seconds since the call's start: its source's first and last page request
    # (by the server's clock), and when its outcome reached the parent.
    marks: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return sum(n for kind, n in self.requests.items() if kind not in ("robots", "missing"))

    @property
    def seen(self) -> int:
        return sum(o.seen for o in self.outcomes)

    @property
    def new(self) -> int:
        return sum(o.new for o in self.outcomes)

    @property
    def updated(self) -> int:
        return sum(o.updated for o in self.outcomes)

    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    def fetching_pages_per_s(self) -> float:
        """Pages over the fetching window alone (first to last request): no start-up, no wind-down."""
        return self.pages / max(1e-9, self.phases[1])

    def mentions_per_s(self) -> float:
        return self.seen / self.seconds

    def exit_s(self) -> float:
        """Seconds from the last outcome reaching the parent to the call's end: the child's exit."""
        return self.seconds - max((done for _, _, done in self.marks), default=self.seconds)


def run_crawl(label: str, config: Config, names: Sequence[str], server: SiteServer, logs: Path) -> Crawl:
    """Crawl the sources side by side in one child, as ``earful crawl`` does (one
    ``crawl_sources`` call), timing the whole call."""
    crawl = Crawl(label)
    server.take_counts()
    server.take_times()
    cpu = _children_cpu()
    received: list[float] = []
    start = time.perf_counter()
    for outcome in crawl_sources(config, list(names), settings=SETTINGS, log_file=str(logs / f"{label}.log")):
        received.append(time.perf_counter())
        crawl.outcomes.append(outcome)
        _progress(
            f"{label} {outcome.source}: {outcome.status}, {outcome.pages:,} pages, {outcome.new:,} new, "
            f"{outcome.unchanged:,} unchanged after {received[-1] - start:.2f} s"
        )
    end = time.perf_counter()
    crawl.seconds = end - start
    crawl.cpu = _children_cpu() - cpu
    crawl.requests = server.take_counts()
    times = server.take_times()
    first = min((t[0] for t in times.values()), default=end)
    last = max((t[1] for t in times.values()), default=end)
    crawl.phases = (first - start, last - first, end - last)
    for outcome, at in zip(crawl.outcomes, received, strict=True):
        own = [times[k] for k in SOURCE_KINDS.get(outcome.source, ()) if k in times]
        mine_first = min((t[0] for t in own), default=at)
        mine_last = max((t[1] for t in own), default=at)
        crawl.marks.append((mine_first - start, mine_last - start, at - start))
    return crawl


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_startup(runs: int = 3) -> float:
    """Median seconds of ``python -c "import scrapy, earful.spiders.runner"``, after one
    untimed run (which fills the bytecode cache)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import scrapy, earful.spiders.runner"], check=True)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class Parse:
    seconds: float
    pages: int
    mentions: int
    dropped: int
    links: int

    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    def ms_per_page(self) -> float:
        return 1000 * self.seconds / self.pages


def parse_only(site: Site, config: Config, base: str) -> Parse:
    """Everything a crawl does with a page but fetch, schedule and store it: the extractor,
    normalisation, and the pagination / follow selectors, in this process."""
    from scrapy.http import HtmlResponse

    from earful.spiders.base import select_all
    from earful.spiders.comments import extract_comments
    from earful.spiders.normalise import Dropped, normalise
    from earful.spiders.pipelines import context_for
    from earful.spiders.structured import extract_reviews

    reviews_ctx = context_for(config, config.source(REVIEWS))
    blog_ctx = context_for(config, config.source(BLOG))
    rel_next = 'contains(concat(" ", normalize-space(@rel), " "), " next ")'
    next_xpath = f"//link[{rel_next}]/@href | //a[{rel_next}]/@href"
    pages = [(path, body, kind) for path, body in site.pages.items() if (kind := site.kinds.get(path))]

    def one(path: str, body: bytes, kind: str) -> tuple[int, int, int]:
        url = base + path
        response = HtmlResponse(url=url, body=body, encoding="utf-8")
        links = 0
        if kind == "review-listing":
            found = extract_reviews(response.body, url, encoding=response.encoding)
            context = reviews_ctx
        else:
            found = extract_comments(response.body, url, site_is_brand=blog_ctx.site_is_brand)
            context = blog_ctx
        if kind != "post":
            links += 1 if response.xpath(next_xpath).get() else 0
        if kind == "blog-listing":
            links += len(select_all(response, FOLLOW))
        kept = dropped = 0
        for mention in found:
            mention.source = context.source
            mention.url = mention.url or url
            try:
                normalise(mention, context)
                kept += 1
            except Dropped:
                dropped += 1
        return kept, dropped, links

    warm_up = {kind: (path, body) for path, body, kind in reversed(pages)}
    for kind, (path, body) in warm_up.items():  # lazy imports and models load outside the clock
        one(path, body, kind)
    start = time.perf_counter()
    kept = dropped = links = 0
    for path, body, kind in pages:
        k, d, n = one(path, body, kind)
        kept, dropped, links = kept + k, dropped + d, links + n
    return Parse(time.perf_counter() - start, len(pages), kept, dropped, links)


# ----------------------------------------------------------------------------- one database


@dataclass
class Result:
    database: str
    first: Crawl
    recrawl: Crawl
    fixed: Crawl
    fetch: Crawl
    rows_first: dict[str, int]
    rows_recrawl: dict[str, int]
    config: Config
    problems: list[str] = field(default_factory=list)

    def speedup(self) -> float:
        return self.first.seconds / self.recrawl.seconds

    def speedup_without(self, startup: float) -> float:
        """The speed-up less one child's import time on each side (one child per crawl)."""
        return (self.first.seconds - startup) / max(1e-9, self.recrawl.seconds - startup)

    def page_fraction(self) -> float:
        return self.recrawl.pages / self.first.pages


def bench_database(database: str, db_url: str, folder: Path, server: SiteServer, site: Site) -> Result:
    Database(db_url).upgrade()
    config = write_config(folder, db_url, server.url, site)
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    names = (REVIEWS, BLOG)
    run_crawl("warm-up", config, (EMPTY,), server, logs)  # fills the bytecode cache, untimed
    first = run_crawl("first", config, names, server, logs)
    rows_first = stored_rows(db_url)
    recrawl = run_crawl("recrawl", config, names, server, logs)
    rows_recrawl = stored_rows(db_url)
    fixed = run_crawl("fixed", config, (EMPTY,), server, logs)
    fetch = run_crawl("fetch", config, (REVIEWS_FETCH, BLOG_FETCH), server, logs)
    result = Result(database, first, recrawl, fixed, fetch, rows_first, rows_recrawl, config)
    check(result, site)
    return result


def check(result: Result, site: Site) -> None:
    p = result.problems
    db = result.database
    for crawl in (result.first, result.recrawl, result.fixed, result.fetch):
        for o in crawl.outcomes:
            if o.status != "succeeded" or o.errors or o.dropped:
                p.append(
                    f"{db} {crawl.label} {o.source}: {o.status}, {o.errors} errors, {o.dropped} dropped "
                    f"{o.stats.get('dropped')} ({o.message or 'no message'})"
                )
        if crawl.requests.get("missing"):
            p.append(f"{db} {crawl.label}: {crawl.requests['missing']} requests for pages that do not exist")
    expected = {REVIEWS: site.reviews, BLOG: site.comments}
    for source, n in expected.items():
        got = result.rows_first.get(source, 0)
        if got != n:
            p.append(f"{db}: {got:,} {source} mentions stored for {n:,} on the site")
    if result.rows_first.get("distinct keys") != sum(expected.values()):
        p.append(
            f"{db}: {result.rows_first.get('distinct keys')} distinct keys for {site.mentions:,} mentions"
        )
    if result.first.new != site.mentions:
        p.append(f"{db}: the first crawl stored {result.first.new:,} new mentions, not {site.mentions:,}")
    for crawl in (result.first, result.fetch):
        if crawl.pages != len(site.kinds):
            p.append(f"{db}: the {crawl.label} crawl fetched {crawl.pages:,} of {len(site.kinds):,} pages")
    if result.fetch.seen:
        p.append(f"{db}: the fetch-only crawl found {result.fetch.seen:,} mentions")
    if result.recrawl.new or result.recrawl.updated:
        p.append(f"{db}: the re-crawl stored {result.recrawl.new} new, {result.recrawl.updated} updated")
    if result.rows_recrawl != result.rows_first:
        p.append(f"{db}: rows changed on the re-crawl: {result.rows_first} -> {result.rows_recrawl}")


# ----------------------------------------------------------------------------------- output


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def print_table(
    site: Site, results: Sequence[Result], parse: Parse, startup: float, gen_s: float, bytecode: str
) -> None:
    size = sum(len(b) for b in site.pages.values())
    print(
        f"Site: {len(site.kinds):,} pages ({site.count('review-listing'):,} review listing pages of "
        f"{len(site.review_starts)} products, {site.count('blog-listing'):,} blog listing pages, "
        f"{site.count('post'):,} posts), {size / len(site.pages) / 1024:,.0f} KB a page on average, "
        f"{site.reviews:,} reviews + {site.comments:,} comments ({site.brand_replies:,} brand replies) = "
        f"{site.mentions:,} mentions; generated in {gen_s:.1f} s"
    )
    print(
        "Politeness is OFF for this benchmark only (no AutoThrottle, no delay, 16 requests in flight per "
        "site); real crawls keep the settings in spiders/settings.py."
    )
    print(
        "Each crawl is one crawl_sources() call, as `earful crawl` makes it: one child process crawls the "
        "sources side by side; seconds are the call's wall time."
    )
    print(f"Python bytecode cache: {bytecode}; child start-up timed after a warm-up crawl.")
    header = ("database", "crawl", "pages", "mentions", "new", "seconds", "pages/s", "mentions/s")
    widths = (9, 8, 7, 9, 7, 8, 9, 11)
    print()
    print(_row(header, widths))
    print("  ".join("-" * w for w in widths))
    for r in results:
        for c in (r.first, r.recrawl, r.fetch, r.fixed):
            cells = (
                r.database,
                c.label,
                f"{c.pages:,}",
                f"{c.seen:,}",
                f"{c.new:,}",
                f"{c.seconds:.2f}",
                f"{c.pages_per_s():,.0f}",
                f"{c.mentions_per_s():,.0f}",
            )
            print(_row(cells, widths))
    print()
    for r in results:
        by_kind = ", ".join(
            f"{c.label}: " + " + ".join(f"{n:,} {k}" for k, n in sorted(c.requests.items()) if k != "robots")
            for c in (r.first, r.recrawl)
        )
        print(f"{r.database}: pages by kind — {by_kind}")
        print(
            f"{r.database}: where a crawl's time goes, by the server's clock — wall = start-up (call start "
            "to the child's first request) + fetching (first to last request) + wind-down (last request to "
            "the call's end; the child may still be parsing and storing after its last request, and ends "
            "with its exit after the last outcome); per source, seconds after the call's start of its first "
            "and last page request and of its outcome reaching the parent"
        )
        for c in (r.first, r.recrawl, r.fetch, r.fixed):
            before, fetching, after = c.phases
            print(
                f"  {c.label:<8} {c.seconds:6.2f} s = {before:5.2f} + {fetching:5.2f} + {after:5.2f} s "
                f"(exit {c.exit_s():4.2f} s); child CPU {c.cpu:5.2f} s; {c.pages:,} pages, "
                f"{c.fetching_pages_per_s():,.0f} pages/s while fetching"
            )
            for o, (first, last, done) in zip(c.outcomes, c.marks, strict=True):
                print(
                    f"    {o.source:<18} {o.pages:>6,} pages {o.new:>6,} new {o.unchanged:>6,} unchanged; "
                    f"pages requested {first:5.2f}–{last:5.2f} s, outcome at {done:5.2f} s; "
                    f"{o.stats.get('stopped_at_known_page', 0)} listings stopped at a known page"
                )
        speed_ok = "met" if r.speedup() >= TARGET_SPEEDUP else "MISSED"
        print(
            f"{r.database}: re-crawl {r.speedup():.1f}× faster than the first crawl "
            f"(target ≥ {TARGET_SPEEDUP:g}×: {speed_ok}); {r.speedup_without(startup):.1f}× without "
            f"the child's {startup:.2f} s of imports; fetched {r.page_fraction():.1%} of the first crawl's "
            "pages"
        )
        print(
            f"{r.database}: a crawl's fixed cost — child start-up {startup:.2f} s (import scrapy + runner), "
            f"{r.fixed.seconds:.2f} s for a one-page source with nothing on it; the re-crawl's "
            f"{r.recrawl.seconds:.2f} s barely grows with the site, so the speed-up grows with --pages"
        )
        print(
            f"{r.database}: fetch only (same requests and Scrapy machinery, extractors find nothing, "
            f"incremental off): {r.fetch.pages:,} pages in {r.fetch.seconds:.2f} s = "
            f"{r.fetch.pages_per_s():,.0f} pages/s ({r.fetch.fetching_pages_per_s():,.0f} pages/s over the "
            f"fetching window alone); the first crawl takes {r.first.seconds - r.fetch.seconds:.2f} s more "
            "to extract, normalise and store"
        )
    fetch = results[0].fetch
    parse_ok = parse.pages_per_s() >= fetch.pages_per_s()
    print(
        f"parse only: {parse.pages:,} pages, {parse.mentions:,} mentions ({parse.dropped} dropped), "
        f"{parse.links:,} links in {parse.seconds:.2f} s = {parse.pages_per_s():,.0f} pages/s, "
        f"{parse.ms_per_page():.2f} ms a page"
    )
    print(
        f"parse vs download ({results[0].database}): parse only {parse.pages_per_s():,.0f} pages/s "
        f"({parse.ms_per_page():.2f} ms a page) vs fetch only {fetch.pages_per_s():,.0f} pages/s "
        f"({1000 / fetch.pages_per_s():.2f} ms a page) over loopback with politeness off (target parse ≥ "
        f"fetch: {'met' if parse_ok else 'MISSED'}; {fetch.fetching_pages_per_s():,.0f} pages/s, "
        f"{1000 / fetch.fetching_pages_per_s():.2f} ms a page, counting the fetching window alone)"
    )
    wait = polite_wait()
    print(
        f"in context: real crawls keep spiders/settings.py's politeness (AutoThrottle from a "
        f"{polite.AUTOTHROTTLE_START_DELAY:g} s start delay, never below DOWNLOAD_DELAY "
        f"{polite.DOWNLOAD_DELAY:g} s, {polite.CONCURRENT_REQUESTS_PER_DOMAIN} requests per site), so a "
        f"page costs ≥ {polite.DOWNLOAD_DELAY:g} s / {polite.CONCURRENT_REQUESTS_PER_DOMAIN} = {wait:g} s "
        f"of waiting; parsing it ({parse.ms_per_page():.2f} ms) is {parse.seconds / parse.pages / wait:.2%} "
        "of that"
    )
    for r in results:
        for problem in r.problems:
            print(f"CHECK FAILED: {problem}")
    if parse.mentions != site.mentions:
        print(f"CHECK FAILED: parse-only found {parse.mentions:,} mentions, the site has {site.mentions:,}")


def polite_wait() -> float:
    """The least a page waits under the real politeness settings: the download delay (which
    AutoThrottle never goes below; it starts higher) shared by the requests one site may have
    in flight. A conservative floor: Scrapy spaces a site's requests by the whole delay."""
    return float(polite.DOWNLOAD_DELAY) / int(polite.CONCURRENT_REQUESTS_PER_DOMAIN)


def figures(site: Site, results: Sequence[Result], parse: Parse, startup: float) -> dict[str, Any]:
    main = results[0]
    before, fetching, after = main.recrawl.phases
    out: dict[str, Any] = {
        "pages": len(site.kinds),
        "mentions": site.mentions,
        "first_pages_per_s": round(main.first.pages_per_s(), 1),
        "first_mentions_per_s": round(main.first.mentions_per_s(), 1),
        "first_seconds": round(main.first.seconds, 3),
        "recrawl_pages_per_s": round(main.recrawl.pages_per_s(), 1),
        "recrawl_mentions_per_s": round(main.recrawl.mentions_per_s(), 1),
        "recrawl_seconds": round(main.recrawl.seconds, 3),
        "recrawl_startup_s": round(before, 3),
        "recrawl_fetching_s": round(fetching, 3),
        "recrawl_wind_down_s": round(after, 3),
        "recrawl_exit_s": round(main.recrawl.exit_s(), 3),
        "recrawl_speedup": round(main.speedup(), 2),
        "recrawl_speedup_without_startup": round(main.speedup_without(startup), 2),
        "recrawl_page_fraction": round(main.page_fraction(), 4),
        "parse_pages_per_s": round(parse.pages_per_s(), 1),
        "parse_ms_per_page": round(parse.ms_per_page(), 3),
        "fetch_only_pages_per_s": round(main.fetch.pages_per_s(), 1),
        "fetch_only_ms_per_page": round(1000 / main.fetch.pages_per_s(), 3),
        "fetch_only_fetching_pages_per_s": round(main.fetch.fetching_pages_per_s(), 1),
        "parse_share_of_polite_wait": round(parse.seconds / parse.pages / polite_wait(), 5),
        "startup_s": round(startup, 3),
        "fixed_crawl_s": round(main.fixed.seconds, 3),
    }
    for r in results[1:]:
        out[f"{r.database}_first_pages_per_s"] = round(r.first.pages_per_s(), 1)
        out[f"{r.database}_recrawl_pages_per_s"] = round(r.recrawl.pages_per_s(), 1)
        out[f"{r.database}_recrawl_speedup"] = round(r.speedup(), 2)
        out[f"{r.database}_fetch_only_pages_per_s"] = round(r.fetch.pages_per_s(), 1)
    out["targets_met"] = all(r.speedup() >= TARGET_SPEEDUP for r in results) and all(
        parse.pages_per_s() >= r.fetch.pages_per_s() for r in results
    )
    out["checks_passed"] = not any(r.problems for r in results) and parse.mentions == site.mentions
    return out


# -------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES, help="pages on the generated site")
    parser.add_argument(
        "--postgres-url",
        help="also crawl into a throw-away schema on this PostgreSQL server (off by default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (site, config, logs)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="when PYTHONDONTWRITEBYTECODE is set, leave it so: every crawl compiles its imports",
    )
    args = parser.parse_args(argv)
    if args.pages < 30:
        parser.error("--pages must be at least 30")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.pop("EARFUL_DATABASE_URL", None)
    os.environ.pop("EARFUL_CONFIG", None)
    os.environ["EARFUL_PSEUDONYM_KEY"] = PSEUDONYM_KEY
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    # The children import the fetch-only spiders from this file.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))
    if args.postgres_url:
        check_postgres(args.postgres_url)
    start = time.perf_counter()
    site = generate_site(args.pages)
    gen_s = time.perf_counter() - start
    _progress(f"generated {len(site.kinds):,} pages with {site.mentions:,} mentions in {gen_s:.1f} s")
    folder = Path(tempfile.mkdtemp(prefix="earful-bench-crawl-"))
    bytecode = "written and reused as usual"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        if args.no_bytecode_cache:
            bytecode = "OFF (PYTHONDONTWRITEBYTECODE): every child compiles its imports"
        else:
            # An installed Earful has __pycache__ folders; give the children one of their own.
            os.environ.pop("PYTHONDONTWRITEBYTECODE")
            os.environ["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
            bytecode = "PYTHONDONTWRITEBYTECODE was set; the children use a cache in the temporary folder"
    _progress(f"bytecode cache: {bytecode}")
    try:
        write_site(site, folder / "site")
        startup = time_startup()
        _progress(f"child start-up (import scrapy + runner): {startup:.2f} s")
        results: list[Result] = []
        with serve(site) as server:
            _progress(f"serving on {server.url}")
            places: list[tuple[str, Callable[[], Any]]] = [("sqlite", lambda: sqlite_place(folder))]
            if args.postgres_url:
                _progress(f"PostgreSQL: {safe_url(args.postgres_url)}")
                places.append(("postgres", lambda: postgres_place(args.postgres_url, "crawl")))
            for database, place in places:
                sub = folder / database
                sub.mkdir()
                with place() as url:
                    results.append(bench_database(database, url, sub, server, site))
            parse = parse_only(site, results[0].config, server.url)
        print_table(site, results, parse, startup, gen_s, bytecode)
        out = figures(site, results, parse, startup)
        if args.keep:
            print(f"kept {folder}")
        print(json.dumps(out), flush=True)
        return 0 if out["checks_passed"] else 1
    finally:
        if args.keep:
            _progress(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EarfulError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
