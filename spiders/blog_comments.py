"""Blog comment threads in HTML (WordPress themes, microformats), replies linked to parents.

``options.follow`` (a CSS or ``xpath:`` selector) names links from a listing page to the posts
whose comments to read; without it the start URLs are the posts themselves. When the blog is
the brand's own (the source has a brand, or ``options.site_is_brand``), the post author's
replies are marked as brand responses.

Listing pages hold no comments, so "stop at a page of known mentions" is decided on the posts:
the next listing page is requested once every post of this one has been read, and only if one
of them held a comment not stored yet (or could not be read). A re-crawl of an unchanged blog
reads its first listing page and that page's posts, and stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from earful.spiders.base import EarfulSpider, select_all
from earful.spiders.items import Mention


@dataclass
class _Listing:
    """One listing page whose posts are being read."""

    next_url: str | None
    page: int
    pending: int
    fresh: bool = False


class BlogCommentsSpider(EarfulSpider):
    name = "blog_comments"
    kind = "comment"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.posts_requested: set[str] = set()

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        from earful.spiders.comments import extract_comments

        site_is_brand = bool(self.options.get("site_is_brand", self.source.brand is not None))
        return extract_comments(response.body, response.url, site_is_brand=site_is_brand)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        follow = self.options.get("follow")
        if not follow or not isinstance(response, TextResponse):
            yield from super().parse(response, **kwargs)
            return
        yield from self.stamp(self.extract(response), response)
        posts = []
        for href in select_all(response, str(follow)):
            url = response.urljoin(href)
            if url not in self.posts_requested:
                self.posts_requested.add(url)
                posts.append(url)
        page = int(response.meta.get("earful_page", 0))
        next_href = self.next_page(response)
        next_url = response.urljoin(next_href) if next_href else None
        listing = _Listing(next_url=next_url, page=page, pending=len(posts))
        if not posts:
            listing.fresh = True  # nothing to judge by: keep going
            yield from self.next_listing(listing, response)
            return
        for url in posts:
            yield scrapy.Request(
                url, callback=self.parse_post, errback=self.post_failed, cb_kwargs={"listing": listing}
            )

    def parse_post(self, response: Response, listing: _Listing) -> Iterator[Any]:
        mentions = list(self.extract(response)) if isinstance(response, TextResponse) else []
        yield from self.stamp(mentions, response)
        if mentions and not self.all_known(mentions):
            listing.fresh = True
        yield from self.post_done(listing, response)

    def post_failed(self, failure: Failure) -> Iterator[Any]:
        listing: _Listing = failure.request.cb_kwargs["listing"]  # type: ignore[attr-defined]
        listing.fresh = True  # an unread post may hold new comments
        yield from self.post_done(listing, None)

    def post_done(self, listing: _Listing, response: Response | None) -> Iterator[Any]:
        listing.pending -= 1
        if listing.pending == 0:
            yield from self.next_listing(listing, response)

    def next_listing(self, listing: _Listing, response: Response | None) -> Iterator[scrapy.Request]:
        if not listing.next_url or listing.page + 1 >= self.max_pages:
            return
        if self.incremental and not listing.fresh:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("earful/stopped_at_known_page")
            self.logger.info("%s: no new comments under this listing page; not paginating", self.source.name)
            return
        yield scrapy.Request(listing.next_url, callback=self.parse, meta={"earful_page": listing.page + 1})
