"""``earful alerts`` on real databases: seven weeks of mentions with a weekly rhythm, then a
negative spike about one topic for one brand.

Mentions and classifications are inserted directly (no model), so the counts are known: a
brand gets about 1.5 mentions an hour on weekday working hours and 0.3 otherwise, a fifth of
them negative, each about one of four topics. Acme then gets 25 angry mentions about delivery
in the three hours before ``AT``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_notify import Receiver

from earful.pipeline.alerts import alert_message, run_alerts, spike_key
from earful.pipeline.cli import cli
from earful.pipeline.config import Config, load_config_text
from earful.pipeline.db import Database
from earful.pipeline.schema import Alert, Brand, Classification, CrawlRun, Mention, Source
from earful.pipeline.store import MentionStore

AT = datetime(2026, 11, 25, 14, tzinfo=UTC)  # a Wednesday, 15:00 in Berlin
VERSION = "test-model-1"
TOPICS = ("delivery", "price", "staff", "quality")
WEEKS = 7

ALERT_YAML = """
timezone: Europe/Berlin
brands:
  - name: Acme
  - name: Globex
  - name: Initech
sources:
  - name: acme-reviews
    kind: reviews
    spider: reviews
    start_urls: [https://reviews.example/acme]
    brand: Acme
  - name: acme-blog
    kind: blog
    spider: blog_comments
    start_urls: [https://blog.example/acme]
    brand: Acme
  - name: globex-reviews
    kind: reviews
    spider: reviews
    start_urls: [https://reviews.example/globex]
    brand: Globex
alerts:
  delivery_attempts: 2
  delivery_backoff_s: 0.01
  delivery_timeout_s: 2
"""


def make_config(tmp_path: Path, db_url: str, extra: str = "") -> Config:
    path = tmp_path / "earful.yaml"
    path.write_text(ALERT_YAML + extra + f"database:\n  url: {db_url!r}\n", encoding="utf-8")
    return load_config_text(path.read_text(encoding="utf-8"), path=path)


@pytest.fixture
def alert_config(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "test-pseudonym-key")
    monkeypatch.delenv("EARFUL_DATABASE_URL", raising=False)
    return make_config(tmp_path, db_url)


@pytest.fixture
def synced(db: Database, alert_config: Config) -> Database:
    MentionStore(db, alert_config).sync_config()
    return db


class Mentions:
    """Inserts mentions and their classifications straight into the tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.engine.connect() as conn:
            self.brands = dict(conn.execute(sa.select(Brand.name, Brand.id)).tuples().all())
            self.sources = dict(conn.execute(sa.select(Source.name, Source.id)).tuples().all())
        self.rows: list[dict[str, Any]] = []
        self.n = 0

    def add(
        self,
        source: str,
        brand: str,
        when: datetime | None,
        sentiment: str,
        topic: str | None,
        *,
        kind: str = "review",
        brand_response: bool = False,
        text: str | None = None,
        collected: datetime | None = None,
        version: str = VERSION,
    ) -> None:
        self.n += 1
        key = f"m{self.n}"
        text = text or f"mention {self.n} is {sentiment} about {topic}"
        p_neg = 0.9 if sentiment == "negative" else 0.05
        self.rows.append(
            {
                "mention": {
                    "source_id": self.sources[source],
                    "external_key": key,
                    "url": f"https://reviews.example/{source}/{key}",
                    "kind": kind,
                    "brand_id": self.brands[brand],
                    "published_at": when,
                    "collected_at": collected or (when or AT) + timedelta(minutes=5),
                    "updated_at": AT,
                    "text": text,
                    "is_brand_response": brand_response,
                    "content_hash": hashlib.sha256(text.encode()).hexdigest(),
                    "fingerprint": "f",
                },
                "classification": {
                    "model_version": version,
                    "sentiment": sentiment,
                    "score": p_neg if sentiment == "negative" else 0.8,
                    "probabilities": {"negative": p_neg, "neutral": 0.05, "positive": 0.9 - p_neg + 0.05},
                    "topics": {}
                    if topic is None
                    else {
                        topic: {"score": 0.7, "sentiment": sentiment, "sentiment_score": 0.8, "sentences": 1}
                    },
                    "status": "ok",
                    "created_at": AT,
                },
            }
        )

    def commit(self) -> None:
        with self.db.engine.begin() as conn:
            for start in range(0, len(self.rows), 2000):
                chunk = self.rows[start : start + 2000]
                ids = conn.execute(
                    sa.insert(Mention).returning(Mention.id, sort_by_parameter_order=True),
                    [r["mention"] for r in chunk],
                ).scalars()
                conn.execute(
                    sa.insert(Classification),
                    [{**r["classification"], "mention_id": i} for r, i in zip(chunk, ids, strict=True)],
                )
        self.rows = []


def weekly_history(mentions: Mentions, brand: str, source: str, seed: int, weeks: int = WEEKS) -> None:
    """``weeks`` of mentions before AT with a working-day rhythm and a fifth negative."""
    rng = np.random.default_rng(seed)
    start = AT - timedelta(weeks=weeks)
    for h in range(weeks * 168):
        hour = start + timedelta(hours=h)
        local = hour.astimezone(mentions_tz)
        busy = local.weekday() < 5 and 8 <= local.hour < 20
        for _ in range(rng.poisson(1.5 if busy else 0.3)):
            sentiment = "negative" if rng.random() < 0.2 else "positive"
            topic = TOPICS[int(rng.integers(len(TOPICS)))]
            mentions.add(source, brand, hour + timedelta(minutes=int(rng.integers(60))), sentiment, topic)


mentions_tz = load_config_text("timezone: Europe/Berlin").tz


def spike(mentions: Mentions, n: int = 25) -> None:
    """``n`` negative mentions of Acme about delivery in the three hours before AT."""
    for i in range(n):
        when = AT - timedelta(minutes=175 - 7 * i)
        source = "acme-reviews" if i % 5 else "acme-blog"
        mentions.add(source, "Acme", when, "negative", "delivery", text=f"Parcel {i} never came <b>&</b>")


@pytest.fixture
def history(synced: Database) -> Database:
    """Seven weeks of Acme and Globex, Acme's delivery spike at the end, and mentions that must
    not count: brand responses, posts, another model version, unjudged texts."""
    mentions = Mentions(synced)
    # First (so that test-model-1 writes the newest rows): Globex's angry brand responses and
    # posts, and an older model's negative verdicts, none of which may count.
    for i in range(30):
        when = AT - timedelta(minutes=170 - 5 * i)
        mentions.add("globex-reviews", "Globex", when, "negative", "price", brand_response=True)
        mentions.add("globex-reviews", "Globex", when, "negative", "price", kind="post")
        mentions.add("globex-reviews", "Globex", when, "negative", "staff", version="old-model")
    weekly_history(mentions, "Acme", "acme-reviews", seed=1)
    weekly_history(mentions, "Globex", "globex-reviews", seed=2)
    spike(mentions)
    mentions.commit()
    return synced


def stored_alerts(db: Database) -> list[Alert]:
    with db.session() as session:
        rows = list(session.scalars(sa.select(Alert).order_by(Alert.id)))
        for row in rows:
            session.expunge(row)
        return rows


# --------------------------------------------------------------------------- spikes


def test_spike_of_negative_mentions_raises_one_alert(history: Database, alert_config: Config) -> None:
    result = run_alerts(history, alert_config, at=AT)

    assert result.model_version == VERSION
    assert [(a.kind, a.brand, a.topic) for a in result.alerts] == [("spike", "Acme", "delivery")]
    alert = result.alerts[0]
    assert alert.key == spike_key(Mentions(history).brands["Acme"], "delivery", AT)
    assert alert.window_start == AT - timedelta(hours=3)
    assert alert.window_end == AT
    assert alert.observed is not None
    assert alert.observed >= 25
    assert alert.expected is not None
    assert alert.expected < 3
    assert alert.p_value is not None
    assert alert.p_value < 1e-6
    e = alert.explanation
    assert e["window"]["local"] == "2026-11-25 12:00–15:00 Europe/Berlin"
    assert "Acme" in e["summary"]
    assert "delivery" in e["summary"]
    assert e["test"]["tested"]
    assert "same 3 hours of the week in the past 6 weeks" in e["test"]["reason"]
    assert e["topics"][0]["topic"] == "delivery"
    assert [s["source"] for s in e["sources"]] == ["acme-reviews", "acme-blog"]
    assert e["sources"][0]["observed"] >= 20
    assert len(e["examples"]) == 3
    for example in e["examples"]:
        assert example["url"].startswith("https://reviews.example/")
        assert "never came" in example["text"]
    assert None in e["covers"]
    assert "delivery" in e["covers"]

    [row] = stored_alerts(history)
    assert row.dedup_key == alert.key
    assert row.kind == "spike"
    assert row.topic == "delivery"
    assert row.explanation == e
    assert row.deliveries == {}  # no notifiers configured

    # Globex is quiet: its brand responses, posts and the old model's verdicts do not count.
    globex = [t for t in result.tests if t.brand == "Globex"]
    assert globex
    assert not any(t.significant for t in globex)
    assert result.untested == {"Initech": "no classified mentions yet"}
    topics = {t.topic for t in result.tests if t.brand == "Acme"}
    assert topics == {None, *TOPICS}
    # A topic is tested on its negatives' share of all the brand's mentions as well.
    [delivery] = [t for t in result.tests if t.brand == "Acme" and t.topic == "delivery"]
    assert delivery.verdict.share_p_value is not None
    assert delivery.verdict.share_p_value < 1e-6
    assert delivery.verdict.share_observed is not None
    assert delivery.verdict.share_expected is not None
    assert delivery.verdict.share_observed > 3 * delivery.verdict.share_expected


def test_second_run_at_the_same_hour_raises_nothing_new(history: Database, alert_config: Config) -> None:
    first = run_alerts(history, alert_config, at=AT)
    second = run_alerts(history, alert_config, at=AT)
    assert len(first.alerts) == 1
    assert second.alerts == []
    assert second.cooling  # flagged again, and recognised as the same episode
    assert len(stored_alerts(history)) == 1


def test_no_new_alert_within_the_cool_down(history: Database, alert_config: Config) -> None:
    run_alerts(history, alert_config, at=AT)
    later = run_alerts(history, alert_config, at=AT + timedelta(hours=1))
    assert later.alerts == []
    assert "Acme/delivery" in later.cooling or "Acme" in later.cooling
    assert len(stored_alerts(history)) == 1


def test_same_hour_without_cool_down_is_still_one_alert(
    history: Database, tmp_path: Path, db_url: str
) -> None:
    config = make_config(tmp_path, db_url, "  cooldown_hours: 0\n")
    assert config.alerts.cooldown_hours == 0
    run_alerts(history, config, at=AT)
    again = run_alerts(history, config, at=AT)
    assert again.alerts == []
    assert len(again.duplicates) == 1
    assert len(stored_alerts(history)) == 1


def test_dry_run_stores_nothing(history: Database, alert_config: Config) -> None:
    result = run_alerts(history, alert_config, at=AT, dry_run=True)
    assert [(a.brand, a.topic) for a in result.alerts] == [("Acme", "delivery")]
    assert result.alerts[0].id is None
    assert stored_alerts(history) == []
    # ... so a real run afterwards still raises it.
    assert len(run_alerts(history, alert_config, at=AT).alerts) == 1


def test_quiet_history_raises_nothing(synced: Database, alert_config: Config) -> None:
    mentions = Mentions(synced)
    weekly_history(mentions, "Acme", "acme-reviews", seed=3)
    mentions.commit()
    result = run_alerts(synced, alert_config, at=AT)
    assert result.alerts == []
    assert any(t.verdict.tested for t in result.tests)
    assert stored_alerts(synced) == []


def test_brand_new_brand_is_not_tested_and_says_why(synced: Database, alert_config: Config) -> None:
    mentions = Mentions(synced)
    spike(mentions, n=30)  # Acme's first mentions ever: a burst, but no history to compare with
    mentions.commit()
    result = run_alerts(synced, alert_config, at=AT)
    assert result.alerts == []
    assert "Acme" in result.untested
    assert "hours of history" in result.untested["Acme"] or "before the series" in result.untested["Acme"]
    assert result.untested["Globex"] == "no classified mentions yet"


def test_empty_database_and_one_mention_do_not_crash(synced: Database, alert_config: Config) -> None:
    result = run_alerts(synced, alert_config, at=AT)
    assert result.model_version is None
    assert result.alerts == []
    assert result.tests == []
    assert set(result.untested) == {"Acme", "Globex", "Initech"}
    mentions = Mentions(synced)
    mentions.add("acme-reviews", "Acme", AT - timedelta(hours=1), "negative", None)
    mentions.commit()
    result = run_alerts(synced, alert_config, at=AT)
    assert result.alerts == []
    assert "Acme" in result.untested


def test_undated_mentions_count_when_collected(synced: Database, alert_config: Config) -> None:
    mentions = Mentions(synced)
    weekly_history(mentions, "Acme", "acme-reviews", seed=4)
    for i in range(25):
        collected = AT - timedelta(minutes=170 - 6 * i)
        mentions.add("acme-blog", "Acme", None, "negative", "staff", collected=collected, text=f"rude {i}")
    mentions.commit()
    [alert] = run_alerts(synced, alert_config, at=AT).alerts
    assert (alert.brand, alert.topic) == ("Acme", "staff")


def test_alert_message_escapes_nothing_itself_and_links_examples(
    history: Database, alert_config: Config
) -> None:
    [alert] = run_alerts(history, alert_config, at=AT, dry_run=True).alerts
    message = alert_message(alert)
    assert message.key == alert.key
    assert "negative spike for Acme about delivery" in message.title
    assert len(message.examples) == 3
    assert all(x.url for x in message.examples)
    assert any("<b>&</b>" in x.text for x in message.examples)  # raw here; channels escape
    assert any(line.startswith("Sources: acme-reviews") for line in message.lines)


# --------------------------------------------------------------------------- source health


def add_runs(db: Database, source: str, statuses: list[tuple[str, int]], start: datetime) -> None:
    with db.session() as session:
        source_id = session.scalar(sa.select(Source.id).where(Source.name == source))
        assert source_id is not None
        for i, (status, seen) in enumerate(statuses):
            began = start + timedelta(hours=i)
            session.add(
                CrawlRun(
                    source_id=source_id,
                    started_at=began,
                    finished_at=began + timedelta(minutes=5),
                    status=status,
                    items_seen=seen,
                    message="HTTP 403 on https://reviews.example/acme" if status == "failed" else None,
                )
            )


def health(db: Database, config: Config, at: datetime) -> list[str]:
    return [a.key for a in run_alerts(db, config, at=at).alerts if a.kind == "source_health"]


def test_broken_source_alerts_once_per_streak(synced: Database, alert_config: Config) -> None:
    t0 = AT - timedelta(days=2)
    add_runs(synced, "acme-reviews", [("succeeded", 10), ("failed", 0), ("failed", 0)], t0)
    add_runs(synced, "globex-reviews", [("succeeded", 0)] * 3, t0)  # stored nothing 3 times
    assert len(health(synced, alert_config, AT)) == 1  # Globex; Acme failed only twice
    [globex] = [a for a in stored_alerts(synced) if a.kind == "source_health"]
    assert globex.explanation["source"] == "globex-reviews"
    assert "stored no mentions" in globex.explanation["problem"]

    add_runs(synced, "acme-reviews", [("failed", 0)], t0 + timedelta(hours=3))  # now 3 failed
    assert len(health(synced, alert_config, AT)) == 1
    add_runs(synced, "acme-reviews", [("failed", 0)] * 2, t0 + timedelta(hours=4))  # the same streak
    assert health(synced, alert_config, AT) == []
    assert health(synced, alert_config, AT + timedelta(hours=1)) == []
    # It recovers, then breaks again: a new streak, a new alert.
    add_runs(synced, "acme-reviews", [("succeeded", 5), *[("failed", 0)] * 3], t0 + timedelta(hours=6))
    assert len(health(synced, alert_config, AT + timedelta(hours=2))) == 1
    acme = [a for a in stored_alerts(synced) if a.source_id == Mentions(synced).sources["acme-reviews"]]
    assert len(acme) == 2
    assert "failed" in acme[0].explanation["problem"]
    assert "Source acme-reviews" in alert_message(acme[0]).title + alert_message(acme[0]).lines[0]


# --------------------------------------------------------------------------- delivery and CLI


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_new_alert_is_delivered_once_and_recorded(
    history: Database, tmp_path: Path, db_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARFUL_TEST_HOOK", receiver.url + "/hook")
    monkeypatch.setenv("EARFUL_TEST_SECRET", "shh-its-a-secret")
    notifiers = (
        "notifiers:\n  - name: ops\n    kind: webhook\n    url: ${EARFUL_TEST_HOOK}\n"
        "    secret: ${EARFUL_TEST_SECRET}\n"
    )
    config = make_config(tmp_path, db_url, notifiers)
    result = run_alerts(history, config, at=AT)
    assert result.pending == 0
    assert len(receiver.requests) == 1
    body = json.loads(receiver.requests[0].body)
    assert body["key"] == result.alerts[0].key
    assert body["alert"]["topic"] == "delivery"
    [row] = stored_alerts(history)
    assert row.deliveries["ops"]["status"] == "sent"
    assert row.deliveries["ops"]["attempts"] == 1
    run_alerts(history, config, at=AT)
    run_alerts(history, config, at=AT + timedelta(hours=1))
    assert len(receiver.requests) == 1  # never twice


def test_cli_alerts_dry_run_json_and_table(
    history: Database, alert_config: Config, isolated_cli: None
) -> None:
    assert alert_config.path is not None
    base = ["--config", str(alert_config.path), "alerts", "--at", AT.isoformat()]
    result = CliRunner().invoke(cli, [*base, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc["dry_run"] is True
    assert [(a["brand"], a["topic"]) for a in doc["alerts"]] == [("Acme", "delivery")]
    assert doc["untested"] == {"Initech": "no classified mentions yet"}
    assert stored_alerts(history) == []

    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 0, result.output
    assert "negative spike for Acme about delivery" in result.stdout
    assert "1 alert" in result.stdout
    assert len(stored_alerts(history)) == 1
    result = CliRunner().invoke(cli, base)
    assert "No new alerts" in result.stdout


def test_cli_exits_1_while_a_delivery_is_pending_and_sends_it_later(
    history: Database, tmp_path: Path, db_url: str, isolated_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = Receiver()  # not listening yet
    monkeypatch.setenv("EARFUL_TEST_SLACK", down.url + "/services/T0/B0/secret-token")
    config = make_config(
        tmp_path, db_url, "notifiers:\n  - name: ops\n    kind: slack\n    url: ${EARFUL_TEST_SLACK}\n"
    )
    assert config.path is not None
    argv = ["--config", str(config.path), "alerts", "--at", AT.isoformat(), "--json"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1, result.output
    assert "1 delivery still pending" in result.stdout
    assert "secret-token" not in result.output
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc["pending"] == 1
    assert [(d["channel"], d["status"], d["attempts"]) for d in doc["deliveries"]] == [("ops", "pending", 2)]
    with down:
        result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert len(down.requests) == 1
    assert json.loads(result.stdout.strip().splitlines()[-1])["deliveries"][0]["status"] == "sent"
    [row] = stored_alerts(history)
    assert row.deliveries["ops"]["status"] == "sent"
    assert row.deliveries["ops"]["attempts"] == 3
