"""Crawl log lines that never carry a mention's content.

Scrapy logs every scraped, dropped or failed item with all its fields; Earful's items hold
author names (pseudonymised only when stored) and text from the web. These messages name the
page and the mention's key instead, so a crawl log can be shared without leaking who wrote what.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Spider
from scrapy.http import Response
from scrapy.logformatter import LogFormatter, LogFormatterResult
from twisted.python.failure import Failure


def _describe(item: Any) -> str:
    key = getattr(item, "external_key", None) or "(no key)"
    kind = getattr(item, "kind", None) or "item"
    return f"{kind} {key}"


def _page(response: Response | Failure | None) -> str:
    return response.url if isinstance(response, Response) else "-"


class QuietLogFormatter(LogFormatter):
    def scraped(self, item: Any, response: Response | Failure | None, spider: Spider) -> LogFormatterResult:
        return {
            "level": logging.DEBUG,
            "msg": "Scraped %(item)s from %(page)s",
            "args": {"item": _describe(item), "page": _page(response)},
        }

    def dropped(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        return {
            "level": logging.DEBUG,
            "msg": "Dropped %(item)s: %(reason)s",
            "args": {"item": _describe(item), "reason": exception},
        }

    def item_error(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        return {
            "level": logging.ERROR,
            "msg": "Error processing %(item)s from %(page)s",
            "args": {"item": _describe(item), "page": _page(response)},
        }
