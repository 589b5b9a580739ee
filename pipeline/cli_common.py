"""What the ``earful`` commands share: the console, the command-line state, error handling,
progress bars and JSON output (:mod:`earful.pipeline.cli` and the modules of its commands)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from earful.pipeline.config import Config, load_config
from earful.pipeline.db import Database
from earful.pipeline.errors import EarfulError

console = Console()
if not console.is_terminal:
    console.width = 160  # piped output: keep table rows on one line
err_console = Console(stderr=True)


@dataclasses.dataclass
class State:
    config_path: Path | None
    debug: bool
    database_env: bool = True  # whether EARFUL_DATABASE_URL may override the file
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, database_env=self.database_env)
        return self._config

    def database(self, *, current: bool = True, sync: bool = True) -> Database:
        """The configured database; by default checked to be at this Earful's revision and
        with brands and sources synced from the config."""
        cfg = self.config
        db = Database(cfg.database.url, busy_timeout_s=cfg.database.busy_timeout_s, echo=cfg.database.echo)
        if current:
            db.require_current()
        if sync:
            from earful.pipeline.store import MentionStore

            MentionStore(db, cfg).sync_config()
        return db


class EarfulGroup(click.Group):
    """Turns every error into one readable line unless ``--debug`` is given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            if debug_on(ctx):
                raise
            err_console.print("Interrupted. What was stored is kept; run the command again to finish.")
            ctx.exit(130)
        except EarfulError as exc:
            if debug_on(ctx):
                raise
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            if debug_on(ctx):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {first} (run with --debug for the traceback)"
            ) from None


def debug_on(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("EARFUL_DEBUG") == "1"


def state_of(ctx: click.Context) -> State:
    state = ctx.find_object(State)
    assert state is not None
    return state


@contextmanager
def byte_progress(label: str, total: int) -> Iterator[Any]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def count_progress(label: str) -> Iterator[Any]:
    """A progress bar counting items (on a terminal only): yields ``advance(done, total)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def local_time(value: datetime | None, cfg: Config) -> str:
    return value.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M") if value else "-"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
