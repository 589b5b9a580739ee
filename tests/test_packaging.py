"""Packaging: what `pip install earful` puts into site-packages, and the pinned environment.

The repository keeps its top-level folders ``pipeline/``, ``models/`` and ``spiders/``;
setup.cfg installs them as ``earful.pipeline``, ``earful.models`` and ``earful.spiders`` so
that nothing takes the generic names ``pipeline``, ``models`` or ``spiders`` in
site-packages. These tests build the wheel, install it (and the project in editable mode)
into fresh virtual environments and import it from outside the repository.

The fresh environments do not reinstall the dependencies: a ``.pth`` file puts the project
virtualenv's site-packages on their ``sys.path``. A path line in a ``.pth`` file adds the
folder but does not process the ``.pth`` files inside it, so the project virtualenv's own
editable install of Earful stays inactive; the tests check that Earful is imported from the
fresh install.

Everything is built from a copy of the source tree in a temporary folder, so the builds
leave no ``build/`` or ``*.egg-info`` in the repository.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
_VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# The project virtualenv (`make install`); where there is none, the interpreter running pytest.
MAIN_PYTHON = _VENV_PYTHON if _VENV_PYTHON.is_file() else Path(sys.executable)

# Repository folder -> the import package it installs as.
PACKAGES = {"pipeline": "earful.pipeline", "models": "earful.models", "spiders": "earful.spiders"}
GENERIC_NAMES = tuple(PACKAGES)
CONSOLE_SCRIPT = ("earful", "earful.pipeline.cli:main")
EXAMPLE_CONFIG = "data/earful.example.yaml"
# celery 5.7.0 breaks the import of Airflow's CeleryExecutor (see setup.cfg).
CELERY_BROKEN_FROM = Version("5.7")
TORCH_PIN = Version("2.13.0")

# Not copied when the source tree is walked without git.
_NOT_SOURCE = {".git", ".venv", "build", "dist", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


# ----------------------------------------------------------------------------- helpers


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: nothing that changes which modules are found."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "VIRTUAL_ENV"}
    }
    # No __pycache__ written into the project virtualenv by the fresh interpreters.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _run(
    command: list[str | Path], *, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [str(part) for part in command]
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=_clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"`{' '.join(argv)}` exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def _uv() -> str:
    local = REPO / ".venv" / "bin" / "uv"
    if local.is_file():
        return str(local)
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to create the test environments; `make install` puts it into .venv")
    return found


def _site_packages(python: Path) -> list[Path]:
    code = (
        "import json, sysconfig; print(json.dumps([sysconfig.get_path(k) for k in ('purelib', 'platlib')]))"
    )
    paths = json.loads(_run([python, "-c", code], cwd=REPO).stdout)
    return [Path(path) for path in dict.fromkeys(paths)]


def _metadata_version() -> str:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    return setup["metadata"]["version"]


def _source_files() -> list[str]:
    """The source tree as git sees it: tracked files and new ones that are not ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        listed = []
        for folder, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in _NOT_SOURCE and not d.endswith(".egg-info")]
            listed += [str((Path(folder) / name).relative_to(REPO)) for name in files]
    # Deleted files are still listed by git until the deletion is staged.
    return [name for name in listed if name and (REPO / name).is_file()]


def _build_leftovers() -> dict[str, int]:
    """What a build in the repository would leave: build/, dist/, *.egg-info (with mtimes)."""
    found: dict[str, int] = {}
    for pattern in ("build", "dist", "*.egg-info"):
        for top in REPO.glob(pattern):
            for path in [top, *top.rglob("*")]:
                found[str(path.relative_to(REPO))] = path.stat().st_mtime_ns
    return found


# What a fresh interpreter reports about the installed project (run with cwd outside the repo).
PROBE = """
import importlib, importlib.metadata, importlib.resources, importlib.util, json, sys

NAMES = ("earful.pipeline", "earful.pipeline.config", "earful.pipeline.db", "earful.models", "earful.spiders")
modules = {name: importlib.import_module(name).__file__ for name in NAMES}

from earful.pipeline.config import load_config_text
from earful.pipeline.db import Database

example = importlib.resources.files("earful.pipeline").joinpath("data/earful.example.yaml")
load_config_text(example.read_text(encoding="utf-8"))

db = Database("sqlite:///" + sys.argv[1])
db.upgrade()
distribution = importlib.metadata.distribution("earful")
print(json.dumps({
    "modules": modules,
    "generic_names": {
        name: importlib.util.find_spec(name) is not None for name in ("pipeline", "models", "spiders")
    },
    "example_config": str(example),
    "current_revision": db.current_revision(),
    "head_revision": db.head_revision(),
    "distribution": str(distribution.locate_file("")),
    "version": distribution.version,
    "meta_path": [getattr(finder, "__module__", "") for finder in sys.meta_path],
}))
"""


