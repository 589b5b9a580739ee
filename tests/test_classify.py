"""Classification runs over the database, with the real weights, on SQLite and PostgreSQL.

The classifier is loaded once per session (loading takes seconds); ``earful classify`` run
through click's CliRunner reuses it from :func:`load_classifier`'s cache. The weights will be
retrained, so no test depends on what exactly the model says about a text: only on the shape
of its verdicts and on which texts it refuses to judge.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from conftest import insert_raw_mention

from earful.models.classifier import Classifier, Prediction
from earful.pipeline.classify import (
    SENTIMENTS,
    ClassifyResult,
    classify_mentions,
    load_classifier,
    text_for,
)
from earful.pipeline.cli import cli
from earful.pipeline.config import Config, load_config, load_config_text
from earful.pipeline.db import Database
from earful.pipeline.errors import ConfigError
from earful.pipeline.store import MentionIn, MentionStore

TEXTS = {
    "good": "Great kettle, it boils fast and looks lovely on the counter.",
    "bad": "Broke after a week and support never answered my emails.",
    "mixed": "The food was good, but the delivery was late and the driver was rude.",
    "emoji": "😀😀😀 👍👍",
    "link": "https://example.com/review/123",
    "german": "Der Wasserkocher ist nach einer Woche kaputt gegangen und der Kundendienst antwortet nicht.",
    "french": "La bouilloire est tombée en panne au bout d'une semaine et le service client ne répond pas.",
}
EXPECTED_STATUS = {
    "good": "ok",
    "bad": "ok",
    "mixed": "ok",
    "emoji": "no_text",
    "link": "no_text",
    "german": "unsupported_language",
    "french": "unsupported_language",
    "blank": "empty",
}

SMALL_TAXONOMY = """
topics:
  - name: delivery
    description: Shipping, couriers and how long an order takes to arrive.
    examples: [the parcel arrived late, the courier lost my package, fast delivery]
  - name: support
    description: Customer service.
    examples: [support never answered, the agent was helpful]
"""

pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture(scope="session")
def clf() -> Classifier:
    """The shipped classifier, loaded once; the CLI finds it in load_classifier's cache."""
    return load_classifier(Config())


def earful(*args: str | Path, config: Config | Path) -> Result:
    path = config.path if isinstance(config, Config) else config
    return CliRunner().invoke(cli, ["--config", str(path), *(str(a) for a in args)])


def store_texts(store: MentionStore, texts: dict[str, str]) -> None:
    result = store.store(MentionIn(source="acme-reviews", external_key=k, text=t) for k, t in texts.items())
    assert result.new == len(texts), result.rejected


def add_blank_mention(store: MentionStore, db: Database) -> None:
    """A mention whose text is empty: the store refuses one, but another tool may write it."""
    store_texts(store, {"blank": "placeholder"})
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE mention SET text = '' WHERE external_key = 'blank'"))


def rows(db: Database, version: str | None = None) -> dict[str, dict[str, Any]]:
    """Classification rows by the mention's external key (one version, or all with the
    version in the key)."""
    query = sa.text(
        "SELECT m.external_key, c.* FROM classification c JOIN mention m ON m.id = c.mention_id"
        + (" WHERE c.model_version = :v" if version else "")
    )
    out: dict[str, dict[str, Any]] = {}
    with db.engine.connect() as conn:
        for row in conn.execute(query, {"v": version} if version else {}).mappings():
            key = row["external_key"] if version else f"{row['external_key']}@{row['model_version']}"
            assert key not in out, f"two rows for {key}"
            out[key] = dict(row)
    return out


