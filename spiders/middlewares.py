"""Downloader middlewares: a robots.txt fix and retries that back off.

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
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.settings import BaseSettings
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


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, with exponential backoff on the site that failed.

    Scrapy re-queues a failed request at once. A site that answers 5xx or 429 is struggling,
    so each retry also raises the delay of that site's download slot to
    ``EARFUL_RETRY_BACKOFF_BASE * 2 ** (retry - 1)`` seconds, up to
    ``EARFUL_RETRY_BACKOFF_MAX``; AutoThrottle brings it down again as the site recovers.
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("EARFUL_RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("EARFUL_RETRY_BACKOFF_MAX", 60.0)

    def _retry(self, request: Request, reason: Any) -> Request | None:
        retry = super()._retry(request, reason)
        engine = getattr(self.crawler, "engine", None)
        if retry is not None and engine is not None:
            downloader = engine.downloader
            slot = downloader.slots.get(downloader.get_slot_key(request))
            if slot is not None:
                attempt = int(retry.meta.get("retry_times", 1))
                backoff = min(self.backoff_base * 2 ** (attempt - 1), self.backoff_max)
                slot.delay = max(slot.delay, backoff)
        return retry
