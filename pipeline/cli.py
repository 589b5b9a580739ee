"""The ``earful`` command line: a thin layer over the pipeline's functions.

Each command parses its options, calls one function that the tests and the Airflow DAGs call
too, and prints the result for a person (or as JSON with ``--json``). Errors are handled in one
place, :class:`EarfulGroup`: an expected error becomes one ``Error: ...`` line on stderr and
exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import sys
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
from rich.table import Table

from earful.pipeline import __version__
from earful.pipeline.config import Config, default_config_path, example_config_text, load_config
from earful.pipeline.db import Database, safe_url
from earful.pipeline.errors import EarfulError
from earful.pipeline.log import setup_logging

logger = logging.getLogger(__name__)
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
            if _debug(ctx):
                raise
            err_console.print("Interrupted. What was stored is kept; run the command again to finish.")
            ctx.exit(130)
        except EarfulError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            if _debug(ctx):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {first} (run with --debug for the traceback)"
            ) from None


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("EARFUL_DEBUG") == "1"


def _state(ctx: click.Context) -> State:
    state = ctx.find_object(State)
    assert state is not None
    return state


@click.group(cls=EarfulGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="earful")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="EARFUL_CONFIG",
    help="Config file [default: ./earful.yaml, or $EARFUL_CONFIG].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="More log messages (-v: progress).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool, verbose: int) -> None:
    """Earful listens to what the public says about your brand: it collects reviews and blog
    comments, classifies their sentiment and topics, and reports trends and spikes."""
    setup_logging(verbose, debug=debug)
    ctx.obj = State(config_path=config_path, debug=debug)


# ----------------------------------------------------------------------------- init


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file with the example.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented example config (if none exists) and create or upgrade the database."""
    state = _state(ctx)
    path = state.config_path or default_config_path()
    if path.exists() and not force:
        click.echo(f"Config {path} exists; kept it (--force overwrites it with the example).")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(example_config_text(), encoding="utf-8")
        click.echo(f"Wrote example config {path}: edit brands and sources to your own.")
    state.config_path = path
    _init_database(state)


def _init_database(state: State) -> Database:
    cfg = state.config
    _ensure_pseudonym_key(cfg)
    db = state.database(current=False, sync=False)
    db.upgrade()
    from earful.pipeline.store import MentionStore

    MentionStore(db, cfg).sync_config()
    click.echo(f"Database {safe_url(db.url)} is at revision {db.current_revision()}.")
    return db


def _ensure_pseudonym_key(cfg: Config) -> None:
    from earful.pipeline.store import KEY_FILE

    if not cfg.privacy.pseudonymise_authors or os.environ.get(cfg.privacy.key_env):
        return
    folder = cfg.path.parent if cfg.path else Path.cwd()
    key_file = folder / KEY_FILE
    if key_file.exists():
        return
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    click.echo(
        f"Wrote a random pseudonym key to {key_file} (keep it private; or set {cfg.privacy.key_env} instead)."
    )


# ------------------------------------------------------------------------------- db


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database to REVISION (default: the newest). Never drops data."""
    database = _state(ctx).database(current=False, sync=False)
    before = database.current_revision()
    database.upgrade(revision)
    after = database.current_revision()
    if before == after:
        click.echo(f"Database {safe_url(database.url)} is already at revision {after}.")
    else:
        click.echo(f"Upgraded {safe_url(database.url)} from {before or 'empty'} to {after}.")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the database's revision and the one this Earful expects."""
    database = _state(ctx).database(current=False, sync=False)
    current, head = database.current_revision(), database.head_revision()
    state = "up to date" if current == head else "run `earful db upgrade`"
    click.echo(f"{safe_url(database.url)}: revision {current or 'none'} (expected {head}; {state})")


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Confirm: downgrading drops the newer tables and their data.")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str, yes: bool) -> None:
    """Migrate the database back to REVISION ('base' drops everything). Needs --yes."""
    if not yes:
        raise click.UsageError("downgrading drops tables and their data; add --yes to confirm")
    database = _state(ctx).database(current=False, sync=False)
    database.downgrade(revision)
    click.echo(f"Downgraded {safe_url(database.url)} to {database.current_revision() or 'empty'}.")


