"""Real crawls (Scrapy, in a child process) of a local fixture site into SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from site_server import SiteServer, serve

from earful.pipeline.config import Config, load_config_text
from earful.pipeline.crawl import crawl_source
from earful.pipeline.db import Database
from earful.pipeline.schema import Mention, Source

FAST = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "RETRY_TIMES": 2,
    "EARFUL_RETRY_BACKOFF_BASE": 0.05,
    "LOG_LEVEL": "INFO",
}


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


def write_forum(root: Path, pages: int, per_page: int = 5) -> None:
    """A generated forum (same markup as tests/data/site/forum) of many pages, newest first."""
    forum = root / "forum"
    forum.mkdir(parents=True, exist_ok=True)
    template = (Path(__file__).parent / "data" / "site" / "forum" / "page-1.html").read_text(encoding="utf-8")
    head, rest = template.split('<div class="posts">', 1)
    tail = rest.split("</div>\n<nav", 1)[1]
    for page in range(1, pages + 1):
        posts = []
        for i in range(per_page):
            n = 100_000 - (page * per_page + i)
            posts.append(
                f'<article class="post" id="p-{n}"><aside class="post-user">'
                f'<span class="user-name">user{n % 37}</span></aside><div class="post-head">'
                f'<span class="post-date">{1 + n % 28:02d}.03.2026 10:{n % 60:02d}</span> '
                f'<span class="stars" data-value="{1 + n % 5}">*</span></div><div class="post-body">'
                f"<p>Acme Beitrag {n}: der Kocher ist {'gut' if n % 3 else 'schlecht'}.</p></div></article>"
            )
        nav = f'<a class="next" href="page-{page + 1}.html">»</a>' if page < pages else ""
        body = head + '<div class="posts">' + "".join(posts) + "</div>\n<nav" + tail.split("</nav>", 1)[1]
        body = body.replace("<main", f'<nav class="pager">{nav}</nav><main', 1)
        (forum / f"page-{page}.html").write_text(body, encoding="utf-8")


FORUM_SOURCE = """  - name: forum
    kind: reviews
    spider: declarative
    brand: Acme
    start_urls: ['{url}/forum/page-1.html']
    options:
      item: article.post
      text: .post-body
      author: .user-name::text
      date: .post-date::text
      date_format: "%d.%m.%Y %H:%M"
      rating: .stars::attr(data-value)
      key: "::attr(id)"
      next_page: a.next::attr(href)