def config_with(config: Config, extra: str) -> Config:
    """The test's config file with more settings appended."""
    assert config.path is not None
    config.path.write_text(config.path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return load_config(config.path)


def other_classifier(clf: Classifier, tmp_path: Path) -> Classifier:
    """The same sentiment model with another topic taxonomy: another version."""
    from earful.models import topics

    path = tmp_path / "taxonomy.yaml"
    path.write_text(SMALL_TAXONOMY, encoding="utf-8")
    encoder = getattr(clf.sentiment, "encoder", None)
    other = Classifier(clf.sentiment, topics.TopicModel.load(path, encoder))
    assert other.version != clf.version
    return other


# ------------------------------------------------------------------------- a run


def test_classify_stores_one_row_per_mention_with_its_status(
    db: Database, config: Config, store: MentionStore, clf: Classifier
) -> None:
    store_texts(store, TEXTS)
    add_blank_mention(store, db)
    seen: list[tuple[int, int]] = []

    result = classify_mentions(db, config, clf, progress=lambda done, total: seen.append((done, total)))

    assert result.version == clf.version
    assert result.classified == len(EXPECTED_STATUS)
    assert result.judged == 3
    assert sum(result.sentiments.values()) == 3
    assert result.unjudged == {"empty": 1, "no_text": 2, "unsupported_language": 2}
    assert result.skipped == result.rescored == result.remaining == 0
    assert result.texts_per_s > 0
    assert seen[0] == (0, len(EXPECTED_STATUS))
    assert seen[-1] == (len(EXPECTED_STATUS), len(EXPECTED_STATUS))

    stored = rows(db, clf.version)
    assert {k: r["status"] for k, r in stored.items()} == EXPECTED_STATUS
    for key, row in stored.items():
        probabilities = row["probabilities"]
        if isinstance(probabilities, str):  # SQLite hands JSON back as text through sa.text()
            probabilities = json.loads(probabilities)
        if row["status"] == "ok":
            assert row["sentiment"] in SENTIMENTS, key
            assert set(probabilities) == set(SENTIMENTS)
            assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-3)
            assert math.isclose(row["score"], probabilities[row["sentiment"]], abs_tol=1e-6)
            assert row["note"] is None
        else:
            assert row["sentiment"] is None, key
            assert row["score"] is None, key
            assert probabilities == {}
            assert row["note"], key
    assert stored["german"]["language"] == "de"
    assert stored["french"]["language"] == "fr"


def test_running_again_classifies_only_what_is_new(
    db: Database, config: Config, store: MentionStore, clf: Classifier
) -> None:
    store_texts(store, {k: TEXTS[k] for k in ("good", "bad", "emoji")})
    assert classify_mentions(db, config, clf).classified == 3
    before = rows(db, clf.version)

    again = classify_mentions(db, config, clf)
    assert (again.classified, again.skipped, again.remaining) == (0, 0, 0)
    assert rows(db, clf.version) == before  # not even rewritten

    store_texts(store, {"new": "The lid cracked on the first day."})
    third = classify_mentions(db, config, clf)
    assert third.classified == 1
    after = rows(db, clf.version)
    assert {k: after[k] for k in before} == before
    assert set(after) == {*before, "new"}


def test_limit_classifies_the_oldest_mentions_first_and_leaves_the_rest(
    db: Database, config: Config, store: MentionStore, clf: Classifier
) -> None:
    store_texts(store, {f"m{i}": f"Review number {i}: the kettle works fine." for i in range(5)})
    first = classify_mentions(db, config, clf, limit=2)
    assert (first.classified, first.remaining) == (2, 3)
    assert set(rows(db, clf.version)) == {"m0", "m1"}
    rest = classify_mentions(db, config, clf)
    assert (rest.classified, rest.remaining) == (3, 0)


def test_small_chunks_and_batches_classify_every_mention(
    db: Database, config: Config, store: MentionStore, clf: Classifier
) -> None:
    config = config_with(config, "classifier:\n  commit_every: 2\n  batch_size: 3\n")
    assert config.classifier.commit_every == 2
    store.store(
        [
            MentionIn(source="acme-reviews", external_key="t1", title="Avoid", text="Broke in a week."),
            *(
                MentionIn(source="acme-reviews", external_key=f"x{i}", text=f"Fine kettle {i}.")
                for i in range(4)
            ),
        ]
    )
    result = classify_mentions(db, config, clf)
    assert result.classified == 5
    assert len(rows(db, clf.version)) == 5


class RacedClassifier:
    """The real classifier, except that another run classifies everything while this one
    predicts its first batch: what two runs at once look like to the slower one."""

    def __init__(self, clf: Classifier, db: Database, config: Config) -> None:
        self.clf, self.db, self.config = clf, db, config
        self.version = clf.version
        self.other: ClassifyResult | None = None

    def predict(self, texts: Sequence[str], batch_size: int = 64, progress: Any = None) -> list[Prediction]:
        if self.other is None:
            self.other = classify_mentions(self.db, self.config, self.clf)
        return self.clf.predict(texts, batch_size=batch_size)


