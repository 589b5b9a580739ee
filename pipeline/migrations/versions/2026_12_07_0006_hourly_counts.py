"""Hourly counts kept by the database: what the alert check reads instead of every mention.

The hourly alert check tests every brand and brand x topic against eight weeks of history.
Counting those weeks from the mentions on every run read about two thirds of a million rows
at a million mentions, joined to their classifications and with the negative ones' topics
parsed (bench/insight.py). This revision adds ``hourly_count``: per model version, UTC hour
(hours since 1970), brand and topic (``''`` for the brand as a whole), the judged counted
mentions and how many of them were negative; a topic row counts the mentions with a negative
verdict about that topic (its own sentiment, else the mention's), and its ``total`` is 0.

Triggers keep it exact in the same transaction as the change, whatever writes it:

* a classification inserted, updated (``earful classify --rescore``: a new sentiment, topics or
  status) or deleted adds its contribution, or takes the old one away and adds the new one;
* a mention whose counting columns change (brand, kind, brand response, publication or
  collection time: a re-crawl, or a brand deleted and its mentions set to no brand) moves the
  contributions of its classifications; a mention deleted takes them away first (its
  classifications then go by cascade and find no mention to subtract from again).

The triggers only ever INSERT signed rows (+1 / -1), never update one: concurrent writers
then never wait on each other's rows nor deadlock. ``earful alerts`` sums the rows of a key
as it reads them and folds the fresh rows (``compacted`` false, a partial index) into one row
per key (:func:`earful.pipeline.rollup.compact`), so the table stays about one row per brand
(and topic with negatives) and hour. The upgrade fills the table from the classifications
already stored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:00:00
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

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The counting rules of earful.pipeline.counts (COUNTED_KINDS, counted, judged, the event
# time), written once per dialect. ``{m}`` is the mention (a table alias, NEW or OLD), ``{c}``
# the classification. Frozen here: a later change of the rules is a later revision.


def _counted(dialect: str, m: str) -> str:
    return f"{m}.brand_id IS NOT NULL AND {word_of_mouth(dialect, m)}"


def _topic_sentiment(dialect: str, c: str) -> str:
    if dialect == "sqlite":
        return f"coalesce(json_extract(t.value, '$.sentiment'), {c}.sentiment)"
    return f"coalesce(t.value ->> 'sentiment', {c}.sentiment)"


def _contribution(dialect: str, sign: str, c: str, m: str, source: str, where: str) -> list[str]:
    """Two INSERT ... SELECT statements adding ``sign`` x the contribution of classification
    ``c`` of mention ``m`` (``source``: the FROM list that binds the one that is a table)."""
    no = false(dialect)
    negative = f"CASE WHEN {c}.sentiment = 'negative' THEN {sign}1 ELSE 0 END"
    condition = f"{where} AND {c}.status = 'ok' AND {_counted(dialect, m)}"
    columns = "(model_version, hour, brand_id, topic, negative, total, compacted)"
    return [
        f"INSERT INTO hourly_count {columns} "
        f"SELECT {c}.model_version, {hour(dialect, m)}, {m}.brand_id, '', {negative}, {sign}1, {no} "
        f"FROM {source} WHERE {condition}",
        f"INSERT INTO hourly_count {columns} "
        f"SELECT {c}.model_version, {hour(dialect, m)}, {m}.brand_id, t.key, {sign}1, 0, {no} "
        f"FROM {source}, json_each({c}.topics) AS t "
        f"WHERE {condition} AND {_topic_sentiment(dialect, c)} = 'negative'",
    ]


def _of_classification(dialect: str, sign: str, row: str) -> list[str]:
    """The contribution of classification ``row`` (NEW or OLD), its mention read from the table."""
    return _contribution(dialect, sign, row, "m", "mention AS m", f"m.id = {row}.mention_id")


def _of_mention(dialect: str, sign: str, row: str) -> list[str]:
    """The contributions of every classification of mention ``row`` (NEW or OLD)."""
    return _contribution(dialect, sign, "c", row, "classification AS c", f"c.mention_id = {row}.id")


_CLASSIFICATION_COLUMNS = ("model_version", "mention_id", "status", "sentiment")
_MENTION_COLUMNS = ("brand_id", "kind", "is_brand_response", "published_at", "collected_at")


def _sqlite_triggers() -> list[str]:
    # The JSON text is compared as text.
    classification_changed = changed(_CLASSIFICATION_COLUMNS, "sqlite") + " OR OLD.topics IS NOT NEW.topics"
    mention_changed = changed(_MENTION_COLUMNS, "sqlite")
    return [
        "CREATE TRIGGER hourly_count_classification_insert AFTER INSERT ON classification "
        + sqlite_body(_of_classification("sqlite", "", "NEW")),
        f"CREATE TRIGGER hourly_count_classification_update AFTER UPDATE ON classification WHEN {classification_changed} "
        + sqlite_body(_of_classification("sqlite", "-", "OLD") + _of_classification("sqlite", "", "NEW")),
        "CREATE TRIGGER hourly_count_classification_delete AFTER DELETE ON classification "
        + sqlite_body(_of_classification("sqlite", "-", "OLD")),
        f"CREATE TRIGGER hourly_count_mention_update AFTER UPDATE OF {', '.join(_MENTION_COLUMNS)} "
        f"ON mention WHEN {mention_changed} "
        + sqlite_body(_of_mention("sqlite", "-", "OLD") + _of_mention("sqlite", "", "NEW")),
        "CREATE TRIGGER hourly_count_mention_delete BEFORE DELETE ON mention "
        + sqlite_body(_of_mention("sqlite", "-", "OLD")),
    ]


def _postgresql_triggers() -> list[str]:
    classification_changed = f"{changed(_CLASSIFICATION_COLUMNS, 'postgresql')} OR OLD.topics::text IS DISTINCT FROM NEW.topics::text"
    return [
        plpgsql_function(
            "hourly_count_of_classification",
            [
                ("'UPDATE', 'DELETE'", _of_classification("postgresql", "-", "OLD")),
                ("'INSERT', 'UPDATE'", _of_classification("postgresql", "", "NEW")),
            ],
            "NULL",
        ),
        plpgsql_function(
            "hourly_count_of_mention",
            [
                ("'UPDATE', 'DELETE'", _of_mention("postgresql", "-", "OLD")),
                ("'UPDATE'", _of_mention("postgresql", "", "NEW")),
            ],
            "CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END",
        ),
        "CREATE TRIGGER hourly_count_classification_insert_delete AFTER INSERT OR DELETE ON classification "
        "FOR EACH ROW EXECUTE FUNCTION hourly_count_of_classification()",
        "CREATE TRIGGER hourly_count_classification_update AFTER UPDATE ON classification "
        f"FOR EACH ROW WHEN ({classification_changed}) EXECUTE FUNCTION hourly_count_of_classification()",
        f"CREATE TRIGGER hourly_count_mention_update AFTER UPDATE OF {', '.join(_MENTION_COLUMNS)} ON mention "
        f"FOR EACH ROW WHEN ({changed(_MENTION_COLUMNS, 'postgresql')}) EXECUTE FUNCTION hourly_count_of_mention()",
        "CREATE TRIGGER hourly_count_mention_delete BEFORE DELETE ON mention "
        "FOR EACH ROW EXECUTE FUNCTION hourly_count_of_mention()",
    ]


def _backfill(dialect: str) -> list[str]:
    """The contributions of the classifications already stored, one row per key."""
    true = sql_true(dialect)
    at, counted = hour(dialect, "m"), _counted(dialect, "m")
    judged = f"c.mention_id = m.id AND c.status = 'ok' AND {counted}"
    return [
        "INSERT INTO hourly_count (model_version, hour, brand_id, topic, negative, total, compacted) "
        f"SELECT c.model_version, {at}, m.brand_id, '', "
        f"sum(CASE WHEN c.sentiment = 'negative' THEN 1 ELSE 0 END), count(*), {true} "
        f"FROM mention AS m JOIN classification AS c ON {judged} "
        f"GROUP BY c.model_version, {at}, m.brand_id",
        "INSERT INTO hourly_count (model_version, hour, brand_id, topic, negative, total, compacted) "
        f"SELECT c.model_version, {at}, m.brand_id, t.key, count(*), 0, {true} "
        f"FROM mention AS m JOIN classification AS c ON {judged}, json_each(c.topics) AS t "
        f"WHERE {_topic_sentiment(dialect, 'c')} = 'negative' "
        f"GROUP BY c.model_version, {at}, m.brand_id, t.key",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "hourly_count",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("compacted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hourly_count")),
    )
    op.create_index(
        "ix_hourly_count_read",
        "hourly_count",
        ["model_version", "topic", "hour", "brand_id", "negative", "total"],
    )
    op.create_index(
        "ix_hourly_count_fresh",
        "hourly_count",
        ["model_version", "hour", "brand_id", "topic"],
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
    drop_triggers(dialect, "hourly_count", classification, ["update", "delete"])
    op.drop_index("ix_hourly_count_fresh", table_name="hourly_count")
    op.drop_index("ix_hourly_count_read", table_name="hourly_count")
    op.drop_table("hourly_count")
