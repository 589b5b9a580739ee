"""Alerts: negative spikes per brand and topic, broken sources, and their delivery.

:func:`run_alerts` is what ``earful alerts`` and the hourly DAG call. One run:

1. re-delivers every delivery an earlier run left ``pending`` (:mod:`earful.pipeline.notify`);
2. counts, in the database, the negative and all judged mentions per brand and hour, and per
   brand, topic and hour, over the window and ``baseline_weeks`` of history before it (one
   ``GROUP BY`` query each, so a million mentions never travel to Python);
3. tests every brand and brand × topic with the rule of :mod:`earful.pipeline.detect`, with
   one Benjamini–Hochberg correction over all tests of the run;
4. turns what the rule flags into at most one alert per brand (the brand-wide test and the
   topic tests of one brand are one episode), skips what is within the cool-down of an earlier
   alert, and explains each: observed against expected, the topics and sources that drive it,
   three of the most negative mentions with their links, the window in the team's time zone;
5. adds an alert for each source whose last three crawls failed or stored nothing, once per
   streak of bad runs;
6. stores the alerts (insert-or-ignore on ``dedup_key``: two runs at once never duplicate one)
   and delivers the new ones.

What is counted: reviews and comments (not posts, not the brand's own responses) with a
classification of the newest model version (:func:`~earful.pipeline.classify.latest_version`)
whose status is ``ok``. A mention counts in the hour it was published; one without a date in
the hour it was collected (so a site that gives no dates is still watched; its first crawl puts
its whole backlog into one hour, which the rule sees as that hour's volume). A mention is about a
topic when the topic is in its classification (the model keeps only topics above their
threshold), and negative about it when the sentences naming the topic are negative (the whole
mention's sentiment when the topic has none of its own).

A brand's history starts at its first counted mention: a brand that is new has no baseline and
is not tested until it has a day of history (the run says so), rather than being compared with
weeks of zeros. Its topics share its history: a topic that appears for the first time is
compared with the zero mentions it had while the brand was watched.

``at`` fixes "now" (by default the current hour, floored), so a run is reproducible: the window
is the ``window_hours`` complete hours before it::

    result = run_alerts(db, config, at=datetime(2026, 11, 25, 14, tzinfo=UTC), dry_run=True)
    [a.explanation["summary"] for a in result.alerts]
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    Table,
    and_,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from earful.pipeline.classify import latest_version, text_for
from earful.pipeline.config import Config
from earful.pipeline.counts import (
    HOUR,
    compact,
    count_hours,
    counted,
    counted_branches,
    event_time,
    has_history,
    in_range,
    judged,
    negative_classification,
)
from earful.pipeline.db import Database
from earful.pipeline.detect import (
    WEEK_HOURS,
    Cooldown,
    Rule,
    Series,
    Verdict,
    check_many,
    cooldown_key,
    decide,
)
from earful.pipeline.notify import DeliveryReport, Example, Message, deliver_alerts, initial_deliveries
from earful.pipeline.schema import Alert, Brand, Classification, CrawlRun, Mention, Source, utcnow
from earful.pipeline.status import UNHEALTHY_RUNS, health_problem

logger = logging.getLogger(__name__)

EXAMPLES = 3
MAX_DRIVERS = 5
EXAMPLE_CHARS = 280

_MENTION: Table = Mention.__table__  # type: ignore[assignment]
_CLASSIFICATION: Table = Classification.__table__  # type: ignore[assignment]
_ALERT: Table = Alert.__table__  # type: ignore[assignment]
_SOURCE: Table = Source.__table__  # type: ignore[assignment]
_RUN: Table = CrawlRun.__table__  # type: ignore[assignment]


def hour_floor(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()}; give a time zone")
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Test:
    """One test of the run: a brand (``topic`` None) or a brand and topic."""

    brand: str
    topic: str | None
    verdict: Verdict
    significant: bool  # flagged by the rule (before the cool-down)


@dataclass(frozen=True)
class RaisedAlert:
    """An alert this run raised (stored unless it was a dry run)."""

    kind: str  # spike | source_health
    key: str
    brand: str | None
    topic: str | None
    source: str | None
    window_start: datetime
    window_end: datetime
    observed: float | None
    expected: float | None
    p_value: float | None
    explanation: dict[str, Any]
    id: int | None = None  # the stored row; None in a dry run or when another run stored it first


@dataclass(frozen=True)
class AlertRun:
    """What one ``earful alerts`` run did."""

    at: datetime  # the end of the window (UTC hour)
    model_version: str | None
    dry_run: bool
    tests: list[Test]
    untested: dict[str, str]  # brand -> why it was not tested
    alerts: list[RaisedAlert]  # new this run
    cooling: list[str]  # flagged, but within the cool-down of an earlier alert (brand[/topic])
    duplicates: list[str]  # dedup keys already stored (another run got there first)
    redelivered: list[DeliveryReport] = field(default_factory=list)
    delivered: list[DeliveryReport] = field(default_factory=list)
    seconds: float = 0.0
    check_seconds: float = 0.0  # counting and testing only

    @property
    def pending(self) -> int:
        """Deliveries still pending after this run."""
        latest: dict[tuple[int, str], str] = {}
        for report in [*self.redelivered, *self.delivered]:
            for outcome in report.outcomes:
                latest[(report.alert_id, outcome.channel)] = outcome.status
        return sum(1 for status in latest.values() if status != "sent")


# --------------------------------------------------------------------------- the run


def run_alerts(
    db: Database,
    config: Config,
    *,
    at: datetime | None = None,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertRun:
    """Re-deliver pending alerts, test every brand and topic at ``at``, store and deliver the
    new alerts. ``dry_run`` stores and sends nothing (pending deliveries stay pending)."""
    started = time.monotonic()
    end = hour_floor(at or datetime.now(UTC))
    redelivered = [] if dry_run else deliver_alerts(db, config, alert_message, sleep=sleep)
    checked = time.monotonic()
    if not dry_run:
        compact(db)  # fold the hourly counts added since the last run (see earful.pipeline.counts)
    found = detect(db, config, end)
    health = source_health_alerts(db, config, end)
    check_seconds = time.monotonic() - checked
    raised = [*found.alerts, *health]
    stored: list[RaisedAlert] = []
    duplicates: list[str] = []
    if dry_run:
        stored = raised
    else:
        for alert in raised:
            alert_id = _insert(db, config, alert)
            if alert_id is None:
                duplicates.append(alert.key)
            else:
                stored.append(_with_id(alert, alert_id))
    delivered = []
    if not dry_run and stored and config.notifiers:
        ids = [a.id for a in stored if a.id is not None]
        delivered = deliver_alerts(db, config, alert_message, alert_ids=ids, sleep=sleep)
    for alert in stored:
        logger.info("alert %s: %s", alert.key, alert.explanation.get("summary"))
    return AlertRun(
        at=end,
        model_version=found.version,
        dry_run=dry_run,
        tests=found.tests,
        untested=found.untested,
        alerts=stored,
        cooling=found.cooling,
        duplicates=duplicates,
        redelivered=redelivered,
        delivered=delivered,
        seconds=round(time.monotonic() - started, 3),
        check_seconds=round(check_seconds, 3),
    )


def _with_id(alert: RaisedAlert, alert_id: int) -> RaisedAlert:
    return replace(alert, id=alert_id)


def _insert(db: Database, config: Config, alert: RaisedAlert) -> int | None:
    """Store ``alert`` unless its dedup key is stored already; its id, or None."""
    insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
    brand_id = source_id = None
    with db.translate_errors(), db.engine.begin() as conn:
        if alert.brand is not None:
            brand_id = conn.scalar(select(Brand.id).where(Brand.name == alert.brand))
        if alert.source is not None:
            source_id = conn.scalar(select(Source.id).where(Source.name == alert.source))
        stmt = (
            insert(_ALERT)
            .values(
                dedup_key=alert.key,
                kind=alert.kind,
                brand_id=brand_id,
                source_id=source_id,
                topic=alert.topic,
                window_start=alert.window_start,
                window_end=alert.window_end,
                observed=alert.observed,
                expected=alert.expected,
                p_value=alert.p_value,
                explanation=alert.explanation,
                deliveries=initial_deliveries(config),
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=[_ALERT.c.dedup_key])
            .returning(_ALERT.c.id)
        )
        return conn.execute(stmt).scalar_one_or_none()


# --------------------------------------------------------------------------- detecting


@dataclass(frozen=True)
class Detection:
    """What the rule found at one hour (nothing stored)."""

    version: str | None
    tests: list[Test]
    untested: dict[str, str]
    alerts: list[RaisedAlert]
    cooling: list[str]


def detect(db: Database, config: Config, end: datetime) -> Detection:
    """Test every brand and brand × topic for the window ending at ``end`` and return the spike
    alerts to raise (after the cool-down of stored alerts). Stores nothing."""
    rule = Rule.from_settings(config.alerts)
    end = hour_floor(end)
    with db.translate_errors(), db.engine.connect() as conn:
        brands = dict(conn.execute(select(Brand.id, Brand.name).order_by(Brand.name)).tuples().all())
    version = latest_version(db)
    if version is None:
        return Detection(None, [], dict.fromkeys(brands.values(), "nothing is classified yet"), [], [])
    span = rule.window_hours + rule.baseline_weeks * WEEK_HOURS
    start = end - span * HOUR
    by_brand, by_topic = count_hours(db, version, start, end)

    series: list[tuple[int, str | None, Series]] = []
    untested: dict[str, str] = {}
    offsets: dict[int, int] = {}
    brand_totals: dict[int, np.ndarray[Any, Any]] = {}
    for brand_id, name in brands.items():
        counts = by_brand.get(brand_id)
        hit = np.flatnonzero(counts.total) if counts else np.empty(0, dtype=np.int64)
        first = int(hit[0]) if hit.size else None
        # History starts at the brand's first counted mention, not weeks of zeros before it.
        if first == 0 or has_history(db, version, brand_id, start):
            offset = 0
        elif first is None:
            untested[name] = "no classified mentions yet"
            continue
        else:
            offset = first
        offsets[brand_id] = offset
        size = span - offset
        neg = counts.negative[offset:] if counts else np.zeros(size, dtype=np.int64)
        tot = counts.total[offset:] if counts else np.zeros(size, dtype=np.int64)
        series.append((brand_id, None, Series(start + offset * HOUR, neg, tot)))
        brand_totals[brand_id] = tot
    for (brand_id, topic), counts in sorted(by_topic.items()):
        if brand_id not in offsets:
            continue
        offset = offsets[brand_id]
        neg = counts.negative[offset:]
        if neg.any():
            # A topic's share test: its negatives against all of the brand's mentions (a topic
            # becoming a larger part of what is said about the brand, negatively).
            tot = np.maximum(brand_totals[brand_id], neg)
            series.append((brand_id, topic, Series(start + offset * HOUR, neg, tot)))

    verdicts = check_many([s for _, _, s in series], end, rule)
    flags = decide(verdicts, rule, groups=[b for b, _, _ in series])  # BH per brand
    tests = [Test(brands[b], t, v, f) for (b, t, _), v, f in zip(series, verdicts, flags, strict=True)]
    for test in tests:
        if test.topic is None and not test.verdict.tested:
            untested[test.brand] = test.verdict.reason

    cooldown = Cooldown.from_alerts(rule.cooldown_hours, _last_alerts(db, end, rule.cooldown_hours))
    alerts: list[RaisedAlert] = []
    cooling: list[str] = []
    by_brand_tests: dict[int, list[tuple[Test, Series]]] = defaultdict(list)
    for (brand_id, _, s), test in zip(series, tests, strict=True):
        by_brand_tests[brand_id].append((test, s))
    for brand_id, items in by_brand_tests.items():
        flagged = [(t, s) for t, s in items if t.significant]
        if not flagged:
            continue
        fresh = [
            (t, s)
            for t, s in flagged
            if cooldown.allows(cooldown_key(str(brand_id), t.topic), t.verdict.window_end)
        ]
        fresh_topics = {t.topic for t, _ in fresh}
        cooling += [
            f"{t.brand}/{t.topic}" if t.topic else t.brand for t, _ in flagged if t.topic not in fresh_topics
        ]
        if not fresh:
            continue
        for t, _ in flagged:
            cooldown.admit(cooldown_key(str(brand_id), t.topic), t.verdict.window_end)
        alerts.append(
            _spike_alert(db, config, rule, version, brand_id, brands[brand_id], items, fresh, flagged)
        )
    return Detection(version, tests, untested, alerts, cooling)


def _last_alerts(db: Database, end: datetime, hours: int) -> dict[str, datetime]:
    """Cool-down keys of the spike alerts whose window ended in the ``hours`` before ``end``
    (or later: a run for an earlier hour after a later one), with their window end."""
    a = _ALERT
    query = select(a.c.brand_id, a.c.topic, a.c.window_end, a.c.explanation).where(
        a.c.kind == "spike", a.c.window_end > end - timedelta(hours=hours + 1)
    )
    last: dict[str, datetime] = {}
    with db.translate_errors(), db.engine.connect() as conn:
        rows = conn.execute(query).all()
    for brand_id, topic, window_end, explanation in rows:
        covers = (explanation or {}).get("covers") or [topic]
        for covered in covers:
            key = cooldown_key(str(brand_id), covered)
            if key not in last or last[key] < window_end:
                last[key] = window_end
    return last


# --------------------------------------------------------------------------- explaining


def _spike_alert(
    db: Database,
    config: Config,
    rule: Rule,
    version: str,
    brand_id: int,
    brand: str,
    items: list[tuple[Test, Series]],
    fresh: list[tuple[Test, Series]],
    flagged: list[tuple[Test, Series]],
) -> RaisedAlert:
    """One alert for a brand: headed by its most significant fresh topic (or the brand-wide
    test when no topic is flagged), explained by every test of the brand."""
    topical = [(t, s) for t, s in fresh if t.topic is not None]
    head, _ = min(topical or fresh, key=lambda ts: (ts[0].verdict.combined_p_value, ts[0].topic or ""))
    v = head.verdict
    brand_test = next((t for t, _ in items if t.topic is None), None)
    tz = config.tz
    local_start, local_end = v.window_start.astimezone(tz), v.window_end.astimezone(tz)
    end_fmt = "%H:%M" if local_start.date() == local_end.date() else "%Y-%m-%d %H:%M"
    window_text = f"{local_start:%Y-%m-%d %H:%M}–{local_end.strftime(end_fmt)} {config.timezone}"
    about = f" about {head.topic}" if head.topic else ""
    summary = (
        f"{brand}: {v.observed} negative mentions{about} in {window_text}, "
        f"{v.expected:.1f} expected ({v.ratio:.1f}×), p = {v.combined_p_value:.2g}"
    )
    topics: list[dict[str, Any]] = []
    for t, _ in items:
        if t.topic is None or not t.verdict.tested or t.verdict.observed == 0:
            continue
        topics.append(
            {
                "topic": t.topic,
                "observed": t.verdict.observed,
                "expected": round(t.verdict.expected, 2),
                "ratio": round(t.verdict.ratio, 2),
                "p_value": t.verdict.combined_p_value,
                "flagged": t.significant,
            }
        )
    topics.sort(key=lambda d: (-(d["observed"] - d["expected"]), d["topic"]))
    # The baseline detect used: the same hours one, two, ... weeks (or days) back.
    sources = _source_drivers(db, version, brand_id, head.topic, v, v.baseline_period, v.baseline_periods)
    examples = _examples(db, config, version, brand_id, head.topic, v)
    explanation: dict[str, Any] = {
        "summary": summary,
        "brand": brand,
        "topic": head.topic,
        "window": {
            "start": v.window_start.isoformat(),
            "end": v.window_end.isoformat(),
            "local": window_text,
            "timezone": config.timezone,
        },
        "test": v.to_dict(),
        "brand_test": brand_test.verdict.to_dict() if brand_test and head.topic else None,
        "flagged": [t.topic for t, _ in flagged],
        "covers": [t.topic for t, _ in flagged],
        "topics": topics[:MAX_DRIVERS],
        "sources": sources,
        "examples": examples,
        "rule": {
            "window_hours": rule.window_hours,
            "baseline_weeks": rule.baseline_weeks,
            "min_count": rule.min_count,
            "min_ratio": rule.min_ratio,
            "false_discovery_rate": rule.fdr,
            "cooldown_hours": rule.cooldown_hours,
        },
        "model_version": version,
    }
    return RaisedAlert(
        kind="spike",
        key=spike_key(brand_id, head.topic, v.window_end),
        brand=brand,
        topic=head.topic,
        source=None,
        window_start=v.window_start,
        window_end=v.window_end,
        observed=float(v.observed),
        expected=round(v.expected, 4),
        p_value=v.combined_p_value,
        explanation=explanation,
    )


def spike_key(brand_id: int, topic: str | None, window_end: datetime) -> str:
    """``spike:<brand id>:<topic or *>:<window end, UTC hour>``: one alert per spike."""
    return f"spike:{brand_id}:{(topic or '*')[:100]}:{window_end.astimezone(UTC):%Y-%m-%dT%H}Z"


def _topic_negative_filter(topic: str | None) -> ColumnElement[bool]:
    c = _CLASSIFICATION
    if topic is None:
        return c.c.sentiment == "negative"
    entry = c.c.topics[(topic, "sentiment")].as_string()
    present = c.c.topics[(topic, "score")].as_string().is_not(None)
    return and_(present, func.coalesce(entry, c.c.sentiment) == "negative")


def _source_drivers(
    db: Database,
    version: str,
    brand_id: int,
    topic: str | None,
    v: Verdict,
    period: int,
    periods: int,
) -> list[dict[str, Any]]:
    """Negative mentions per source in the window against the mean of the same hours in the
    baseline periods (only those hours are read: one range per period back)."""
    m, c = _MENTION, _CLASSIFICATION
    parts = []
    for back in range(periods + 1):
        shift = back * period * HOUR
        for _, where in counted_branches(v.window_start - shift, v.window_end - shift):
            conditions = [m.c.brand_id == brand_id, where, _topic_negative_filter(topic)]
            if topic is not None:  # a negative topic implies this: read through its partial index
                conditions.append(negative_classification())
            parts.append(
                select(literal(back).label("back"), m.c.source_id, func.count())
                .select_from(m.join(c, judged(version)))
                .where(*conditions)
                .group_by(m.c.source_id)
            )
    in_window: dict[str, int] = defaultdict(int)
    before: dict[str, int] = defaultdict(int)
    with db.translate_errors(), db.engine.connect() as conn:
        names = dict(conn.execute(select(_SOURCE.c.id, _SOURCE.c.name)).tuples().all())
        rows = conn.execute(union_all(*parts)).all()
    for back, source_id, n in rows:
        name = names.get(source_id, f"source {source_id}")
        if back == 0:
            in_window[name] += int(n)
        else:
            before[name] += int(n)
    drivers: list[dict[str, Any]] = []
    for name in set(in_window) | set(before):
        expected = before[name] / periods if periods else 0.0
        drivers.append({"source": name, "observed": in_window[name], "expected": round(expected, 2)})
    drivers.sort(key=lambda d: (-(d["observed"] - d["expected"]), d["source"]))
    return [d for d in drivers if d["observed"]][:MAX_DRIVERS]


def _examples(
    db: Database, config: Config, version: str, brand_id: int, topic: str | None, v: Verdict
) -> list[dict[str, Any]]:
    """The most negative mentions of the window (one per text: a review syndicated on several
    sites is shown once)."""
    m, c, s = _MENTION, _CLASSIFICATION, _SOURCE
    query = (
        select(
            m.c.title,
            m.c.text,
            m.c.url,
            m.c.content_hash,
            event_time().label("at"),
            s.c.name,
            c.c.probabilities["negative"].as_float().label("p"),
        )
        .select_from(m.join(c, judged(version)).join(s, s.c.id == m.c.source_id))
        .where(
            m.c.brand_id == brand_id,
            in_range(v.window_start, v.window_end),
            counted(),
            _topic_negative_filter(topic),
        )
        .order_by(c.c.probabilities["negative"].as_float().desc(), m.c.id)
        .limit(EXAMPLES * 4)
    )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    with db.translate_errors(), db.engine.connect() as conn:
        rows = conn.execute(query).all()
    for title, body_text, url, content_hash, at, source, p in rows:
        if content_hash in seen:
            continue
        seen.add(content_hash)
        body = text_for(title, body_text)
        if len(body) > EXAMPLE_CHARS:
            body = body[: EXAMPLE_CHARS - 1].rstrip() + "…"
        when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
        out.append(
            {
                "text": body,
                "url": url,
                "source": source,
                "at": when.astimezone(config.tz).strftime("%Y-%m-%d %H:%M"),
                "negative": None if p is None else round(float(p), 3),
            }
        )
        if len(out) == EXAMPLES:
            break
    return out


# --------------------------------------------------------------------------- source health


def source_health_alerts(db: Database, config: Config, end: datetime) -> list[RaisedAlert]:
    """An alert for each enabled source whose last crawls failed or stored nothing
    (:func:`~earful.pipeline.status.health_problem`), keyed on the first bad run of the
    streak: one ongoing problem alerts once, and a source that recovers and breaks again
    alerts again."""
    r = _RUN
    out = []
    with db.session() as session:
        sources = list(session.scalars(select(Source).where(Source.enabled).order_by(Source.name)))
        brands = dict(session.execute(select(Brand.id, Brand.name)).tuples().all())
        for source in sources:
            runs = list(
                session.scalars(
                    select(CrawlRun)
                    .where(CrawlRun.source_id == source.id)
                    .order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
                    .limit(10)
                )
            )
            problem = health_problem(runs)
            if problem is None:
                continue
            finished = (r.c.source_id == source.id) & (r.c.kind == "crawl") & (r.c.status != "running")
            good = finished & (r.c.status != "failed") & (r.c.items_seen > 0)
            last_good = session.scalar(select(func.max(r.c.id)).where(good)) or 0
            streak = list(
                session.execute(
                    select(r.c.id, r.c.started_at, r.c.status, r.c.items_seen, r.c.errors, r.c.message)
                    .where(finished, r.c.id > last_good)
                    .order_by(r.c.id)
                )
            )
            if len(streak) < UNHEALTHY_RUNS:
                continue
            first, last = streak[0], streak[-1]
            summary = f"Source {source.name}: {problem} (since {_local(first.started_at, config)})"
            recent = [
                {
                    "started_at": _local(row.started_at, config),
                    "status": row.status,
                    "items_seen": row.items_seen,
                    "errors": row.errors,
                    "message": (row.message or "")[:200] or None,
                }
                for row in reversed(streak[-5:])
            ]
            out.append(
                RaisedAlert(
                    kind="source_health",
                    key=f"health:{source.id}:{first.id}",
                    brand=brands.get(source.brand_id) if source.brand_id else None,
                    topic=None,
                    source=source.name,
                    window_start=first.started_at,
                    window_end=max(last.started_at, first.started_at),
                    observed=float(len(streak)),
                    expected=None,
                    p_value=None,
                    explanation={
                        "summary": summary,
                        "source": source.name,
                        "problem": problem,
                        "bad_runs": len(streak),
                        "runs": recent,
                        "timezone": config.timezone,
                    },
                )
            )
    return out


def _local(when: datetime, config: Config) -> str:
    return when.astimezone(config.tz).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- messages


def alert_message(alert: Alert | RaisedAlert) -> Message:
    """What the channels say about an alert (from its stored explanation alone)."""
    e = alert.explanation or {}
    key = alert.dedup_key if isinstance(alert, Alert) else alert.key
    if alert.kind == "source_health":
        lines = [str(e.get("summary", ""))]
        for run in e.get("runs", []):
            line = f"{run.get('started_at')}: {run.get('status')}, {run.get('items_seen')} items"
            if run.get("message"):
                line += f" ({run['message']})"
            lines.append(line)
        return Message(
            key=key, title=f"Earful: source {e.get('source')} looks broken", lines=tuple(lines), data=e
        )
    test = e.get("test") or {}
    lines = [str(e.get("summary", ""))]
    brand_test = e.get("brand_test")
    if brand_test and brand_test.get("tested"):
        lines.append(
            f"All of {e.get('brand')}: {brand_test['observed']} negative mentions, "
            f"{brand_test['expected']:.1f} expected (p = {brand_test['p_value']:.2g})."
        )
    shared = test if test.get("share_observed") is not None else brand_test or {}
    if shared.get("share_observed") is not None:
        share, usual = 100 * shared["share_observed"], 100 * (shared.get("share_expected") or 0)
        p = shared.get("share_p_value")
        who = f"{e.get('brand')}'s negative share" if shared is brand_test else "Negative share"
        lines.append(f"{who} {share:.0f}%, usually {usual:.0f}% (p = {1 if p is None else p:.2g}).")
    lines.append(f"Compared with {test.get('reason', 'the past weeks')}.")
    if e.get("topics"):
        lines.append(
            "Topics: "
            + ", ".join(f"{d['topic']} {d['observed']} (usually {d['expected']:g})" for d in e["topics"])
        )
    if e.get("sources"):
        lines.append(
            "Sources: "
            + ", ".join(f"{d['source']} {d['observed']} (usually {d['expected']:g})" for d in e["sources"])
        )
    examples = tuple(
        Example(text=str(x.get("text", "")), url=x.get("url"), source=x.get("source"), when=x.get("at"))
        for x in e.get("examples", [])
    )
    about = f" about {e['topic']}" if e.get("topic") else ""
    title = f"Earful: negative spike for {e.get('brand')}{about}"
    return Message(key=key, title=title, lines=tuple(lines), examples=examples, data=e)
