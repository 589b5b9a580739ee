"""The ``earful`` command line: a thin layer over the pipeline's functions.

Each command parses its options, calls one function that the tests and the Airflow DAGs call
too, and prints the result for a person (or as JSON with ``--json``). Errors are handled in one
place, :class:`EarfulGroup`: an expected error becomes one ``Error: ...`` line on stderr and
exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from earful.pipeline import __version__
from earful.pipeline.cli_common import (
    EarfulGroup,
    State,
    byte_progress,
    console,
    err_console,
    jsonable,
    local_time,
    state_of,
)
from earful.pipeline.cli_insight import alerts, backtest
from earful.pipeline.cli_model import classify, eval_
from earful.pipeline.config import Config, default_config_path, example_config_text
from earful.pipeline.db import Database, safe_url
from earful.pipeline.errors import EarfulError
from earful.pipeline.log import setup_logging

logger = logging.getLogger(__name__)


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
    state = state_of(ctx)
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
    database = state_of(ctx).database(current=False, sync=False)
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
    database = state_of(ctx).database(current=False, sync=False)
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
    database = state_of(ctx).database(current=False, sync=False)
    database.downgrade(revision)
    click.echo(f"Downgraded {safe_url(database.url)} to {database.current_revision() or 'empty'}.")


@db.command("recount")
@click.pass_context
def db_recount(ctx: click.Context) -> None:
    """Count the trigger-kept tables again from the stored mentions.

    hourly_count (the alert check's counts), hourly_tally (the report's) and the mentions'
    has_copies flags (syndicated texts) are kept by triggers in the transaction of every
    change. Run this after changing mentions or classifications with the triggers disabled,
    or after restoring only some tables. Writers wait while it runs; nothing is lost.
    """
    from earful.pipeline.counts import recount

    database = state_of(ctx).database(sync=False)
    done = recount(database)
    click.echo(
        f"Recounted {safe_url(database.url)} in {done.seconds:.1f} s: "
        f"hourly_count {done.hourly_count:,} rows, hourly_tally {done.hourly_tally:,} rows, "
        f"{done.flagged:,} mentions with a copy on another source."
    )


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

    state = state_of(ctx)
    database = state.database()
    with byte_progress(file.name, file.stat().st_size) as advance:
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


# --------------------------------------------------------------------------- status


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Mentions per source, each source's last run and its counts, and broken sources."""
    from earful.pipeline.status import source_statuses

    state = state_of(ctx)
    database = state.database()
    statuses = source_statuses(database)
    if as_json:
        click.echo(json.dumps([jsonable(s) for s in statuses], indent=2))
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
            local_time(run.started_at, cfg) if run else "never",
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

    statuses = source_statuses(state_of(ctx).database())
    if as_json:
        keys = ("name", "kind", "spider", "brand", "schedule", "enabled", "start_urls", "mentions")
        click.echo(json.dumps([{k: jsonable(getattr(s, k)) for k in keys} for s in statuses], indent=2))
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

    state = state_of(ctx)
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
                click.echo(json.dumps(jsonable(outcome)))
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

    state = state_of(ctx)
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
    from earful.pipeline.weeks import BadWeek, parse_week

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
    from earful.pipeline.weeks import parse_week

    state = state_of(ctx)
    database = state.database()
    cfg = state.config
    chosen = parse_week(week, cfg.timezone) if week else None
    for written in write_reports(database, cfg, week=chosen, brand=brand, out_dir=out_dir):
        summary = written.report.summary[0] if written.report.summary else ""
        click.echo(f"{written.brand}, {written.week}: {summary}")
        click.echo(f"  {written.html}")
        for path in written.csv:
            click.echo(f"  {path}")


# Commands kept in modules of their own (cli_model, cli_insight).
for _command in (classify, eval_, alerts, backtest):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="earful")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())  # type: ignore[func-returns-value]
