"""Sites described in earful.yaml with selectors, no Python.

A data engineer adds a source like this (CSS selectors; prefix ``xpath:`` for XPath)::

    - name: kettle-forum
      kind: reviews
      spider: declarative
      start_urls: [https://forum.example/kettles]
      brand: Acme
      options:
        item: article.post              # one element per mention
        text: .post-body                # inside the item; HTML is cleaned later
        author: .user-name::text
        date: time::attr(datetime)
        date_format: "%d.%m.%Y %H:%M"   # only when the date is not ISO 8601 or plain words
        rating: .stars::attr(data-value)
        rating_best: 10
        title: h2::text
        key: "::attr(id)"               # the site's id for the item
        next_page: a.next::attr(href)

Only ``item`` and ``text`` are required; the config refuses the source without them.
"""

from __future__ import annotations

from collections.abc import Iterable

from scrapy.http import TextResponse
from scrapy.selector import Selector

from earful.spiders.base import EarfulSpider
from earful.spiders.items import Mention, MentionLoader

# Option name -> Mention field.
FIELDS = {
    "text": "text",
    "author": "author",
    "date": "published",
    "rating": "rating",
    "rating_best": "rating_best",
    "rating_worst": "rating_worst",
    "title": "title",
    "key": "external_key",
    "url": "url",
    "parent_key": "parent_key",
}


class DeclarativeSpider(EarfulSpider):
    name = "declarative"

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        options = self.options
        kind = str(options.get("kind", "comment" if self.source.kind == "blog" else "review"))
        for node in _pick_nodes(response, str(options["item"])):
            loader = MentionLoader(selector=node)
            for option, field in FIELDS.items():
                selector = options.get(option)
                if selector is None:
                    continue
                if isinstance(selector, (int, float)):  # a constant, e.g. rating_best: 10
                    loader.add_value(field, selector)
                elif str(selector).startswith("xpath:"):
                    loader.add_xpath(field, str(selector)[len("xpath:") :])
                else:
                    loader.add_css(field, str(selector))
            loader.add_value("kind", kind)
            loader.add_value("found_by", "declarative")
            mention: Mention = loader.load_item()
            if mention.url:
                mention.url = response.urljoin(mention.url)
            yield mention


def _pick_nodes(response: TextResponse, selector: str) -> list[Selector]:
    found = (
        response.xpath(selector[len("xpath:") :]) if selector.startswith("xpath:") else response.css(selector)
    )
    return [node for node in found if isinstance(node, Selector)]