# --------------------------------------------------------------------------- import


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", help="Source for rows without a 'source' field (created if not configured).")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), help="Default: from the file extension."
)
@click.option("--show-bad", default=20, show_default=True, help="How many bad rows to list.")
@click.pass_context
def import_(ctx: click.Context, file: Path, source: str | None, fmt: str | None, show_bad: int) -> None:
    """Import mentions from a JSONL or CSV FILE (history from another tool).

    Fields: text (required), source, external_key, url, kind, author, published_at, title,
    rating, rating_worst, rating_best, language, parent_key, brand, is_brand_response.
    Bad rows are listed with their line number and skipped; the rest is stored. Importing the
    same file again changes nothing.
    """
    from earful.pipeline.importer import import_file

    state = _state(ctx)
    database = state.database()
    with _progress(file.name, file.stat().st_size) as advance:
        result = import_file(database, state.config, file, source=source, fmt=fmt, progress=advance)
    stored = result.stored
    click.echo(
        f"{file.name}: {result.rows:,} rows: {stored.new:,} new, {stored.updated:,} updated, "
        f"{stored.unchanged:,} unchanged, {len(result.bad):,} bad."
    )
    if result.ignored_columns:
        click.echo(f"Ignored columns: {', '.join(result.ignored_columns)}")
    for bad in result.bad[:show_bad]:
        click.echo(f"  line {bad.line}: {bad.reason}", err=True)
    if len(result.bad) > show_bad:
        click.echo(
            f"  ... and {len(result.bad) - show_bad:,} more bad rows (--show-bad N lists more)", err=True
        )
    if result.bad:
        ctx.exit(2)


@contextmanager
def _progress(label: str, total: int) -> Iterator[Any]:
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


# ------------------------------------------------------------------------- classify


# Model options shared by `earful classify` and `earful eval`.
threads_option = click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    help="CPU threads for the model [default: classifier.threads, else every core].",
)
batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(1, 4096),
    help="Texts per model batch [default: classifier.batch_size].",
)


