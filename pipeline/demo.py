"""``earful demo``: the main job, end to end, on a sample site generated for the occasion.

The site belongs to Norrow, an outdoor-clothing brand we made up (every name on it is
fictional). :func:`~earful.pipeline.demo_history.make_history` writes its history, seeded, and
:func:`~earful.pipeline.demo_site.write_site` its pages,
as four places a brand is talked about:

* the brand's shop, ``/shop/<product>/reviews.html``: product review pages with schema.org
  JSON-LD, newest first, paginated (``rel="next"``);
* a review portal, ``/revuo/norrow.html``: reviews in schema.org microdata, paginated;
* the brand's blog, ``/blog/``: WordPress-style posts with nested comment threads, where the
  brand answers (``bypostauthor``);
* an outdoor magazine, ``/trailnotes/feed.xml``: an RSS posts feed whose items point at each
  post's RSS comment feed (``wfw:commentRss``).

About eight weeks of reviews and comments, with a daily and weekly rhythm and a realistic mix
(mostly positive; quality, fit, price, delivery, customer service and returns), assembled from
the many phrasings in ``data/demo_site/texts.yaml``. The story it tells: Norrow changed its
delivery partner on the Monday of the last complete week, delivery complaints went up (the
weekly report of that week calls it beyond noise), and in the three hours before the demo's
hour they burst (the alert check finds the spike). A
few reviews' stars disagree with their words, a few are in German or French (not judged), one
review was posted on two sites (syndicated, counted once), and the brand replies on its blog.

**Dates and re-runs.** The history ends at the *anchor*: the UTC hour of the demo's first run in
a folder. The site is generated once per demo folder (``<dir>/site``, with the anchor in
``site/earful-demo.json``) and reused by later runs, which therefore store and classify
nothing new; the alert check runs as of the anchor (``run_alerts(at=anchor)``) and the report
is the last complete week before it, so a re-run shows the same spike and the same report.
Delete the folder for a fresh history that ends at the current hour.

**Politeness.** The site is served on 127.0.0.1 by ``earful demo`` itself, so the crawl lowers
Scrapy's delays for it (:data:`CRAWL_SETTINGS`): a special case for a local site we own.
robots.txt is still fetched and obeyed, and AutoThrottle stays on.

:func:`run_demo` runs the stages (set up, generate, crawl, classify, alerts, report) with the
real spiders, model, alert rule and report, prints what each found and its time, and ends with
a summary table.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from earful.pipeline.demo_history import BRAND, HISTORY_DAYS, SPIKE_PER_HOUR
from earful.pipeline.demo_site import Site, ensure_site
from earful.pipeline.errors import EarfulError

if TYPE_CHECKING:
    from rich.console import Console

    from earful.pipeline.classify import ClassifyResult
    from earful.pipeline.config import Config
    from earful.pipeline.crawl import CrawlOutcome
    from earful.pipeline.db import Database


#: Scrapy settings for the demo's crawl. The demo serves its own site on 127.0.0.1, so it does
#: not wait between requests the way it must on somebody else's site (1 s, AutoThrottle
#: starting at 2 s): a special case for a local site. robots.txt is obeyed as always.
CRAWL_SETTINGS: dict[str, Any] = {"DOWNLOAD_DELAY": 0.0, "AUTOTHROTTLE_START_DELAY": 0.0}


# --------------------------------------------------------------------------- the run


Serve = Callable[[Path], AbstractContextManager[str]]


@dataclass
class Stage:
    name: str
    seconds: float
    result: str


@dataclass
class DemoResult:
    """What one ``earful demo`` run did."""

    folder: Path
    config_path: Path
    anchor: datetime | None = None
    stages: list[Stage] = field(default_factory=list)
    mentions: int = 0
    new_mentions: int = 0
    classified: int = 0  # by this run
    classified_total: int = 0
    alerts: list[str] = field(default_factory=list)  # summaries of the spike alerts shown
    new_alerts: int = 0
    report: Path | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


class _Clock:
    def __init__(self, result: DemoResult) -> None:
        self.result = result

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        stage = Stage(name, 0.0, "")
        started = time.monotonic()
        try:
            yield stage
        finally:
            stage.seconds = time.monotonic() - started
            self.result.stages.append(stage)


def run_demo(folder: Path, *, serve: Serve, console: Console | None = None) -> DemoResult:
    """Run the demo in ``folder``: set up, generate (or reuse) the site, crawl it with the
    real spiders, classify with the real model, check for alerts as of the site's last hour,
    write the weekly report, and print a summary. ``serve(folder)`` serves a folder on
    127.0.0.1 for the length of a ``with`` block and gives its URL."""
    import click
    from rich.console import Console

    from earful.pipeline.config import load_config
    from earful.pipeline.db import Database, safe_url
    from earful.pipeline.store import MentionStore

    out = console or Console()
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "earful.yaml"
    result = DemoResult(folder, config_path)
    clock = _Clock(result)

    with clock.stage("set up") as stage:
        if not config_path.exists():
            text = files("earful.pipeline").joinpath("data/demo.yaml").read_text(encoding="utf-8")
            config_path.write_text(text, encoding="utf-8")
            click.echo(f"Wrote demo config {config_path}.")
        # The demo keeps to its own folder even where EARFUL_DATABASE_URL names a real database.
        config = load_config(config_path, database_env=False)
        _ensure_key(config)
        db = Database(config.database.url, busy_timeout_s=config.database.busy_timeout_s)
        db.upgrade()
        MentionStore(db, config).sync_config()
        stage.result = f"{safe_url(db.url)}, revision {db.current_revision()}"
        click.echo(f"Database {stage.result}.")
    try:
        _stages(result, clock, db, config, serve, out)
    finally:
        db.dispose()
    _summary(result, out)
    return result


def _stages(
    result: DemoResult, clock: _Clock, db: Database, config: Config, serve: Serve, out: Console
) -> None:
    import click

    folder = result.folder

    with clock.stage("generate site") as stage:
        site = ensure_site(folder / "site")
        result.anchor = site.anchor
        total = sum(site.counts.values())
        ends = _local(site.anchor, config.timezone)
        if site.generated:
            click.echo(
                f"Generated the {BRAND} sample site in {site.folder}: {total:,} reviews and comments over "
                f"{HISTORY_DAYS // 7} weeks up to {ends} {config.timezone}, the last {len(SPIKE_PER_HOUR)} "
                f"hours with a burst of {site.spike} delivery complaints."
            )
            stage.result = f"{total:,} reviews and comments"
        else:
            click.echo(
                f"Reusing the sample site in {site.folder}: {total:,} reviews and comments up to {ends} "
                f"{config.timezone} (delete {folder} for a fresh history that ends now)."
            )
            stage.result = "reused"

    with clock.stage("crawl") as stage:
        config, outcomes = _crawl(site, config, folder, serve)
        new = sum(o.new for o in outcomes)
        result.new_mentions = new
        stage.result = f"{sum(o.pages for o in outcomes):,} pages, {new:,} new"

    with clock.stage("classify") as stage:
        classified = _classify(db, config, out)
        result.classified = classified.classified
        stage.result = f"{classified.classified:,} classified"

    with clock.stage("alerts") as stage:
        shown, new_alerts = _alerts(db, config, site.anchor)
        result.alerts = shown
        result.new_alerts = new_alerts
        stage.result = f"{len(shown)} spike alert{'' if len(shown) == 1 else 's'}" + (
            f" ({new_alerts} new)" if new_alerts != len(shown) else ""
        )

    with clock.stage("report") as stage:
        result.report = _report(db, config, site.anchor)
        stage.result = result.report.name if result.report else "-"

    result.mentions, result.classified_total = _totals(db)


def _ensure_key(config: Config) -> None:
    """A random pseudonym key beside the config, as ``earful init`` writes it."""
    from earful.pipeline.store import KEY_FILE

    if not config.privacy.pseudonymise_authors or os.environ.get(config.privacy.key_env):
        return
    key_file = (config.path or Path("earful.yaml")).parent / KEY_FILE
    if key_file.exists():
        return
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def _local(when: datetime, timezone: str) -> str:
    return when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


@contextmanager
def _demo_site_env(url: str) -> Iterator[None]:
    """``$EARFUL_DEMO_SITE`` set to the served site for the block (the config's start URLs
    name it, and the crawler's child process reads the config again)."""
    before = os.environ.get("EARFUL_DEMO_SITE")
    os.environ["EARFUL_DEMO_SITE"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("EARFUL_DEMO_SITE", None)
        else:
            os.environ["EARFUL_DEMO_SITE"] = before


def _crawl(site: Site, config: Config, folder: Path, serve: Serve) -> tuple[Config, list[CrawlOutcome]]:
    import click

    from earful.pipeline.config import load_config
    from earful.pipeline.crawl import crawl_sources, enabled_sources

    log_file = folder / "earful-crawl.log"
    with serve(site.folder) as url, _demo_site_env(url):
        config = load_config(config.path, database_env=False)  # with the served site's address
        names = enabled_sources(config)
        click.echo(
            f"Crawling {len(names)} sources on {url} with the real spiders (robots.txt obeyed; no delay "
            "between requests, since the site is local) ..."
        )
        outcomes = []
        for outcome in crawl_sources(
            config, names, settings=CRAWL_SETTINGS, timeout_s=300.0, log_file=str(log_file)
        ):
            outcomes.append(outcome)
            click.echo(
                f"  {outcome.source}: {outcome.status} in {outcome.seconds:.1f} s, {outcome.pages} pages, "
                f"{outcome.new:,} new, {outcome.updated:,} updated, {outcome.unchanged:,} unchanged, "
                f"{outcome.dropped:,} dropped" + (f" ({outcome.message})" if outcome.message else "")
            )
    failed = [o.source for o in outcomes if o.status != "succeeded"]
    if failed:
        raise EarfulError(f"the demo crawl of {', '.join(failed)} failed; see {log_file}")
    return config, outcomes


def _classify(db: Database, config: Config, out: Console) -> ClassifyResult:
    import click

    from earful.pipeline.classify import classify_mentions, load_classifier

    with out.status("loading the classifier ..."):
        clf = load_classifier(config)
    with out.status("classifying ...") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"classifying: {done:,} of {total:,} mentions ...")

        result = classify_mentions(db, config, clf, progress=progress)
    if not result.classified:
        click.echo(f"Nothing to classify: every mention has a classification by {result.version}.")
        return result
    sentiments = ", ".join(f"{n:,} {label}" for label, n in result.sentiments.items())
    unjudged = sum(result.unjudged.values())
    click.echo(
        f"Classified {result.classified:,} mentions with {result.version} in {result.seconds:.1f} s "
        f"({result.texts_per_s:.1f} texts/s): {sentiments}"
        + (f"; {unjudged} not judged" if unjudged else "")
        + "."
    )
    return result


def _alerts(db: Database, config: Config, anchor: datetime) -> tuple[list[str], int]:
    """Run the alert check as of the site's last hour; print each spike alert in full. On a
    re-run the alert is stored already: it is read back and shown as it was raised."""
    import click
    from sqlalchemy import select

    from earful.pipeline.alerts import alert_message, run_alerts
    from earful.pipeline.schema import Alert

    run = run_alerts(db, config, at=anchor)
    tested = [t for t in run.tests if t.verdict.tested]
    click.echo(
        f"Alert check as of {_local(run.at, config.timezone)} {config.timezone} (the last "
        f"{config.alerts.window_hours} complete hours against the same hours in the past "
        f"{config.alerts.baseline_weeks} weeks): {len(tested)} tests of {len({t.brand for t in tested})} "
        f"brand and its topics, {sum(t.significant for t in run.tests)} flagged."
    )
    shown = [a for a in run.alerts if a.kind == "spike"]
    messages = [alert_message(a) for a in shown]
    with db.session() as session:
        stored = session.scalars(
            select(Alert).where(Alert.kind == "spike", Alert.window_end == anchor).order_by(Alert.id)
        ).all()
        new_keys = {a.key for a in shown}
        earlier = [alert_message(a) for a in stored if a.dedup_key not in new_keys]
    if earlier:
        click.echo("Raised by an earlier run of the demo for this hour (stored once, not sent again):")
    for message in [*messages, *earlier]:
        click.echo("")
        click.echo("  " + message.plain().rstrip().replace("\n", "\n  "))
    click.echo("")
    if not messages and not earlier:
        click.echo("No spike found.")
    summaries = [str(m.data.get("summary", m.title)) for m in [*messages, *earlier]]
    return summaries, len(messages)


def _report(db: Database, config: Config, anchor: datetime) -> Path | None:
    import click

    from earful.pipeline.report import write_reports
    from earful.pipeline.weeks import last_complete_week

    week = last_complete_week(config.timezone, anchor)
    written = write_reports(db, config, week=week)
    for report in written:
        click.echo(f"Weekly report of {report.brand}, {report.week} (what the Monday report says):")
        for line in report.report.summary:
            click.echo(f"  {line}")
        click.echo(f"  {report.html}")
    return written[0].html if written else None


def _totals(db: Database) -> tuple[int, int]:
    from sqlalchemy import func, select

    from earful.pipeline.classify import latest_version
    from earful.pipeline.schema import Classification, Mention

    version = latest_version(db)
    with db.session() as session:
        mentions = session.scalar(select(func.count(Mention.id))) or 0
        classified = session.scalar(
            select(func.count(Classification.id)).where(Classification.model_version == version)
        )
    return int(mentions), int(classified or 0)


def _summary(result: DemoResult, out: Console) -> None:
    import click
    from rich.table import Table

    table = Table(title="Earful demo")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    for stage in result.stages:
        table.add_row(stage.name, f"{stage.seconds:.1f}", stage.result)
    table.add_section()
    table.add_row("total", f"{result.seconds:.1f}", "")
    out.print(table, markup=False)
    click.echo(
        f"Mentions: {result.mentions:,} ({result.new_mentions:,} new this run); classified: "
        f"{result.classified_total:,} ({result.classified:,} this run); spike alerts: {len(result.alerts)} "
        f"({result.new_alerts} new this run)."
    )
    if result.report:
        click.echo(f"Report: {result.report}")
    click.echo(
        f"Next: open the report in a browser, or try `earful --config {result.config_path} status`; "
        "docs/marketing.md explains how to read the report and the alerts."
    )
