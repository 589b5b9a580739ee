"""``earful demo``, end to end: the generated site, the real crawl, model, alert check and report.

The end-to-end test runs the demo twice in a temporary folder, as a user would (about a minute
and a half on two cores, most of it classifying). The generator's own tests need no crawl.
"""

from __future__ import annotations

import json
import re
import socket
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from earful.pipeline.cli import cli
from earful.pipeline.db import Database
from earful.pipeline.demo_history import HISTORY_DAYS, SPIKE_PER_HOUR, make_history
from earful.pipeline.demo_site import SITE_INFO, ensure_site
from earful.pipeline.schema import Alert, Classification, Mention, Source
from earful.pipeline.weeks import last_complete_week

ANCHOR = datetime(2026, 11, 25, 14, tzinfo=UTC)  # a Wednesday afternoon


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------- the generator


def test_the_history_is_seeded_and_ends_with_a_delivery_burst_before_its_hour() -> None:
    history = make_history(ANCHOR)
    again = make_history(ANCHOR)
    assert [(i.number, i.published, i.text) for i in history.items] == [
        (i.number, i.published, i.text) for i in again.items
    ]
    assert 900 <= len(history.items) <= 1500  # small enough to classify in well under a minute
    assert all(ANCHOR - timedelta(days=HISTORY_DAYS) <= i.published < ANCHOR for i in history.items)
    spike = history.spike
    assert len(spike) == sum(SPIKE_PER_HOUR)
    assert all(i.topics == ("delivery",) and i.sentiment == "negative" for i in spike)
    # Mostly positive before the burst, with every place represented.
    before = [i for i in history.items if i not in spike]
    assert sum(i.sentiment == "positive" for i in before) > 0.6 * len(before)
    assert set(history.counts()) == {"shop", "revuo", "blog", "magazine"}
    # Something for every section of the report's week: stars against words, a text on two
    # sites, brand replies, a text in another language.
    week = last_complete_week("Europe/Berlin", ANCHOR)
    in_week = [i for i in history.items if week.start <= i.published < week.end]
    assert any(i.rating == 5 and i.sentiment == "negative" for i in in_week)
    assert any(i.rating == 1 and i.sentiment == "positive" for i in in_week)
    channels: dict[str, set[str]] = {}
    for item in in_week:
        channels.setdefault(item.text, set()).add(item.channel)
    syndicated = [c for text, c in channels.items() if len(c) > 1 and len(text) >= 40]
    assert syndicated == [{"shop", "revuo"}]
    assert any(i.brand_reply and i.parent is not None for i in history.items)
    assert any(i.language != "en" for i in in_week)


def test_the_site_is_generated_once_per_folder(tmp_path: Path) -> None:
    site = ensure_site(tmp_path / "site", now=ANCHOR + timedelta(minutes=42))
    assert site.generated
    assert site.anchor == ANCHOR
    info = json.loads((tmp_path / "site" / SITE_INFO).read_text())
    assert info["anchor"] == ANCHOR.isoformat()
    assert (tmp_path / "site" / "robots.txt").read_text().count("Disallow") == 2
    page = tmp_path / "site" / "shop" / "fjell-rain-jacket" / "reviews.html"
    before = page.read_bytes()
    later = ensure_site(tmp_path / "site", now=ANCHOR + timedelta(days=3))
    assert not later.generated
    assert later.anchor == ANCHOR
    assert page.read_bytes() == before
    assert not (tmp_path / "site.partial").exists()


# ---------------------------------------------------------------------------- end to end


@pytest.mark.usefixtures("isolated_cli")
def test_demo_finds_the_spike_writes_the_report_and_a_rerun_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EARFUL_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("EARFUL_DEMO_PORT", str(free_port()))
    # The demo keeps to its own folder even where EARFUL_DATABASE_URL names a real database.
    production = tmp_path / "production.sqlite3"
    monkeypatch.setenv("EARFUL_DATABASE_URL", f"sqlite:///{production}")
    folder = tmp_path / "demo"

    first = CliRunner().invoke(cli, ["demo", "--dir", str(folder)])
    assert first.exit_code == 0, first.output
    out = first.stdout
    assert f"Wrote demo config {folder / 'earful.yaml'}." in out
    assert "Generated the Norrow sample site" in out
    for source in ("norrow-shop", "revuo", "norrow-blog", "trailnotes"):
        assert re.search(rf"^  {source}: succeeded in .* [1-9][\d,]* new", out, re.M), source
    # The alert: the spike, observed against expected, p-value, topics, sources, examples.
    assert "Earful: negative spike for Norrow about delivery" in out
    found = re.search(r"Norrow: (\d+) negative mentions about delivery in .*, ([\d.]+) expected .*p = ", out)
    assert found, out
    assert int(found.group(1)) >= 20
    assert float(found.group(2)) < 2
    assert "Topics: delivery" in out
    assert "Examples:" in out
    # The weekly report of the last complete week before the site's hour.
    report = re.search(r"^  (\S+earful-report-norrow-\d{4}-W\d{2}\.html)$", out, re.M)
    assert report, out
    html = Path(report.group(1))
    assert html.parent == folder / "reports"
    assert html.exists()
    page = html.read_text(encoding="utf-8")
    assert "Norrow" in page
    assert "beyond noise" in page
    # The summary table, with each stage's time, and the totals.
    for stage in ("set up", "generate site", "crawl", "classify", "alerts", "report", "total"):
        assert re.search(rf"│ {stage}\s+│\s+\d+\.\d │", out), stage
    totals = re.search(
        r"Mentions: ([\d,]+) \(([\d,]+) new this run\); classified: ([\d,]+) \(([\d,]+) this run\)", out
    )
    assert totals, out
    mentions = int(totals.group(1).replace(",", ""))
    assert totals.group(1) == totals.group(2) == totals.group(3) == totals.group(4)
    assert f"Report: {html}" in out

    assert (folder / "earful.sqlite3").exists()
    assert not production.exists()
    assert stat.S_IMODE((folder / "earful.key").stat().st_mode) == 0o600
    db = Database(f"sqlite:///{folder / 'earful.sqlite3'}")
    try:
        with db.session() as session:
            assert session.scalar(select(func.count(Mention.id))) == mentions
            assert session.scalar(select(func.count(Classification.id))) == mentions
            assert session.scalar(select(func.count(Source.id))) == 4
            alerts = session.execute(select(Alert.kind, Alert.topic)).all()
        assert [tuple(a) for a in alerts] == [("spike", "delivery")]

        second = CliRunner().invoke(cli, ["demo", "--dir", str(folder)])
        assert second.exit_code == 0, second.output
        again = second.stdout
        assert "Wrote demo config" not in again
        assert "Reusing the sample site" in again
        for line in re.findall(r"^  \S+: succeeded in .*$", again, re.M):
            assert " 0 new, 0 updated" in line, line
        assert "Nothing to classify" in again
        assert "Raised by an earlier run of the demo" in again
        assert "Earful: negative spike for Norrow about delivery" in again
        assert f"Mentions: {mentions:,} (0 new this run); classified: {mentions:,} (0 this run)" in again
        with db.session() as session:
            assert session.scalar(select(func.count(Mention.id))) == mentions
            assert session.scalar(select(func.count(Classification.id))) == mentions
            assert session.scalar(select(func.count(Alert.id))) == 1
    finally:
        db.dispose()
