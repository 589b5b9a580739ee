"""The Airflow DAGs, for real: parsed by a DagBag and run end to end with ``dag.test()``.

Airflow reads its settings (``AIRFLOW_HOME``, the metadata database) once, when it is first
imported, so every Airflow step runs in a child process with its own ``AIRFLOW_HOME`` and a
SQLite metadata database migrated once per module (and copied for each test). The collect DAG
crawls the local fixture site (tests/site_server.py, the forum source of tests/test_crawl.py
and a blog post) into Earful's database, on SQLite (from the config file) and on PostgreSQL
(from the Airflow connection ``earful_db``); the classify DAG loads the real model; the report
is delivered to a local webhook whose URL comes from an Airflow connection and is never logged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import REPO, pg_schema_url
from site_server import SiteServer, serve
from test_crawl import FORUM_SOURCE

from earful.pipeline.db import Database
from earful.pipeline.schema import Classification, Mention, Report

DAGS = REPO / "dags"
DAG_IDS = {"earful_collect", "earful_classify", "earful_alerts", "earful_weekly_report"}
AIRFLOW = Path(sys.executable).with_name("airflow")
WEBHOOK_TOKEN = "T0KEN-never-logged-3f9a"
BLOG_SOURCE = (
    "  - name: blog\n    kind: blog\n    brand: Acme\n    start_urls: ['{url}/blog/post-nested.html']\n"
)

# Loads the DAG folder the way the DAG processor does and describes what it found.
PARSE = """
import json, sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
loaded = time.perf_counter()
dags = {}
for dag in bag.dags.values():
    tt = dag.timetable
    dags[dag.dag_id] = {
        "timetable": type(tt).__name__,
        "expression": getattr(tt, "expression", None),
        "timezone": str(getattr(tt, "timezone", "")),
        "assets": sorted(a.uri for a in getattr(getattr(tt, "asset_condition", None), "objects", [])),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tasks": {
            t.task_id: {
                "retries": t.retries,
                "backoff": t.retry_exponential_backoff,
                "timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                "outlets": [a.uri for a in t.outlets],
                "owner": t.owner,
            }
            for t in dag.tasks
        },
    }
heavy = [m for m in ("torch", "scrapy", "earful.models", "earful.pipeline.db", "alembic") if m in sys.modules]
print("RESULT " + json.dumps({
    "import_errors": bag.import_errors,
    "dags": dags,
    "load_s": loaded - imported,
    "files": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
    "heavy": heavy,
}))
"""

# Runs the four DAGs with dag.test() as the scheduler would chain them, then reports the task
# states and the asset events from Airflow's metadata database.
DRIVE = """
import json, sys
from sqlalchemy import select
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
runs = []

def run(dag_id, **kwargs):
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0  # dag.test() would wait minutes for a retry: fail at once instead
    dr = dag.test(**kwargs)
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dr.run_id)
        ).all()
    tasks = {f"{t}[{i}]" if i >= 0 else t: str(s) for t, i, s in rows}
    runs.append({"dag_id": dag_id, "state": str(dr.state), "tasks": tasks})
    print(f"DRIVE {dag_id}: {dr.state} {tasks}", flush=True)

run("earful_collect")                                # a fresh database: every source is due
run("earful_collect", run_conf={"sources": ["forum"]})  # the same pages again: nothing new
run("earful_classify")
run("earful_alerts")
run("earful_weekly_report")
with create_session() as session:
    events = session.execute(
        select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_task_id)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id).order_by(AssetEvent.id)
    ).all()
