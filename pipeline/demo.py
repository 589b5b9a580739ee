"""``earful demo``: the main job, end to end, on a sample site generated for the occasion.

The site belongs to Norrow, an outdoor-clothing brand we made up (every name on it is
fictional). :func:`make_history` writes its history, seeded, and :func:`write_site` its pages,
as four places a brand is talked about:

* the brand's shop, ``/shop/<product>/reviews.html``: product review pages with schema.org
  JSON-LD, newest first, paginated (``rel="next"``);
* a review portal, ``/revuo/norrow.html``: reviews in schema.org microdata, paginated;
* the brand's blog, ``/blog/``: WordPress-style posts with nested comment threads, where the
  brand answers (``bypostauthor``);
* an outdoor magazine, ``/trailnotes/feed.xml``: an RSS posts feed whose items point at each
  post's RSS comment feed (``wfw:commentRss``).

About eight weeks of reviews and comments, with a daily and weekly rhythm and a realistic mix
(mostly positive; quality, fit, price, delivery, customer service and returns), assembled from
the many phrasings in ``data/demo_site/texts.yaml``. The story it tells: Norrow changed its
delivery partner on the Monday of the last complete week, delivery complaints went up (the
weekly report of that week calls it beyond noise), and in the three hours before the demo's
hour they burst (the alert check finds the spike). A
few reviews' stars disagree with their words, a few are in German or French (not judged), one
review was posted on two sites (syndicated, counted once), and the brand replies on its blog.

**Dates and re-runs.** The history ends at the *anchor*: the UTC hour of the demo's first run in
a folder. The site is generated once per demo folder (``<dir>/site``, with the anchor in
``site/earful-demo.json``) and reused by later runs, which therefore store and classify
nothing new; the alert check runs as of the anchor (``run_alerts(at=anchor)``) and the report
is the last complete week before it, so a re-run shows the same spike and the same report.
Delete the folder for a fresh history that ends at the current hour.

**Politeness.** The site is served on 127.0.0.1 by ``earful demo`` itself, so the crawl lowers
Scrapy's delays for it (:data:`CRAWL_SETTINGS`): a special case for a local site we own.
robots.txt is still fetched and obeyed, and AutoThrottle stays on.

:func:`run_demo` runs the stages (set up, generate, crawl, classify, alerts, report) with the
real spiders, model, alert rule and report, prints what each found and its time, and ends with
a summary table.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import math
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from earful.pipeline.errors import EarfulError

if TYPE_CHECKING:
    from rich.console import Console

    from earful.pipeline.classify import ClassifyResult
    from earful.pipeline.config import Config
    from earful.pipeline.crawl import CrawlOutcome
    from earful.pipeline.db import Database

logger = logging.getLogger(__name__)

BRAND = "Norrow"
#: The generator's seed: the same anchor gives the same site, byte for byte.
SEED = 8
#: Bumped when the generator writes a different site for the same anchor and seed.
GENERATOR_VERSION = 1
HISTORY_DAYS = 56
#: Reviews and comments expected over the history before the spike (Poisson, so about).
HISTORY_MENTIONS = 1050
#: Negative delivery complaints in each of the last three hours before the anchor.
SPIKE_PER_HOUR = (7, 10, 13)
TIMEZONE = "Europe/Berlin"
SITE_INFO = "earful-demo.json"
REVIEWS_PER_PAGE = 25
BLOG_POSTS_PER_PAGE = 5

#: Scrapy settings for the demo's crawl. The demo serves its own site on 127.0.0.1, so it does
#: not wait between requests the way it must on somebody else's site (1 s, AutoThrottle
#: starting at 2 s): a special case for a local site. robots.txt is obeyed as always.
CRAWL_SETTINGS: dict[str, Any] = {"DOWNLOAD_DELAY": 0.0, "AUTOTHROTTLE_START_DELAY": 0.0}

HOUR = timedelta(hours=1)
LAST_INITIALS = "ABCDEFGHJKLMNPRSTVW"


# --------------------------------------------------------------------------- the sample


@dataclass(frozen=True)
class Product:
    slug: str
    name: str
    item: str  # what it is: "jacket"
    pronoun: str  # "it" or "they"
    price: int
    share: float  # of the reviews


@dataclass(frozen=True)
class Texts:
    """The words the site is written from (``data/demo_site/texts.yaml``)."""

    raw: dict[str, Any]

    @property
    def products(self) -> list[Product]:
        return [Product(**p) for p in self.raw["products"]]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]


def load_texts() -> Texts:
    import yaml

    text = files("earful.pipeline").joinpath("data/demo_site/texts.yaml").read_text(encoding="utf-8")
    return Texts(yaml.safe_load(text))


@dataclass
class Post:
    """An article on the blog or in the magazine."""

    number: int  # WordPress-style post id
    slug: str
    title: str
    published: datetime
    body: str
    author: str


@dataclass
class Item:
    """A review or comment on the generated site."""

    number: int  # the site's id: review id or WordPress comment id
    channel: str  # shop | revuo | blog | magazine
    published: datetime
    author: str
    text: str
    sentiment: str  # what it was written as: positive, mixed, negative, neutral, reply, foreign
    topics: tuple[str, ...] = ()
    title: str | None = None
    rating: int | None = None
    product: str | None = None  # shop and revuo: the product's slug
    post: Post | None = None  # blog and magazine: the article it is under
    parent: Item | None = None  # the comment it answers
    brand_reply: bool = False
    language: str = "en"
    burst: bool = False  # one of the complaints of the last hours
    replies: list[Item] = field(default_factory=list)


@dataclass
class History:
    """Everything on the site: when it ends, the articles, the reviews and comments."""

    anchor: datetime
    seed: int
    report_week_start: datetime
    products: list[Product]
    blog_posts: list[Post]
    magazine_posts: list[Post]
    items: list[Item]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.channel] = out.get(item.channel, 0) + 1
        return out

    @property
    def spike(self) -> list[Item]:
        """The burst of complaints in the last hours."""
        return [i for i in self.items if i.burst]


def anchor_hour(now: datetime | None = None) -> datetime:
    """The UTC hour the history ends at: the current hour, floored."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def make_history(anchor: datetime, seed: int = SEED) -> History:
    """The sample conversation about Norrow: ``HISTORY_DAYS`` of it, ending at ``anchor``."""
    from earful.pipeline.trends import last_complete_week

    return _Writer(load_texts(), anchor, seed, last_complete_week(TIMEZONE, anchor).start).history()


