"""Importing history files: bad rows reported by line, good rows stored, re-runs converge."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import CONFIG_YAML
from sqlalchemy.orm import aliased

from earful.pipeline.config import Config, load_config_text
from earful.pipeline.db import Database
from earful.pipeline.errors import DatabaseUnavailable, InputError
from earful.pipeline.importer import import_file
from earful.pipeline.schema import CrawlRun, Mention, Source
from earful.pipeline.store import MentionStore

SAMPLE = Path(__file__).resolve().parent / "data" / "sample_mentions.jsonl"
# The config the sample was written for: two brands, three sources.
SAMPLE_CONFIG = """
database:
  url: sqlite:///earful.sqlite3
timezone: Europe/Berlin
brands:
  - name: Acme
    aliases: [ACME, Acme Corp]
  - name: Globex
    aliases: [Globex Corporation]
sources:
  - {name: acme-reviews, kind: reviews, start_urls: [https://reviews.example/acme], brand: Acme}
  - {name: acme-blog, kind: blog, start_urls: [https://blog.acme.example/], brand: Acme}
  - {name: globex-reviews, kind: reviews, start_urls: [https://reviews.example/globex], brand: Globex}
"""


def row(i: int, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "source": "acme-reviews",
        "external_key": f"r{i}",
        "text": f"Review number {i}: the kettle is fine.",
        "author": f"author {i % 17}",
        "published_at": f"2026-10-{1 + i % 28:02d}T10:00:00Z",
        "rating": 1 + i % 5,
    }
    values.update(kw)
    return values


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def snapshot(db: Database) -> list[tuple[Any, ...]]:
    """Every stored mention, in a form that compares across databases."""
    parent = aliased(Mention)
    query = (
        sa.select(
            Source.name,
            Mention.external_key,
            Mention.text,
            Mention.author,
            Mention.rating,
            Mention.published_at,
            Mention.fingerprint,
            parent.external_key,
        )
        .join(Source, Source.id == Mention.source_id)
        .outerjoin(parent, parent.id == Mention.parent_id)
        .order_by(Source.name, Mention.external_key)
    )
    with db.session() as session:
        return [tuple(r) for r in session.execute(query)]


def mention_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM mention")) or 0


@pytest.fixture
def synced(db: Database, config: Config) -> Database:
    MentionStore(db, config).sync_config()
    return db


def sample_config(tmp_path: Path, url: str) -> Config:
    path = tmp_path / "sample.yaml"
    path.write_text(SAMPLE_CONFIG.replace("sqlite:///earful.sqlite3", url), encoding="utf-8")
    return load_config_text(path.read_text(), path=path)


def test_importing_the_sample_twice_stores_it_once(
    db: Database, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "k")
    config = sample_config(tmp_path, db_url)
    MentionStore(db, config).sync_config()
    first = import_file(db, config, SAMPLE)
    lines = sum(1 for line in SAMPLE.read_text().splitlines() if line.strip())
    assert (first.rows, first.stored.new, first.bad) == (lines, lines, [])
    again = import_file(db, config, SAMPLE)
    assert (again.stored.new, again.stored.updated, again.stored.unchanged) == (0, 0, lines)
    assert mention_count(db) == lines


def test_bad_rows_are_reported_by_line_and_good_rows_stored(
    synced: Database, config: Config, tmp_path: Path
) -> None:
    path = tmp_path / "history.jsonl"
    lines = [
        json.dumps(row(1)),
        '{"source": "acme-reviews", "text": "broken',
        json.dumps(row(3, rating="five stars")),
        json.dumps(row(4, text="x" * (10 * 1024 * 1024))),
        json.dumps(row(5, text="")),
        json.dumps(row(6, brand="Initech")),
        "[1, 2, 3]",
        json.dumps(row(8, published_at="2026-10-01 10:00")),
        json.dumps(row(9)),
    ]
    data = ("\n".join(lines) + "\n").encode()
    data += b'{"source": "acme-reviews", "external_key": "bad-utf8", "text": "caf\xe9"}\n'
    path.write_bytes(data)
    result = import_file(synced, config, path)
    reasons = {bad.line: bad.reason for bad in result.bad}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 10]
    assert reasons[2].startswith("not valid JSON")
    assert reasons[3].startswith("rating: Input should be a valid number")
    assert "10,485,760 characters" in reasons[4]
    assert "text is empty" in reasons[5]
    assert "unknown brand 'Initech'" in reasons[6]
    assert reasons[7] == "expected a JSON object, got list"
    assert "no time zone" in reasons[8]
    assert reasons[10] == "not valid UTF-8 (byte 0xe9 at column 68)"
    assert result.stored.new == 2
    assert mention_count(synced) == 2


def test_csv_with_quoted_newlines_and_empty_cells(synced: Database, config: Config, tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(
        b"\xef\xbb\xbfsource,external_key,text,rating,author,is_brand_response,legacy_id\n"
        b'acme-reviews,a,"Line one\nline two",5,,false,17\n'
        b"acme-reviews,b,Fine,,Bob,yes,18\n"
        b"acme-reviews,c,Too many,1,x,no,19,extra\n"
        b"acme-reviews,d,caf\xe9 bad,1,x,no,20\n"
        b"acme-reviews,e,Short row\n"
    )
    result = import_file(synced, config, path)
    assert {b.line: b.reason for b in result.bad} == {
        5: "1 more values than the header has columns",
        6: "not valid UTF-8",
        7: "fewer values than the header has columns",
    }
    assert result.ignored_columns == ["legacy_id"]
    assert result.stored.new == 2
    with synced.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT external_key, text, rating, author, is_brand_response FROM mention ORDER BY 1")
        )
        assert [tuple(r) for r in rows] == [
            ("a", "Line one\nline two", 1.0, None, False),
            ("b", "Fine", None, rows_author(synced), True),
        ]


def rows_author(db: Database) -> str:
    with db.engine.connect() as conn:
        value = conn.scalar(sa.text("SELECT author FROM mention WHERE external_key = 'b'"))
    assert isinstance(value, str)
    assert value.startswith("anon-")
    return value


def test_rows_without_a_source_use_the_given_one(synced: Database, config: Config, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "h.jsonl", [{"text": "no source here", "external_key": "x"}])
    assert import_file(synced, config, path).bad[0].reason.startswith("no source")
    result = import_file(synced, config, path, source="old-tool")
    assert result.stored.new == 1


def test_each_import_is_recorded_as_a_run_per_source(
    synced: Database, config: Config, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "h.jsonl", [row(1), row(2, source="blog", kind="comment"), row(3, rating=99)]
    )
    import_file(synced, config, path)
    with synced.session() as session:
        runs = {r.source.name: r for r in session.scalars(sa.select(CrawlRun))}
        assert runs["acme-reviews"].kind == "import"
        assert runs["acme-reviews"].status == "succeeded"
        assert (runs["acme-reviews"].items_new, runs["blog"].items_new) == (1, 1)


def test_unknown_file_format_is_a_clear_error(synced: Database, config: Config, tmp_path: Path) -> None:
    path = tmp_path / "history.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(InputError, match="pass --format jsonl or csv"):
        import_file(synced, config, path)


def test_locked_sqlite_database_is_a_clear_error_and_a_rerun_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "k")
    url = f"sqlite:///{tmp_path / 'locked.sqlite3'}"
    config_path = tmp_path / "earful.yaml"
    config_path.write_text(CONFIG_YAML + f"database: {{url: '{url}', busy_timeout_s: 0.3}}\n")
    config = load_config_text(config_path.read_text(), path=config_path)
    db = Database(url, busy_timeout_s=0.3)
    db.upgrade()
    MentionStore(db, config).sync_config()
    path = write_jsonl(tmp_path / "h.jsonl", [row(i) for i in range(50)])
    holder = sqlite3.connect(tmp_path / "locked.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseUnavailable, match="is locked by another process"):
            import_file(db, config, path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert import_file(db, config, path).stored.new == 50
    assert mention_count(db) == 50


def test_interrupted_import_rerun_ends_in_the_state_of_one_clean_run(
    db: Database, config: Config, tmp_path: Path
) -> None:
    small = config.path
    assert small is not None
    small.write_text(small.read_text() + "store: {batch_size: 100}\n")
    rows = [row(i) for i in range(30_000)]
    rows += [
        row(i, source="blog", kind="comment", parent_key=f"r{i - 1}" if i % 4 else None) for i in range(3000)
    ]
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    cmd = [sys.executable, "-m", "earful.pipeline.cli", "--config", str(small), "import", str(path)]
    MentionStore(db, config).sync_config()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while mention_count(db) < 1000 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = mention_count(db)
    assert 0 < stored < len(rows), "the import was not interrupted halfway; make the file bigger"

    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    clean = Database(f"sqlite:///{tmp_path / 'clean.sqlite3'}")
    clean.upgrade()
    clean_config = load_config_text(
        small.read_text().replace(config.database.url, clean.url.render_as_string()), path=small
    )
    MentionStore(clean, clean_config).sync_config()
    import_file(clean, clean_config, path)
    assert mention_count(db) == len(rows)
    assert snapshot(db) == snapshot(clean)
