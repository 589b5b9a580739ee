"""Blog comment threads in HTML (WordPress themes, microformats), replies linked to parents.

``options.follow`` (a CSS or ``xpath:`` selector) names links from a listing page to the posts
whose comments to read; without it the start URLs are the posts themselves. When the blog is
the brand's own (the source has a brand, or ``options.site_is_brand``), the post author's
replies are marked as brand responses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from scrapy.http import Response, TextResponse

from earful.spiders.base import EarfulSpider, select_all
from earful.spiders.items import Mention


class BlogCommentsSpider(EarfulSpider):
    name = "blog_comments"
    kind = "comment"

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        from earful.spiders.comments import extract_comments

        site_is_brand = bool(self.options.get("site_is_brand", self.source.brand is not None))
        return extract_comments(response.body, response.url, site_is_brand=site_is_brand)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        yield from super().parse(response, **kwargs)
        follow = self.options.get("follow")
        if follow and isinstance(response, TextResponse):
            for href in select_all(response, str(follow)):
                yield response.follow(href, callback=self.parse_post)

    def parse_post(self, response: Response) -> Iterator[Any]:
        if isinstance(response, TextResponse):
            for mention in self.extract(response):
                mention.source = self.source.name
                mention.url = mention.url or response.url
                yield mention