"""


@pytest.fixture
def big_forum(tmp_path: Path) -> Iterator[SiteServer]:
    root = tmp_path / "site"
    write_forum(root, pages=60)
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    with serve(root) as server:
        yield server


def snapshot(db_url: str, source: str) -> list[tuple[Any, ...]]:
    return [tuple(m.values()) for m in mentions(db_url, source)]


@pytest.mark.usefixtures("env")
def test_crawl_killed_halfway_then_rerun_ends_like_one_clean_crawl(
    db: Database, db_url: str, tmp_path: Path, big_forum: SiteServer
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    config = site_config(tmp_path, db_url, FORUM_SOURCE.format(url=big_forum.url))
    slow = {**FAST, "DOWNLOAD_DELAY": 0.05, "EARFUL_STORE_BATCH": 10}
    code = (
        "from earful.pipeline.config import load_config;"
        "from earful.pipeline.crawl import crawl_source;"
        f"crawl_source(load_config({str(config.path)!r}), 'forum', settings={slow!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 90
    while len(mentions(db_url, "forum")) < 40 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(mentions(db_url, "forum"))
    assert 0 < partial < 300, "the crawl was not interrupted halfway"

    again = crawl_source(config, "forum", settings=FAST)
    assert again.status == "succeeded"
    assert again.stats["stopped_at_known_page"] == 0  # the killed run forces a full re-read

    clean_url = f"sqlite:///{tmp_path / 'clean.sqlite3'}"
    Database(clean_url).upgrade()
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    clean = site_config(clean_dir, clean_url, FORUM_SOURCE.format(url=big_forum.url))
    assert crawl_source(clean, "forum", settings=FAST).new == 300
    assert snapshot(db_url, "forum") == snapshot(clean_url, "forum")


@pytest.mark.usefixtures("env")
def test_recrawl_of_unchanged_site_fetches_a_fraction_of_the_pages(
    db: Database, db_url: str, tmp_path: Path, big_forum: SiteServer
) -> None:
    config = site_config(tmp_path, db_url, FORUM_SOURCE.format(url=big_forum.url))
    first = crawl_source(config, "forum", settings=FAST)
    before = len(big_forum.paths())
    second = crawl_source(config, "forum", settings=FAST)
    fetched = len(big_forum.paths()) - before
    assert (first.pages, first.new) == (60, 300)
    assert (second.new, second.updated) == (0, 0)
    assert fetched <= 2  # robots.txt and the first page
    assert second.pages == 1


@pytest.mark.usefixtures("env")
def test_flaky_page_is_retried_and_a_redirect_loop_does_not_stop_the_crawl(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    source = FORUM_SOURCE.format(url=site.url).replace(
        f"start_urls: ['{site.url}/forum/page-1.html']",
        f"start_urls: ['{site.url}/loop/a', '{site.url}/flaky/forum/page-1.html?{tmp_path.name}']",
    )
    config = site_config(tmp_path, db_url, source)
    outcome = crawl_source(config, "forum", settings=FAST)
    assert outcome.status == "succeeded", outcome.message
    assert outcome.new == 4
    assert outcome.stats["retries"] >= 1


@pytest.mark.usefixtures("env")
def test_status_flags_a_source_whose_last_three_crawls_stored_nothing(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    from earful.pipeline.status import source_statuses

    source = FORUM_SOURCE.format(url=site.url).replace("/forum/page-1.html", "/forum/moved-away.html")
    config = site_config(tmp_path, db_url, source)
    for _ in range(3):
        crawl_source(config, "forum", settings=FAST)
    (status,) = source_statuses(db)
    assert status.problem == "last 3 crawls stored no mentions"


REVIEW_PAGES = ["product-jsonld", "restaurant-microdata", "book-rdfa", "no-date-and-bad-rating"]


@pytest.mark.usefixtures("env")
def test_review_pages_in_every_syntax_and_hostile_pages(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    urls = [f"{site.url}/reviews/listing-1.html"] + [f"{site.url}/reviews/{p}.html" for p in REVIEW_PAGES]
    urls += [f"{site.url}/big.html", f"{site.url}/cp1252.html", f"{site.url}/private/secret.html"]
    config = site_config(
        tmp_path,
        db_url,
        f"  - name: shop\n    kind: reviews\n    brand: Acme\n    start_urls: {urls!r}\n",
    )
    first = crawl_source(config, "shop", settings=FAST)
    assert first.status == "succeeded", first.message
    # 9 on the three listing pages, 3 + 3 + 2 + 2 on the others, 1 in cp1252; the 5 MB page
    # repeats product-jsonld's reviews (same keys); the restaurant's page 2 is missing (404).
    assert (first.pages, first.new, first.unchanged, first.dropped) == (10, 20, 3, 1)
    assert first.stats["dropped"] == {"no text": 1}
    assert first.stats["notes"] == {"rating off its scale": 1}
    assert first.stats["robots_forbidden"] == 1
    assert not any(p.startswith("/private/") for p in site.paths())

    stored = {m["text"]: m for m in mentions(db_url, "shop")}
    assert len(stored) == 20
    hoodie = stored["Warm & light, the fit is très élégant. Sleeves run long."]
    assert (hoodie["rating"], hoodie["language"]) == (0.75, "en")
    assert all("<script" not in text and "&amp;" not in text for text in stored)
    assert stored["Seven stars if I could!"]["rating"] is None
    assert stored["Fixed our boiler on a Sunday morning. Fair price, tidy work."]["published_at"] is None
    assert "Très bon café, prix correct – merci!" in stored

    second = crawl_source(config, "shop", settings=FAST)
    assert (second.new, second.updated) == (0, 0)
    assert second.pages == 7  # both listings stop at their first, known page
    assert len(mentions(db_url, "shop")) == 20


@pytest.mark.usefixtures("env")
def test_wordpress_comments_with_nested_replies_and_brand_responses(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    config = site_config(
        tmp_path,
        db_url,
        f"  - name: blog\n    kind: blog\n    brand: Acme\n"
        f"    start_urls: ['{site.url}/blog/post-nested.html']\n",
    )
    outcome = crawl_source(config, "blog", settings=FAST)
    assert outcome.status == "succeeded", outcome.message
    assert outcome.new == 6
    db_rows = Database(db_url)
    try:
        with db_rows.session() as session:
            rows = {m.external_key: m for m in session.scalars(sa.select(Mention))}
            by_id = {m.id: m.external_key for m in rows.values()}
            parents = {k: by_id.get(m.parent_id) if m.parent_id else None for k, m in rows.items()}
            responses = sorted(k for k, m in rows.items() if m.is_brand_response)
    finally:
        db_rows.dispose()
    assert parents["comment-106"] == "comment-104"
    assert sum(1 for p in parents.values() if p is None) < len(parents)
    assert all(p is None or p in rows for p in parents.values())  # every parent link resolved
    assert len(responses) == 2
    assert all(m.kind == "comment" for m in rows.values())


@pytest.mark.usefixtures("env")
def test_comment_feeds_rss_atom_discovery_and_a_broken_feed(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    feeds = [
        f"{site.url}/feeds/blog-rss.xml",
        f"{site.url}/feeds/comments-atom.xml",
        f"{site.url}/feeds/broken.xml",
    ]
    config = site_config(
        tmp_path,
        db_url,
        f"  - name: feeds\n    kind: feed\n    brand: Acme\n    start_urls: {feeds!r}\n",
    )
    outcome = crawl_source(config, "feeds", settings=FAST)
    assert outcome.status == "succeeded", outcome.message
    assert "/feeds/comments-rss.xml" in site.paths()  # found through wfw:commentRss
    stored = mentions(db_url, "feeds")
    keys = {m["external_key"] for m in stored}
    assert {f"comment-{n}" for n in (101, 102, 103, 104, 105, 106)} <= keys
    assert any(m["parent_key"] for m in stored)
    assert outcome.stats["feed_errors"] == 1  # broken.xml: what it held whole is kept, the rest noted


@pytest.mark.usefixtures("env")
def test_earful_crawl_command_prints_each_source_and_a_summary(tmp_path: Path, site: SiteServer) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    Database(url).upgrade()
    config = site_config(tmp_path, url, FORUM_SOURCE.format(url=site.url))
    # Politeness stays on here (AutoThrottle's 2 s start delay): two pages take a few seconds.
    result = subprocess.run(
        [sys.executable, "-m", "earful.pipeline.cli", "--config", str(config.path), "crawl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "[1/1] forum: succeeded" in result.stdout
    assert "4 new" in result.stdout
    assert "Crawl summary" in result.stdout
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "earful.pipeline.cli",
            "--config",
            str(config.path),
            "crawl",
            "forum",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    import json

    (line,) = again.stdout.strip().splitlines()
    assert json.loads(line)["new"] == 0


def test_spider_test_shows_what_a_source_extracts_from_a_saved_page(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from earful.pipeline.cli import cli

    page = Path(__file__).parent / "data" / "site" / "forum" / "page-1.html"
    config = site_config(
        tmp_path, f"sqlite:///{tmp_path / 'x.sqlite3'}", FORUM_SOURCE.format(url="https://forum.example")
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config.path), "spider-test", "forum", str(page), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["key"] for r in records] == ["p-5501", "p-5502", "p-5503"]
    assert records[0]["date"] == "2026-03-12T08:41:00+00:00"
    assert records[0]["rating"] == 0.75
    assert records[0]["found_by"] == "declarative"

    blog = Path(__file__).parent / "data" / "site" / "blog" / "post-nested.html"
    auto = runner.invoke(cli, ["--config", str(config.path), "spider-test", "--auto", str(blog), "--json"])
    assert auto.exit_code == 0, auto.output
    found = [json.loads(line) for line in auto.stdout.splitlines()]
    assert len(found) == 6
    assert {r["kind"] for r in found} == {"comment"}
    assert any(r["parent"] for r in found)

    human = runner.invoke(cli, ["--config", str(config.path), "spider-test", "--auto", str(blog)])
    assert "6 mention(s) found." in human.stdout
    missing = runner.invoke(
        cli, ["--config", str(config.path), "spider-test", "--auto", str(tmp_path / "nope.html")]
    )
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr


def write_blog(root: Path, listings: int, posts_per_listing: int = 2) -> None:
    """A blog whose listing pages link to posts (post-nested.html, comment ids renumbered)."""
    import re

    blog = root / "blog"
    blog.mkdir(parents=True, exist_ok=True)
    post = (Path(__file__).parent / "data" / "site" / "blog" / "post-nested.html").read_text(encoding="utf-8")
    for page in range(1, listings + 1):
        links = []
        for i in range(posts_per_listing):
            n = page * 100 + i
            body = re.sub(r"comment-(\d+)", rf"comment-{n}\1", post)
            (blog / f"post-{n}.html").write_text(body, encoding="utf-8")
            links.append(f'<h2 class="entry-title"><a href="post-{n}.html">Post {n}</a></h2>')
        nav = (
            f'<a class="next page-numbers" rel="next" href="page-{page + 1}.html">Older</a>'
            if page < listings
            else ""
        )
        (blog / f"page-{page}.html").write_text(
            f"<!DOCTYPE html><html lang='en'><body class='blog'><main>{''.join(links)}</main>"
            f"<nav class='pagination'>{nav}</nav></body></html>",
            encoding="utf-8",
        )


@pytest.mark.usefixtures("env")
def test_blog_recrawl_stops_after_the_first_listing_whose_posts_hold_no_new_comment(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "site"
    write_blog(root, listings=5)
    (root / "robots.txt").write_text("User-agent: *\nDisallow:\n")
    with serve(root) as server:
        config = site_config(
            tmp_path,
            db_url,
            f"  - name: blog\n    kind: blog\n    brand: Acme\n"
            f"    start_urls: ['{server.url}/blog/page-1.html']\n"
            "    options: {follow: 'h2.entry-title a::attr(href)'}\n",
        )
        first = crawl_source(config, "blog", settings=FAST)
        assert (first.pages, first.new, first.errors) == (15, 60, 0)  # 5 listing pages, 10 posts
        second = crawl_source(config, "blog", settings=FAST)
        assert (second.pages, second.new) == (3, 0)  # the first listing page and its 2 posts
        assert second.stats["stopped_at_known_page"] == 1


@pytest.mark.usefixtures("env")
def test_crawl_logs_name_keys_not_authors_or_text(
    db: Database, db_url: str, tmp_path: Path, site: SiteServer
) -> None:
    config = site_config(tmp_path, db_url, FORUM_SOURCE.format(url=site.url))
    log = tmp_path / "crawl.log"
    crawl_source(config, "forum", settings={**FAST, "LOG_LEVEL": "DEBUG"}, log_file=str(log))
    text = log.read_text(encoding="utf-8")
    assert "Scraped review p-5501 from" in text
    assert "kaffeetante" not in text
    assert "Heizplatte" not in text