@cli.command()
@click.option(
    "--rescore", is_flag=True, help="Recompute this model version's rows too (other versions' rows stay)."
)
@click.option("--limit", type=click.IntRange(min=1), help="Classify at most N mentions.")
@batch_size_option
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def classify(
    ctx: click.Context,
    rescore: bool,
    limit: int | None,
    batch_size: int | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """Classify the sentiment and topics of every mention the current model has not classified.

    One row per mention and model version, committed every classifier.commit_every mentions:
    an interrupted run keeps what it stored and the next run goes on from there. Texts the
    model cannot judge (empty, emoji only, another language) are stored with their status.
    """
    from earful.pipeline.classify import classify_mentions, load_classifier

    state = _state(ctx)
    database = state.database()
    cfg = state.config
    overrides = {k: v for k, v in (("batch_size", batch_size), ("threads", threads)) if v is not None}
    if overrides:
        cfg = cfg.model_copy(update={"classifier": cfg.classifier.model_copy(update=overrides)})
    with err_console.status("loading the classifier ..."):
        clf = load_classifier(cfg)
    with _count_progress("classifying") as advance:
        result = classify_mentions(database, cfg, clf, rescore=rescore, limit=limit, progress=advance)
    if as_json:
        click.echo(json.dumps(_jsonable(result)))
        return
    if not result.classified and not result.skipped:
        click.echo(f"Nothing to classify: every mention has a classification by {result.version}.")
        return
    sentiments = ", ".join(f"{n:,} {label}" for label, n in result.sentiments.items())
    line = (
        f"Classified {result.classified:,} mentions with {result.version} in {result.seconds:.1f} s "
        f"({result.texts_per_s:.1f} texts/s): {sentiments}"
    )
    unjudged = {k: v for k, v in result.unjudged.items() if v}
    if unjudged:
        line += (
            f"; {sum(unjudged.values()):,} not judged ("
            + ", ".join(f"{n:,} {status}" for status, n in unjudged.items())
            + ")"
        )
    click.echo(line + ".")
    if result.rescored:
        click.echo(f"{result.rescored:,} of them were recomputed (--rescore); other versions' rows are kept.")
    if result.skipped:
        click.echo(f"{result.skipped:,} were classified by another run meanwhile and left as they were.")
    if result.remaining:
        click.echo(f"{result.remaining:,} mentions are still to classify: run `earful classify` again.")


@contextmanager
def _count_progress(label: str) -> Iterator[Any]:
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


# --------------------------------------------------------------------------- status


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _when(value: datetime | None, cfg: Config) -> str:
    return value.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M") if value else "-"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Mentions per source, each source's last run and its counts, and broken sources."""
    from earful.pipeline.status import source_statuses

    state = _state(ctx)
    database = state.database()
    statuses = source_statuses(database)
    if as_json:
        click.echo(json.dumps([_jsonable(s) for s in statuses], indent=2))
        return
    cfg = state.config
    table = Table(title=f"Earful status ({cfg.timezone})")
    numbers = ("mentions", "new", "updated", "same", "bad")
    for column in (
        "source",
        "kind",
        "brand",
        "mentions",
        "last run",
        "run",
        "status",
        *numbers[1:],
        "health",
    ):
        table.add_column(column, justify="right" if column in numbers else "left")
    for s in statuses:
        run = s.last_run
        counts = [f"{n:,}" for n in (run.new, run.updated, run.unchanged, run.dropped)] if run else ["-"] * 4
        health = f"[red]{s.problem}[/red]" if s.problem else ("disabled" if not s.enabled else "ok")
        table.add_row(
            s.name,
            s.kind,
            s.brand or "-",
            f"{s.mentions:,}",
            _when(run.started_at, cfg) if run else "never",
            run.kind if run else "-",
            run.status if run else "-",
            *counts,
            health,
        )
    console.print(table)
    total = sum(s.mentions for s in statuses)
    click.echo(f"{total:,} mentions in {len(statuses)} sources.")
    from earful.pipeline.classify import classified_counts

    for version, n in classified_counts(database).items():
        click.echo(f"{n:,} of them classified by {version}.")
    broken = [s for s in statuses if s.problem]
    if broken:
        click.echo(f"{len(broken)} source(s) need attention: " + ", ".join(s.name for s in broken))


# -------------------------------------------------------------------------- sources


@cli.group()
def sources() -> None:
    """Configured sources."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def sources_list(ctx: click.Context, as_json: bool) -> None:
    """List sources: kind, spider, brand, schedule, start URLs, enabled."""
    from earful.pipeline.status import source_statuses

    statuses = source_statuses(_state(ctx).database())
    if as_json:
        keys = ("name", "kind", "spider", "brand", "schedule", "enabled", "start_urls", "mentions")
        click.echo(json.dumps([{k: _jsonable(getattr(s, k)) for k in keys} for s in statuses], indent=2))
        return
    table = Table(title="Sources")
    for column in ("name", "kind", "spider", "brand", "schedule", "enabled", "start URLs"):
        table.add_column(column)
    for s in statuses:
        table.add_row(
            s.name,
            s.kind,
            s.spider or "-",
            s.brand or "-",
            s.schedule or "-",
            "yes" if s.enabled else "no",
            "\n".join(s.start_urls) or "-",
        )
    console.print(table)


# ---------------------------------------------------------------------------- crawl


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("--cache", is_flag=True, help="Keep and replay HTTP responses (development).")
@click.option("--timeout", type=float, help="Give up on a source after this many seconds.")
@click.option(
    "--log", "log_file", type=click.Path(dir_okay=False), help="Append the crawlers' logs to this file."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per source instead of a table.")
@click.pass_context
def crawl(
    ctx: click.Context,
    sources: tuple[str, ...],
    cache: bool,
    timeout: float | None,
    log_file: str | None,
    as_json: bool,
) -> None:
    """Crawl SOURCES (default: every enabled source) side by side, in one child process.

    Prints each source's counts as it finishes and a summary table at the end; exits with
    status 1 when a source failed (`earful status` shows its history).
    """
    from earful.pipeline.crawl import crawl_sources, enabled_sources

    state = _state(ctx)
    state.database()  # checks the revision and syncs the config first
    names = enabled_sources(state.config, list(sources))
    if not names:
        click.echo("No enabled sources to crawl; add some to the config (`earful sources list`).")
        return
    settings = {"HTTPCACHE_ENABLED": True} if cache else None
    if log_file is None:
        folder = state.config.path.parent if state.config.path else Path.cwd()
        log_file = str(folder / "earful-crawl.log")
    outcomes = []
    with err_console.status(f"crawling {', '.join(names)} ...") as spinner:
        for outcome in crawl_sources(
            state.config, names, settings=settings, timeout_s=timeout, log_file=log_file
        ):
            outcomes.append(outcome)
            i = len(outcomes)
            left = [n for n in names if n not in {o.source for o in outcomes}]
            if left:
                spinner.update(f"crawling {', '.join(left)} ...")
            if as_json:
                click.echo(json.dumps(_jsonable(outcome)))
            else:
                click.echo(
                    f"[{i}/{len(names)}] {outcome.source}: {outcome.status} in {outcome.seconds:.1f} s, "
                    f"{outcome.pages} page{'' if outcome.pages == 1 else 's'}, "
                    f"{outcome.new} new, {outcome.updated} updated, {outcome.unchanged} unchanged, "
                    f"{outcome.dropped} dropped" + (f" ({outcome.message})" if outcome.message else "")
                )
    if not as_json:
        table = Table(title="Crawl summary")
        numbers = ("pages", "seen", "new", "updated", "unchanged", "dropped", "errors", "seconds")
        for column in ("source", "status", *numbers):
            table.add_column(column, justify="right" if column in numbers else "left")
        for o in outcomes:
            values = [o.pages, o.seen, o.new, o.updated, o.unchanged, o.dropped, o.errors]
            status_text = o.status if o.status == "succeeded" else f"[red]{o.status}[/red]"
            table.add_row(o.source, status_text, *(f"{v:,}" for v in values), f"{o.seconds:.1f}")
        console.print(table)
        click.echo(f"Crawler log (no author names or texts in it): {log_file}")
    if any(o.status != "succeeded" for o in outcomes):
        ctx.exit(1)


@cli.command("spider-test")
@click.argument("args", nargs=-1, required=True)
@click.option("--auto", is_flag=True, help="No source: try every built-in extractor on PAGE.")
@click.option("--url", help="The page's URL, for links and keys [default: the source's first start URL].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mention.")
@click.pass_context
def spider_test(
    ctx: click.Context, args: tuple[str, ...], auto: bool, url: str | None, as_json: bool
) -> None:
    """Show what a source's spider extracts from a saved page: `spider-test SOURCE PAGE.html`,
    or `spider-test --auto PAGE.html` with every built-in extractor."""
    from earful.pipeline.store import normalise_rating
    from earful.spiders.check import extract_auto, extract_with_source

    state = _state(ctx)
    if auto:
        if len(args) != 1:
            raise click.UsageError(
                "with --auto give just the saved page: earful spider-test --auto PAGE.html"
            )
        found = extract_auto(state.config, Path(args[0]), url)
    else:
        if len(args) != 2:
            raise click.UsageError("give a source and a saved page: earful spider-test SOURCE PAGE.html")
        found = extract_with_source(state.config, state.config.source(args[0]), Path(args[1]), url)
    for item in found:
        m = item.mention
        text = (m.text if m else item.raw.text) or ""
        record: dict[str, Any] = {
            "found_by": item.found_by,
            "kind": m.kind if m else item.raw.kind,
            "key": m.key() if m else item.raw.external_key,
            "text": text,
            "author": m.author if m else item.raw.author,
            "date": m.published_at.isoformat() if m and m.published_at else None,
            "rating": normalise_rating(m.rating, m.rating_worst or 1, m.rating_best or 5)
            if m and m.rating is not None
            else None,
            "rating_raw": m.rating if m else None,
            "rating_scale": [m.rating_worst, m.rating_best] if m and m.rating is not None else None,
            "parent": m.parent_key if m else item.raw.parent_key,
            "brand_response": m.is_brand_response if m else item.raw.is_brand_response,
            "language": m.language if m else None,
            "problem": item.problem,
        }
        if as_json:
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            text = text.replace("\n", " ")
            click.echo(
                f"- [{record['found_by']}] {record['kind']} {record['key']} by {record['author'] or '-'} "
                f"on {record['date'] or '-'}, rating "
                f"{'-' if record['rating'] is None else record['rating']}"
                + (f", reply to {record['parent']}" if record["parent"] else "")
                + (f" ({record['problem']})" if record["problem"] else "")
            )
            click.echo(f"    {text[:200]}{'...' if len(text) > 200 else ''}")
    if not as_json:
        click.echo(f"{len(found)} mention(s) found.")


# ----------------------------------------------------------------------------- eval


@cli.command("eval")
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A CSV file with the columns text,label to evaluate on instead of the bundled test sets "
    "(labels negative/neutral/positive, 0/1 or 0/1/2).",
)
@click.option(
    "--topics",
    is_flag=True,
    help="Evaluate the topic model instead: MAMS aspect categories and airline complaint reasons.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The labelled data sets [default: $EARFUL_DATA_DIR, else the repository's ../shared/data].",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="A model directory [default: classifier.model, else the model that ships with Earful].",
)
@click.option(
    "--runtime",
    type=click.Choice(["torch", "onnx", "onnx-int8"]),
    default="torch",
    show_default=True,
    help="How Earful's own model runs: torch (the model card's figures), or as classifier.runtime "
    "runs it (onnx-int8 is the default of `earful classify`).",
)
@threads_option
@batch_size_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON line instead of tables.")
@click.pass_context
def eval_(
    ctx: click.Context,
    data_file: Path | None,
    topics: bool,
    data_dir: Path | None,
    model_path: Path | None,
    runtime: str,
    threads: int | None,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Measure the sentiment model on labelled data it never trained on, next to the VADER
    lexicon: accuracy, macro-F1 and binary accuracy (negative vs positive on the rows that are
    not neutral). Needs no database.

    Without --data: the held-back test splits of the bundled data sets (reviews first). With
    --data FILE.csv: that file. With --topics: the topic model's F1 instead.
    """
    from earful.models import evaluate as ev
    from earful.models.data import DataMissing
    from earful.pipeline.errors import InputError, ModelError, ModelNotFound

    if data_file is not None and topics:
        raise click.UsageError("--topics evaluates on the bundled data sets; it does not take --data")
    labelled = None
    if data_file is not None:
        if not data_file.is_file():
            raise InputError(
                f"{data_file} does not exist (--data wants a CSV file with the columns text,label)"
            )
        try:
            labelled = ev.read_csv(data_file)
            gold, binary = ev.parse_labels(labelled.labels, labelled.lines)
        except ev.EvalDataError as exc:
            raise InputError(
                str(exc) if str(exc).startswith(str(data_file)) else f"{data_file} {exc}"
            ) from None
    else:
        try:
            ev.check_data_dir(data_dir)
        except DataMissing as exc:
            raise InputError(str(exc)) from None

    def say(message: str) -> None:  # progress goes to stderr; stdout has the figures only
        click.echo(message, err=True)

    settings = _state(ctx).config.classifier
    model_dir = model_path or settings.model
    if model_dir is not None and not model_dir.exists():
        setting = "--model" if model_path else "classifier.model"
        raise ModelNotFound(f"{setting}: {model_dir} does not exist")
    from earful.models import encoder as enc
    from earful.models import sentiment

    enc.set_threads(threads or settings.threads)
    batch = batch_size or settings.batch_size
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    say(f"Loading {'model ' + str(model_dir) if model_dir else 'the shipped model'} ...")
    try:
        model = sentiment.load(model_dir, dict(settings.labels) or None)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        detail = detail.removeprefix(f"{model_dir}: ") if model_dir else detail
        raise ModelError(f"cannot load the model {model_dir or '(shipped)'}: {detail}") from None
    if runtime != "torch" and isinstance(model, sentiment.EarfulSentiment):
        model.use_onnx(quantize=runtime == "onnx-int8", threads=threads or settings.threads)
    from earful.models.topics import TaxonomyError

    try:
        if topics:
            report = ev.topic_report(model, data_dir, say, batch_size=batch)
            if as_json:
                click.echo(json.dumps(report))
            else:
                _print_topic_report(report)
            return
        if labelled is not None:
            result = ev.evaluate_labelled(model, labelled.texts, gold, binary, batch_size=batch)
            figures = {"file": str(data_file), **result.as_dict()}
            name = data_file.name if data_file else "data"
            report = {
                "model_version": model.version,
                "baseline": ev.Vader().version,
                "datasets": {name: figures},
            }
        else:
            report = ev.sentiment_report(model, data_dir, say, batch_size=batch)
            name = report["headline"]
    except (DataMissing, TaxonomyError) as exc:
        raise InputError(str(exc)) from None
    headline = report["datasets"][name]
    if as_json:
        top = {
            **headline["model"],
            **{f"vader_{k}": v for k, v in headline["vader"].items()},
            "dataset": name,
            **{k: v for k, v in report.items() if k != "datasets"},
            "datasets": report["datasets"],
        }
        click.echo(json.dumps(top))
        return
    _print_sentiment_report(report, name)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print_sentiment_report(report: dict[str, Any], headline: str) -> None:
    table = Table(title=f"Sentiment: {report['model_version']} next to {report['baseline']}")
    for column in ("data set", "model", "accuracy", "macro-F1", "binary acc.", "n", "texts/s"):
        table.add_column(column, justify="left" if column in ("data set", "model") else "right")
    for name, figures in report["datasets"].items():
        timing = figures["timing"]
        for who, key, speed in (("Earful", "model", "texts_per_s"), ("VADER", "vader", "vader_texts_per_s")):
            s = figures[key]
            table.add_row(
                name if who == "Earful" else "",
                who,
                _pct(s["accuracy"]),
                f"{s['macro_f1']:.3f}",
                _pct(s["binary_accuracy"]),
                f"{s['n']:,}",
                "-" if timing[speed] is None else f"{timing[speed]:,.0f}",
            )
        table.add_section()
    console.print(table)
    figures = report["datasets"][headline]
    labels = figures["model"]["labels"]
    matrix = Table(title=f"Confusion matrix of {headline} (rows: gold label, columns: predicted)")
    matrix.add_column("gold")
    for who in ("Earful", "VADER"):
        for label in labels:
            matrix.add_column(f"{who} {label}", justify="right")
    for i, label in enumerate(labels):
        cells = [
            f"{figures[key]['confusion'][i][j]:,}" for key in ("model", "vader") for j in range(len(labels))
        ]
        matrix.add_row(label, *cells)
    console.print(matrix)
    click.echo(
        "accuracy and macro-F1: of the most probable label (on 2-class data, of the negative vs positive "
        "choice); binary acc.: on the rows whose gold label is not neutral, how often p(negative) vs "
        "p(positive) picks the right one."
    )
    for name, why in report.get("skipped", {}).items():
        click.echo(f"Skipped {name}: {why}")


def _print_topic_report(report: dict[str, Any]) -> None:
    mams, airline = report["datasets"]["mams"], report["datasets"]["airline"]
    taxonomy = Path(mams["taxonomy"]).name
    table = Table(title=f"Topics on MAMS aspect categories ({mams['n']:,} sentences, {taxonomy})")
    for column in ("category", "precision", "recall", "F1", "gold", "predicted"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, s in mams["per_category"].items():
        row = [f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}"]
        table.add_row(name, *row, f"{s['support']:,}", f"{s['predicted']:,}")
    table.add_section()
    micro = [f"{mams[k]:.3f}" for k in ("micro_precision", "micro_recall", "micro_f1")]
    table.add_row("micro", *micro, f"{mams['pairs_gold']:,}", f"{mams['pairs_predicted']:,}")
    console.print(table)
    click.echo(
        f"Topic sentiment accuracy (gold categories that were found, {mams['sentiment_n']:,}): "
        f"{_pct(mams['sentiment_accuracy'])}"
    )
    taxonomy = Path(airline["taxonomy"]).name
    reasons = Table(title=f"Complaint reasons of negative airline tweets ({airline['n']:,}, {taxonomy})")
    for column in ("reason", "n", "accuracy@1"):
        reasons.add_column(column, justify="left" if column == "reason" else "right")
    for name, s in airline["per_reason"].items():
        reasons.add_row(name, f"{s['n']:,}", _pct(s["accuracy_at_1"]))
    reasons.add_section()
    reasons.add_row("all", f"{airline['n']:,}", _pct(airline["accuracy_at_1"]))
    console.print(reasons)
    click.echo(f"Airline micro-F1 over (tweet, reason) pairs: {airline['micro_f1']:.3f}")


# ----------------------------------------------------------------------------- demo


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Folder for the demo's config and SQLite database.",
)
@click.pass_context
def demo(ctx: click.Context, folder: Path) -> None:
    """Run the main job end to end on the embedded defaults: generate a sample site (a made-up
    brand's reviews, blog comments and a comment feed, eight weeks with a recent negative
    spike), serve it on 127.0.0.1, crawl it, classify the mentions, check for alerts, write
    the weekly report, and print a summary with each stage's time.

    Safe to run again: the site is generated once per folder, so a re-run stores nothing new.
    """
    from earful.pipeline.demo import run_demo

    run_demo(folder, serve=_serve_folder, console=console)


@contextmanager
def _serve_folder(folder: Path) -> Iterator[str]:
    """Serve a folder on 127.0.0.1 for as long as the block runs.

    The port is fixed (8765, or $EARFUL_DEMO_PORT): review ids on the demo site are URLs, so a
    new port on every run would make every review look new.
    """
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    port = int(os.environ.get("EARFUL_DEMO_PORT", "8765"))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(folder)))
    except OSError as exc:
        raise EarfulError(
            f"cannot serve the demo site on 127.0.0.1:{port} ({exc.strerror}); "
            "set EARFUL_DEMO_PORT to a free port"
        ) from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- report


