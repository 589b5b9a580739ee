"""The demo's history: Norrow's reviews and comments over eight weeks, seeded (see
:mod:`earful.pipeline.demo`)."""

from __future__ import annotations

import functools
import html
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

BRAND = "Norrow"
#: The generator's seed: the same anchor gives the same site, byte for byte.
SEED = 8
HISTORY_DAYS = 56
#: Reviews and comments expected over the history before the spike (Poisson, so about).
HISTORY_MENTIONS = 1050
#: Negative delivery complaints in each of the last three hours before the anchor.
SPIKE_PER_HOUR = (7, 10, 13)
TIMEZONE = "Europe/Berlin"
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
    from earful.pipeline.weeks import last_complete_week

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