class _Writer:
    """Writes the history from one seeded random stream, consumed in a fixed order."""

    def __init__(self, texts: Texts, anchor: datetime, seed: int, report_week_start: datetime) -> None:
        self.t = texts
        self.products = texts.products
        self.anchor = anchor
        self.seed = seed
        # A sample, not a secret: a seeded, reproducible stream is the point.
        self.rng = random.Random(f"earful-demo:{seed}")  # noqa: S311
        self.tz = ZoneInfo(TIMEZONE)
        self.start = anchor - timedelta(days=HISTORY_DAYS)
        self.spike_start = anchor - len(SPIKE_PER_HOUR) * HOUR
        self.report_week_start = report_week_start
        # Norrow switched delivery partner on the Monday morning of the report's week;
        # delivery complaints crept up from then on, and burst in the last hours.
        self.switch = report_week_start + timedelta(hours=8)
        self.numbers = {"shop": 1000, "revuo": 5000, "blog": 100, "magazine": 7000}
        self.seen: set[str] = set()
        self.items: list[Item] = []
        self.blog: list[Post] = []
        self.magazine: list[Post] = []

    def history(self) -> History:
        self.blog = self.blog_posts()
        self.magazine = self.magazine_posts()
        when = self.start
        while when < self.spike_start:
            for _ in range(self.poisson(self.rate(when))):
                self.add_mention(when + timedelta(seconds=self.rng.randrange(3600)))
            when += HOUR
        self.add_specials()
        self.add_spike()
        self.add_replies()
        self.items.sort(key=lambda i: (i.published, i.number))
        return History(
            self.anchor,
            self.seed,
            self.report_week_start,
            self.products,
            self.blog,
            self.magazine,
            self.items,
        )

    # ---------------------------------------------------------------- when

    def rate(self, when: datetime) -> float:
        """Mentions expected in the hour starting ``when``: evenings and Sundays are busy,
        nights quiet, and the brand grows a little over the weeks."""
        local = when.astimezone(self.tz)
        daily = (0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1,
                 1.3, 1.1, 1.0, 1.0, 1.1, 1.3, 1.5, 1.7, 1.8, 1.6, 1.1, 0.5)  # fmt: skip
        weekly = (1.1, 1.0, 1.0, 0.95, 0.85, 0.8, 1.25)  # Monday .. Sunday
        growth = 0.85 + 0.3 * ((when - self.start) / (self.anchor - self.start))
        mean_weight = sum(daily) / 24 * sum(weekly) / 7
        per_hour = HISTORY_MENTIONS / (HISTORY_DAYS * 24) / mean_weight
        return per_hour * daily[local.hour] * weekly[local.weekday()] * growth

    def poisson(self, mean: float) -> int:
        limit, k, p = math.exp(-mean), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    # ---------------------------------------------------------------- articles

    def blog_posts(self) -> list[Post]:
        """Weekly, on Monday mornings; the delivery post on the day of the switch."""
        posts = []
        specs = self.t["blog_posts"]
        switch_index = next(i for i, p in enumerate(specs) if p["slug"] == "new-delivery-partner")
        for i, spec in enumerate(specs):
            when = self.switch + timedelta(days=7 * (i - switch_index))
            if when < self.start or when >= self.spike_start - timedelta(hours=6):
                continue
            body = spec.get("body") or self.t["blog_body"].format(title=html.escape(spec["title"]))
            posts.append(Post(200 + i, spec["slug"], spec["title"], when, body, f"{BRAND} Team"))
        return posts

    def magazine_posts(self) -> list[Post]:
        """Every two weeks."""
        posts = []
        for i, spec in enumerate(self.t["magazine_posts"]):
            when = self.start + timedelta(days=2 + 14 * i, hours=7)
            body = self.t["magazine_body"].format(title=html.escape(spec["title"]))
            posts.append(Post(9000 + i, spec["slug"], spec["title"], when, body, "Trail Notes editors"))
        return posts

    # ---------------------------------------------------------------- mentions

    def number(self, channel: str) -> int:
        self.numbers[channel] += 1
        return self.numbers[channel]

    def choice(self, options: list[str], p: float = 1.0) -> str:
        """One of ``options``, or (with probability 1 - ``p``) nothing."""
        return self.rng.choice(options) if p >= 1 or self.rng.random() < p else ""

    def author(self) -> str:
        return f"{self.rng.choice(self.t['first_names'])} {self.rng.choice(LAST_INITIALS)}."

    def product(self) -> Product:
        return self.rng.choices(self.products, [p.share for p in self.products])[0]

    def add_mention(self, when: datetime) -> None:
        channel = self.rng.choices(("shop", "revuo", "blog", "magazine"), (0.5, 0.22, 0.16, 0.12))[0]
        posts = {"blog": self.blog, "magazine": self.magazine}.get(channel)
        post = None
        if posts is not None:
            post = self.pick_post(posts, when)
            if post is None:
                channel = "shop"
        product = self.product()
        creeping = self.switch <= when
        topics = self.pick_topics(creeping or (post is not None and post.slug == "new-delivery-partner"))
        sentiment = self.pick_sentiment(topics, creeping)
        if creeping and sentiment == "negative" and "delivery" in topics:
            topics = ("delivery",)  # what the new courier gets wrong, and only that
        if post is not None and self.rng.random() < 0.25:  # about the article, not a product
            mood = "positive" if sentiment != "negative" or self.rng.random() < 0.5 else "neutral"
            text = self.rng.choice(self.t["chatter"][channel][mood])
            self.items.append(Item(self.number(channel), channel, when, self.author(), text, mood, post=post))
            return
        text = self.unique(lambda: self.compose(product, topics, sentiment))
        item = Item(self.number(channel), channel, when, self.author(), text, sentiment, topics, post=post)
        if post is None:
            item.product = product.slug
            item.title = self.rng.choice(self.t["titles"][sentiment]).format(item=product.item)
            item.rating = self.rating(sentiment)
        self.items.append(item)

    def pick_post(self, posts: list[Post], when: datetime) -> Post | None:
        """Mostly the newest article, sometimes an older one."""
        published = [p for p in posts if p.published < when]
        if not published:
            return None
        if len(published) > 1 and self.rng.random() < 0.2:
            return self.rng.choice(published[:-1])
        return published[-1]

    def pick_topics(self, creeping: bool) -> tuple[str, ...]:
        topics = self.t["topics"]
        names = list(topics)
        weights = [topics[n]["share"] * (3.5 if creeping and n == "delivery" else 1.0) for n in names]
        first = self.rng.choices(names, weights)[0]
        if self.rng.random() < 0.35:
            rest = [n for n in names if n != first]
            second = self.rng.choices(rest, [weights[names.index(n)] for n in rest])[0]
            return (first, second)
        return (first,)

    def pick_sentiment(self, topics: tuple[str, ...], creeping: bool) -> str:
        negative = max(self.t["topics"][t]["negative"] for t in topics)
        if creeping and "delivery" in topics:
            negative = 0.6
        roll = self.rng.random()
        if roll < negative:
            return "negative"
        if len(topics) > 1 and roll < negative + 0.25:
            return "mixed"
        return "positive"

    def compose(self, product: Product, topics: tuple[str, ...], sentiment: str) -> str:
        phrases = self.t["phrases"]
        if sentiment == "mixed":
            clauses = [
                self.rng.choice(phrases[topics[0]]["positive"]),
                "But " + _lower_first(self.rng.choice(phrases[topics[1]]["negative"])),
            ]
        else:
            clauses = [self.rng.choice(phrases[t][sentiment]) for t in topics]
        parts = [
            self.choice(self.t["openers"][sentiment], 0.6),
            *clauses,
            self.choice(self.t["closers"][sentiment], 0.5),
        ]
        return self.fill(" ".join(p for p in parts if p), product)

    def fill(self, text: str, product: Product) -> str:
        return text.format(
            item=product.item,
            product=product.name,
            s="" if product.pronoun == "they" else "s",
            days=self.rng.randrange(6, 15),
            times=self.rng.randrange(3, 6),
            weekday=self.rng.choice(("Monday", "Tuesday", "Wednesday", "Thursday")),
        )

    def rating(self, sentiment: str) -> int:
        if self.rng.random() < 0.012:  # a slip of the finger: stars that contradict the words
            return 1 if sentiment == "positive" else 5
        choices = {"positive": (5, 5, 5, 4, 4), "mixed": (3, 3, 4, 2), "negative": (1, 1, 2, 2, 3)}
        return self.rng.choice(choices[sentiment])

    def unique(self, make: Callable[[], str]) -> str:
        """A review text not written before: one person, one text (the report counts a long
        text found on two sites once, as syndicated)."""
        for _ in range(50):
            text = make()
            if text not in self.seen:
                break
        self.seen.add(text)
        return text

    def in_report_week(self, hours: float) -> datetime:
        when = self.report_week_start + timedelta(hours=hours, minutes=self.rng.randrange(60))
        return min(when, self.spike_start - HOUR)

    def add_specials(self) -> None:
        """What every report section needs at least one of, in the report's week: stars that
        contradict the words, a review posted on two sites, texts the model does not read."""
        for n, spec in enumerate(self.t["contradicting"]):
            self.items.append(
                Item(
                    self.number("shop"), "shop", self.in_report_week(30 + 50 * n), self.author(),
                    spec["text"], "negative" if spec["stars"] >= 4 else "positive", title=spec["title"],
                    rating=spec["stars"], product=spec["product"],
                )
            )  # fmt: skip
        spec, author, first = self.t["syndicated"], self.author(), self.in_report_week(50)
        for channel, when in (("shop", first), ("revuo", first + 2 * HOUR)):
            self.items.append(
                Item(
                    self.number(channel), channel, when, author, spec["text"], "positive", ("quality",),
                    title=spec["title"], rating=5, product=self.products[0].slug,
                )
            )  # fmt: skip
        foreign = self.t["foreign"]
        for i, spec in enumerate(foreign):
            last = i == len(foreign) - 1
            when = self.in_report_week(60) if last else self.start + timedelta(days=5 + 11 * i, hours=9)
            channel = "revuo" if i % 2 else "shop"
            self.items.append(
                Item(
                    self.number(channel), channel, when, self.author(), spec["text"], "foreign",
                    rating=4, product=self.products[i % len(self.products)].slug, language=spec["language"],
                )
            )  # fmt: skip

    def add_spike(self) -> None:
        """Clearly negative delivery complaints, more each hour, on every site."""
        spike = self.t["spike"]
        delivery_post = next((p for p in self.blog if p.slug == "new-delivery-partner"), self.blog[-1])
        for hour, count in enumerate(SPIKE_PER_HOUR):
            for _ in range(count):
                when = self.spike_start + hour * HOUR + timedelta(seconds=self.rng.randrange(3600))
                channel = self.rng.choices(("shop", "revuo", "blog", "magazine"), (0.5, 0.25, 0.2, 0.05))[0]
                product = self.product()
                text = self.unique(functools.partial(self.spike_text, product))
                post = {"blog": delivery_post, "magazine": self.pick_post(self.magazine, when)}.get(channel)
                item = Item(
                    self.number(channel), channel, when, self.author(), text, "negative", ("delivery",)
                )
                item.post, item.burst = post, True
                if post is None:
                    item.product, item.title, item.rating = product.slug, self.rng.choice(spike["titles"]), 1
                self.items.append(item)

    def spike_text(self, product: Product) -> str:
        spike = self.t["spike"]
        parts = (spike["problems"], 1.0), (spike["feelings"], 0.4), (spike["aftermath"], 0.7)
        return self.fill(" ".join(x for x in (self.choice(o, p) for o, p in parts) if x), product)

    def add_replies(self) -> None:
        """The brand answers on its blog, more often to complaints, after a few hours; readers
        answer each other on the blog and in the magazine."""
        for item in [i for i in self.items if i.post is not None and i.parent is None]:
            negative = item.sentiment == "negative"
            name = item.author.split()[0]
            if item.channel == "blog" and self.rng.random() < (0.55 if negative else 0.12):
                brand = True
                hours = self.rng.choice((1, 2, 3, 4, 6, 9, 16, 20))
                text = self.rng.choice(self.t["brand_replies"]["negative" if negative else "other"])
                text, author = text.format(name=name), f"{BRAND} Team"
            elif self.rng.random() < 0.07:
                brand, hours = False, self.rng.randrange(1, 30)
                text = self.rng.choice(self.t["user_replies"]["negative" if negative else "other"])
                author = self.author()
            else:
                continue
            when = item.published + timedelta(hours=hours, minutes=self.rng.randrange(60))
            if when >= self.anchor:
                continue
            reply = Item(
                self.number(item.channel), item.channel, when, author, text, "reply",
                post=item.post, parent=item, brand_reply=brand,
            )  # fmt: skip
            item.replies.append(reply)
            self.items.append(reply)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


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


