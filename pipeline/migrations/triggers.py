"""SQL pieces shared by the revisions that keep tables with triggers (0006, 0007, 0008).

Only stable spellings live here (the UTC hour of a mention, the shape of a trigger body or a
PL/pgSQL function, dropping what a revision created); what each table counts stays written out
in its revision, frozen with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op


def hour(dialect: str, m: str) -> str:
    """Whole hours since 1970 (UTC) of mention ``m``'s time: published, else collected."""
    when = f"coalesce({m}.published_at, {m}.collected_at)"
    if dialect == "sqlite":
        # SQLite stores UTC times as text, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        return f"CAST(strftime('%s', substr({when}, 1, 13) || ':00:00') AS INTEGER) / 3600"
    return f"CAST(floor(extract(epoch FROM {when}) / 3600) AS BIGINT)"


def word_of_mouth(dialect: str, m: str) -> str:
    """Mention ``m`` is word of mouth: a review or comment, not the brand's own response."""
    response = f"{m}.is_brand_response = 0" if dialect == "sqlite" else f"NOT {m}.is_brand_response"
    return f"{m}.kind IN ('review', 'comment') AND {response}"


def false(dialect: str) -> str:
    return "0" if dialect == "sqlite" else "false"


def true(dialect: str) -> str:
    return "1" if dialect == "sqlite" else "true"


def changed(columns: Sequence[str], dialect: str) -> str:
    """A trigger's WHEN: one of ``columns`` differs between OLD and NEW (NULLs compare)."""
    op_ = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    return " OR ".join(f"OLD.{col} {op_} NEW.{col}" for col in columns)


def sqlite_body(statements: Sequence[str]) -> str:
    return "BEGIN " + " ".join(f"{s};" for s in statements) + " END"


def plpgsql_function(name: str, parts: Sequence[tuple[str, Sequence[str]]], returns: str) -> str:
    """A trigger function running each part's statements when ``TG_OP`` is one of its ops."""
    blocks = " ".join(
        f"IF TG_OP IN ({ops}) THEN " + " ".join(f"{s};" for s in statements) + " END IF;"
        for ops, statements in parts
    )
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {blocks} RETURN {returns}; END $$"
    )


def drop_triggers(dialect: str, prefix: str, classification: Sequence[str], mention: Sequence[str]) -> None:
    """Drop the triggers ``{prefix}_{table}_{kind}`` and, on PostgreSQL, their functions."""
    for table, kinds in (("classification", classification), ("mention", mention)):
        for kind in kinds:
            name = f"{prefix}_{table}_{kind}"
            op.execute(f"DROP TRIGGER IF EXISTS {name}" + ("" if dialect == "sqlite" else f" ON {table}"))
    if dialect != "sqlite":
        op.execute(f"DROP FUNCTION IF EXISTS {prefix}_of_classification()")
        op.execute(f"DROP FUNCTION IF EXISTS {prefix}_of_mention()")