def _week_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check --week's form at once (a click usage error); its time zone comes later."""
    from earful.pipeline.trends import BadWeek, parse_week

    if value is None:
        return None
    try:
        return parse_week(value).label
    except BadWeek as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("report")
@click.option(
    "--week",
    callback=_week_option,
    help="The ISO week, e.g. 2026-W47 [default: the last complete week in the config's time zone].",
)
@click.option("--brand", help="One brand, by name or alias [default: every brand].")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files [default: report.out_dir, else reports/ beside the config file].",
)
@click.pass_context
def report_(ctx: click.Context, week: str | None, brand: str | None, out_dir: Path | None) -> None:
    """Write the weekly word-of-mouth report: one self-contained HTML page per brand (volume,
    sentiment, topics, sources, week-over-week changes with confidence intervals, example
    mentions, brand responses) and its tables as CSV files."""
    from earful.pipeline.report import write_reports
    from earful.pipeline.trends import parse_week

    state = _state(ctx)
    database = state.database()
    cfg = state.config
    chosen = parse_week(week, cfg.timezone) if week else None
    for written in write_reports(database, cfg, week=chosen, brand=brand, out_dir=out_dir):
        summary = written.report.summary[0] if written.report.summary else ""
        click.echo(f"{written.brand}, {written.week}: {summary}")
        click.echo(f"  {written.html}")
        for path in written.csv:
            click.echo(f"  {path}")


