"""Which spider collects a source: ``source.spider`` by name, else the kind's default."""

from __future__ import annotations

from importlib import import_module

from earful.pipeline.config import Source as SourceConfig
from earful.pipeline.errors import ConfigError

SPIDERS = {
    "reviews": "earful.spiders.reviews:ReviewsSpider",
    "blog_comments": "earful.spiders.blog_comments:BlogCommentsSpider",
    "comment_feed": "earful.spiders.comment_feeds:CommentFeedSpider",
    "declarative": "earful.spiders.declarative:DeclarativeSpider",
    "hn": "earful.spiders.hn:HackerNewsSpider",
}
DEFAULT_FOR_KIND = {"reviews": "reviews", "blog": "blog_comments", "feed": "comment_feed", "api": "hn"}


def spider_name(source: SourceConfig) -> str:
    name = source.spider or DEFAULT_FOR_KIND.get(source.kind)
    if name is None:
        raise ConfigError(
            f"source {source.name!r} of kind {source.kind} has no spider to crawl it", key="sources"
        )
    return name


def spider_class(name: str) -> type:
    """The spider class by its registry name, or ``module:Class`` for a spider of your own."""
    target = SPIDERS.get(name, name)
    if ":" not in target:
        known = ", ".join(sorted(SPIDERS))
        raise ConfigError(
            f"unknown spider {name!r}; use one of {known} or 'package.module:Class'", key="sources"
        )
    module, _, attr = target.partition(":")
    try:
        return getattr(import_module(module), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load spider {target}: {exc}", key="sources") from None
