"""Hourly tallies kept by the database: what the weekly report counts its weeks from.

The report's trend reads twelve weeks of a brand's mentions with their classifications, per
source and sentiment (three hundred thousand rows for the largest brand of bench/insight.py).
``hourly_tally`` holds those counts per model version, UTC hour, brand and source: judged
positive, neutral and negative, not judged, and the rating/text disagreements (a high rating
with a negative text, a low one with a positive text); brand 0 stands for no brand. Rows of model version ``''`` count the
word-of-mouth mentions themselves, classified or not: a version's unclassified mentions are
those less the version's rows. The rules (word of mouth = reviews and comments that are not
the brand's own; the time = published, else collected; high rating >= 0.8, low <= 0.4) are
those of ``earful.pipeline.trends``, frozen here.

As for ``hourly_count`` (0006), triggers insert signed rows in the transaction of every change
(a mention stored, re-crawled or deleted; a classification stored, re-scored or deleted) and
never update one; :func:`earful.pipeline.counts.compact` folds them. The upgrade fills the
table from what is stored.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from earful.pipeline.migrations.triggers import (
    changed,
    drop_triggers,
    false,
    hour,
    plpgsql_function,
    sqlite_body,
    word_of_mouth,
)
from earful.pipeline.migrations.triggers import (
    true as sql_true,
)

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "(model_version, hour, brand_id, source_id, topic, positive, neutral, negative, unjudged, "
    "high_neg, low_pos, mentions, compacted)"
)
_VALUES = ("positive", "neutral", "negative", "unjudged", "high_neg", "low_pos", "mentions")
_MENTION_COLUMNS = (
    "brand_id",
    "source_id",
    "kind",
    "is_brand_response",
    "published_at",
    "collected_at",
    "rating",
)


def _value_list(sign: str, c: str, m: str) -> list[str]:
    """The tallies one classification ``c`` of mention ``m`` adds (times ``sign``): positive,
    neutral, negative, unjudged, high_neg, low_pos, mentions (0: the version-less row's)."""
    ok = f"{c}.status = 'ok'"

    def one(condition: str) -> str:
        return f"CASE WHEN {condition} THEN {sign}1 ELSE 0 END"

    judged = f"{ok} AND {c}.sentiment IN ('positive', 'neutral', 'negative')"
    return [
        one(f"{ok} AND {c}.sentiment = 'positive'"),
        one(f"{ok} AND {c}.sentiment = 'neutral'"),
        one(f"{ok} AND {c}.sentiment = 'negative'"),
        f"CASE WHEN {judged} THEN 0 ELSE {sign}1 END",
        one(f"{ok} AND {c}.sentiment = 'negative' AND {m}.rating >= 0.8"),
        one(f"{ok} AND {c}.sentiment = 'positive' AND {m}.rating <= 0.4"),
        "0",
    ]


def _classified(dialect: str, sign: str, c: str, m: str, source: str, where: str) -> str:
    return (
        f"INSERT INTO hourly_tally {_COLUMNS} "
        f"SELECT {c}.model_version, {hour(dialect, m)}, coalesce({m}.brand_id, 0), {m}.source_id, '', "
        f"{', '.join(_value_list(sign, c, m))}, {false(dialect)} "
        f"FROM {source} WHERE {where} AND {word_of_mouth(dialect, m)}"
    )


def _topic_sentiment(dialect: str) -> str:
    """A topic entry's own sentiment (the sentences about it), as the report reads it."""
    return "json_extract(t.value, '$.sentiment')" if dialect == "sqlite" else "(t.value ->> 'sentiment')"


def _topic_values(dialect: str, sign: str) -> list[str]:
    ts = _topic_sentiment(dialect)
    return [
        *(f"CASE WHEN {ts} = '{s}' THEN {sign}1 ELSE 0 END" for s in ("positive", "neutral", "negative")),
        f"CASE WHEN {ts} IN ('positive', 'neutral', 'negative') THEN 0 ELSE {sign}1 END",
        "0",
        "0",
        "0",
    ]


def _topics(dialect: str, sign: str, c: str, m: str, source: str, where: str) -> str:
    """One row per topic of classification ``c`` (judged ones only), by the topic's sentiment."""
    return (
        f"INSERT INTO hourly_tally {_COLUMNS} "
        f"SELECT {c}.model_version, {hour(dialect, m)}, coalesce({m}.brand_id, 0), {m}.source_id, t.key, "
        f"{', '.join(_topic_values(dialect, sign))}, {false(dialect)} "
        f"FROM {source}, json_each({c}.topics) AS t "
        f"WHERE {where} AND {c}.status = 'ok' AND {word_of_mouth(dialect, m)}"
    )


def _mention(dialect: str, sign: str, m: str) -> str:
    """The mention itself, in the version-less row."""
    return (
        f"INSERT INTO hourly_tally {_COLUMNS} "
        f"SELECT '', {hour(dialect, m)}, coalesce({m}.brand_id, 0), {m}.source_id, '', "
        f"0, 0, 0, 0, 0, 0, {sign}1, {false(dialect)} "
        f"WHERE {word_of_mouth(dialect, m)}"
    )


def _of_classification(dialect: str, sign: str, row: str) -> list[str]:
    link = ("mention AS m", f"m.id = {row}.mention_id")
    return [_classified(dialect, sign, row, "m", *link), _topics(dialect, sign, row, "m", *link)]


def _of_mention(dialect: str, sign: str, row: str) -> list[str]:
    link = ("classification AS c", f"c.mention_id = {row}.id")
    return [
        _classified(dialect, sign, "c", row, *link),
        _topics(dialect, sign, "c", row, *link),
        _mention(dialect, sign, row),
    ]


_CLASSIFICATION_COLUMNS = ("model_version", "mention_id", "status", "sentiment")


def _sqlite_triggers() -> list[str]:
    d = "sqlite"
    return [
        "CREATE TRIGGER hourly_tally_classification_insert AFTER INSERT ON classification "
        + sqlite_body(_of_classification(d, "", "NEW")),
        "CREATE TRIGGER hourly_tally_classification_update AFTER UPDATE ON classification "
        f"WHEN {changed(_CLASSIFICATION_COLUMNS, d)} OR OLD.topics IS NOT NEW.topics "
        + sqlite_body(_of_classification(d, "-", "OLD") + _of_classification(d, "", "NEW")),
        "CREATE TRIGGER hourly_tally_classification_delete AFTER DELETE ON classification "
        + sqlite_body(_of_classification(d, "-", "OLD")),
        "CREATE TRIGGER hourly_tally_mention_insert AFTER INSERT ON mention "
        + sqlite_body([_mention(d, "", "NEW")]),
        f"CREATE TRIGGER hourly_tally_mention_update AFTER UPDATE OF {', '.join(_MENTION_COLUMNS)} ON mention "
        f"WHEN {changed(_MENTION_COLUMNS, d)} "
        + sqlite_body(_of_mention(d, "-", "OLD") + _of_mention(d, "", "NEW")),
        "CREATE TRIGGER hourly_tally_mention_delete BEFORE DELETE ON mention "
        + sqlite_body(_of_mention(d, "-", "OLD")),
    ]


def _postgresql_triggers() -> list[str]:
    d = "postgresql"

    return [
        plpgsql_function(
            "hourly_tally_of_classification",
            [
                ("'UPDATE', 'DELETE'", _of_classification(d, "-", "OLD")),
                ("'INSERT', 'UPDATE'", _of_classification(d, "", "NEW")),
            ],
            "NULL",
        ),
        plpgsql_function(
            "hourly_tally_of_mention",
            [
                ("'UPDATE', 'DELETE'", _of_mention(d, "-", "OLD")),
                ("'UPDATE'", _of_mention(d, "", "NEW")),
                ("'INSERT'", [_mention(d, "", "NEW")]),
            ],
            "CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END",
        ),
        "CREATE TRIGGER hourly_tally_classification_insert_delete AFTER INSERT OR DELETE ON classification "
        "FOR EACH ROW EXECUTE FUNCTION hourly_tally_of_classification()",
        "CREATE TRIGGER hourly_tally_classification_update AFTER UPDATE ON classification "
        f"FOR EACH ROW WHEN ({changed(_CLASSIFICATION_COLUMNS, d)} "
        "OR OLD.topics::text IS DISTINCT FROM NEW.topics::text) "
        "EXECUTE FUNCTION hourly_tally_of_classification()",
        "CREATE TRIGGER hourly_tally_mention_insert AFTER INSERT ON mention "
        "FOR EACH ROW EXECUTE FUNCTION hourly_tally_of_mention()",
        f"CREATE TRIGGER hourly_tally_mention_update AFTER UPDATE OF {', '.join(_MENTION_COLUMNS)} ON mention "
        f"FOR EACH ROW WHEN ({changed(_MENTION_COLUMNS, d)}) EXECUTE FUNCTION hourly_tally_of_mention()",
        "CREATE TRIGGER hourly_tally_mention_delete BEFORE DELETE ON mention "
        "FOR EACH ROW EXECUTE FUNCTION hourly_tally_of_mention()",
    ]


def _backfill(dialect: str) -> list[str]:
    true = sql_true(dialect)
    at = hour(dialect, "m")
    key = f"{at}, coalesce(m.brand_id, 0), m.source_id"
    summed = ", ".join(f"sum({e})" for e in _value_list("", "c", "m")[:-1])
    topics = ", ".join(f"sum({e})" for e in _topic_values(dialect, "")[:-1])
    joined = "FROM mention AS m JOIN classification AS c ON c.mention_id = m.id"
    wom = word_of_mouth(dialect, "m")
    return [
        f"INSERT INTO hourly_tally {_COLUMNS} SELECT c.model_version, {key}, '', {summed}, 0, {true} "
        f"{joined} WHERE {wom} GROUP BY c.model_version, {key}",
        f"INSERT INTO hourly_tally {_COLUMNS} SELECT c.model_version, {key}, t.key, {topics}, 0, {true} "
        f"{joined}, json_each(c.topics) AS t WHERE {wom} AND c.status = 'ok' "
        f"GROUP BY c.model_version, {key}, t.key",
        f"INSERT INTO hourly_tally {_COLUMNS} SELECT '', {key}, '', 0, 0, 0, 0, 0, 0, count(*), {true} "
        f"FROM mention AS m WHERE {wom} GROUP BY {key}",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "hourly_tally",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),  # 0: no brand
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),  # '': the mentions as a whole
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _VALUES),
        sa.Column("compacted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hourly_tally")),
    )
    op.create_index(
        "ix_hourly_tally_read",
        "hourly_tally",
        ["brand_id", "model_version", "topic", "hour", "source_id", *_VALUES],
    )
    # The topic rows by hour (the report reads two weeks of them): partial, so that the weekly
    # query of the whole mentions does not wade through them.
    op.create_index(
        "ix_hourly_tally_topics",
        "hourly_tally",
        ["brand_id", "model_version", "hour", "topic", "positive", "neutral", "negative", "unjudged"],
        sqlite_where=sa.text("topic > ''"),
        postgresql_where=sa.text("topic > ''"),
    )
    op.create_index(
        "ix_hourly_tally_fresh",
        "hourly_tally",
        ["model_version", "hour", "brand_id", "source_id", "topic"],
        sqlite_where=sa.text("NOT compacted"),
        postgresql_where=sa.text("NOT compacted"),
    )
    for statement in _backfill(dialect):
        op.execute(statement)
    for statement in _sqlite_triggers() if dialect == "sqlite" else _postgresql_triggers():
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    classification = ["insert", "update", "delete"] if dialect == "sqlite" else ["insert_delete", "update"]
    drop_triggers(dialect, "hourly_tally", classification, ["insert", "update", "delete"])
    op.drop_index("ix_hourly_tally_fresh", table_name="hourly_tally")
    op.drop_index("ix_hourly_tally_topics", table_name="hourly_tally")
    op.drop_index("ix_hourly_tally_read", table_name="hourly_tally")
    op.drop_table("hourly_tally")
