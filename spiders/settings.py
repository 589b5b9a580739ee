"""Scrapy settings for Earful's crawls: politeness is data, set here explicitly.

A crawl reads these through :func:`earful.spiders.runner.crawl_settings`, which adds the config
and any overrides for the run (the HTTP cache switch, tests' throttling). Change politeness here, not in a
spider: every site gets the same manners.
"""

from __future__ import annotations

from earful.pipeline import __version__

BOT_NAME = "earful"
# The runner loads each source's spider class itself; listing modules here would only make
# every crawl import them all.
SPIDER_MODULES: list[str] = []

# Say who we are and where to read about it.
USER_AGENT = f"Earful/{__version__} (+https://github.com/earful/earful; word-of-mouth monitor)"

# Scrapy's default is not to obey robots.txt; we always do, with a middleware that fixes
# Scrapy 2.19 letting concurrent first requests to a site past robots.txt (see middlewares.py).
ROBOTSTXT_OBEY = True
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "earful.spiders.middlewares.RobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "earful.spiders.middlewares.BackoffRetryMiddleware": 550,
}

# One site at a time gets at most two requests in flight; AutoThrottle adapts the delay to
# how fast the site answers, starting cautiously.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Retries for 5xx, 429 and dropped connections, each slowing that site down: 1 s, 2 s, 4 s
# (middlewares.BackoffRetryMiddleware; Scrapy itself retries at once).
RETRY_ENABLED = True
EARFUL_RETRY_BACKOFF_BASE = 1.0
EARFUL_RETRY_BACKOFF_MAX = 60.0
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]

DOWNLOAD_TIMEOUT = 30
# Pages larger than this are not downloaded (a warning is logged at half of it).
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 10 * 1024 * 1024
REDIRECT_MAX_TIMES = 10

# Development: `earful crawl --cache` keeps responses in .earful-httpcache/ and replays them.
HTTPCACHE_ENABLED = False
HTTPCACHE_DIR = ".earful-httpcache"
HTTPCACHE_EXPIRATION_SECS = 0

ITEM_PIPELINES = {
    "earful.spiders.pipelines.ValidatePipeline": 100,
    "earful.spiders.pipelines.NormalisePipeline": 200,
    "earful.spiders.pipelines.AttributePipeline": 300,
    "earful.spiders.pipelines.StorePipeline": 900,
}

TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
# Item log lines name the mention's key, never its author or text (logs get shared).
LOG_FORMATTER = "earful.spiders.logformat.QuietLogFormatter"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