# --------------------------------------------------------------------------- the run


Serve = Callable[[Path], AbstractContextManager[str]]


@dataclass
class Stage:
    name: str
    seconds: float
    result: str


@dataclass
class DemoResult:
    """What one ``earful demo`` run did."""

    folder: Path
    config_path: Path
    anchor: datetime | None = None
    stages: list[Stage] = field(default_factory=list)
    mentions: int = 0
    new_mentions: int = 0
    classified: int = 0  # by this run
    classified_total: int = 0
    alerts: list[str] = field(default_factory=list)  # summaries of the spike alerts shown
    new_alerts: int = 0
    report: Path | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


class _Clock:
    def __init__(self, result: DemoResult) -> None:
        self.result = result

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        stage = Stage(name, 0.0, "")
        started = time.monotonic()
        try:
            yield stage
        finally:
            stage.seconds = time.monotonic() - started
            self.result.stages.append(stage)


def run_demo(folder: Path, *, serve: Serve, console: Console | None = None) -> DemoResult:
    """Run the demo in ``folder``: set up, generate (or reuse) the site, crawl it with the
    real spiders, classify with the real model, check for alerts as of the site's last hour,
    write the weekly report, and print a summary. ``serve(folder)`` serves a folder on
    127.0.0.1 for the length of a ``with`` block and gives its URL."""
    import click
    from rich.console import Console

    from earful.pipeline.config import load_config
    from earful.pipeline.db import Database, safe_url
    from earful.pipeline.store import MentionStore

    out = console or Console()
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "earful.yaml"
    result = DemoResult(folder, config_path)
    clock = _Clock(result)

    with clock.stage("set up") as stage:
        if not config_path.exists():
            text = files("earful.pipeline").joinpath("data/demo.yaml").read_text(encoding="utf-8")
            config_path.write_text(text, encoding="utf-8")
            click.echo(f"Wrote demo config {config_path}.")
        # The demo keeps to its own folder even where EARFUL_DATABASE_URL names a real database.
        config = load_config(config_path, database_env=False)
        _ensure_key(config)
        db = Database(config.database.url, busy_timeout_s=config.database.busy_timeout_s)
        db.upgrade()
        MentionStore(db, config).sync_config()
        stage.result = f"{safe_url(db.url)}, revision {db.current_revision()}"
        click.echo(f"Database {stage.result}.")
    try:
        _stages(result, clock, db, config, serve, out)
    finally:
        db.dispose()
    _summary(result, out)
    return result


