"""The ``earful`` command line, end to end on real databases (SQLite and PostgreSQL).

Commands run through click's CliRunner with ``--config`` pointing at the test's config file.
An expected error is one ``Error: ...`` line and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import socket
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from earful.pipeline.cli import cli
from earful.pipeline.config import Config, example_config_text
from earful.pipeline.db import Database
from earful.pipeline.errors import ConfigError
from earful.pipeline.schema import Mention, Source

IMPORT_ROWS = [
    '{"source": "acme-reviews", "external_key": "r1", "text": "Great kettle.", "author": "Jane", '
    '"published_at": "2026-11-02T14:05:00Z", "rating": 5}',
    '{"source": "acme-reviews", "external_key": "r2", "text": "Broke after a week.", "rating": 1}',
    '{"source": "acme-reviews", "external_key": "r3", "text": "oops", ',  # line 3: broken JSON
    "",
    '{"source": "blog", "external_key": "c1", "kind": "comment", "text": "Acme support was quick."}',
]

pytestmark = pytest.mark.usefixtures("isolated_cli")


def earful(
    *args: str | Path, config: Config | Path | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run ``earful [--config FILE] ARGS`` and return click's result."""
    argv = [str(a) for a in args]
    if config is not None:
        path = config.path if isinstance(config, Config) else config
        argv = ["--config", str(path), *argv]
    return CliRunner().invoke(cli, argv, env=env)


