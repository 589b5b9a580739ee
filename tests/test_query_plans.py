"""The report and the alert check count from indexes, not from the tables (SQLite's plans).

Their speed on a million mentions (bench/insight.py) rests on the covering indexes of
migration 0005: each counting query must read the mentions and their classifications from an
index alone, and the alert check's topic counts must reach the classifications through the
partial index of the negative ones, which SQLite uses only while the query repeats the index's
condition word for word. A change that silently loses one of them does not fail a test of the
figures; this one fails. SQLite without table statistics is what an Earful database has
(nothing runs ANALYZE), and its plans do not depend on the data, so an almost empty database
shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from earful.pipeline.config import Config, load_config_text
from earful.pipeline.counts import count_hours_direct
from earful.pipeline.db import Database
from earful.pipeline.report import build_report
from earful.pipeline.schema import Classification
from earful.pipeline.store import MentionIn, MentionStore
from earful.pipeline.weeks import last_complete_week

AT = datetime(2026, 11, 25, 14, tzinfo=UTC)
VERSION = "plan-model-1"
CONFIG = """
timezone: Europe/Berlin
brands:
  - name: Acme
sources:
  - name: acme-reviews
    kind: reviews
    brand: Acme
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Database, Config]]:
    db = Database(f"sqlite:///{tmp_path / 'plans.sqlite3'}")
    db.upgrade()
    config = load_config_text(CONFIG)
    store = MentionStore(db, config, pseudonym_key=b"plan-key")
    store.sync_config()
    store.store(
        [
            MentionIn(
                source="acme-reviews",
                external_key="1",
                text="Late again",
                published_at=AT - timedelta(days=3),
            ),
            MentionIn(source="acme-reviews", external_key="2", text="No date on this page"),
        ]
    )
    with db.engine.begin() as conn:
        ids = conn.execute(sa.select(sa.text("id")).select_from(sa.text("mention"))).scalars().all()
        conn.execute(
            sa.insert(Classification),
            [
                {
                    "mention_id": i,
                    "model_version": VERSION,
                    "sentiment": "negative",
                    "score": 0.9,
                    "probabilities": {"negative": 0.9},
                    "topics": {"delivery": {"score": 0.5, "sentiment": "negative"}},
                    "status": "ok",
                }
                for i in ids
            ],
        )
    yield db, config
    db.dispose()


def plans(db: Database, work: Callable[[], Any]) -> list[tuple[str, list[str]]]:
    """(statement, plan lines) of every query ``work`` runs that groups or ranks mentions."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    out = []
    with db.engine.connect() as conn:
        for statement, parameters in seen:
            if "GROUP BY" in statement or "candidates" in statement or "parent_id = mention.id" in statement:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                out.append((statement, [str(row[3]) for row in rows]))
    return out


def mention_reads(lines: list[str]) -> list[str]:
    return [
        line for line in lines if line.startswith(("SEARCH mention", "SCAN mention", "SEARCH d ", "SCAN d "))
    ]


def test_alert_counts_read_only_covering_and_partial_indexes(setup: tuple[Database, Config]) -> None:
    db, _ = setup
    found = plans(db, lambda: count_hours_direct(db, VERSION, AT - timedelta(weeks=6), AT))
    assert len(found) == 2
    for statement, lines in found:
        reads = mention_reads(lines)
        assert len(reads) == 2, lines  # dated and undated
        assert "COVERING INDEX ix_mention_published_counted" in reads[0], lines
        assert "COVERING INDEX ix_mention_undated_counted" in reads[1], lines
        classification = [line for line in lines if "classification" in line]
        if "json_each" in statement:  # the topics: only the classifications with a negative
            assert all("USING INDEX ix_classification_negative" in line for line in classification), lines
        else:
            assert all("COVERING INDEX ix_classification_counted" in line for line in classification), lines


def test_report_counts_read_only_covering_indexes(setup: tuple[Database, Config]) -> None:
    db, config = setup
    week = last_complete_week(config.timezone, AT)
    found = plans(db, lambda: build_report(db, config, week, (1, "Acme"), now=AT))
    assert len(found) >= 8  # syndicated texts, weeks, topics, replies, 4 x examples
    tallies = [lines for _, lines in found if any("hourly_tally" in line for line in lines)]
    # The weekly and topic tallies come from hourly_tally (migration 0007), each read from a
    # covering index by hour.
    assert len(tallies) == 2, tallies
    indexes = sorted(lines[0].split("COVERING INDEX ")[1].split()[0] for lines in tallies)
    assert indexes == ["ix_hourly_tally_read", "ix_hourly_tally_topics"], tallies
    assert all("hour>" in lines[0] for lines in tallies), tallies
    for _, lines in found:
        if lines in tallies:
            continue
        assert not [line for line in lines if line.startswith(("SCAN mention", "SCAN classification"))], lines
        reads = mention_reads(lines)
        assert reads, lines
        assert all("COVERING INDEX ix_mention_" in line for line in reads), lines
        lookups = [line for line in lines if line.startswith("SEARCH classification")]
        assert all("ix_classification_counted" in line for line in lookups), lines
