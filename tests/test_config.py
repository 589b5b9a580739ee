"""The config file: defaults, validation errors that name the key and the line, ${ENV} secrets.

Pure tests: no database. Every bad config must be one ConfigError whose message says which
setting is wrong (its key path) and where (its line in the file), never a pydantic dump.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from earful.pipeline.config import (
    DEFAULT_DATABASE_URL,
    Config,
    SlackNotifier,
    example_config_text,
    load_config,
    load_config_text,
)
from earful.pipeline.errors import ConfigError

FILE = Path("/etc/earful/earful.yaml")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's environment must not leak into what a config file means."""
    for name in (
        "EARFUL_DATABASE_URL",
        "EARFUL_CONFIG",
        "EARFUL_TEST_HOOK",
        "EARFUL_TEST_PW",
        "EARFUL_TEST_UNSET",
    ):
        monkeypatch.delenv(name, raising=False)


def slack_url(config: Config) -> str:
    notifier = config.notifiers[0]
    assert isinstance(notifier, SlackNotifier)
    return notifier.url.get_secret_value()


def config_error(text: str, key: str | None, line: int) -> ConfigError:
    """Load ``text`` expecting a ConfigError that names ``key`` (when given) and ``line``."""
    with pytest.raises(ConfigError) as info:
        load_config_text(text, path=FILE)
    error = info.value
    message = str(error)
    assert error.line == line, message
    assert f"{FILE} line {line}" in message
    if key is not None:
        assert error.key == key, message
        assert message.startswith(f"{key}: ")
    assert "\n" not in message
    assert "pydantic" not in message.lower()
    return error


# ------------------------------------------------------------------------ valid files


def test_example_config_written_by_init_is_valid() -> None:
    config = load_config_text(example_config_text(), path=FILE)
    assert [b.name for b in config.brands] == ["Acme"]
    assert [s.name for s in config.sources] == ["acme-reviews", "history"]
    assert config.sources[1].schedule is None
    assert config.database.url == "sqlite:////etc/earful/earful.sqlite3"
    assert config.notifiers == []


def test_demo_config_is_valid() -> None:
    text = files("earful.pipeline").joinpath("data/demo.yaml").read_text(encoding="utf-8")
    config = load_config_text(text, path=FILE)
    assert config.timezone == "Europe/Berlin"
    assert {s.brand for s in config.sources} == {"Norrow"}
    assert {s.kind for s in config.sources} == {"reviews", "blog", "feed"}


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_means_defaults(text: str) -> None:
    config = load_config_text(text)
    assert config == Config()
    assert config.database.url == DEFAULT_DATABASE_URL == "sqlite:///earful.sqlite3"
    assert config.timezone == "UTC"
    assert config.tz.key == "UTC"
    assert config.brands == []
    assert config.sources == []
    assert config.notifiers == []


def test_file_with_only_a_document_marker_means_defaults() -> None:
    assert load_config_text("---\n# everything commented out\n") == Config()


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert load_config_text("\ufefftimezone: Europe/Berlin\n").timezone == "Europe/Berlin"


# ------------------------------------------------------------------------- bad files


def test_unknown_key_suggests_the_right_one() -> None:
    error = config_error("timezone: UTC\ndatabse:\n  url: sqlite:///x.db\n", "databse", 2)
    assert "unknown setting; did you mean 'database'?" in str(error)


def test_unknown_nested_key_names_its_full_path() -> None:
    error = config_error("database:\n  busy_timeout: 5\n", "database.busy_timeout", 2)
    assert "did you mean 'busy_timeout_s'?" in str(error)


@pytest.mark.parametrize(
    ("text", "line"),
    [("timezone: UTC\nstore: {batch_size: many}\n", 2), ("timezone: UTC\nstore:\n  batch_size: many\n", 3)],
)
def test_wrong_type_names_key_and_line(text: str, line: int) -> None:
    error = config_error(text, "store.batch_size", line)
    assert "valid integer" in str(error)


def test_out_of_range_number_names_key_and_line() -> None:
    error = config_error("alerts:\n  window_hours: 0\n", "alerts.window_hours", 2)
    assert "greater than or equal to 1" in str(error)


