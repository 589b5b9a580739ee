"""Downloader middleware fixes Earful relies on.

:class:`RobotsTxtMiddleware` replaces Scrapy's own. In Scrapy 2.19 every request that arrives
while a site's robots.txt is still downloading waits on one shared Deferred through
``Deferred.asFuture``, whose callback returns ``None``; so only the first waiter receives the
parsed robots.txt and the others receive ``None``, which Scrapy reads as "no robots.txt,
everything allowed". With several start URLs on one site, disallowed pages were fetched
(seen in tests/test_crawl.py). The regression came with scrapy/scrapy#6802, which replaced a
per-waiter Deferred with ``await maybe_deferred_to_future(parser)``. Here each waiter gets its
own Deferred again, fed by a callback that passes the result on down the chain.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> Any:
        netloc = urlparse_cached(request).netloc
        pending = self._parsers.get(netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)
        waiter: Deferred[Any] = Deferred()

        def relay(result: Any) -> Any:
            waiter.callback(result)
            return result  # keep the parser in the chain for the next waiter

        pending.addBoth(relay)
        return await maybe_deferred_to_future(waiter)