def _stages(
    result: DemoResult, clock: _Clock, db: Database, config: Config, serve: Serve, out: Console
) -> None:
    import click

    folder = result.folder

    with clock.stage("generate site") as stage:
        site = ensure_site(folder / "site")
        result.anchor = site.anchor
        total = sum(site.counts.values())
        ends = _local(site.anchor, config.timezone)
        if site.generated:
            click.echo(
                f"Generated the {BRAND} sample site in {site.folder}: {total:,} reviews and comments over "
                f"{HISTORY_DAYS // 7} weeks up to {ends} {config.timezone}, the last {len(SPIKE_PER_HOUR)} "
                f"hours with a burst of {site.spike} delivery complaints."
            )
            stage.result = f"{total:,} reviews and comments"
        else:
            click.echo(
                f"Reusing the sample site in {site.folder}: {total:,} reviews and comments up to {ends} "
                f"{config.timezone} (delete {folder} for a fresh history that ends now)."
            )
            stage.result = "reused"

    with clock.stage("crawl") as stage:
        config, outcomes = _crawl(site, config, folder, serve)
        new = sum(o.new for o in outcomes)
        result.new_mentions = new
        stage.result = f"{sum(o.pages for o in outcomes):,} pages, {new:,} new"

    with clock.stage("classify") as stage:
        classified = _classify(db, config, out)
        result.classified = classified.classified
        stage.result = f"{classified.classified:,} classified"

    with clock.stage("alerts") as stage:
        shown, new_alerts = _alerts(db, config, site.anchor)
        result.alerts = shown
        result.new_alerts = new_alerts
        stage.result = f"{len(shown)} spike alert{'' if len(shown) == 1 else 's'}" + (
            f" ({new_alerts} new)" if new_alerts != len(shown) else ""
        )

    with clock.stage("report") as stage:
        result.report = _report(db, config, site.anchor)
        stage.result = result.report.name if result.report else "-"

    result.mentions, result.classified_total = _totals(db)


