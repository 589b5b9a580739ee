"""The base spider every Earful spider subclasses, and how a crawl stops early.

A spider for a site that needs code subclasses :class:`EarfulSpider` and implements one
method, :meth:`~EarfulSpider.extract`, returning the mentions on a page as raw
:class:`~earful.spiders.items.Mention` items. The base class does the rest: it starts from the
source's ``start_urls``, follows pagination (``rel="next"`` links, or the source's
``options.next_page`` selector), stamps each mention with its source and page, and stops
paginating once a listing page holds only mentions already stored (``options.incremental``,
on by default), so the second crawl of an unchanged site fetches a fraction of the pages::

    class ForumSpider(EarfulSpider):
        name = "forum"

        def extract(self, response):
            return [Mention(text=post.css(".body").get(), author=post.css(".user::text").get(),
                            published=post.css("time::attr(datetime)").get(), kind="comment")
                    for post in response.css("article.post")]
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse
from sqlalchemy import select

from earful.pipeline.config import Config
from earful.pipeline.config import Source as SourceConfig
from earful.spiders.items import Mention
from earful.spiders.normalise import Dropped, mention_key

logger = logging.getLogger(__name__)


def select_all(response: TextResponse, selector: str) -> list[str]:
    """A selector from the config: ``xpath:...`` is XPath, anything else CSS."""
    if selector.startswith("xpath:"):
        return [v for v in response.xpath(selector[len("xpath:") :]).getall() if v]
    return [v for v in response.css(selector).getall() if v]


class EarfulSpider(scrapy.Spider):
    """Base class: a source's pages in, raw mentions out. Subclasses implement ``extract``."""

    name = "earful"
    kind = "review"

    def __init__(
        self,
        source: SourceConfig,
        config: Config,
        known_keys: set[str] | None = None,
        run_id: int | None = None,
        **kw: Any,
    ):
        super().__init__(name=kw.pop("name", None) or self.name, **kw)
        self.source = source
        self.run_id = run_id  # the crawl_run this crawl records into
        self.config = config
        self.options = dict(source.options)
        self.known_keys = known_keys if known_keys is not None else set()
        self.incremental = bool(self.options.get("incremental", True))
        self.max_pages = int(self.options.get("max_pages", 1000))  # per start URL

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> EarfulSpider:
        config: Config = crawler.settings["EARFUL_CONFIG"]
        source: SourceConfig = kwargs.pop("source")
        if "known_keys" not in kwargs:
            kwargs["known_keys"], finished = stored_keys(config, source.name, kwargs.get("run_id"))
        else:
            finished = True
        spider = cls(source, config, *args, **kwargs)
        if spider.incremental and not finished:
            # The last crawl stopped halfway: pages past the first known one may never have
            # been read, so this crawl reads them all once more.
            spider.incremental = False
            logger.info("%s: the last crawl did not finish; reading every page this time", source.name)
        spider._set_crawler(crawler)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        for request in self.start_requests_for_source():
            yield request

    def start_requests_for_source(self) -> Iterator[scrapy.Request]:
        for url in self.source.start_urls:
            yield scrapy.Request(str(url), callback=self.parse, dont_filter=True)

    # ----------------------------------------------------------------- per page

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            logger.warning(
                "%s: not a text page (%s), skipped", response.url, response.headers.get("Content-Type")
            )
            return
        mentions = list(self.stamp(self.extract(response), response))
        yield from mentions
        yield from self.follow(response, mentions)

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        """The mentions on one page. Subclasses implement this."""
        raise NotImplementedError

    def stamp(self, mentions: Iterable[Mention], response: Response) -> Iterator[Mention]:
        """Mark each mention with this source and, when it has no URL of its own, the page."""
        for mention in mentions:
            mention.source = self.source.name
            mention.url = mention.url or response.url
            yield mention

    def follow(self, response: TextResponse, mentions: list[Mention]) -> Iterator[scrapy.Request]:
        """The next listing page, unless this page only held mentions we already have."""
        if self.stop_here(mentions, response.url):
            return
        next_url = self.next_page(response)
        page = int(response.meta.get("earful_page", 0))  # listing pages followed from a start URL
        if next_url and page + 1 < self.max_pages:
            yield response.follow(next_url, callback=self.parse, meta={"earful_page": page + 1})

    def stop_here(self, mentions: list[Mention], url: str) -> bool:
        """True when an incremental crawl should not paginate past this page: it held
        mentions, and every one of them is stored already."""
        if not (self.incremental and mentions and self.all_known(mentions)):
            return False
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("earful/stopped_at_known_page")
        logger.info(
            "%s: every mention on %s is stored already; not paginating further", self.source.name, url
        )
        return True

    def next_page(self, response: TextResponse) -> str | None:
        selector = self.options.get("next_page")
        if selector:
            found = select_all(response, str(selector))
            return found[0] if found else None
        rel_next = 'contains(concat(" ", normalize-space(@rel), " "), " next ")'
        return response.xpath(f"//link[{rel_next}]/@href | //a[{rel_next}]/@href").get()

    def all_known(self, mentions: list[Mention]) -> bool:
        from earful.spiders.pipelines import context_for

        context = context_for(self.config, self.source)
        for mention in mentions:
            try:
                key = mention_key(mention, context)
            except Dropped:
                return False
            if key not in self.known_keys:
                return False
        return True


def stored_keys(config: Config, source: str, current_run: int | None = None) -> tuple[set[str], bool]:
    """External keys already stored for a source (what an incremental crawl may skip), and
    whether the source's previous crawl finished."""
    from earful.pipeline.db import Database
    from earful.pipeline.schema import CrawlRun, Source
    from earful.pipeline.schema import Mention as MentionRow

    db = Database(config.database.url, busy_timeout_s=config.database.busy_timeout_s)
    try:
        with db.session() as session:
            query = (
                select(MentionRow.external_key)
                .join(Source, Source.id == MentionRow.source_id)
                .where(Source.name == source)
            )
            keys = set(session.scalars(query))
            last = session.scalars(
                select(CrawlRun.status)
                .join(Source, Source.id == CrawlRun.source_id)
                .where(Source.name == source, CrawlRun.kind == "crawl", CrawlRun.id != (current_run or -1))
                .order_by(CrawlRun.id.desc())
                .limit(1)
            ).first()
            return keys, last in (None, "succeeded")
    finally:
        db.dispose()
