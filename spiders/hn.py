"""Hacker News comments through the public Algolia search API (JSON, no key needed).

The source's ``options.query`` is what to search for (default: the brand's name and aliases,
or every brand's for a source bound to none); ``options.api_url`` points elsewhere (tests use
saved responses on a local server). Results come newest first, so an incremental crawl stops at
the first page it has already stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response

from earful.spiders.base import EarfulSpider
from earful.spiders.items import Mention

API_URL = "https://hn.algolia.com/api/v1/search_by_date"
ITEM_URL = "https://news.ycombinator.com/item?id={}"


class HackerNewsSpider(EarfulSpider):
    name = "hn"
    kind = "comment"

    def queries(self) -> list[str]:
        query = self.options.get("query")
        if query:
            return [str(q) for q in (query if isinstance(query, list) else [query])]
        brands = [b for b in self.config.brands if self.source.brand in (None, b.name)]
        return [f'"{name}"' for b in brands for name in (b.name, *b.aliases)]

    def page_url(self, query: str, page: int) -> str:
        params = {
            "query": query,
            "tags": "comment",
            "hitsPerPage": self.options.get("hits_per_page", 100),
            "page": page,
        }
        return f"{self.options.get('api_url', API_URL)}?{urlencode(params)}"

    def start_requests_for_source(self) -> Iterator[scrapy.Request]:
        for query in self.queries():
            yield scrapy.Request(
                self.page_url(query, 0), callback=self.parse, cb_kwargs={"query": query, "page": 0}
            )

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        try:
            data = json.loads(response.body)
            hits = data["hits"]
        except (ValueError, KeyError, TypeError) as exc:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("earful/api_errors")
            self.logger.error("%s: not a search result (%s)", response.url, exc)
            return
        mentions = list(self.mentions(hits))
        yield from mentions
        page = int(kwargs.get("page", 0))
        pages = int(data.get("nbPages", 0) or 0)
        if page + 1 < min(pages, self.max_pages) and not self.stop_here(mentions, response.url):
            query = kwargs["query"]
            yield scrapy.Request(
                self.page_url(query, page + 1),
                callback=self.parse,
                cb_kwargs={"query": query, "page": page + 1},
            )

    def mentions(self, hits: Iterable[dict[str, Any]]) -> Iterator[Mention]:
        for hit in hits:
            if not isinstance(hit, dict) or not hit.get("comment_text") or not hit.get("objectID"):
                continue
            parent = hit.get("parent_id")
            story = hit.get("story_id")
            yield Mention(
                text=hit["comment_text"],
                author=hit.get("author"),
                published=hit.get("created_at"),
                external_key=f"hn-{hit['objectID']}",
                url=ITEM_URL.format(hit["objectID"]),
                title=hit.get("story_title"),
                parent_key=f"hn-{parent}" if parent and parent != story else None,
                kind="comment",
                source=self.source.name,
                found_by="hn-algolia",
            )

    def extract(self, response: Any) -> Iterable[Mention]:
        return self.mentions(json.loads(response.body).get("hits", []))
