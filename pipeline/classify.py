"""Classification runs: every mention judged once per model version, resumably.

:func:`classify_mentions` finds the mentions that have no ``classification`` row for the
classifier's version yet (``NOT EXISTS``), streams them in id order in chunks of
``classifier.commit_every``, predicts each chunk (sorted by length, so padded batches waste
little) and writes its rows in one transaction. Nothing but the current chunk is held in
memory, so a million mentions take as much memory as a thousand.

Resuming needs no bookkeeping: a run that is killed keeps the chunks it committed, and the next
run's ``NOT EXISTS`` starts where it stopped. Rows are inserted with ``ON CONFLICT DO NOTHING``
on ``(mention_id, model_version)``, so two runs at once never duplicate a row either.

A text the model cannot judge (empty, only emoji or links, a language it does not know) gets a
row too, with ``status`` saying why and ``sentiment`` null: it is counted as classified and not
tried again. A new model version (another model, another taxonomy) classifies everything again
into new rows; the old version's rows stay for comparison. ``rescore=True`` recomputes the
current version's rows in place and never touches other versions'::

    result = classify_mentions(db, config)
    result.classified, result.unjudged  # 1200, {'no_text': 3, 'unsupported_language': 12}
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite

from earful.pipeline.config import Config
from earful.pipeline.db import Database
from earful.pipeline.errors import ModelError, ModelNotFound
from earful.pipeline.schema import Classification, Mention, utcnow

if TYPE_CHECKING:
    from earful.models.classifier import Classifier, Prediction

logger = logging.getLogger(__name__)

# What the model says about a text it did not judge; "ok" means it did.
STATUSES = ("ok", "empty", "no_text", "unsupported_language")
SENTIMENTS = ("negative", "neutral", "positive")

# Called with (mentions done, mentions to do) as the run goes.
Progress = Callable[[int, int], None]

_MENTION: Table = Mention.__table__  # type: ignore[assignment]
_CLASSIFICATION: Table = Classification.__table__  # type: ignore[assignment]
_UPDATED = ("sentiment", "score", "probabilities", "topics", "language", "status", "note", "created_at")


@dataclass(frozen=True)
class ClassifyResult:
    """What one classification run did."""

    version: str  # the model version the rows carry
    classified: int  # rows written: new ones, plus recomputed ones with rescore
    judged: int  # of those, texts the model judged (status ok)
    sentiments: dict[str, int]  # judged texts by sentiment
    unjudged: dict[str, int]  # texts not judged, by status (empty, no_text, unsupported_language)
    rescored: int  # rows of this version that existed and were recomputed (rescore)
    skipped: int  # rows another run wrote first (two runs at once)
    remaining: int  # mentions still without a row of this version (--limit, or new arrivals)
    seconds: float
    texts_per_s: float


# ------------------------------------------------------------------------- loading

_loaded: dict[tuple[Any, ...], Classifier] = {}
_load_lock = threading.Lock()


def load_classifier(config: Config) -> Classifier:
    """The classifier ``config`` asks for (``classifier.*`` and ``topics.taxonomy``).

    Loading takes seconds, so the last one loaded is kept for the life of the process (a
    worker or a test session that classifies again reuses it). A model that cannot be loaded
    is a :class:`ModelError` whose message says which setting to look at.
    """
    settings = config.classifier
    key = (settings.model, tuple(sorted(settings.labels.items())), config.topics.taxonomy, settings.runtime)
    with _load_lock:
        if key in _loaded:
            from earful.models import encoder

            encoder.set_threads(settings.threads)  # a process-wide setting of torch
            return _loaded[key]
        for setting, path in (
            ("classifier.model", settings.model),
            ("topics.taxonomy", config.topics.taxonomy),
        ):
            if path is not None and not path.exists():
                raise ModelNotFound(
                    f"{setting}: {path} does not exist; fix the path in the config "
                    "or remove the setting to use the model that ships with Earful"
                )
        where = f"model {settings.model}" if settings.model else "the shipped model"
        if config.topics.taxonomy:
            where += f", taxonomy {config.topics.taxonomy}"
        # The model loads offline and quietly; the CLI shows its own progress.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        started = time.monotonic()
        try:
            from earful.models import classifier as models

            clf = models.load(
                model=settings.model,
                labels=dict(settings.labels) or None,
                taxonomy=config.topics.taxonomy,
                threads=settings.threads,
                runtime=settings.runtime,
            )
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"cannot load the classifier ({where}): {detail}. Check classifier.model, "
                "classifier.labels and topics.taxonomy in the config"
            ) from exc
        logger.info("loaded classifier %s in %.1f s", clf.version, time.monotonic() - started)
        _loaded.clear()
        _loaded[key] = clf
        return clf


# ------------------------------------------------------------------------- running


def text_for(title: str | None, text: str) -> str:
    """What the model reads: the title, then the text (once, if the text repeats the title)."""
    title = (title or "").strip()
    if not title:
        return text
    head = title.rstrip(".!?…:;").casefold()
    if head and text.casefold().startswith(head):
        return text
    joiner = " " if title[-1] in ".!?…:;" else ". "
    return f"{title}{joiner}{text}"


def classify_mentions(
    db: Database,
    config: Config,
    classifier: Classifier | None = None,
    *,
    rescore: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
) -> ClassifyResult:
    """Classify the mentions that have no row for the classifier's version (all of them with
    ``rescore``), at most ``limit``, committing every ``classifier.commit_every`` mentions.

    ``classifier`` defaults to :func:`load_classifier` of the config.
    """
    clf = classifier if classifier is not None else load_classifier(config)
    settings = config.classifier
    version = clf.version
    started = time.monotonic()
    pending = _count_pending(db, version, rescore)
    todo = pending if limit is None else min(pending, max(limit, 0))
    if progress:
        progress(0, todo)

    done = inserted = rescored = 0
    statuses = dict.fromkeys(STATUSES, 0)
    sentiments = dict.fromkeys(SENTIMENTS, 0)
    last_id = 0
    while done < todo:
        chunk = _next_chunk(db, version, rescore, last_id, min(settings.commit_every, todo - done))
        if not chunk:
            break
        last_id = chunk[-1][0]
        # Longest texts together: a batch is padded to its longest text.
        chunk.sort(key=lambda row: len(row[1]))
        predictions: list[Prediction] = []
        for start in range(0, len(chunk), settings.batch_size):
            batch = chunk[start : start + settings.batch_size]
            predictions.extend(_predict(clf, [text for _, text, _ in batch], settings.batch_size))
            if progress:
                progress(done + len(predictions), todo)
        now = utcnow()
        rows = [_row(m_id, version, p, now) for (m_id, _, _), p in zip(chunk, predictions, strict=True)]
        written = _write(db, rows, rescore=rescore)
        done += len(chunk)
        for (m_id, _, existed), p in zip(chunk, predictions, strict=True):
            if m_id not in written:
                continue  # another run stored it first
            if existed:
                rescored += 1
            else:
                inserted += 1
            statuses[p.status] = statuses.get(p.status, 0) + 1
            if p.status == "ok" and p.label:
                sentiments[p.label] = sentiments.get(p.label, 0) + 1
        logger.info("classified %d of %d mentions with %s", done, todo, version)

    seconds = time.monotonic() - started
    classified = inserted + rescored
    remaining = _count_pending(db, version, rescore=False)
    return ClassifyResult(
        version=version,
        classified=classified,
        judged=statuses.get("ok", 0),
        sentiments=sentiments,
        unjudged={k: v for k, v in statuses.items() if k != "ok"},
        rescored=rescored,
        skipped=done - classified,
        remaining=remaining,
        seconds=round(seconds, 3),
        texts_per_s=round(done / seconds, 1) if seconds > 0 else 0.0,
    )


def _count_pending(db: Database, version: str, rescore: bool) -> int:
    """Mentions without a row of ``version`` (every mention with ``rescore``)."""
    m = _MENTION
    query = select(func.count()).select_from(m)
    if not rescore:
        query = query.where(~_has_row(version))
    with db.translate_errors(), db.engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def _has_row(version: str) -> Any:
    c = _CLASSIFICATION
    return exists().where(c.c.mention_id == _MENTION.c.id, c.c.model_version == version)


def _next_chunk(
    db: Database, version: str, rescore: bool, after_id: int, size: int
) -> list[tuple[int, str, bool]]:
    """The next ``size`` mentions to classify after ``after_id``, in id order: (id, the text
    the model reads, whether a row of ``version`` exists)."""
    m = _MENTION
    if rescore:
        query = select(m.c.id, m.c.title, m.c.text, _has_row(version).label("existed"))
    else:
        query = select(m.c.id, m.c.title, m.c.text).where(~_has_row(version))
    query = query.where(m.c.id > after_id).order_by(m.c.id).limit(size)
    with db.translate_errors(), db.engine.connect() as conn:
        return [
            (row.id, text_for(row.title, row.text), bool(row.existed) if rescore else False)
            for row in conn.execute(query)
        ]


def _predict(clf: Classifier, texts: Sequence[str], batch_size: int) -> list[Prediction]:
    try:
        return clf.predict(texts, batch_size=batch_size)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"the classifier {clf.version} failed on a batch: {detail}") from exc


def _row(mention_id: int, version: str, p: Prediction, now: datetime) -> dict[str, Any]:
    return {
        "mention_id": mention_id,
        "model_version": version,
        "sentiment": p.label,
        "score": None if p.score is None else round(float(p.score), 6),
        "probabilities": {k: round(float(v), 6) for k, v in p.probabilities.items()},
        "topics": p.topics_json(),
        "language": p.language[:16] if p.language else None,
        "status": p.status[:24],
        "note": p.note[:200] if p.note else None,
        "created_at": now,
    }


def _write(db: Database, rows: list[dict[str, Any]], *, rescore: bool) -> set[int]:
    """Insert the rows in one transaction; the mention ids whose row was written.

    Without ``rescore`` a row that exists (another run wrote it meanwhile) is left alone;
    with it, the row of this version is recomputed in place. Rows of other versions are
    never touched: the conflict target is (mention, version).
    """
    c = _CLASSIFICATION
    insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
    stmt = insert(c)
    target = [c.c.mention_id, c.c.model_version]
    if rescore:
        stmt = stmt.on_conflict_do_update(index_elements=target, set_={k: stmt.excluded[k] for k in _UPDATED})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=target)
    with db.translate_errors(), db.engine.begin() as conn:
        return set(conn.execute(stmt.returning(c.c.mention_id), rows).scalars())


def classified_counts(db: Database) -> dict[str, int]:
    """Mentions classified per model version (``earful status``)."""
    c = _CLASSIFICATION
    query = select(c.c.model_version, func.count()).group_by(c.c.model_version).order_by(c.c.model_version)
    with db.translate_errors(), db.engine.connect() as conn:
        return {version: int(n) for version, n in conn.execute(query).tuples()}


def latest_version(db: Database) -> str | None:
    """The model version that reports and alerts read: the one written most recently.

    A new model classifies everything again into rows of its own version; reports and alerts
    follow the newest version from its first row, so finish ``earful classify`` after a model
    change before reading them. ``None`` when nothing has been classified yet.
    """
    c = _CLASSIFICATION
    query = select(c.c.model_version).order_by(c.c.id.desc()).limit(1)
    with db.translate_errors(), db.engine.connect() as conn:
        return conn.execute(query).scalar_one_or_none()
