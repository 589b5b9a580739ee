"""A real distributed run: Airflow with the Celery executor collects and classifies.

The topology of docker/docker-compose.yaml, as processes on this machine: Airflow's metadata
database on the PostgreSQL server (a fresh database, dropped afterwards), Redis as the Celery
broker (a database number of its own), and a scheduler, a DAG processor, an API server on
127.0.0.1 and a Celery worker, each a process group of its own. The test unpauses and
triggers ``earful_collect`` through the REST API, waits for it and for the ``earful_classify``
run that its MENTIONS asset schedules, and checks the mentions and classifications in Earful's
database (a PostgreSQL schema). Every process it started is stopped, and checked gone.

Deselect it with ``-m "not airflow_celery"``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import PG_URL, REPO, pg_schema_url
from site_server import SiteServer, serve
from test_crawl import FORUM_SOURCE
from test_dags import BLOG_SOURCE

from earful.pipeline.db import Database
from earful.pipeline.schema import Classification, Mention

pytestmark = [pytest.mark.airflow_celery, pytest.mark.postgresql, pytest.mark.timeout(600)]

AIRFLOW = Path(sys.executable).with_name("airflow")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
RESTART = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": (
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
        "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
}
MARKER = "EARFUL_CELERY_TEST_RUN"  # set in every process this test starts, to find them all


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_db() -> Iterator[str]:
    """A Redis database number nobody uses, flushed afterwards."""
    import redis

    try:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0, socket_timeout=5)
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc}); start it: {RESTART['Redis']}"
        )
    for number in range(15, 7, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=5)
        if client.dbsize() == 0:
            break
    else:
        pytest.fail("no empty Redis database among 8..15 for the Celery broker")
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    client.flushdb()
    client.close()


@pytest.fixture
def airflow_database() -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata, dropped afterwards."""
    base = sa.engine.make_url(PG_URL).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"earful_airflow_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({exc.orig}); start it: {RESTART['PostgreSQL']}"
        )
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def site() -> Iterator[SiteServer]:
    with serve() as server:
        yield server


class Cluster:
    """Airflow's processes, each in a process group of its own, logging to files."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                [str(AIRFLOW), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"airflow {name} exited with status {proc.returncode}"

    def stop(self) -> list[int]:
        """Stop every process group, then anything else carrying the marker; the pids left."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in self.marked():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        return self.marked()

    def marked(self) -> list[int]:
        """Our processes, wherever they went: those with this run's marker in their
        environment (zombies have none, and their parents are gone with the groups)."""
        token = f"{MARKER}={self.env[MARKER]}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if token in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found

    def tails(self, lines: int = 40) -> str:
        out = []
        for log in sorted(self.logs.rglob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {log.relative_to(self.logs)} -----\n" + "\n".join(text))
        return "\n".join(out)


def wait_for(what: str, check: Callable[[], Any], timeout: float, cluster: Cluster) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.check_alive()
        result = check()
        if result:
            return result
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def api(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def test_celery_executor_collects_then_classifies_on_the_asset(
    tmp_path: Path, site: SiteServer, redis_db: str, airflow_database: str, pg_schema: str
) -> None:
    started = time.monotonic()
    earful_url = pg_schema_url(pg_schema)
    Database(earful_url).upgrade()
    config = tmp_path / "earful.yaml"
    config.write_text(
        "brands:\n  - name: Acme\n    aliases: [ACME Corp]\n"
        "sources:\n" + FORUM_SOURCE.format(url=site.url) + BLOG_SOURCE.format(url=site.url),
        encoding="utf-8",
    )
    port = free_port()
    home = tmp_path / "airflow"
    logs = tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EARFUL_DATABASE_URL"))}
    env.update(
        {
            MARKER: uuid.uuid4().hex,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_database,
            "AIRFLOW__CELERY__BROKER_URL": redis_db,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + airflow_database,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs / "tasks"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "EARFUL_CONFIG": str(config),
            "EARFUL_DATABASE_URL": earful_url,
            "EARFUL_PSEUDONYM_KEY": "celery-test-key",
        }
    )
    migrate = subprocess.run(
        [str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    cluster = Cluster(env, logs)
    metadata = sa.create_engine(airflow_database)
    base = f"http://127.0.0.1:{port}/api/v2"

    def run_states(dag_id: str) -> list[str]:
        with metadata.connect() as conn:
            return list(
                conn.scalars(
                    sa.text("SELECT state FROM dag_run WHERE dag_id = :d ORDER BY id"), {"d": dag_id}
                )
            )

    def finished(dag_id: str, runs: int) -> Callable[[], list[str] | None]:
        def check() -> list[str] | None:
            states = run_states(dag_id)
            done = len(states) >= runs and all(s in ("success", "failed") for s in states)
            return states if done else None

        return check

    def healthy() -> bool:
        try:
            return api(base, "GET", "/monitor/health") is not None
        except (urllib.error.URLError, OSError):
            return False

    def parsed() -> bool:
        with metadata.connect() as conn:
            n = conn.scalar(
                sa.text("SELECT count(*) FROM dag WHERE dag_id LIKE 'earful_%' AND is_stale = false")
            )
        return bool(n == 4)

    try:
        cluster.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
        cluster.start("scheduler", "scheduler")
        cluster.start("dag-processor", "dag-processor")
        cluster.start("celery-worker", "celery", "worker", "--concurrency", "2")
        wait_for("the API server", healthy, 120, cluster)
        wait_for("the DAG processor to parse dags/", parsed, 120, cluster)
        # Unpaused with catchup off, earful_collect runs at once for the hour that began.
        for dag_id in ("earful_classify", "earful_collect"):
            api(base, "PATCH", f"/dags/{dag_id}", {"is_paused": False})
        assert wait_for("earful_collect", finished("earful_collect", 1), 240, cluster) == ["success"]
        assert wait_for("earful_classify", finished("earful_classify", 1), 240, cluster) == ["success"]
        # Triggered through the REST API: the forum again, nothing new, so no classification.
        run = api(
            base,
            "POST",
            "/dags/earful_collect/dagRuns",
            {"logical_date": None, "conf": {"sources": ["forum"]}},
        )
        assert run["state"] == "queued"
        assert wait_for("the triggered run", finished("earful_collect", 2), 240, cluster) == ["success"] * 2
        with metadata.connect() as conn:
            announce = conn.scalar(
                sa.text("SELECT state FROM task_instance WHERE run_id = :r AND task_id = 'announce'"),
                {"r": run["dag_run_id"]},
            )
            events = conn.scalar(sa.text("SELECT count(*) FROM asset_event"))
        assert (announce, events) == ("skipped", 2)  # MENTIONS once, CLASSIFICATIONS once
        assert run_states("earful_classify") == ["success"]
        db = Database(earful_url)
        try:
            with db.session() as session:
                assert session.scalar(sa.select(sa.func.count()).select_from(Mention)) == 10
                assert session.scalar(sa.select(sa.func.count()).select_from(Classification)) == 10
        finally:
            db.dispose()
    except BaseException:
        print(cluster.tails())
        raise
    finally:
        metadata.dispose()
        left = cluster.stop()
        print(f"Celery run: {time.monotonic() - started:.0f} s in all")
    assert left == [], f"processes left running: {left}"
