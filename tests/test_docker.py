"""docker/ checked without a Docker engine: the compose file's topology, healthchecks, volumes
and environment, no secret written in it, and a Dockerfile on the Airflow version installed here
with the CPU build of torch. ``docker compose config`` validates the file too where the client
has the compose plugin. tests/test_airflow_celery.py runs the same topology as processes."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import version
from typing import Any

import pytest
import yaml
from conftest import REPO

DOCKER = REPO / "docker"
COMPOSE = DOCKER / "docker-compose.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|_KEY$|TOKEN|^AIRFLOW_CONN_")
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")  # $${X} is an escaped $


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_compose_runs_airflow_with_celery_postgres_and_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "airflow-init"} <= set(services)
    for name in AIRFLOW_SERVICES | {"postgres", "redis"}:
        check = services[name].get("healthcheck", {})
        assert check.get("test"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "always"
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["EARFUL_CONFIG"] == "/opt/earful/config/earful.yaml"
        assert env["EARFUL_DATABASE_URL"].startswith("postgresql://")
        # Nothing runs before both schemas are migrated.
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init
    assert "earful db upgrade" in init
    worker = services["airflow-worker"]
    assert worker["command"] == "celery worker"
    assert VARIABLE.fullmatch(str(worker["deploy"]["replicas"]))  # scaled from the environment


def test_compose_keeps_state_in_named_volumes(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    assert {"postgres-data", "redis-data", "airflow-logs", "earful-reports"} <= named
    mounts = {
        name: {str(v).split(":")[0] for v in service.get("volumes", [])}
        for name, service in compose["services"].items()
    }
    assert "postgres-data" in mounts["postgres"]
    assert "redis-data" in mounts["redis"]
    for name in AIRFLOW_SERVICES:
        assert {"earful-reports", "airflow-logs"} <= mounts[name]


def test_compose_takes_every_secret_from_the_environment(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert VARIABLE.fullmatch(value), f"{name}: {key} is written literally"
            password = re.search(r"://[^/@\s]*:([^@/\s]+)@", value)
            if password:
                assert VARIABLE.fullmatch(password.group(1)), f"{name}: {key} has a literal password"
    # Every variable without a default is in .env.example, and .env.example holds no real
    # secret: each secret there is a placeholder.
    example = dict(
        line.split("=", 1)
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    required = {m.group(1) for m in VARIABLE.finditer(text) if not (m.group(2) or "").startswith((":-", "-"))}
    assert required <= set(example)
    for key, value in example.items():
        if SECRET_NAME.search(key) and value:
            assert value.startswith("change-me"), f".env.example: {key} is not a placeholder"
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin")
    result = subprocess.run(
        [docker, "compose", "--env-file", str(DOCKER / ".env.example"), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_builds_on_the_installed_airflow_with_cpu_torch() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    (base,) = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert base == f"apache/airflow:{version('apache-airflow')}-python3.11"
    torch = re.search(r"pip install .*--index-url (\S+) torch==(\S+)", dockerfile)
    assert torch is not None
    assert torch.group(1) == "https://download.pytorch.org/whl/cpu"
    pin = re.search(r"^\s*torch==(\S+)", (REPO / "setup.cfg").read_text(), flags=re.MULTILINE)
    assert pin is not None
    assert torch.group(2) == pin.group(1) == "2.13.0"
    assert f'"apache-airflow=={version("apache-airflow")}"' in dockerfile  # pip keeps the image's Airflow
    assert re.search(r"^COPY .*\bdags /opt/airflow/dags$", dockerfile, flags=re.MULTILINE)
    ignore = [
        line
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().split("\n")
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*"
    assert {"!pipeline/", "!models/", "!spiders/", "!dags/"} <= set(ignore)


def test_the_containers_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from earful.pipeline.config import load_config

    monkeypatch.setenv("EARFUL_DATABASE_URL", "postgresql://earful@postgres:5432/earful")
    config = load_config(DOCKER / "config" / "earful.yaml")
    assert config.database.url == "postgresql://earful@postgres:5432/earful"
    assert str(config.report.out_dir) == "/opt/earful/reports"  # the earful-reports volume
