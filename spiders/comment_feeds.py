"""Comment feeds (RSS 2.0 and Atom, via feedparser), and the feeds they point at.

A start URL may be a comment feed, a blog's posts feed (its items' ``wfw:commentRss`` lead to
each post's comment feed) or an HTML page that announces its comment feed in ``<head>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import scrapy
from scrapy.http import Response

from earful.spiders.base import EarfulSpider
from earful.spiders.items import Mention


class CommentFeedSpider(EarfulSpider):
    name = "comment_feed"
    kind = "comment"

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        from earful.spiders.feeds import discover_comment_feeds

        yield from self.stamp(self.extract(response), response)
        for url in discover_comment_feeds(response.body, response.url):
            if url != response.url:
                yield scrapy.Request(url, callback=self.parse)

    def extract(self, response: Any) -> Iterable[Mention]:
        from earful.spiders.feeds import extract_feed

        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
        if (
            "html" in content_type
            and b"<rss" not in response.body[:2048]
            and b"<feed" not in response.body[:2048]
        ):
            return []
        result = extract_feed(response.body, response.url)
        mentions = list(getattr(result, "mentions", result))
        error = getattr(result, "error", None)
        if error:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("earful/feed_errors")
            self.logger.warning("%s: broken feed (%s); kept %d entries", response.url, error, len(mentions))
        return mentions
