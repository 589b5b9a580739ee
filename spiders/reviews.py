"""Review pages: schema.org ``Review`` in JSON-LD, microdata or RDFa, across pagination."""

from __future__ import annotations

from collections.abc import Iterable

from scrapy.http import TextResponse

from earful.spiders.base import EarfulSpider
from earful.spiders.items import Mention


class ReviewsSpider(EarfulSpider):
    name = "reviews"

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        from earful.spiders.structured import extract_reviews

        return extract_reviews(response.body, response.url, encoding=response.encoding)