@dataclass(frozen=True)
class Install:
    """A fresh virtual environment with Earful installed and the project's dependencies visible."""

    root: Path  # a temporary folder outside the repository: the working directory of every command
    python: Path
    site_packages: Path
    source: Path | None  # the tree an editable install points at; None for a wheel install

    def probe(self) -> dict[str, Any]:
        """Run PROBE in this environment; its report as a dict."""
        database = self.root / "probe.sqlite3"
        result = _run([self.python, "-c", PROBE, database], cwd=self.root)
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return report


def _fresh_venv(root: Path) -> tuple[Path, Path]:
    venv = root / "venv"
    _run([_uv(), "venv", "--quiet", "--python", MAIN_PYTHON, venv], cwd=root)
    python = venv / "bin" / "python"
    dependencies = "".join(f"{path}\n" for path in _site_packages(MAIN_PYTHON))
    sites = _site_packages(python)
    for site in sites:
        (site / "_earful_test_dependencies.pth").write_text(dependencies, encoding="utf-8")
    return python, sites[0]


def _uv_install(python: Path, *args: str | Path, cwd: Path) -> None:
    # --no-deps: the dependencies come from the project virtualenv; nothing is downloaded.
    _run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--offline",
            "--no-cache",
            "--python",
            python,
            "--no-deps",
            *args,
        ],
        cwd=cwd,
    )


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def leftovers_before() -> dict[str, int]:
    return _build_leftovers()


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory, leftovers_before: dict[str, int]) -> Path:
    """A copy of the source tree, to build in."""
    copy = tmp_path_factory.mktemp("source") / "earful"
    for name in _source_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    return copy