def _ensure_key(config: Config) -> None:
    """A random pseudonym key beside the config, as ``earful init`` writes it."""
    from earful.pipeline.store import KEY_FILE

    if not config.privacy.pseudonymise_authors or os.environ.get(config.privacy.key_env):
        return
    key_file = (config.path or Path("earful.yaml")).parent / KEY_FILE
    if key_file.exists():
        return
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def _local(when: datetime, timezone: str) -> str:
    return when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


@contextmanager
def _demo_site_env(url: str) -> Iterator[None]:
    """``$EARFUL_DEMO_SITE`` set to the served site for the block (the config's start URLs
    name it, and the crawler's child process reads the config again)."""
    before = os.environ.get("EARFUL_DEMO_SITE")
    os.environ["EARFUL_DEMO_SITE"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("EARFUL_DEMO_SITE", None)
        else:
            os.environ["EARFUL_DEMO_SITE"] = before


def _crawl(site: Site, config: Config, folder: Path, serve: Serve) -> tuple[Config, list[CrawlOutcome]]:
    import click

    from earful.pipeline.config import load_config
    from earful.pipeline.crawl import crawl_sources, enabled_sources

    log_file = folder / "earful-crawl.log"
    with serve(site.folder) as url, _demo_site_env(url):
        config = load_config(config.path, database_env=False)  # with the served site's address
        names = enabled_sources(config)
        click.echo(
            f"Crawling {len(names)} sources on {url} with the real spiders (robots.txt obeyed; no delay "
            "between requests, since the site is local) ..."
        )
        outcomes = []
        for outcome in crawl_sources(
            config, names, settings=CRAWL_SETTINGS, timeout_s=300.0, log_file=str(log_file)
        ):
            outcomes.append(outcome)
            click.echo(
                f"  {outcome.source}: {outcome.status} in {outcome.seconds:.1f} s, {outcome.pages} pages, "
                f"{outcome.new:,} new, {outcome.updated:,} updated, {outcome.unchanged:,} unchanged, "
                f"{outcome.dropped:,} dropped" + (f" ({outcome.message})" if outcome.message else "")
            )
    failed = [o.source for o in outcomes if o.status != "succeeded"]
    if failed:
        raise EarfulError(f"the demo crawl of {', '.join(failed)} failed; see {log_file}")
    return config, outcomes


def _classify(db: Database, config: Config, out: Console) -> ClassifyResult:
    import click

    from earful.pipeline.classify import classify_mentions, load_classifier

    with out.status("loading the classifier ..."):
        clf = load_classifier(config)
    with out.status("classifying ...") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"classifying: {done:,} of {total:,} mentions ...")

        result = classify_mentions(db, config, clf, progress=progress)
    if not result.classified:
        click.echo(f"Nothing to classify: every mention has a classification by {result.version}.")
        return result
    sentiments = ", ".join(f"{n:,} {label}" for label, n in result.sentiments.items())
    unjudged = sum(result.unjudged.values())
    click.echo(
        f"Classified {result.classified:,} mentions with {result.version} in {result.seconds:.1f} s "
        f"({result.texts_per_s:.1f} texts/s): {sentiments}"
        + (f"; {unjudged} not judged" if unjudged else "")
        + "."
    )
    return result


