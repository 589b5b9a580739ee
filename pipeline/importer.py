"""Importing mentions from a file: how a team brings its history from another tool.

A file is JSON Lines (one object per line) or CSV with a header row; the fields are those of
:class:`~earful.pipeline.store.MentionIn` (``text`` is required; ``source`` per row or given
once for the whole file). A bad row — broken JSON, invalid UTF-8, a wrong type, an unknown
brand, a 10 MB text — is reported with its line number and reason and skipped; every good
row is stored. Rows are stored in batches, each committed on its own, so an import that is
interrupted keeps what it stored, and running it again converges to the state of one clean
run (the store upserts on ``(source, external_key)``; rows without a key get one derived from
their content).

Each source the file touches gets a ``crawl_run`` of kind ``import`` with its counts.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from earful.pipeline.config import Config
from earful.pipeline.db import Database
from earful.pipeline.errors import InputError
from earful.pipeline.schema import CrawlRun
from earful.pipeline.store import MentionIn, MentionStore, StoreResult

logger = logging.getLogger(__name__)

Format = Literal["jsonl", "csv"]
FIELDS = tuple(MentionIn.model_fields)
_OPTIONAL = {name for name, info in MentionIn.model_fields.items() if not info.is_required()}
# Big enough that an oversized text is read and rejected with its size, not a csv.Error.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class BadRow:
    line: int
    reason: str


@dataclass
class ImportResult:
    path: Path
    rows: int = 0
    stored: StoreResult = field(default_factory=StoreResult)
    bad: list[BadRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    per_source: dict[str, StoreResult] = field(default_factory=dict)
    # Rows that failed before the store, per source where the row named one.
    unreadable: dict[str, int] = field(default_factory=dict)

    def reject(self, line: int, reason: str, source: str | None) -> None:
        self.bad.append(BadRow(line, reason))
        if source:
            self.unreadable[source] = self.unreadable.get(source, 0) + 1


def detect_format(path: Path, given: str | None) -> Format:
    if given in ("jsonl", "csv"):
        return given  # type: ignore[return-value]
    if given is not None:
        raise InputError(f"unknown format {given!r}; use jsonl or csv")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise InputError(f"cannot tell the format of {path.name} from its extension; pass --format jsonl or csv")


def read_rows(fh: IO[bytes], fmt: Format) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield ``(line number, row)`` or ``(line number, reason)`` for a row that cannot be read."""
    if fmt == "jsonl":
        yield from _read_jsonl(fh)
    else:
        yield from _read_csv(fh)