@pytest.fixture(scope="module")
def wheel(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("dist")
    # --skip-dependency-check: pyproject.toml asks for `wheel`, which setuptools>=70.1 no
    # longer needs (bdist_wheel is built in) and the lock does not install.
    build: list[str | Path] = [
        MAIN_PYTHON,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--skip-dependency-check",
    ]
    _run([*build, "--outdir", outdir, source_copy], cwd=source_copy)
    (built,) = outdir.glob("earful-*.whl")
    return built


@pytest.fixture(scope="module")
def regular_install(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("regular")
    python, site = _fresh_venv(root)
    _uv_install(python, wheel, cwd=root)
    return Install(root=root, python=python, site_packages=site, source=None)


@pytest.fixture(scope="module")
def editable_install(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("editable")
    python, site = _fresh_venv(root)
    # --no-build-isolation: setuptools comes from the project virtualenv, so no index is needed.
    _uv_install(python, "--no-build-isolation", "-e", source_copy, cwd=root)
    return Install(root=root, python=python, site_packages=site, source=source_copy)


# ------------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_wheel_contains_only_the_earful_namespace(wheel: Path, source_copy: Path) -> None:
    version = _metadata_version()
    assert wheel.name == f"earful-{version}-py3-none-any.whl"
    dist_info = f"earful-{version}.dist-info/"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(dist_info + "entry_points.txt").decode()
        top_level = archive.read(dist_info + "top_level.txt").decode().split()

    outside = sorted(name for name in names if not name.startswith(("earful/", dist_info)))
    assert outside == [], f"the wheel puts files outside the earful namespace: {outside}"
    assert top_level == ["earful"]
    # `earful` is an implicit namespace package: no earful/__init__.py claims it.
    assert "earful/__init__.py" not in names

    # Every module and data file of the three folders, under earful/.
    expected = {
        "earful/pipeline/migrations/script.py.mako",
        "earful/pipeline/migrations/env.py",
        "earful/pipeline/migrations/versions/__init__.py",
        f"earful/pipeline/{EXAMPLE_CONFIG}",
    }
    for folder, package in PACKAGES.items():
        expected.add(package.replace(".", "/") + "/__init__.py")
        for module in (source_copy / folder).rglob("*.py"):
            expected.add("earful/" + module.relative_to(source_copy).as_posix())
    for data in (source_copy / "pipeline" / "data").rglob("*"):
        if data.is_file():
            expected.add("earful/" + data.relative_to(source_copy).as_posix())
    migrations = list((source_copy / "pipeline" / "migrations" / "versions").glob("[!_]*.py"))
    assert migrations, "no migration revisions in pipeline/migrations/versions"
    missing = sorted(expected - names)
    assert missing == [], f"missing from the wheel: {missing}"

    scripts = configparser.ConfigParser()
    scripts.read_string(entry_points)
    name, target = CONSOLE_SCRIPT
    assert scripts["console_scripts"][name] == target


@pytest.mark.slow
def test_regular_install_imports_under_the_namespace(regular_install: Install) -> None:
    report = regular_install.probe()
    site = regular_install.site_packages.resolve()

    modules = report["modules"]
    for name, file in modules.items():
        assert Path(file).resolve().is_relative_to(site / "earful"), (name, file)
        assert not Path(file).resolve().is_relative_to(REPO), f"{name} was imported from the repository"
    assert Path(modules["earful.pipeline"]).resolve() == site / "earful" / "pipeline" / "__init__.py"
    assert Path(modules["earful.models"]).resolve() == site / "earful" / "models" / "__init__.py"
    assert Path(modules["earful.spiders"]).resolve() == site / "earful" / "spiders" / "__init__.py"
    # The project virtualenv's editable hook stays inactive: no editable finder at all.
    assert not any("__editable__" in finder for finder in report["meta_path"]), report["meta_path"]

    assert report["generic_names"] == dict.fromkeys(GENERIC_NAMES, False)
    assert Path(report["example_config"]).resolve() == site / "earful" / "pipeline" / EXAMPLE_CONFIG
    assert report["current_revision"] is not None
    assert report["current_revision"] == report["head_revision"]
    assert Path(report["distribution"]).resolve() == site
    assert report["version"] == _metadata_version()


@pytest.mark.slow
def test_editable_install_imports_under_the_namespace(editable_install: Install) -> None:
    report = editable_install.probe()
    assert editable_install.source is not None
    source = editable_install.source.resolve()

    modules = report["modules"]
    for name, file in modules.items():
        # earful.pipeline.db -> <source>/pipeline/db.py: the editable install maps the folders.
        assert Path(file).resolve().is_relative_to(source), (name, file)
    for folder, package in PACKAGES.items():
        assert Path(modules[package]).resolve() == source / folder / "__init__.py"
    assert Path(modules["earful.pipeline.db"]).resolve() == source / "pipeline" / "db.py"

    assert report["generic_names"] == dict.fromkeys(GENERIC_NAMES, False)
    assert Path(report["example_config"]).resolve() == source / "pipeline" / EXAMPLE_CONFIG
    assert report["current_revision"] is not None
    assert report["current_revision"] == report["head_revision"]
    # The metadata is the fresh environment's, not the project virtualenv's.
    assert Path(report["distribution"]).resolve() == editable_install.site_packages.resolve()
    assert report["version"] == _metadata_version()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["regular_install", "editable_install"])
def test_installed_earful_command_prints_its_version(kind: str, request: pytest.FixtureRequest) -> None:
    install: Install = request.getfixturevalue(kind)
    command = install.python.parent / CONSOLE_SCRIPT[0]
    assert command.is_file(), f"the install did not create {command}"
    result = _run([command, "--version"], cwd=install.root)
    assert _metadata_version() in result.stdout + result.stderr


@pytest.mark.slow
def test_builds_leave_no_artifacts_in_the_repository(
    wheel: Path, editable_install: Install, leftovers_before: dict[str, int]
) -> None:
    assert _build_leftovers() == leftovers_before


def test_celery_executor_imports(tmp_path: Path) -> None:
    # A subprocess: importing Airflow is slow, logs a lot and configures global state.
    code = (
        "from airflow.providers.celery.executors.celery_executor import CeleryExecutor\n"
        "import importlib.metadata\n"
        "print('celery', importlib.metadata.version('celery'), CeleryExecutor.__name__)\n"
    )
    env = _clean_env(AIRFLOW_HOME=str(tmp_path / "airflow"))
    result = _run([MAIN_PYTHON, "-c", code], cwd=tmp_path, env=env)
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("celery ")]
    assert lines, result.stdout
    _, celery_version, executor = lines[-1]
    assert executor == "CeleryExecutor"
    assert Version(celery_version) < CELERY_BROKEN_FROM


def _lock_pins() -> dict[str, Version]:
    """requirements.lock as {normalised name: version}; fails on anything but a hashed pin."""
    text = (REPO / "requirements.lock").read_text(encoding="utf-8")
    pins: dict[str, Version] = {}
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;@=]+)", requirement)
        assert match, f"not a name==version pin: {line[:120]}"
        assert options, f"{requirement} has no hash"
        for option in options:
            assert re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", option), f"{requirement}: {option}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{name} is pinned twice"
        pins[name] = Version(match[2])
    return pins


def test_lock_pins_every_requirement_with_hashes() -> None:
    pins = _lock_pins()
    assert len(pins) > 50  # the whole tree, not a handful of top-level names

    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    declared = setup["options"]["install_requires"].split("\n") + setup["options.extras_require"][
        "dev"
    ].split("\n")
    for line in filter(None, (line.strip() for line in declared)):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, setup.cfg asks for {requirement}"
        )

    # The Celery executor lives in the provider that apache-airflow[celery] pulls in.
    assert "apache-airflow-providers-celery" in pins
    assert pins["celery"] < CELERY_BROKEN_FROM
    # The CPU build of torch 2.13.0 (a local version such as +cpu is allowed).
    assert Version(pins["torch"].public) == TORCH_PIN
    assert pins["torch"].local in (None, "cpu")
