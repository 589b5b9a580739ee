"""What a spider extracts from a saved page, without crawling (``earful spider-test``).

A data engineer saves a page of a new site, points a source at it, and sees each mention as it
would be stored: text, author, date (UTC), rating on 0..1, parent, kind. ``auto`` needs no
source: it tries every built-in extractor (structured reviews, comment threads, feeds) and
says which one found what.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scrapy.http import HtmlResponse, Request, TextResponse, XmlResponse

from earful.pipeline.config import Config
from earful.pipeline.config import Source as SourceConfig
from earful.pipeline.errors import InputError
from earful.pipeline.store import MentionIn
from earful.spiders.items import Mention
from earful.spiders.normalise import Context, Dropped, normalise


@dataclass(frozen=True)
class Extracted:
    found_by: str
    raw: Mention
    mention: MentionIn | None  # None when it would be dropped
    problem: str | None


def saved_response(path: Path, url: str | None = None) -> TextResponse:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    url = url or path.resolve().as_uri()
    head = body[:2048].lstrip().lower()
    cls = (
        XmlResponse
        if head.startswith((b"<?xml", b"<rss", b"<feed")) and b"<html" not in head
        else HtmlResponse
    )
    return cls(url=url, body=body, request=Request(url))


def _finish(found: list[Mention], context: Context, default_by: str) -> list[Extracted]:
    out = []
    for raw in found:
        raw.source = context.source
        try:
            mention, notes = normalise(raw, context)
            out.append(Extracted(raw.found_by or default_by, raw, mention, "; ".join(notes) or None))
        except Dropped as exc:
            out.append(Extracted(raw.found_by or default_by, raw, None, f"dropped: {exc}"))
    return out


def extract_with_source(
    config: Config, source: SourceConfig, path: Path, url: str | None = None
) -> list[Extracted]:
    from earful.spiders.pipelines import context_for
    from earful.spiders.registry import spider_class, spider_name

    response = saved_response(path, url or (str(source.start_urls[0]) if source.start_urls else None))
    spider = spider_class(spider_name(source))(source, config, known_keys=set())
    return _finish(list(spider.extract(response)), context_for(config, source), spider.name)


def extract_auto(config: Config, path: Path, url: str | None = None) -> list[Extracted]:
    from earful.spiders.comments import extract_comments
    from earful.spiders.feeds import extract_feed
    from earful.spiders.structured import extract_reviews

    response = saved_response(path, url)
    context = Context(source="spider-test", timezone=config.timezone)
    found: list[Mention] = []
    if isinstance(response, XmlResponse):
        result = extract_feed(response.body, response.url)
        found.extend(getattr(result, "mentions", result))
    else:
        found.extend(extract_reviews(response.body, response.url, encoding=response.encoding))
        found.extend(extract_comments(response.body, response.url))
    return _finish(found, context, "auto")