def _alerts(db: Database, config: Config, anchor: datetime) -> tuple[list[str], int]:
    """Run the alert check as of the site's last hour; print each spike alert in full. On a
    re-run the alert is stored already: it is read back and shown as it was raised."""
    import click
    from sqlalchemy import select

    from earful.pipeline.alerts import alert_message, run_alerts
    from earful.pipeline.schema import Alert

    run = run_alerts(db, config, at=anchor)
    tested = [t for t in run.tests if t.verdict.tested]
    click.echo(
        f"Alert check as of {_local(run.at, config.timezone)} {config.timezone} (the last "
        f"{config.alerts.window_hours} complete hours against the same hours in the past "
        f"{config.alerts.baseline_weeks} weeks): {len(tested)} tests of {len({t.brand for t in tested})} "
        f"brand and its topics, {sum(t.significant for t in run.tests)} flagged."
    )
    shown = [a for a in run.alerts if a.kind == "spike"]
    messages = [alert_message(a) for a in shown]
    with db.session() as session:
        stored = session.scalars(
            select(Alert).where(Alert.kind == "spike", Alert.window_end == anchor).order_by(Alert.id)
        ).all()
        new_keys = {a.key for a in shown}
        earlier = [alert_message(a) for a in stored if a.dedup_key not in new_keys]
    if earlier:
        click.echo("Raised by an earlier run of the demo for this hour (stored once, not sent again):")
    for message in [*messages, *earlier]:
        click.echo("")
        click.echo("  " + message.plain().rstrip().replace("\n", "\n  "))
    click.echo("")
    if not messages and not earlier:
        click.echo("No spike found.")
    summaries = [str(m.data.get("summary", m.title)) for m in [*messages, *earlier]]
    return summaries, len(messages)