print("RESULT " + json.dumps({"runs": runs, "events": [list(e) for e in events]}, default=str))
"""


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an Airflow child process: its own home and SQLite metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EARFUL_DATABASE_URL"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        EARFUL_PSEUDONYM_KEY="dag-test-key",
        **extra,
    )
    return env


def run_python(code: str, env: dict[str, str], log: Path, timeout: float) -> dict[str, Any]:
    """Run ``code`` in a child Python, its output in ``log``; the JSON of its RESULT line."""
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(DAGS)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0, f"exit status {proc.returncode}; output ends:\n{text[-6000:]}"
    assert lines, f"no RESULT line; output ends:\n{text[-6000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


@pytest.fixture(scope="module")
def metadata_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Airflow's metadata database (SQLite), migrated once for the module."""
    home = tmp_path_factory.mktemp("airflow-template")
    proc = subprocess.run(
        [str(AIRFLOW), "db", "migrate"],
        env=airflow_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home / "airflow.db"


@pytest.fixture
def airflow_home(tmp_path: Path, metadata_db: Path) -> Path:
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copy(metadata_db, home / "airflow.db")
    return home


@pytest.fixture(scope="module")
def site() -> Iterator[SiteServer]:
    with serve() as server:
        yield server


class Webhook(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook/{WEBHOOK_TOKEN}"


class _Receive(BaseHTTPRequestHandler):
    server: Webhook

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def write_config(folder: Path, site: SiteServer, database: str | None, notifiers: str = "") -> Path:
    """The forum of tests/test_crawl.py and a blog post, politeness on, a webhook from an
    Airflow connection; ``database`` None leaves the URL to the connection ``earful_db``."""
    path = folder / "earful.yaml"
    text = (
        "timezone: Europe/Berlin\n"
        "brands:\n  - name: Acme\n    aliases: [ACME Corp]\n"
        "report: {out_dir: reports}\n"
        "alerts: {delivery_attempts: 1}\n"
        "notifiers:\n  - {kind: webhook, name: team-hook, conn_id: earful_webhook}\n"
        + notifiers
        + "sources:\n"
        + FORUM_SOURCE.format(url=site.url)
        + BLOG_SOURCE.format(url=site.url)
    )
    if database is not None:
        text += f"database: {{url: '{database}', busy_timeout_s: 5}}\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_dag_folder_parses_fast_with_the_four_dags_and_no_heavy_imports(
    airflow_home: Path, site: SiteServer, tmp_path: Path
) -> None:
    # Parsing needs neither the database nor the notifiers' secrets: a dead database URL and
    # an unset ${VAR} change nothing.
    unset = "  - {kind: slack, name: ops, url: '${EARFUL_TEST_UNSET_SLACK_URL}'}\n"
    config = write_config(tmp_path, site, "postgresql://nobody@127.0.0.1:9/none", unset)
    started = time.monotonic()
    result = run_python(
        PARSE,
        airflow_env(
            airflow_home,
            EARFUL_CONFIG=str(config),
            EARFUL_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
        ),
        tmp_path / "parse.log",
        timeout=120,
    )
    print(
        f"DagBag: {result['load_s']:.3f} s for {result['files']} ({time.monotonic() - started:.1f} s in all)"
    )
    assert result["import_errors"] == {}
    dags = result["dags"]
    assert set(dags) == DAG_IDS
    assert result["load_s"] < 1.0  # every DAG file, as the DAG processor parses them
    assert result["heavy"] == []

    collect, classify = dags["earful_collect"], dags["earful_classify"]
    assert (collect["timetable"], collect["expression"]) == ("CronTriggerTimetable", "0 * * * *")
    assert collect["max_active_runs"] == 1
    assert collect["tasks"]["announce"]["outlets"] == ["x-earful://mentions"]
    assert collect["tasks"]["crawl"]["timeout_s"] == 3660
    assert (classify["timetable"], classify["assets"]) == ("AssetTriggeredTimetable", ["x-earful://mentions"])
    assert dags["earful_alerts"]["expression"] == "5 * * * *"
    weekly = dags["earful_weekly_report"]
    assert (weekly["expression"], weekly["timezone"]) == ("0 7 * * 1", "Europe/Berlin")
    for dag in dags.values():
        assert dag["catchup"] is False
        for task in dag["tasks"].values():
            assert task["owner"] == "earful"
            assert task["retries"] == 3
            assert task["backoff"] == 2.0
            assert task["timeout_s"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_dags_run_end_to_end_with_dag_test(
    backend: str,
    airflow_home: Path,
    site: SiteServer,
    webhook: Webhook,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    extra = {
        "AIRFLOW_CONN_EARFUL_WEBHOOK": json.dumps(
            {"conn_type": "http", "host": webhook.url, "password": "signing-secret"}
        )
    }
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'earful.sqlite3'}"
        config = write_config(tmp_path, site, url)
    else:
        schema = request.getfixturevalue("pg_schema")
        url = pg_schema_url(schema)
        config = write_config(tmp_path, site, None)  # the database comes from the connection
        extra["AIRFLOW_CONN_EARFUL_DB"] = json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": 5432,
                "login": "postgres",
                "schema": "test",
                "extra": {"options": f"-csearch_path={schema}"},
            }
        )
    Database(url).upgrade()

    started = time.monotonic()
    log = tmp_path / "dag-test.log"
    result = run_python(
        DRIVE, airflow_env(airflow_home, EARFUL_CONFIG=str(config), **extra), log, timeout=400
    )
    print(f"{backend}: the four DAGs ran in {time.monotonic() - started:.1f} s")

    runs: dict[str, list[dict[str, Any]]] = {}
    for run in result["runs"]:
        runs.setdefault(run["dag_id"], []).append(run)
    first, again = runs["earful_collect"]
    assert first["state"] == "success", first
    assert first["tasks"]["crawl[0]"] == first["tasks"]["crawl[1]"] == "success"
    assert first["tasks"]["announce"] == "success"
    assert first["tasks"]["failed_crawls"] == "skipped"
    assert again["state"] == "success", again
    assert (again["tasks"]["crawl[0]"], again["tasks"]["announce"]) == ("success", "skipped")
    for dag_id in ("earful_classify", "earful_alerts", "earful_weekly_report"):
        assert runs[dag_id][0]["state"] == "success", runs[dag_id]
    # One MENTIONS event (the second collect found nothing new), one CLASSIFICATIONS event.
    events = [(uri, extra.get("new") or extra.get("classified")) for uri, extra, _ in result["events"]]
    assert events == [("x-earful://mentions", 10), ("x-earful://classifications", 10)]

    db = Database(url)
    try:
        with db.session() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Mention)) == 10
            assert session.scalar(sa.select(sa.func.count()).select_from(Classification)) == 10
            files = session.scalars(sa.select(Report.files)).one()
    finally:
        db.dispose()
    assert all(Path(f).is_file() for f in files)
    assert any(f.endswith(".html") for f in files)
    assert Path(files[0]).parent == tmp_path / "reports"

    (path, headers, body) = webhook.received[-1]
    assert path == f"/hook/{WEBHOOK_TOKEN}"
    assert headers["X-Earful-Signature"].startswith("sha256=")
    assert body["key"].startswith("report-Acme-")
    assert "Earful weekly report: Acme" in body["text"]
    output = log.read_text(errors="replace")
    logs = "".join(p.read_text(errors="replace") for p in (airflow_home / "logs").rglob("*") if p.is_file())
    assert WEBHOOK_TOKEN not in output + logs
    assert "signing-secret" not in output + logs