def test_two_runs_at_once_leave_each_others_rows_alone(
    db: Database, config: Config, store: MentionStore, clf: Classifier
) -> None:
    store_texts(store, {k: TEXTS[k] for k in ("good", "bad", "link")})
    raced = RacedClassifier(clf, db, config)
    result = classify_mentions(db, config, cast(Classifier, raced))
    assert raced.other is not None
    assert raced.other.classified == 3
    assert (result.classified, result.skipped, result.remaining) == (0, 3, 0)
    assert sum(result.unjudged.values()) == result.judged == 0  # counts only the rows it wrote
    assert count_rows(db) == 3


def test_text_for_joins_title_and_text_once() -> None:
    assert text_for(None, "Broke.") == "Broke."
    assert text_for("  ", "Broke.") == "Broke."
    assert text_for("Avoid", "Broke in a week.") == "Avoid. Broke in a week."
    assert text_for("Avoid!", "Broke in a week.") == "Avoid! Broke in a week."
    assert text_for("Broke in a week", "Broke in a week. Support never answered.") == (
        "Broke in a week. Support never answered."
    )


# ------------------------------------------------------------- killed and resumed


def test_a_run_killed_mid_way_resumes_without_duplicates(
    db: Database, config: Config, store: MentionStore, clf: Classifier
) -> None:
    n = 150
    store_texts(
        store, {f"k{i:03}": f"Review {i}: the kettle {'works' if i % 2 else 'leaks'}." for i in range(n)}
    )
    # The child commits every 5 mentions; the run that resumes in this process, every 256.
    small_chunks = config_with(config, "classifier:\n  commit_every: 5\n  batch_size: 5\n  threads: 1\n")
    assert small_chunks.classifier.commit_every == 5
    assert config.path is not None
    env = {**os.environ, "EARFUL_CONFIG": str(config.path)}
    env.pop("EARFUL_DATABASE_URL", None)
    log = config.path.parent / "classify.log"
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "earful.pipeline.cli", "classify"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 240
            while count_rows(db) == 0:
                assert child.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "no chunk was committed in time"
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    stored = count_rows(db)
    assert 0 < stored < n, "the run was not killed mid-way"
    assert stored % 5 == 0  # whole chunks only

    result = classify_mentions(db, config, clf)
    assert result.classified == n - stored
    assert result.remaining == 0
    assert set(rows(db, clf.version)) == {f"k{i:03}" for i in range(n)}  # rows() refuses duplicates
    assert count_rows(db) == n


def count_rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM classification")) or 0)


# ---------------------------------------------------------------- versions, rescore


def test_a_new_version_adds_rows_and_rescore_keeps_other_versions(
    db: Database, config: Config, store: MentionStore, clf: Classifier, tmp_path: Path
) -> None:
    store_texts(store, {k: TEXTS[k] for k in ("good", "bad", "mixed", "emoji")})
    assert classify_mentions(db, config, clf).classified == 4
    old = rows(db, clf.version)

    other = other_classifier(clf, tmp_path)
    first = classify_mentions(db, config, other)
    assert (first.version, first.classified, first.rescored) == (other.version, 4, 0)
    assert rows(db, clf.version) == old
    new = rows(db, other.version)
    assert set(new) == set(old)

    rescored = classify_mentions(db, config, other, rescore=True)
    assert (rescored.classified, rescored.rescored, rescored.skipped) == (4, 4, 0)
    assert rows(db, clf.version) == old  # the other version's rows are never touched
    again = rows(db, other.version)
    assert {k: r["id"] for k, r in again.items()} == {k: r["id"] for k, r in new.items()}  # in place
    assert all(again[k]["created_at"] >= new[k]["created_at"] for k in new)

    # The CLI's --rescore, with the shipped classifier: the taxonomy version's rows stay.
    result = earful("classify", "--rescore", "--json", config=config)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["version"], summary["classified"], summary["rescored"]) == (clf.version, 4, 4)
    assert rows(db, other.version) == again
    assert len(rows(db)) == 8