# --------------------------------------------------------------------------- alerts


@cli.command()
@click.option(
    "--dry-run", is_flag=True, help="Show what would alert, with explanations; store and send nothing."
)
@click.option(
    "--at",
    "at_text",
    metavar="ISO",
    help="Run as of this time (ISO 8601; without an offset, in the config's time zone) [default: now].",
)
@click.option("--json", "as_json", is_flag=True, help="End with the result as one JSON line.")
@click.pass_context
def alerts(ctx: click.Context, dry_run: bool, at_text: str | None, as_json: bool) -> None:
    """Detect negative spikes per brand and topic and broken sources; store and send alerts.

    Re-sends deliveries that earlier runs left pending first. The window is the last
    alerts.window_hours complete hours, compared with the same hours of the week in past
    weeks. Exit status 1 when a delivery is still pending after the run.
    """
    from earful.pipeline.alerts import alert_message, run_alerts

    state = _state(ctx)
    cfg = state.config
    at = None
    if at_text:
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError:
            raise click.BadParameter(f"not an ISO 8601 time: {at_text!r}", param_hint="--at") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=cfg.tz)
    result = run_alerts(state.database(), cfg, at=at, dry_run=dry_run)
    tested = [t for t in result.tests if t.verdict.tested]
    brands = {t.brand for t in tested}
    click.echo(
        f"Alerts as of {_when(result.at, cfg)} {cfg.timezone} (last {cfg.alerts.window_hours} h, "
        f"model {result.model_version or 'none'}): {len(tested):,} tests of {len(brands)} brand(s) "
        f"and their topics, {sum(t.significant for t in result.tests)} flagged."
    )
    if result.alerts:
        table = Table(title="Dry run: would alert" if dry_run else "New alerts")
        numbers = ("observed", "expected", "p")
        for column in ("kind", "brand", "topic / source", "window", *numbers):
            table.add_column(column, justify="right" if column in numbers else "left")
        for a in result.alerts:
            window = a.explanation.get("window", {}).get("local") or f"since {_when(a.window_start, cfg)}"
            table.add_row(
                a.kind,
                a.brand or "-",
                a.topic or a.source or "(all)",
                window,
                "-" if a.observed is None else f"{a.observed:g}",
                "-" if a.expected is None else f"{a.expected:.1f}",
                "-" if a.p_value is None else f"{a.p_value:.2g}",
            )
        console.print(table, markup=False)
        for a in result.alerts:
            click.echo("")
            click.echo("  " + alert_message(a).plain().rstrip().replace("\n", "\n  "))
    for brand, why in result.untested.items():
        click.echo(f"Not tested: {brand}: {why}")
    if result.cooling:
        click.echo("Within the cool-down of an earlier alert: " + ", ".join(result.cooling))
    reports = [*result.redelivered, *result.delivered]
    if any(r.outcomes or r.skipped for r in reports):
        table = Table(title="Deliveries")
        for column in ("alert", "channel", "status", "attempts", "error"):
            table.add_column(column)
        for report in reports:
            for o in report.outcomes:
                table.add_row(report.key, o.channel, o.status, str(o.attempts), o.error or "")
            for name in report.skipped:
                table.add_row(report.key, name, "skipped", "0", "sent by another run, or not configured")
        console.print(table, markup=False)
    n = len(result.alerts)
    if dry_run:
        click.echo(f"Dry run: {n} alert{'' if n == 1 else 's'} would be raised; nothing stored or sent.")
    elif n:
        click.echo(f"{n} alert{'' if n == 1 else 's'} raised in {result.seconds:.1f} s.")
    else:
        click.echo("No new alerts.")
    if result.pending:
        click.echo(
            f"{result.pending} deliver{'y' if result.pending == 1 else 'ies'} still pending: "
            "the next `earful alerts` sends them again."
        )
    if as_json:
        doc = {
            "at": result.at.isoformat(),
            "dry_run": dry_run,
            "model_version": result.model_version,
            "tests": len(tested),
            "flagged": sum(t.significant for t in result.tests),
            "alerts": [_jsonable(a) for a in result.alerts],
            "untested": result.untested,
            "cooling": result.cooling,
            "duplicates": result.duplicates,
            "deliveries": [{"alert": r.key, **dataclasses.asdict(o)} for r in reports for o in r.outcomes],
            "pending": result.pending,
            "seconds": result.seconds,
            "check_seconds": result.check_seconds,
        }
        click.echo(json.dumps(doc, ensure_ascii=False))
    if result.pending and not dry_run:
        ctx.exit(1)


