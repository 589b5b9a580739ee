"""Real crawls (Scrapy, in a child process) of a local fixture site into SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from earful.pipeline.config import Config, load_config_text
from earful.pipeline.crawl import crawl_source
from earful.pipeline.db import Database
from earful.pipeline.schema import Mention, Source
from site_server import SiteServer, serve

FAST = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "RETRY_TIMES": 2, "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def site() -> Iterator[SiteServer]:
    with serve() as server:
        yield server


def site_config(tmp_path: Path, db_url: str, sources: str) -> Config:
    path = tmp_path / "earful.yaml"
    path.write_text(
        f"database: {{url: '{db_url}', busy_timeout_s: 5}}\n"
        "timezone: Europe/Berlin\n"
        "brands:\n  - name: Acme\n    aliases: [ACME Corp]\n"
        f"sources:\n{sources}",
        encoding="utf-8",
    )
    return load_config_text(path.read_text(), path=path)


def mentions(db_url: str, source: str) -> list[dict[str, Any]]:
    db = Database(db_url)
    try:
        with db.session() as session:
            rows = session.scalars(
                sa.select(Mention).join(Source).where(Source.name == source).order_by(Mention.external_key)
            )
            return [
                {
                    c: getattr(m, c)
                    for c in (
                        "external_key",
                        "text",
                        "author",
                        "published_at",
                        "rating",
                        "parent_key",
                        "brand_id",
                        "language",
                        "kind",
                    )
                }
                for m in rows
            ]
    finally:
        db.dispose()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "crawl-test-key")
    monkeypatch.delenv("EARFUL_DATABASE_URL", raising=False)


@pytest.mark.usefixtures("env")
def test_declarative_source_crawls_pages_with_selectors(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    config = site_config(
        tmp_path,
        db_url,
        f"""  - name: forum
    kind: reviews
    spider: declarative
    brand: Acme
    start_urls: ['{site.url}/forum/page-1.html']
    options:
      item: article.post
      text: .post-body
      author: .user-name::text
      date: .post-date::text
      date_format: "%d.%m.%Y %H:%M"
      rating: .stars::attr(data-value)
      key: "::attr(id)"
      next_page: a.next::attr(href)
""",
    )
    outcome = crawl_source(config, "forum", settings=FAST)
    assert outcome.status == "succeeded", outcome.message
    assert (outcome.new, outcome.dropped) == (4, 1)
    assert outcome.stats["dropped"] == {"no text": 1}
    stored = mentions(db_url, "forum")
    assert [m["external_key"] for m in stored] == ["p-5501", "p-5502", "p-5503", "p-5510"]
    first = stored[0]
    assert first["text"] == "Der Acme Kocher ist schnell und leise.\n\nNur der Deckel klemmt manchmal."
    assert first["published_at"].isoformat() == "2026-03-12T08:41:00+00:00"  # Berlin time -> UTC
    assert first["rating"] == 0.75
    assert first["language"] == "de"
    assert stored[1]["text"].startswith(
        "Bei mir ist nach drei Monaten die Heizplatte ausgefallen – Kundendienst"
    )
    assert not any(p.startswith("/private/") for p in site.paths())


@pytest.mark.usefixtures("env")
def test_hacker_news_search_keeps_comments_that_name_a_brand(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    config = site_config(
        tmp_path,
        db_url,
        f"""  - name: hn
    kind: api
    spider: hn
    start_urls: ['{site.url}/api/hn']
    options: {{api_url: '{site.url}/api/hn', query: Acme, hits_per_page: 2}}
""",
    )
    outcome = crawl_source(config, "hn", settings=FAST)
    assert outcome.status == "succeeded", outcome.message
    assert (outcome.pages >= 2, outcome.new, outcome.dropped) == (True, 3, 1)
    stored = mentions(db_url, "hn")
    assert [m["external_key"] for m in stored] == ["hn-46011111", "hn-46012345", "hn-46012399"]
    assert stored[1]["text"].startswith("I've had the Acme kettle for a year.")
    assert stored[2]["parent_key"] == "hn-46012345"
    assert all(m["brand_id"] is not None for m in stored)
    again = crawl_source(config, "hn", settings=FAST)
    assert (again.new, again.unchanged) == (0, 2)  # stopped after the first, known page
    assert again.stats["stopped_at_known_page"] == 1