# ------------------------------------------------------------------------------ CLI


def test_cli_classify_prints_a_summary_and_json(
    db: Database, config: Config, store: MentionStore, clf: Classifier
) -> None:
    store_texts(store, {k: TEXTS[k] for k in ("good", "bad", "german", "emoji")})
    result = earful("classify", "--limit", "3", config=config)
    assert result.exit_code == 0, result.output
    assert f"Classified 3 mentions with {clf.version} in " in result.stdout
    assert "1 mentions are still to classify" in result.stdout

    result = earful("classify", "--json", "--batch-size", "2", "--threads", "1", config=config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert set(summary) == {
        "version",
        "classified",
        "judged",
        "sentiments",
        "unjudged",
        "rescored",
        "skipped",
        "remaining",
        "seconds",
        "texts_per_s",
    }
    assert (summary["version"], summary["classified"], summary["remaining"]) == (clf.version, 1, 0)

    again = earful("classify", config=config)
    assert again.exit_code == 0, again.output
    assert f"Nothing to classify: every mention has a classification by {clf.version}." in again.stdout
    status = earful("status", config=config)
    assert f"4 of them classified by {clf.version}." in status.stdout


def test_a_model_path_that_does_not_exist_is_one_error_line(
    db: Database, config: Config, store: MentionStore
) -> None:
    config_with(config, "classifier:\n  model: no/such/model\n")
    assert config.path is not None
    result = earful("classify", config=config)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: classifier.model: {config.path.parent.resolve() / 'no/such/model'} does not exist; "
        "fix the path in the config or remove the setting to use the model that ships with Earful"
    ]


def test_a_folder_that_is_not_a_model_is_one_error_line(
    db: Database, config: Config, store: MentionStore, tmp_path: Path
) -> None:
    (tmp_path / "empty-model").mkdir()
    config_with(config, "classifier:\n  model: empty-model\n")
    result = earful("classify", config=config)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: cannot load the classifier (model {tmp_path / 'empty-model'}): ")
    assert "not a Hugging Face model directory" in lines[0]


# --------------------------------------------------------------------- config, schema


def test_classifier_settings_default_and_anchor_paths_at_the_config(tmp_path: Path) -> None:
    defaults = load_config_text("").classifier
    assert (defaults.model, defaults.labels, defaults.threads) == (None, {}, None)
    assert (defaults.batch_size, defaults.commit_every) == (64, 256)
    text = (
        "classifier:\n  model: models/hf\n  labels: {LABEL_0: negative, LABEL_1: positive}\n"
        "  threads: 2\ntopics:\n  taxonomy: ../taxonomy.yaml\n"
    )
    cfg = load_config_text(text, path=tmp_path / "conf" / "earful.yaml")
    assert cfg.classifier.model == tmp_path.resolve() / "conf" / "models" / "hf"
    assert cfg.classifier.labels == {"LABEL_0": "negative", "LABEL_1": "positive"}
    assert cfg.topics.taxonomy == tmp_path.resolve() / "taxonomy.yaml"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("classifier:\n  labels: {LABEL_0: bad}\n", "classifier.labels.LABEL_0", "'negative', 'neutral'"),
        ("classifier:\n  batch_size: 0\n", "classifier.batch_size", "greater than or equal to 1"),
        ("classifier:\n  comit_every: 10\n", "classifier.comit_every", "did you mean 'commit_every'?"),
    ],
)
def test_bad_classifier_settings_name_the_key(text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        load_config_text(text)
    assert fragment in str(info.value)


def test_migration_gives_existing_classifications_status_ok(empty_db: Database) -> None:
    empty_db.upgrade("0002")
    with empty_db.engine.begin() as conn:
        insert_raw_mention(conn)
        conn.execute(
            sa.text(
                "INSERT INTO classification (mention_id, model_version, sentiment, probabilities, topics, "
                "created_at) SELECT id, 'v1', 'positive', '{}', '{}', CURRENT_TIMESTAMP FROM mention"
            )
        )
    empty_db.upgrade()
    with empty_db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status, note FROM classification")).one() == ("ok", None)
    empty_db.downgrade("0002")
    with empty_db.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT sentiment FROM classification")) == "positive"