# ------------------------------------------------------------------------- backtest


@cli.command()
@click.option(
    "--history",
    "history_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Hourly counts CSV (time,brand,negative[,total][,topic]) [default: synthetic history].",
)
@click.option(
    "--incidents",
    "incidents_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Known incidents CSV (brand,start,end) for --history.",
)
@click.option("--seed", default=7, show_default=True, help="Synthetic history: random seed.")
@click.option(
    "--weeks", type=click.IntRange(min=3), default=12, show_default=True, help="Synthetic history: weeks."
)
@click.option(
    "--brands", type=click.IntRange(min=1), default=8, show_default=True, help="Synthetic history: brands."
)
@click.option("--json", "as_json", is_flag=True, help="End with the figures as one JSON line.")
def backtest(
    history_file: Path | None,
    incidents_file: Path | None,
    seed: int,
    weeks: int,
    brands: int,
    as_json: bool,
) -> None:
    """Measure the alert rule: replay hourly runs on history with known incidents and print
    detection rate, delay and false alarms per brand-month, next to two simple baselines.

    Without --history the history is synthetic (seeded) with injected spikes of 1.5x, 2x, 3x
    and 5x. The rule is always the default one: nothing is tuned to the data.
    """
    from earful.pipeline.backtest import backtest as run_backtest
    from earful.pipeline.backtest import read_history, read_incidents, synthetic_history

    if incidents_file is not None and history_file is None:
        raise click.UsageError("--incidents needs --history (synthetic history has its own incidents)")
    if history_file is not None:
        history = read_history(history_file)
        incidents = read_incidents(incidents_file) if incidents_file is not None else []
        result = run_backtest(history, incidents=incidents)
        title = f"Backtest on {history_file.name}: {len(history.brands)} brands, {history.hours:,} hours"
    else:
        history = synthetic_history(weeks=weeks, brands=brands, seed=seed)
        result = run_backtest(history)
        title = f"Synthetic backtest: {brands} brands x {weeks} weeks (seed {seed}), default rule"
    names = {
        "ours": "Earful rule",
        "mean3sd": "mean + 3 sd (24 h)",
        "lasthour": "last hour > 2x (12 h)",
        "mean3sd_matched": f"mean + {result.thresholds.get('mean3sd', 0):g} sd, at our false alarms",
        "lasthour_matched": f"last hour > {result.thresholds.get('lasthour', 0):g}x, at our false alarms",
        "oracle": "oracle: knows each hour's true rate (a ceiling)",
    }
    table = Table(title=title)
    table.add_column("method")
    if result.synthetic:
        sizes = sorted(result.scores["ours"].by_size)
        for size in sizes:
            table.add_column(f"{size:g}x: <= 2 h (ever)", justify="right")
        table.add_column("2x median delay", justify="right")
    else:
        for column in ("incidents", "detected", "median delay"):
            table.add_column(column, justify="right")
    table.add_column("false alarms / brand-month", justify="right")
    for name, score in result.scores.items():
        if result.synthetic:
            cells = [f"{_pct(s.fast_rate)} ({_pct(s.detection_rate)})" for s in score.by_size.values()]
            delay = score.by_size[2.0].median_delay if 2.0 in score.by_size else float("nan")
            cells.append("-" if delay != delay else f"{delay:g} h")
        else:
            delay = score.median_delay
            cells = [
                f"{score.incidents}",
                f"{score.detected} ({_pct(score.detection_rate) if score.incidents else '-'})",
                "-" if delay != delay else f"{delay:g} h",
            ]
        table.add_row(names[name], *cells, f"{score.false_alarms_per_brand_month:.2f}")
    console.print(table)
    if result.synthetic:
        click.echo(
            "Detection: share of injected spikes alerted within 2 hours of their start (and at all); "
            "a false alarm is an alert outside every spike."
        )
    if as_json:
        click.echo(json.dumps(result.to_dict()))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="earful")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())  # type: ignore[func-returns-value]