def test_a_scheduled_collect_crawls_the_sources_whose_schedule_fired_since_their_last_crawl(
    db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from earful.pipeline.config import load_config_text
    from earful.pipeline.orchestration import due_sources
    from earful.pipeline.schema import CrawlRun
    from earful.pipeline.store import MentionStore

    monkeypatch.setenv("EARFUL_PSEUDONYM_KEY", "due-test-key")
    monkeypatch.delenv("EARFUL_DATABASE_URL", raising=False)
    sources = "".join(
        f"  - {{name: {name}, kind: reviews, start_urls: ['https://x.example/'], schedule: {schedule}}}\n"
        for name, schedule in [
            ("daily", "'@daily'"),  # midnight in Berlin: 23:00 UTC in winter
            ("hourly", "'0 * * * *'"),
            ("never-crawled", "'@weekly'"),
            ("once", "'@once'"),
            ("by-hand", "null"),
        ]
    )
    config = load_config_text(f"timezone: Europe/Berlin\nsources:\n{sources}", path=tmp_path / "earful.yaml")
    store = MentionStore(db, config)
    store.sync_config()
    with db.session() as session:
        for name, started in [
            ("daily", datetime(2026, 11, 24, 23, 0, 5, tzinfo=UTC)),  # after Berlin's midnight
            ("hourly", datetime(2026, 11, 25, 9, 0, 3, tzinfo=UTC)),
            ("once", datetime(2026, 1, 1, tzinfo=UTC)),
            ("by-hand", datetime(2026, 1, 1, tzinfo=UTC)),
        ]:
            session.add(CrawlRun(source_id=store.source_id(name)[0], started_at=started, status="succeeded"))
    assert due_sources(db, config, datetime(2026, 11, 25, 9, 30, tzinfo=UTC)) == ["never-crawled"]
    # At 10:00 the hourly schedule fires (a fire time at the run's own time counts).
    assert due_sources(db, config, datetime(2026, 11, 25, 10, 0, tzinfo=UTC)) == ["hourly", "never-crawled"]
    # Midnight in Berlin fires the daily one again.
    at = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert due_sources(db, config, at) == ["daily", "hourly", "never-crawled"]
