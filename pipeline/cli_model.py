"""``earful classify`` and ``earful eval``: the model's commands (see :mod:`earful.pipeline.cli`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from earful.pipeline.cli_common import console, count_progress, err_console, jsonable, pct, state_of

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


@click.command()
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

    state = state_of(ctx)
    database = state.database()
    cfg = state.config
    overrides = {k: v for k, v in (("batch_size", batch_size), ("threads", threads)) if v is not None}
    if overrides:
        cfg = cfg.model_copy(update={"classifier": cfg.classifier.model_copy(update=overrides)})
    with err_console.status("loading the classifier ..."):
        clf = load_classifier(cfg)
    with count_progress("classifying") as advance:
        result = classify_mentions(database, cfg, clf, rescore=rescore, limit=limit, progress=advance)
    if as_json:
        click.echo(json.dumps(jsonable(result)))
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


# ----------------------------------------------------------------------------- eval


@click.command("eval")
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

    settings = state_of(ctx).config.classifier
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
                pct(s["accuracy"]),
                f"{s['macro_f1']:.3f}",
                pct(s["binary_accuracy"]),
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
        f"{pct(mams['sentiment_accuracy'])}"
    )
    taxonomy = Path(airline["taxonomy"]).name
    reasons = Table(title=f"Complaint reasons of negative airline tweets ({airline['n']:,}, {taxonomy})")
    for column in ("reason", "n", "accuracy@1"):
        reasons.add_column(column, justify="left" if column == "reason" else "right")
    for name, s in airline["per_reason"].items():
        reasons.add_row(name, f"{s['n']:,}", pct(s["accuracy_at_1"]))
    reasons.add_section()
    reasons.add_row("all", f"{airline['n']:,}", pct(airline["accuracy_at_1"]))
    console.print(reasons)
    click.echo(f"Airline micro-F1 over (tweet, reason) pairs: {airline['micro_f1']:.3f}")