def test_bad_source_kind_lists_the_allowed_ones() -> None:
    text = "sources:\n  - name: blog\n    kind: blogg\n"
    error = config_error(text, "sources[0].kind", 3)
    assert "'reviews', 'blog', 'feed', 'api' or 'import'" in str(error)


def test_source_brand_must_be_a_configured_brand() -> None:
    text = (
        "brands:\n"
        "  - name: Acme\n"
        "sources:\n"
        "  - name: a\n"
        "    kind: blog\n"
        "    brand: acme\n"  # case-insensitive: fine
        "  - name: b\n"
        "    kind: blog\n"
        "    brand: Initech\n"
    )
    error = config_error(text, "sources[1].brand", 9)
    assert "no brand named 'Initech' in brands" in str(error)


def test_duplicate_source_names_are_refused() -> None:
    text = "sources:\n  - name: a\n    kind: blog\n  - name: a\n    kind: reviews\n"
    error = config_error(text, "sources[1].name", 4)
    assert "duplicate name 'a'" in str(error)


def test_brand_names_differing_only_in_case_are_duplicates() -> None:
    error = config_error("brands:\n  - name: Acme\n  - name: ACME\n", "brands[1].name", 3)
    assert "duplicate name 'acme'" in str(error).lower()


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("timezone: UTC\ntimezone: Europe/Berlin\n", "timezone", 2),
        ("store:\n  batch_size: 1\n  max_text_chars: 500\n  batch_size: 2\n", "store.batch_size", 4),
    ],
)
def test_duplicate_yaml_keys_are_refused(text: str, key: str, line: int) -> None:
    error = config_error(text, key, line)
    assert "is given twice" in str(error)


def test_unknown_time_zone_is_refused() -> None:
    error = config_error("\ntimezone: Mars/Olympus_Mons\n", "timezone", 2)
    assert "unknown time zone 'Mars/Olympus_Mons'" in str(error)
    assert "Europe/Berlin" in str(error)  # says what a valid one looks like


@pytest.mark.parametrize("schedule", ["every day", "* * * *", "@fortnightly"])
def test_bad_schedule_is_refused(schedule: str) -> None:
    text = f"sources:\n  - name: a\n    kind: blog\n    schedule: {schedule!r}\n"
    error = config_error(text, "sources[0].schedule", 4)
    assert "not a schedule" in str(error)
    assert "@daily" in str(error)


@pytest.mark.parametrize("schedule", ["@hourly", "*/15 * * * *", "0 6 * * 1-5", None])
def test_good_schedules_are_accepted(schedule: str | None) -> None:
    written = "null" if schedule is None else repr(schedule)
    text = f"sources:\n  - name: a\n    kind: blog\n    schedule: {written}\n"
    assert load_config_text(text).sources[0].schedule == schedule


def test_five_words_that_are_not_cron_are_refused() -> None:
    config_error("sources:\n  - name: a\n    kind: blog\n    schedule: every day at noon please\n", None, 4)


def test_bad_start_url_names_its_index() -> None:
    text = (
        "sources:\n"
        "  - name: a\n"
        "    kind: blog\n"
        "    start_urls:\n"
        "      - https://ok.example/\n"
        "      - not a url\n"
    )
    error = config_error(text, "sources[0].start_urls[1]", 6)
    assert "valid URL" in str(error)


def test_first_bad_start_url_in_a_flow_list() -> None:
    text = "sources:\n  - name: a\n    kind: blog\n    start_urls: [reviews.example/acme]\n"
    config_error(text, "sources[0].start_urls[0]", 4)


def test_bad_source_name_is_refused() -> None:
    error = config_error("sources:\n  - name: my source\n    kind: blog\n", "sources[0].name", 2)
    assert "letters, digits" in str(error)


def test_source_name_with_a_trailing_newline_is_refused() -> None:
    config_error('sources:\n  - name: "blog\\n"\n    kind: blog\n', "sources[0].name", 2)