def _read_jsonl(fh: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, raw in enumerate(fh, start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield number, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON: {exc.msg} at column {exc.colno}"
            continue
        if not isinstance(value, dict):
            yield number, f"expected a JSON object, got {type(value).__name__}"
            continue
        yield number, value


def _read_csv(fh: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    import io

    text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.DictReader(text)
    try:
        yield from _csv_rows(reader)
    except csv.Error as exc:
        raise InputError(f"CSV cannot be read past line {reader.line_num}: {exc}") from None
    finally:
        text.detach()  # the caller owns the binary file; closing the wrapper would close it


def _csv_rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    start = 2
    for row in reader:
        line = start
        start = reader.line_num + 1
        if None in row:
            yield line, f"{len(row[None])} more values than the header has columns"
            continue
        values = {k: v for k, v in row.items() if k is not None}
        if any(_has_surrogates(v) for v in values.values() if isinstance(v, str)):
            yield line, "not valid UTF-8"
            continue
        if any(v is None for v in values.values()):
            yield line, "fewer values than the header has columns"
            continue
        yield line, values


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)


def _coerce(row: dict[str, Any], default_source: str | None, csv_row: bool) -> dict[str, Any]:
    values = {k: v for k, v in row.items() if k in FIELDS}
    if csv_row:
        # In CSV an empty cell means "not given".
        values = {k: v for k, v in values.items() if not (k in _OPTIONAL and v == "")}
        if "is_brand_response" in values:
            flag = str(values["is_brand_response"]).strip().lower()
            values["is_brand_response"] = flag in ("1", "true", "yes", "y", "t")
    if not values.get("source") and default_source:
        values["source"] = default_source
    return values


class _Runs:
    """One ``crawl_run`` of kind ``import`` per source the file touches."""

    def __init__(self, db: Database, store: MentionStore) -> None:
        self.db = db
        self.store = store
        self.ids: dict[str, int] = {}

    def run_id(self, source: str) -> int:
        if source not in self.ids:
            source_id, _ = self.store.source_id(source, create=True)
            with self.db.session() as session:
                run = CrawlRun(source_id=source_id, kind="import", status="running")
                session.add(run)
                session.flush()
                self.ids[source] = run.id
        return self.ids[source]

    def finish(self, result: ImportResult, status: str, message: str | None) -> None:
        with self.db.session() as session:
            for source, run_id in self.ids.items():
                run = session.get(CrawlRun, run_id)
                if run is None:
                    continue
                counts = result.per_source.get(source, StoreResult())
                run.status = status
                run.finished_at = datetime.now(UTC)
                dropped = len(counts.rejected) + result.unreadable.get(source, 0)
                run.items_seen = counts.seen + dropped
                run.items_new = counts.new
                run.items_updated = counts.updated
                run.items_unchanged = counts.unchanged
                run.items_dropped = dropped
                run.message = message
                run.stats = {"file": result.path.name}


def import_file(
    db: Database,
    config: Config,
    path: str | Path,
    *,
    source: str | None = None,
    fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a JSONL or CSV file of mentions; see the module docstring.

    ``progress`` is called with the number of bytes read so far.
    """
    path = Path(path)
    kind = detect_format(path, fmt)
    if source is not None and source not in {s.name for s in config.sources}:
        logger.info("source %s is not in the config; it is created with kind 'import'", source)
    store = MentionStore(db, config)
    runs = _Runs(db, store)
    result = ImportResult(path=path)
    batch: list[tuple[int, MentionIn]] = []

    def flush() -> None:
        groups: dict[str, list[tuple[int, MentionIn]]] = {}
        for line, mention in batch:
            groups.setdefault(mention.source, []).append((line, mention))
        for name, items in groups.items():
            stored = store.store([m for _, m in items], crawl_run_id=runs.run_id(name), create_sources=True)
            result.stored.add(stored)
            result.per_source.setdefault(name, StoreResult()).add(stored)
            result.bad.extend(BadRow(items[i][0], reason) for i, reason in stored.rejected)
        batch.clear()

    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    status = "failed"
    message: str | None = "interrupted"
    try:
        with fh:
            ignored: set[str] = set()
            for line, row in read_rows(fh, kind):
                result.rows += 1
                if isinstance(row, str):
                    result.reject(line, row, source)
                    continue
                ignored.update(k for k in row if k not in FIELDS)
                values = _coerce(row, source, csv_row=kind == "csv")
                named = values.get("source")
                if not named:
                    result.reject(line, "no source: add a 'source' column or pass --source", None)
                    continue
                try:
                    mention = MentionIn.model_validate(values)
                except ValidationError as exc:
                    result.reject(line, _describe(exc), named if isinstance(named, str) else None)
                    continue
                batch.append((line, mention))
                if len(batch) >= store.batch_size:
                    flush()
                    if progress:
                        progress(fh.tell())
            if batch:
                flush()
            if progress:
                progress(fh.tell())
            result.ignored_columns = sorted(ignored)
        result.bad.sort(key=lambda b: b.line)
        status = "succeeded"
        message = f"{len(result.bad)} bad rows" if result.bad else None
    finally:
        if runs.ids:
            try:
                runs.finish(result, status, message)
            except Exception:  # the original error matters more than the bookkeeping
                if status == "succeeded":
                    raise
                logger.warning("could not record the import run's status", exc_info=True)
    if result.ignored_columns:
        logger.warning("ignored unknown columns: %s", ", ".join(result.ignored_columns))
    logger.info(
        "imported %s: %d rows, %d new, %d updated, %d unchanged, %d bad",
        path.name,
        result.rows,
        result.stored.new,
        result.stored.updated,
        result.stored.unchanged,
        len(result.bad),
    )
    return result
