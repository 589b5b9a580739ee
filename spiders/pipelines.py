"""Item pipelines: each does one job, in this order (see ``ITEM_PIPELINES`` in settings).

1. :class:`ValidatePipeline` drops what is not a mention at all (no text, not a Mention).
2. :class:`NormalisePipeline` turns the raw item into a :class:`MentionIn` (clean text, UTC
   dates, ratings on their scale, language, key) or drops it with the reason.
3. :class:`AttributePipeline` keeps, for a source bound to no brand, only mentions that name
   a monitored brand (an alias on word boundaries, any case) and records which brand.
4. :class:`StorePipeline` stores mentions in batches through the store, so a crawl killed
   halfway keeps what it stored, and a re-run converges.

Every drop is counted in the crawl's stats under ``earful/dropped/<reason>``; the run
records them (``earful status``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured

from earful.pipeline.config import Config
from earful.pipeline.config import Source as SourceConfig
from earful.pipeline.store import MentionIn, MentionStore
from earful.spiders.items import Mention
from earful.spiders.normalise import Context, Dropped, normalise

logger = logging.getLogger(__name__)


def _drop(spider: Spider, reason: str, url: str | None) -> DropItem:
    assert spider.crawler.stats is not None
    spider.crawler.stats.inc_value(f"earful/dropped/{reason}")
    return DropItem(f"{reason} at {url or 'an unknown page'}")


def _source(spider: Spider) -> SourceConfig:
    source = getattr(spider, "source", None)
    if not isinstance(source, SourceConfig):
        raise NotConfigured("the spider has no Earful source (earful.spiders.base.EarfulSpider sets it)")
    return source


def context_for(config: Config, source: SourceConfig) -> Context:
    options = source.options
    return Context(
        source=source.name,
        timezone=str(options.get("timezone", config.timezone)),
        date_format=options.get("date_format"),
        site_is_brand=bool(options.get("site_is_brand", source.brand is not None)),
    )


class _Stage:
    """A pipeline component that knows its crawler (Scrapy no longer passes the spider)."""

    crawler: Crawler

    @property
    def spider(self) -> Spider:
        spider = self.crawler.spider
        assert spider is not None
        return spider


class ValidatePipeline(_Stage):
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        stage = cls()
        stage.crawler = crawler
        return stage

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        spider = self.spider
        if not isinstance(item, Mention):
            raise _drop(spider, "not a mention", None)
        if not (item.text or "").strip():
            raise _drop(spider, "no text", item.url)
        return item


class NormalisePipeline(_Stage):
    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalisePipeline:
        config = crawler.settings.get("EARFUL_CONFIG")
        if not isinstance(config, Config):
            raise NotConfigured("EARFUL_CONFIG is not set")
        stage = cls(config)
        stage.crawler = crawler
        return stage

    def process_item(self, item: Mention, spider: Spider | None = None) -> MentionIn:
        spider = self.spider
        context = context_for(self.config, _source(spider))
        try:
            mention, notes = normalise(item, context)
        except Dropped as exc:
            raise _drop(spider, str(exc), item.url) from None
        assert spider.crawler.stats is not None
        for note in notes:
            spider.crawler.stats.inc_value(f"earful/notes/{note}")
        return mention


def alias_pattern(names: list[str]) -> re.Pattern[str]:
    """Any of the names as a whole word, in any case (``Acme`` matches "acme's", not
    "Acmeville")."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n.strip())
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class AttributePipeline(_Stage):
    def __init__(self, config: Config) -> None:
        self.brands = [(b.name, alias_pattern([b.name, *b.aliases])) for b in config.brands]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AttributePipeline:
        stage = cls(crawler.settings["EARFUL_CONFIG"])
        stage.crawler = crawler
        return stage

    def process_item(self, item: MentionIn, spider: Spider | None = None) -> MentionIn:
        spider = self.spider
        if item.brand or _source(spider).brand:
            return item  # a product's own page: every mention is about its brand
        haystack = f"{item.title or ''}\n{item.text}"
        for name, pattern in self.brands:
            if pattern.search(haystack):
                return item.model_copy(update={"brand": name})
        raise _drop(spider, "names no monitored brand", item.url)


class StorePipeline(_Stage):
    """Stores mentions in batches of ``EARFUL_STORE_BATCH`` (default 200) items."""

    def __init__(self, store: MentionStore, batch: int) -> None:
        self.store = store
        self.run_id: int | None = None
        self.batch_size = batch
        self.buffer: list[MentionIn] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        from earful.pipeline.db import Database

        config: Config = crawler.settings["EARFUL_CONFIG"]
        db = Database(config.database.url, busy_timeout_s=config.database.busy_timeout_s)
        batch = crawler.settings.getint("EARFUL_STORE_BATCH", 200)
        stage = cls(MentionStore(db, config), batch)
        stage.crawler = crawler
        return stage

    def open_spider(self, spider: Spider | None = None) -> None:
        self.run_id = getattr(self.spider, "run_id", None)

    def process_item(self, item: MentionIn, spider: Spider | None = None) -> MentionIn:
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        spider = self.spider
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        result = self.store.store(batch, crawl_run_id=self.run_id)
        stats = spider.crawler.stats
        assert stats is not None
        stats.inc_value("earful/seen", result.seen + len(result.rejected))
        stats.inc_value("earful/new", result.new)
        stats.inc_value("earful/updated", result.updated)
        stats.inc_value("earful/unchanged", result.unchanged)
        stats.inc_value("earful/rejected", len(result.rejected))
        for _index, reason in result.rejected:
            stats.inc_value(f"earful/dropped/{reason.split(';')[0][:80]}")

    def close_spider(self, spider: Spider | None = None) -> None:
        self.flush()
        self.store.db.dispose()