def _report(db: Database, config: Config, anchor: datetime) -> Path | None:
    import click

    from earful.pipeline.report import write_reports
    from earful.pipeline.trends import last_complete_week

    week = last_complete_week(config.timezone, anchor)
    written = write_reports(db, config, week=week)
    for report in written:
        click.echo(f"Weekly report of {report.brand}, {report.week} (what the Monday report says):")
        for line in report.report.summary:
            click.echo(f"  {line}")
        click.echo(f"  {report.html}")
    return written[0].html if written else None


def _totals(db: Database) -> tuple[int, int]:
    from sqlalchemy import func, select

    from earful.pipeline.classify import latest_version
    from earful.pipeline.schema import Classification, Mention

    version = latest_version(db)
    with db.session() as session:
        mentions = session.scalar(select(func.count(Mention.id))) or 0
        classified = session.scalar(
            select(func.count(Classification.id)).where(Classification.model_version == version)
        )
    return int(mentions), int(classified or 0)


def _summary(result: DemoResult, out: Console) -> None:
    import click
    from rich.table import Table

    table = Table(title="Earful demo")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    for stage in result.stages:
        table.add_row(stage.name, f"{stage.seconds:.1f}", stage.result)
    table.add_section()
    table.add_row("total", f"{result.seconds:.1f}", "")
    out.print(table, markup=False)
    click.echo(
        f"Mentions: {result.mentions:,} ({result.new_mentions:,} new this run); classified: "
        f"{result.classified_total:,} ({result.classified:,} this run); spike alerts: {len(result.alerts)} "
        f"({result.new_alerts} new this run)."
    )
    if result.report:
        click.echo(f"Report: {result.report}")
    click.echo(
        f"Next: open the report in a browser, or try `earful --config {result.config_path} status`; "
        "docs/marketing.md explains how to read the report and the alerts."
    )