def assert_one_error_line(result: Result, *fragments: str) -> str:
    """Exit status 1, one ``Error: ...`` line on stderr, nothing else, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def mention_count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Mention.id))) or 0


def write_import_file(folder: Path) -> Path:
    path = folder / "history.jsonl"
    path.write_text("\n".join(IMPORT_ROWS) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ basics


def test_version_is_printed() -> None:
    from earful.pipeline import __version__

    result = earful("--version")
    assert result.exit_code == 0
    assert result.stdout == f"earful, version {__version__}\n"


def test_help_lists_the_commands() -> None:
    result = earful("--help")
    assert result.exit_code == 0
    for command in ("init", "db", "import", "status", "sources", "demo"):
        assert command in result.stdout


# -------------------------------------------------------------------------------- init


def test_init_writes_example_config_key_and_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EARFUL_PSEUDONYM_KEY", raising=False)
    path = tmp_path / "team" / "earful.yaml"
    result = earful("init", config=path)
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == example_config_text()
    key = tmp_path / "team" / "earful.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) == 64
    database = Database(f"sqlite:///{tmp_path / 'team' / 'earful.sqlite3'}")
    try:
        assert database.current_revision() == database.head_revision()
        with database.session() as session:
            assert set(session.scalars(select(Source.name))) == {"acme-reviews", "history"}
    finally:
        database.dispose()
    assert f"Wrote example config {path}" in result.stdout
    assert f"Wrote a random pseudonym key to {key}" in result.stdout
    assert f"is at revision {database.head_revision()}." in result.stdout


def test_init_again_keeps_config_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EARFUL_PSEUDONYM_KEY", raising=False)
    path = tmp_path / "earful.yaml"
    assert earful("init", config=path).exit_code == 0
    edited = example_config_text().replace("timezone: UTC", "timezone: Europe/Berlin")
    path.write_text(edited, encoding="utf-8")
    key = (tmp_path / "earful.key").read_text()
    result = earful("init", config=path)
    assert result.exit_code == 0, result.output
    assert "exists; kept it" in result.stdout
    assert "pseudonym key" not in result.stdout
    assert path.read_text(encoding="utf-8") == edited
    assert (tmp_path / "earful.key").read_text() == key


def test_init_force_overwrites_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "from-the-environment")
    path = tmp_path / "earful.yaml"
    path.write_text("timezone: Europe/Berlin\n", encoding="utf-8")
    result = earful("init", "--force", config=path)
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == example_config_text()
    assert not (tmp_path / "earful.key").exists()  # the variable is set: no key file


# ---------------------------------------------------------------------------------- db


def test_db_current_before_and_after_upgrade(config: Config, empty_db: Database) -> None:
    head = empty_db.head_revision()
    before = earful("db", "current", config=config)
    assert before.exit_code == 0, before.output
    assert f"revision none (expected {head}; run `earful db upgrade`)" in before.stdout

    upgrade = earful("db", "upgrade", config=config)
    assert upgrade.exit_code == 0, upgrade.output
    assert f"from empty to {head}." in upgrade.stdout
    assert empty_db.current_revision() == head

    after = earful("db", "current", config=config)
    assert f"revision {head} (expected {head}; up to date)" in after.stdout
    again = earful("db", "upgrade", config=config)
    assert f"is already at revision {head}." in again.stdout


@pytest.mark.parametrize("command", [["status"], ["sources", "list"], ["status", "--json"]])
def test_command_on_an_empty_database_says_to_upgrade(
    config: Config, empty_db: Database, command: list[str]
) -> None:
    result = earful(*command, config=config)
    assert_one_error_line(result, "is empty: run `earful init` or `earful db upgrade`")
    assert empty_db.current_revision() is None  # nothing was created behind the user's back


def test_import_into_an_empty_database_says_to_upgrade(
    config: Config, empty_db: Database, tmp_path: Path
) -> None:
    result = earful("import", write_import_file(tmp_path), config=config)
    assert_one_error_line(result, "run `earful init` or `earful db upgrade`")


def test_command_on_an_outdated_database_says_to_upgrade(config: Config, empty_db: Database) -> None:
    empty_db.upgrade("0001")
    head = empty_db.head_revision()
    line = assert_one_error_line(earful("status", config=config))
    assert line.endswith(f"is at revision 0001, this Earful expects {head}: run `earful db upgrade`")
    assert empty_db.current_revision() == "0001"

    assert f"from 0001 to {head}." in earful("db", "upgrade", config=config).stdout
    assert earful("status", config=config).exit_code == 0


def test_downgrade_without_yes_refuses(config: Config, db: Database) -> None:
    head = db.head_revision()
    result = earful("db", "downgrade", "base", config=config)
    assert result.exit_code == 2
    assert "add --yes to confirm" in result.stderr
    assert db.current_revision() == head


def test_downgrade_with_yes_goes_back(config: Config, db: Database) -> None:
    result = earful("db", "downgrade", "0001", "--yes", config=config)
    assert result.exit_code == 0, result.output
    assert "to 0001." in result.stdout
    assert db.current_revision() == "0001"


# ------------------------------------------------------------------------------ import


def test_import_stores_good_rows_and_lists_bad_ones(config: Config, db: Database, tmp_path: Path) -> None:
    path = write_import_file(tmp_path)
    result = earful("import", path, config=config)
    assert result.exit_code == 2, result.output
    assert "history.jsonl: 4 rows: 3 new, 0 updated, 0 unchanged, 1 bad." in result.stdout
    bad = result.stderr.splitlines()
    assert len(bad) == 1
    assert bad[0].startswith("  line 3: not valid JSON: Expecting property name enclosed in double quotes")
    assert mention_count(db) == 3

    again = earful("import", path, config=config)
    assert again.exit_code == 2
    assert "4 rows: 0 new, 0 updated, 3 unchanged, 1 bad." in again.stdout
    assert mention_count(db) == 3


def test_import_without_bad_rows_exits_zero(config: Config, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "good.jsonl"
    path.write_text(IMPORT_ROWS[0] + "\n" + IMPORT_ROWS[1] + "\n", encoding="utf-8")
    result = earful("import", path, config=config)
    assert result.exit_code == 0, result.output
    assert "2 rows: 2 new, 0 updated, 0 unchanged, 0 bad." in result.stdout
    assert result.stderr == ""


def test_import_source_option_fills_rows_without_one(config: Config, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text('{"external_key": "k1", "text": "Lovely"}\n{"external_key": "k2", "text": "Awful"}\n')
    result = earful("import", path, "--source", "old-tool", config=config)
    assert result.exit_code == 0, result.output
    with db.session() as session:
        source = session.scalars(select(Source).where(Source.name == "old-tool")).one()
        assert source.kind == "import"
        assert session.scalar(select(func.count(Mention.id)).where(Mention.source_id == source.id)) == 2


def test_import_of_a_csv_file(config: Config, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text("source,external_key,text\nacme-reviews,k1,Lovely\nblog,k2,Awful\n", encoding="utf-8")
    result = earful("import", path, config=config)
    assert result.exit_code == 0, result.output
    assert "old.csv: 2 rows: 2 new, 0 updated, 0 unchanged, 0 bad." in result.stdout


def test_bad_json_row_names_the_column_on_its_line(config: Config, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text('{"source": "blog", "text": "cut off", \n', encoding="utf-8")
    result = earful("import", path, config=config)
    assert result.exit_code == 2
    assert "line 1: not valid JSON" in result.stderr
    assert "at column 1\n" not in result.stderr


def test_import_of_a_missing_file_is_a_usage_error(config: Config, db: Database, tmp_path: Path) -> None:
    result = earful("import", tmp_path / "nope.jsonl", config=config)
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# ------------------------------------------------------------------------------ status


def test_status_shows_mentions_per_source(config: Config, db: Database, tmp_path: Path) -> None:
    earful("import", write_import_file(tmp_path), config=config)
    result = earful("status", config=config)
    assert result.exit_code == 0, result.output
    assert "Earful status (Europe/Berlin)" in result.stdout
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(rows) == {"acme-reviews", "blog"}
    assert "│        2 │" in rows["acme-reviews"]
    assert "import" in rows["acme-reviews"]
    assert "succeeded" in rows["acme-reviews"]
    assert "3 mentions in 2 sources." in result.stdout


def test_status_json_has_counts_and_last_run(config: Config, db: Database, tmp_path: Path) -> None:
    earful("import", write_import_file(tmp_path), config=config)
    result = earful("status", "--json", config=config)
    assert result.exit_code == 0, result.output
    statuses = {s["name"]: s for s in json.loads(result.stdout)}
    assert {name: s["mentions"] for name, s in statuses.items()} == {"acme-reviews": 2, "blog": 1}
    acme = statuses["acme-reviews"]
    assert acme["brand"] == "Acme"
    assert acme["last_published"].startswith("2026-11-02T14:05:00")
    run = acme["last_run"]
    assert (run["kind"], run["status"], run["new"], run["updated"], run["unchanged"]) == (
        "import",
        "succeeded",
        2,
        0,
        0,
    )
    assert acme["problem"] is None
    assert statuses["blog"]["brand"] is None


def test_status_on_a_fresh_database_lists_configured_sources(config: Config, db: Database) -> None:
    result = earful("status", config=config)
    assert result.exit_code == 0, result.output
    assert "0 mentions in 2 sources." in result.stdout
    assert "never" in result.stdout


def test_sources_list_json(config: Config, db: Database) -> None:
    result = earful("sources", "list", "--json", config=config)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "name": "acme-reviews",
            "kind": "reviews",
            "spider": "reviews",
            "brand": "Acme",
            "schedule": "@daily",
            "enabled": True,
            "start_urls": ["https://reviews.example/acme"],
            "mentions": 0,
        },
        {
            "name": "blog",
            "kind": "blog",
            "spider": "blog_comments",
            "brand": None,
            "schedule": "@daily",
            "enabled": True,
            "start_urls": ["https://blog.example/"],
            "mentions": 0,
        },
    ]


def test_sources_list_table(config: Config, db: Database) -> None:
    result = earful("sources", "list", config=config)
    assert result.exit_code == 0, result.output
    assert "https://reviews.example/acme" in result.stdout
    assert "blog_comments" in result.stdout


# ------------------------------------------------------------------------------ errors


def test_bad_config_is_one_error_line_naming_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "earful.yaml"
    path.write_text("timezone: UTC\ndatabse:\n  url: sqlite:///x.db\n", encoding="utf-8")
    line = assert_one_error_line(earful("status", config=path))
    assert line == f"Error: databse: unknown setting; did you mean 'database'? ({path} line 2)"


@pytest.mark.parametrize(
    ("argv", "env"),
    [(["--debug", "status"], None), (["status"], {"EARFUL_DEBUG": "1"})],
)
def test_debug_lets_the_error_propagate(tmp_path: Path, argv: list[str], env: dict[str, str] | None) -> None:
    path = tmp_path / "earful.yaml"
    path.write_text("store: {batch_size: many}\n", encoding="utf-8")
    result = earful(*argv, config=path, env=env)
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert result.exception.key == "store.batch_size"
    assert result.exception.line == 1


def test_missing_config_file_says_to_run_init(tmp_path: Path) -> None:
    assert_one_error_line(earful("status", config=tmp_path / "nope.yaml"), "`earful init` writes an example")


def test_config_file_from_environment_variable(config: Config, db: Database, tmp_path: Path) -> None:
    result = earful("sources", "list", "--json", env={"EARFUL_CONFIG": str(config.path)})
    assert result.exit_code == 0, result.output
    assert [s["name"] for s in json.loads(result.stdout)] == ["acme-reviews", "blog"]


def test_unreachable_database_is_one_line_without_password(tmp_path: Path) -> None:
    path = tmp_path / "earful.yaml"
    path.write_text("database:\n  busy_timeout_s: 1\n", encoding="utf-8")
    started = time.monotonic()
    result = earful(
        "status", config=path, env={"EARFUL_DATABASE_URL": "postgresql://postgres:sekrit@127.0.0.1:1/test"}
    )
    elapsed = time.monotonic() - started
    line = assert_one_error_line(
        result, "cannot reach database postgresql+psycopg://postgres:***@127.0.0.1:1/test"
    )
    assert "sekrit" not in result.output
    assert "Is the server running" in line
    assert elapsed < 10


def test_silent_database_server_times_out_after_busy_timeout(tmp_path: Path) -> None:
    """A server that accepts the connection but never answers: connect_timeout comes from
    database.busy_timeout_s, so the command gives up in seconds instead of hanging."""
    path = tmp_path / "earful.yaml"
    path.write_text("database:\n  busy_timeout_s: 1\n", encoding="utf-8")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        started = time.monotonic()
        result = earful(
            "status",
            config=path,
            env={"EARFUL_DATABASE_URL": f"postgresql://postgres:sekrit@127.0.0.1:{port}/test"},
        )
        elapsed = time.monotonic() - started
    assert_one_error_line(result, "cannot reach database", "timeout")
    assert "sekrit" not in result.output
    assert elapsed < 10


# The demo (`earful demo`) runs end to end, twice, in tests/test_demo.py.
