"""``earful alerts`` and ``earful backtest`` (see :mod:`earful.pipeline.cli`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from earful.pipeline.cli_common import console, jsonable, local_time, pct, state_of

# --------------------------------------------------------------------------- alerts


@click.command()
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

    state = state_of(ctx)
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
        f"Alerts as of {local_time(result.at, cfg)} {cfg.timezone} (last {cfg.alerts.window_hours} h, "
        f"model {result.model_version or 'none'}): {len(tested):,} tests of {len(brands)} brand(s) "
        f"and their topics, {sum(t.significant for t in result.tests)} flagged."
    )
    if result.alerts:
        table = Table(title="Dry run: would alert" if dry_run else "New alerts")
        numbers = ("observed", "expected", "p")
        for column in ("kind", "brand", "topic / source", "window", *numbers):
            table.add_column(column, justify="right" if column in numbers else "left")
        for a in result.alerts:
            window = (
                a.explanation.get("window", {}).get("local") or f"since {local_time(a.window_start, cfg)}"
            )
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
            "alerts": [jsonable(a) for a in result.alerts],
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


@click.command()
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
            cells = [f"{pct(s.fast_rate)} ({pct(s.detection_rate)})" for s in score.by_size.values()]
            delay = score.by_size[2.0].median_delay if 2.0 in score.by_size else float("nan")
            cells.append("-" if delay != delay else f"{delay:g} h")
        else:
            delay = score.median_delay
            cells = [
                f"{score.incidents}",
                f"{score.detected} ({pct(score.detection_rate) if score.incidents else '-'})",
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
