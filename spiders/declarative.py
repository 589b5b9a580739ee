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
from typing import Any

from parsel import Selector
from scrapy.http import TextResponse

from earful.spiders.base import EarfulSpider
from earful.spiders.items import Mention

FIELDS = (
    "text",
    "author",
    "date",
    "rating",
    "rating_best",
    "rating_worst",
    "title",
    "key",
    "url",
    "parent_key",
)


def _pick(node: Selector, selector: str, *, all_values: bool = False) -> Any:
    found = node.xpath(selector[len("xpath:") :]) if selector.startswith("xpath:") else node.css(selector)
    values = [v.strip() for v in found.getall() if v and v.strip()]
    if all_values:
        return "\n".join(values) or None
    return values[0] if values else None


class DeclarativeSpider(EarfulSpider):
    name = "declarative"

    def extract(self, response: TextResponse) -> Iterable[Mention]:
        options = self.options
        kind = str(options.get("kind", "comment" if self.source.kind == "blog" else "review"))
        for node in _pick_nodes(response, str(options["item"])):
            values: dict[str, Any] = {}
            for field in FIELDS:
                selector = options.get(field)
                if selector is None:
                    continue
                if field in ("rating_best", "rating_worst") and isinstance(selector, (int, float)):
                    values[field] = selector
                    continue
                values[field] = _pick(node, str(selector), all_values=field == "text")
            url = values.get("url")
            yield Mention(
                text=values.get("text"),
                author=values.get("author"),
                published=values.get("date"),
                rating=values.get("rating"),
                rating_best=values.get("rating_best"),
                rating_worst=values.get("rating_worst"),
                title=values.get("title"),
                external_key=values.get("key"),
                url=response.urljoin(url) if url else None,
                parent_key=values.get("parent_key"),
                kind=kind,
                found_by="declarative",
            )


def _pick_nodes(response: TextResponse, selector: str) -> list[Selector]:
    if selector.startswith("xpath:"):
        return list(response.xpath(selector[len("xpath:") :]))
    return list(response.css(selector))