def test_several_errors_are_all_mentioned() -> None:
    error = config_error("timezone: Nope/Nope\nstore:\n  batch_size: 0\n", "timezone", 1)
    assert "also store.batch_size: " in str(error)
    assert "(line 3)" in str(error)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("timezone: UTC\n  bad: indent\n", 2),
        ("timezone: UTC\nbrands: [Acme\nstore: {}\n", 3),
        ("timezone: UTC\n\nbrands:\n\t- name: Acme\n", 4),
        ("timezone: UTC\n---\ntimezone: UTC\n", 2),
    ],
)
def test_malformed_yaml_names_the_line(text: str, line: int) -> None:
    error = config_error(text, None, line)
    assert str(error).startswith("not valid YAML: ")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "42\n"])
def test_document_must_be_a_mapping(text: str) -> None:
    error = config_error(text, None, 1)
    assert "must be a mapping" in str(error)


@pytest.mark.parametrize(
    ("notifier", "key", "line"),
    [
        ("    kind: slack\n    url: https://hooks.slack.com/services/T0/B0/sekrit\n", "notifiers[0].url", 4),
        (
            "    kind: webhook\n    url: ${EARFUL_TEST_HOOK}\n    secret: hunter2\n",
            "notifiers[0].secret",
            5,
        ),
        (
            "    kind: email\n    host: smtp.example\n    sender: a@example.com\n"
            "    recipients: [b@example.com]\n    password: hunter2\n",
            "notifiers[0].password",
            7,
        ),
    ],
)
def test_literal_secret_in_notifier_is_refused(
    notifier: str, key: str, line: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARFUL_TEST_HOOK", "https://hooks.example/x")
    error = config_error("notifiers:\n  - name: n\n" + notifier, key, line)
    assert "${NAME}" in str(error)
    assert "hunter2" not in str(error)
    assert "sekrit" not in str(error)


def test_literal_password_in_database_url_is_refused() -> None:
    error = config_error(
        "database:\n  url: postgresql://earful:hunter2@db.example/earful\n", "database.url", 2
    )
    assert "EARFUL_DATABASE_URL" in str(error)
    assert "hunter2" not in str(error)


def test_literal_password_beside_an_env_reference_is_refused() -> None:
    config_error("database:\n  url: postgresql://earful:hunter2@${DB_HOST:-db}/earful\n", "database.url", 2)


def test_unset_environment_variable_names_variable_and_key() -> None:
    text = "notifiers:\n  - name: n\n    kind: slack\n    url: ${EARFUL_TEST_UNSET}\n"
    error = config_error(text, "notifiers[0].url", 4)
    assert "environment variable EARFUL_TEST_UNSET is not set" in str(error)


# ----------------------------------------------------------------- environment values


def test_env_reference_is_expanded_and_secret_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = "https://hooks.slack.com/services/T0/B0/very-secret-token"
    monkeypatch.setenv("EARFUL_TEST_HOOK", hook)
    config = load_config_text("notifiers:\n  - name: n\n    kind: slack\n    url: ${EARFUL_TEST_HOOK}\n")
    assert slack_url(config) == hook
    for shown in (repr(config), str(config), config.model_dump_json(), repr(config.notifiers)):
        assert "very-secret-token" not in shown


def test_env_reference_inside_a_value_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_TEST_PW", "s3cret")
    config = load_config_text("database:\n  url: postgresql://earful:${EARFUL_TEST_PW}@db.example/earful\n")
    assert config.database.url == "postgresql://earful:s3cret@db.example/earful"


def test_env_reference_can_fill_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_TEST_PW", "250")
    assert load_config_text("store:\n  batch_size: ${EARFUL_TEST_PW}\n").store.batch_size == 250


def test_env_default_is_used_when_variable_is_unset() -> None:
    text = "notifiers:\n  - name: n\n    kind: slack\n    url: ${EARFUL_TEST_UNSET:-https://hooks.example/default}\n"
    config = load_config_text(text)
    assert slack_url(config) == "https://hooks.example/default"


def test_env_default_is_ignored_when_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_TEST_HOOK", "https://hooks.example/set")
    text = "notifiers:\n  - name: n\n    kind: slack\n    url: ${EARFUL_TEST_HOOK:-https://hooks.example/default}\n"
    assert slack_url(load_config_text(text)) == "https://hooks.example/set"


def test_env_default_is_used_when_variable_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_TEST_HOOK", "")
    text = "notifiers:\n  - name: n\n    kind: slack\n    url: ${EARFUL_TEST_HOOK:-https://hooks.example/default}\n"
    assert slack_url(load_config_text(text)) == "https://hooks.example/default"


def test_database_password_from_environment_does_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_TEST_PW", "s3cret-db-pw")
    config = load_config_text("database:\n  url: postgresql://earful:${EARFUL_TEST_PW}@db.example/earful\n")
    for shown in (repr(config), str(config), repr(config.database)):
        assert "s3cret-db-pw" not in shown


def test_database_url_from_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_DATABASE_URL", "postgresql://earful:pw@db.example/earful")
    config = load_config_text("database:\n  url: sqlite:///local.db\n  busy_timeout_s: 3\n", path=FILE)
    assert config.database.url == "postgresql://earful:pw@db.example/earful"
    assert config.database.busy_timeout_s == 3  # the rest of the section stays


def test_database_url_from_environment_needs_no_database_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARFUL_DATABASE_URL", "postgresql://db.example/earful")
    assert load_config_text("timezone: UTC\n").database.url == "postgresql://db.example/earful"


def test_database_url_from_environment_wins_over_unset_variable_in_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EARFUL_DATABASE_URL", "postgresql://db.example/earful")
    config = load_config_text(
        "database:\n  url: postgresql://earful:${EARFUL_TEST_UNSET}@prod.example/earful\n"
    )
    assert config.database.url == "postgresql://db.example/earful"


# ------------------------------------------------------------------ sqlite anchoring


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///earful.sqlite3", "sqlite:///{folder}/earful.sqlite3"),
        ("sqlite:///data/m.db", "sqlite:///{folder}/data/m.db"),
        ("sqlite:///../m.db", "sqlite:///{parent}/m.db"),
        ("sqlite:////var/lib/earful/m.db", "sqlite:////var/lib/earful/m.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://db.example/earful", "postgresql://db.example/earful"),
    ],
)
def test_relative_sqlite_path_is_anchored_at_the_config_folder(
    url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "earful.yaml").write_text(f"database:\n  url: '{url}'\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(folder / "earful.yaml")
    assert config.database.url == expected.format(folder=folder.resolve(), parent=tmp_path.resolve())
    assert config.path == folder / "earful.yaml"


def test_relative_config_path_anchors_at_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "earful.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config("sub/earful.yaml")
    assert config.database.url == f"sqlite:///{tmp_path.resolve() / 'sub' / 'earful.sqlite3'}"


def test_relative_sqlite_path_with_driver_is_anchored_too(tmp_path: Path) -> None:
    path = tmp_path / "earful.yaml"
    path.write_text("database:\n  url: sqlite+pysqlite:///m.db\n", encoding="utf-8")
    assert load_config(path).database.url == f"sqlite+pysqlite:///{tmp_path.resolve() / 'm.db'}"


# ------------------------------------------------------------------ finding the file


def test_missing_explicit_config_file_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist; `earful init` writes an example") as info:
        load_config(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)


def test_no_config_file_anywhere_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.path is None
    assert config.database.url == DEFAULT_DATABASE_URL
    assert config.timezone == "UTC"


def test_earful_yaml_in_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "earful.yaml").write_text("timezone: Europe/Berlin\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.timezone == "Europe/Berlin"
    assert config.database.url == f"sqlite:///{tmp_path.resolve() / 'earful.sqlite3'}"


def test_earful_config_variable_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "earful.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    (tmp_path / "team.yaml").write_text("timezone: Asia/Tokyo\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARFUL_CONFIG", str(tmp_path / "team.yaml"))
    config = load_config()
    assert config.timezone == "Asia/Tokyo"
    assert config.path == tmp_path / "team.yaml"


def test_earful_config_variable_naming_a_missing_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EARFUL_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"gone\.yaml does not exist"):
        load_config()


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "earful.yaml"
    path.write_text("timezone: UTC\nstore:\n  batch_sise: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"store.batch_sise: unknown setting; did you mean 'batch_size'? ({path} line 3)"


def test_non_utf8_config_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "earful.yaml"
    path.write_bytes("timezone: UTC\nbrands:\n  - name: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not UTF-8 text")
    assert "byte 35" in message


def test_config_path_that_is_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*: Is a directory"):
        load_config(tmp_path)
