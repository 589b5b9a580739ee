"""How good are the alerts? Replay hourly runs on history with known incidents and count.

The rule in :mod:`earful.pipeline.detect` is replayed hour by hour exactly as the hourly
alerts job runs it (every brand and topic tested, a brand with its total mentions and a topic
with its negatives only, Benjamini–Hochberg across one run's tests, one alert per brand and
run, the same cool-down), next to two simple rules a team might write instead:

* ``mean3sd``: the last hour's negatives exceed the mean plus three standard deviations of
  the previous 24 hourly counts (and reach ``min_count``);
* ``lasthour``: the last hour's negatives exceed twice the mean of the previous 12 hours
  (and reach ``min_count``).

Each is tested on every brand and topic and gets the same grouping (one alert per brand and
run) and cool-down per brand/topic, so one episode alerts once. An alert belongs to an
incident of its brand when it fires after the incident starts and at most ``window_hours``
after it ends (a run that late still sees it); every other alert is a false alarm.
Detection delay is the hours from the incident's start to the first such alert.

Two kinds of history:

* :func:`synthetic_history`: seeded, with explicit, documented parameters
  (:data:`MENTIONS_PER_DAY`, :data:`NEGATIVE_SHARE`, :data:`GENERATOR`): weekly and daily
  seasonality, drift, noise shared by all mentions of a brand (busy hours are busy for
  negatives and the rest alike), a negative share that wanders by the day, the hour and the
  topic, benign bursts, and injected spikes of several sizes. Nothing in the rule knows these
  parameters.
* :func:`read_history` / :func:`read_incidents`: a team's own hourly counts and the incidents
  they know of, as CSV; replayed with the default rule (nothing tuned to the file).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

from earful.pipeline.detect import HOUR, Cooldown, Rule, Series, cooldown_key, decide_arrays, scan
from earful.pipeline.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "BacktestResult",
    "History",
    "Incident",
    "MethodScore",
    "backtest",
    "read_history",
    "read_incidents",
    "synthetic_history",
]

METHODS = ("ours", "mean3sd", "lasthour")
SPIKE_SIZES = (1.5, 2.0, 3.0, 5.0)
#: The headline: a doubling of negatives caught within this many hours.
HEADLINE_SIZE, HEADLINE_DELAY = 2.0, 2
MONTH_HOURS = 30 * 24
#: Synthetic brands by their mean negatives an hour: under 3 quiet, 3 to 10 mid, from 10 busy.
VOLUME_BANDS = (("quiet", 0.0, 3.0), ("mid", 3.0, 10.0), ("busy", 10.0, math.inf))
#: Synthetic history: judged mentions a day per brand (log-uniform) and their negative share
#: (uniform). See :data:`GENERATOR` and the README for the rest.
MENTIONS_PER_DAY = (100.0, 5000.0)
NEGATIVE_SHARE = (0.10, 0.30)
#: The synthetic generator's other parameters (the README lists them).
GENERATOR: dict[str, float] = {
    "night_dip": 2 / 3,  # the daily cycle: night at a third of the afternoon peak
    "weekend": 0.75,  # weekend days' volume against weekdays'
    "drift_per_day": 0.02,  # sd of the daily step of the log-volume random walk
    "day_dispersion": 0.01,  # day-to-day volume factor, gamma: about +-10%
    "hour_dispersion": 0.05,  # hourly volume noise, gamma (negative binomial counts): +-22%
    "share_day_sd": 0.10,  # the negative share's day-to-day wander (logit sd)
    "share_hour_sd": 0.2,  # ... and hour-to-hour (logit sd)
    "share_topic_hour_sd": 0.2,  # each topic's own hour-to-hour wander on top (logit sd)
    "volume_burst_every_h": 240,  # a benign burst of all mentions every ~10 days
    "volume_burst_size": 1.6,  # ... x1.6 (log-normal), 1-2 hours
    "negative_burst_every_h": 240,  # a benign burst of negatives every ~10 days
    "negative_burst_size": 1.4,  # ... x1.4 (log-normal), 1-2 hours
    "topic_coverage": 0.8,  # share of mentions about one of the topics
    "spike_focus": 0.7,  # share of a spike's extra negatives in its topic
    "spike_gap_h": 72,  # a brand's spikes start at least this many hours after the last ends
    "spike_gap_spread_h": 48,  # ... plus up to this many more (so every 3-5 days)
}
#: Real histories: the first hours of every series are warm-up, never alerting.
WARMUP_HOURS = 48


@dataclass(frozen=True)
class Incident:
    """A known episode: ``brand`` had a negative spike in hours [start, end)."""

    brand: str
    start: datetime
    end: datetime
    size: float | None = None  # synthetic: the injected multiplier
    topic: str | None = None  # synthetic: the topic that carried the extra negatives


@dataclass(frozen=True, eq=False)
class History:
    """Aligned hourly series: ``negative[i]`` (and ``total[i]``) belong to ``keys[i]``.

    Column 0 is ``start``; a series' counts before ``first[i]`` are not history (it had
    not started), and alerts are only counted from ``first[i] + warmup`` on.
    """

    start: datetime
    keys: list[tuple[str, str | None]]  # (brand, topic or None for the whole brand)
    negative: npt.NDArray[np.int64]  # series x hours
    total: npt.NDArray[np.int64] | None
    first: npt.NDArray[np.int64]
    warmup: int
    incidents: list[Incident] = field(default_factory=list)
    benign: list[Incident] = field(default_factory=list)  # synthetic: the benign bursts
    levels: dict[str, float] = field(default_factory=dict)  # synthetic: mean negatives/hour
    # Synthetic: each series' true expected negatives an hour without the spikes (all the
    # generator's noise but the last Poisson draw), for the oracle reference.
    expected: npt.NDArray[np.float64] | None = None

    @property
    def hours(self) -> int:
        return int(self.negative.shape[1])

    @property
    def brands(self) -> list[str]:
        return sorted({brand for brand, _ in self.keys})

    def brand_months(self, brands: Iterable[str] | None = None) -> float:
        """Evaluated time, summed over brands (all, or ``brands``), in 30-day months."""
        hours = 0
        for brand in self.brands if brands is None else brands:
            starts = [int(self.first[i]) for i, (b, _) in enumerate(self.keys) if b == brand]
            hours += max(0, self.hours - (min(starts) + self.warmup))
        return hours / MONTH_HOURS

    def index(self, when: datetime) -> int:
        return int((when - self.start) // HOUR)


@dataclass(frozen=True)
class Alert:
    key: tuple[str, str | None]
    at: int  # hour index of the window end (the run's hour)


@dataclass(frozen=True)
class MethodScore:
    """One method's figures; ``by_size`` holds the same per injected size (synthetic)."""

    incidents: int
    detected: int
    detected_fast: int  # within HEADLINE_DELAY hours
    delays: list[int]
    false_alarms: int
    brand_months: float
    by_size: dict[float, MethodScore] = field(default_factory=dict)

    @property
    def detection_rate(self) -> float:
        return self.detected / self.incidents if self.incidents else math.nan

    @property
    def fast_rate(self) -> float:
        return self.detected_fast / self.incidents if self.incidents else math.nan

    @property
    def median_delay(self) -> float:
        return float(np.median(self.delays)) if self.delays else math.nan

    @property
    def false_alarms_per_brand_month(self) -> float:
        return self.false_alarms / self.brand_months if self.brand_months else math.nan


@dataclass(frozen=True)
class BacktestResult:
    synthetic: bool
    scores: dict[str, MethodScore]
    brands: int
    hours: int
    rule: Rule
    thresholds: dict[str, float] = field(default_factory=dict)  # of the matched baselines
    by_volume: dict[str, MethodScore] = field(default_factory=dict)  # ours, by VOLUME_BANDS

    def to_dict(self) -> dict[str, Any]:
        """The flat figures ``earful backtest --json`` prints (baselines prefixed)."""
        out: dict[str, Any] = {}
        for method, score in self.scores.items():
            prefix = {"ours": "", "oracle": "reference_oracle_"}.get(method, f"baseline_{method}_")
            if self.synthetic:
                headline = score.by_size.get(HEADLINE_SIZE, score)
                out[prefix + "detection_rate"] = _num(headline.fast_rate)
            else:
                out[prefix + "detection_rate"] = _num(score.detection_rate)
            out[prefix + "false_alarms_per_brand_month"] = _num(score.false_alarms_per_brand_month)
            out[prefix + "incidents"] = score.incidents
            out[prefix + "detected"] = score.detected
            out[prefix + "median_delay_hours"] = _num(score.median_delay)
            for size, sub in sorted(score.by_size.items()):
                tag = f"{size:g}x"
                out[f"{prefix}detection_rate_{tag}"] = _num(sub.fast_rate)
                out[f"{prefix}detection_rate_any_{tag}"] = _num(sub.detection_rate)
                out[f"{prefix}median_delay_hours_{tag}"] = _num(sub.median_delay)
                out[f"{prefix}incidents_{tag}"] = sub.incidents
        for band, sub in self.by_volume.items():
            out[f"detection_rate_{HEADLINE_SIZE:g}x_{band}"] = _num(sub.fast_rate)
            out[f"incidents_{HEADLINE_SIZE:g}x_{band}"] = sub.incidents
            out[f"false_alarms_per_brand_month_{band}"] = _num(sub.false_alarms_per_brand_month)
        for name, value in self.thresholds.items():
            if name == "oracle":
                out["reference_oracle_alpha"] = value
            else:
                out[f"baseline_{name}_matched_threshold"] = value
        out["brands"] = self.brands
        out["hours"] = self.hours
        return out


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


# ------------------------------------------------------------------------------ synthetic


def synthetic_history(
    *,
    weeks: int = 12,
    brands: int = 8,
    topics: int = 3,
    seed: int = 7,
    sizes: Sequence[float] = SPIKE_SIZES,
    warmup_weeks: int = 2,
    mentions_per_day: tuple[float, float] = MENTIONS_PER_DAY,
    negative_share: tuple[float, float] = NEGATIVE_SHARE,
    spike_basis: str = "hour",
) -> History:
    """Hourly mentions of ``brands`` brands with injected negative spikes (seeded).

    Per brand: judged mentions a day drawn log-uniformly from ``mentions_per_day`` and a
    negative share uniformly from ``negative_share``; the rest is :data:`GENERATOR` (and the
    README). The volume follows a daily cycle (night at a third of the afternoon peak),
    quieter weekends, a slow drift, a day-to-day factor and gamma hourly noise, all of it
    shared by negative and other mentions (a busy hour is busy for both). The negative share
    wanders on the logit scale by the day, by the hour and, per topic, by the hour again;
    benign bursts lift the volume or the negative share for an hour or two without being
    incidents. Mentions fall into ``topics`` topics (a fifth into none), each with its own
    negativity. Counts are Poisson given all that.

    A spike of size ``s`` adds a stream of negative mentions at ``s - 1`` times the negative
    rate the brand would otherwise have had in that hour (``spike_basis="hour"``: the same
    hour's seasonality, drift and noise; so a 2x spike doubles the negatives of those hours
    on average), or at ``s - 1`` times the brand's typical hourly rate, its weekly average
    (``spike_basis="typical"``, which makes night spikes relatively larger). Most of the
    extra goes to one topic. Spikes last 3–8 hours and start at random hours after the
    warm-up, 3–5 days apart per brand, cycling through ``sizes``.
    """
    if weeks <= warmup_weeks:
        raise ValueError(f"weeks must exceed the {warmup_weeks} warm-up weeks, not {weeks}")
    if spike_basis not in ("hour", "typical"):
        raise ValueError(f"spike_basis must be 'hour' or 'typical', not {spike_basis!r}")
    g = GENERATOR
    rng = np.random.default_rng(seed)
    hours = weeks * 168
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    h = np.arange(hours)
    hour_of_day, day = h % 24, h // 24
    daily = 1 - g["night_dip"] / 2 + g["night_dip"] / 2 * np.cos(2 * np.pi * (hour_of_day - 15) / 24)
    weekly = np.where(day % 7 >= 5, g["weekend"], 1.0)
    shape = daily * weekly / (daily * weekly)[: 168 * (hours // 168) or hours].mean()
    keys: list[tuple[str, str | None]] = []
    expected: list[npt.NDArray[np.float64]] = []
    negatives: list[npt.NDArray[np.int64]] = []
    totals: list[npt.NDArray[np.int64]] = []
    incidents: list[Incident] = []
    benign: list[Incident] = []
    levels: dict[str, float] = {}
    warm = warmup_weeks * 168
    days = hours // 24 + 1
    # Volumes spread evenly over the range (log scale), jittered and shuffled: every seed has
    # about the same mix of small and big brands.
    low, high = np.log(mentions_per_day)
    spots = rng.permutation((np.arange(brands) + rng.random(brands)) / brands)
    for b in range(brands):
        brand = f"brand-{b + 1}"
        per_hour = math.exp(low + (high - low) * spots[b]) / 24
        share = float(rng.uniform(*negative_share))
        drift = np.exp(np.cumsum(rng.normal(0, g["drift_per_day"], days)))[day]
        day_factor = rng.gamma(1 / g["day_dispersion"], g["day_dispersion"], days)[day]
        typical = per_hour * drift  # the brand's weekly-average hour, as it drifts
        volume = typical * shape * day_factor
        volume = rng.gamma(1 / g["hour_dispersion"], g["hour_dispersion"] * volume)  # shared noise
        # The negative share: per brand, wandering by the day and by the hour (logit scale).
        logit = (
            math.log(share / (1 - share))
            + rng.normal(0, g["share_day_sd"], days)[day]
            + rng.normal(0, g["share_hour_sd"], hours)
        )
        neg_share = 1 / (1 + np.exp(-logit))
        # Benign bursts: a campaign or a viral post lifts all mentions; a small thread of
        # complaints lifts the negative share. Neither is an incident.
        for what, every, median in (
            ("volume", g["volume_burst_every_h"], g["volume_burst_size"]),
            ("negative", g["negative_burst_every_h"], g["negative_burst_size"]),
        ):
            for s in np.flatnonzero(rng.random(hours) < 1 / every):
                length, size = int(rng.integers(1, 3)), math.exp(rng.normal(math.log(median), 0.25))
                if what == "volume":
                    volume[s : s + length] *= size
                else:
                    neg_share[s : s + length] = np.minimum(0.95, neg_share[s : s + length] * size)
                benign.append(Incident(brand, start + int(s) * HOUR, start + int(s + length) * HOUR, size))
        # Topics: a share of the mentions each (the rest have none), each with its own
        # negativity around the brand's, which wanders by the hour by itself too.
        mix = rng.dirichlet(np.full(topics, 4.0)) * g["topic_coverage"]
        parts = np.append(mix, 1 - g["topic_coverage"])
        tone = rng.normal(0, 0.3, topics + 1)
        topic_logit = (
            np.log(neg_share / (1 - neg_share))[None, :]
            + tone[:, None]
            + rng.normal(0, g["share_topic_hour_sd"], (topics + 1, hours))
        )
        p_neg = 1 / (1 + np.exp(-topic_logit))
        neg_rate = volume * (parts[:, None] * p_neg).sum(axis=0)  # the hour's negative intensity
        neg = rng.poisson(volume[None, :] * parts[:, None] * p_neg)
        other = rng.poisson(volume[None, :] * parts[:, None] * (1 - p_neg))
        typical_share = float(neg_rate.sum() / volume.sum())  # the brand's average share
        levels[brand] = float(neg_rate.mean())
        # Incidents: sizes in turn, random starts 3-5 days apart.
        t = warm + int(rng.integers(0, 48))
        n = 0
        while True:
            length = int(rng.integers(3, 9))
            if t + length >= hours:
                break
            size = float(sizes[(n + b) % len(sizes)])
            topic = int(rng.integers(0, topics))
            own = neg_rate[t : t + length]  # what these hours would otherwise have had
            base = own if spike_basis == "hour" else typical[t : t + length] * typical_share
            extra = rng.poisson((size - 1) * base)
            focused = rng.binomial(extra, g["spike_focus"])
            weights = (parts[:, None] * p_neg[:, t : t + length]).sum(axis=1)
            spread = rng.multinomial(extra - focused, weights / weights.sum()).T
            spread[topic] += focused
            neg[:, t : t + length] += spread
            incidents.append(
                Incident(brand, start + t * HOUR, start + (t + length) * HOUR, size, f"topic-{topic + 1}")
            )
            n += 1
            t += length + int(g["spike_gap_h"]) + int(rng.integers(0, int(g["spike_gap_spread_h"])))
        keys.append((brand, None))
        expected.append(neg_rate)
        negatives.append(neg.sum(axis=0))
        totals.append(neg.sum(axis=0) + other.sum(axis=0))
        for i in range(topics):
            keys.append((brand, f"topic-{i + 1}"))
            expected.append(volume * parts[i] * p_neg[i])
            negatives.append(neg[i])
            totals.append(neg[i] + other[i])
    return History(
        start=start,
        keys=keys,
        negative=np.stack(negatives).astype(np.int64),
        total=np.stack(totals).astype(np.int64),
        first=np.zeros(len(keys), dtype=np.int64),
        warmup=warm,
        incidents=incidents,
        benign=benign,
        levels=levels,
        expected=np.stack(expected),
    )


# ------------------------------------------------------------------------------ real CSV


def read_history(path: Path) -> History:
    """Read hourly counts ``time,brand,negative[,total][,topic]`` from a CSV file.

    Times are ISO-8601 (UTC when no offset is given) and floored to the hour; rows of the
    same hour and series are added up; hours without a row had no mentions. A row with an
    empty topic counts the whole brand. Each series starts at its first row, and its first
    48 hours are warm-up. With a ``total`` column every row needs one. A malformed file
    raises :class:`InputError` naming the line and column.
    """
    rows = _read_csv(path, required=("time", "brand", "negative"), optional=("total", "topic"))
    data: dict[tuple[str, str | None], dict[datetime, list[int]]] = {}
    has_total = False
    for line, row in rows:
        when = _parse_time(row["time"], path, line, "time").replace(minute=0, second=0, microsecond=0)
        brand = _text(row["brand"], path, line, "brand")
        topic = (row.get("topic") or "").strip() or None
        negative = _count(row["negative"], path, line, "negative")
        total = _count(row["total"], path, line, "total") if "total" in row else None
        if total is not None:
            has_total = True
            if total < negative:
                raise InputError(f"{path} line {line}, column total: {total} is below negative ({negative})")
        slot = data.setdefault((brand, topic), {}).setdefault(when, [0, 0])
        slot[0] += negative
        slot[1] += total if total is not None else negative
    if not data:
        raise InputError(f"{path}: no rows after the header; expected time,brand,negative")
    start = min(min(slots) for slots in data.values())
    end = max(max(slots) for slots in data.values()) + HOUR
    hours = int((end - start) // HOUR)
    keys = sorted(data, key=lambda k: (k[0], k[1] or ""))
    negatives = np.zeros((len(keys), hours), dtype=np.int64)
    totals = np.zeros((len(keys), hours), dtype=np.int64)
    first = np.zeros(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        slots = data[key]
        idx = np.array([int((t - start) // HOUR) for t in slots], dtype=np.int64)
        vals = np.array(list(slots.values()), dtype=np.int64)
        negatives[i, idx] = vals[:, 0]
        totals[i, idx] = vals[:, 1]
        first[i] = idx.min()
    logger.info("read %d series over %d hours from %s", len(keys), hours, path)
    return History(
        start=start,
        keys=keys,
        negative=negatives,
        total=totals if has_total else None,
        first=first,
        warmup=WARMUP_HOURS,
    )


def read_incidents(path: Path) -> list[Incident]:
    """Read known incidents ``brand,start,end`` (ISO-8601 times, UTC when no offset)."""
    incidents = []
    for line, row in _read_csv(path, required=("brand", "start", "end"), optional=()):
        brand = _text(row["brand"], path, line, "brand")
        start = _parse_time(row["start"], path, line, "start")
        end = _parse_time(row["end"], path, line, "end")
        if end <= start:
            raise InputError(f"{path} line {line}, column end: {row['end']!r} is not after start")
        incidents.append(Incident(brand, start, end))
    return incidents


def _read_csv(
    path: Path, *, required: Sequence[str], optional: Sequence[str]
) -> Iterable[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{path} is empty; expected a header line with {','.join(required)}") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"{path} line 1: missing column {', '.join(missing)} (the header must name "
            f"{','.join(required)}" + (f", optionally {','.join(optional)}" if optional else "") + ")"
        )
    unknown = [c for c in header if c not in (*required, *optional)]
    if unknown:
        raise InputError(f"{path} line 1: unknown column {', '.join(unknown)}")
    out = []
    for n, values in enumerate(reader, start=2):
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise InputError(f"{path} line {n}: {len(values)} fields, the header has {len(header)}")
        out.append((n, dict(zip(header, values, strict=True))))
    return out


def _parse_time(value: str, path: Path, line: int, column: str) -> datetime:
    text = value.strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise InputError(f"{path} line {line}, column {column}: {value!r} is not an ISO-8601 time") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _count(value: str, path: Path, line: int, column: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = -1
    if number < 0:
        raise InputError(f"{path} line {line}, column {column}: {value!r} is not a whole number >= 0")
    return number


def _text(value: str, path: Path, line: int, column: str) -> str:
    if not value.strip():
        raise InputError(f"{path} line {line}, column {column}: empty")
    return value.strip()


# ------------------------------------------------------------------------------- methods


def alerts_ours(
    history: History, rule: Rule, *, topic_share: bool = True, per_brand: bool = True
) -> list[Alert]:
    """Replay the hourly alerts job: every series tested each hour, BH across the run.

    As ``earful alerts`` does, a brand's series gets its total mentions (the share test) and a
    topic's is tested on its negatives' share of all the brand's mentions. ``topic_share=False``
    gives topics the count test only (the rule before it; kept for comparison).
    """
    n_series, hours = history.negative.shape
    brand_row = {brand: i for i, (brand, topic) in enumerate(history.keys) if topic is None}
    # Column j is the run at hour index j + 1 (window end), as the hourly job would see it.
    p = np.full((n_series, hours), np.nan)
    observed = np.zeros((n_series, hours), dtype=np.int64)
    size = np.zeros((n_series, hours))
    for i, (brand, topic) in enumerate(history.keys):
        first = int(history.first[i])
        counts = history.negative[i, first:]
        total = None
        if history.total is not None:
            if topic is None:
                total = history.total[i, first:]
            elif topic_share and brand in brand_row:
                total = np.maximum(history.total[brand_row[brand], first:], counts)
        ends = np.arange(history.warmup + 1, counts.size + 1, dtype=np.int64)
        if ends.size == 0:
            continue
        s = scan(Series(history.start + first * HOUR, counts, total), rule, ends)
        cols = first + ends - 1
        p[i, cols] = np.where(s.tested, s.combined_p_value, np.nan)
        observed[i, cols] = s.observed
        size[i, cols] = s.effect
    fire = np.zeros((n_series, hours), dtype=bool)
    groups = np.unique([brand for brand, _ in history.keys], return_inverse=True)[1] if per_brand else None
    for j in np.flatnonzero((~np.isnan(p)).any(axis=0)):
        tested = ~np.isnan(p[:, j])
        fire[:, j] = decide_arrays(p[:, j], observed[:, j], size[:, j], tested, rule, groups)
    return _cool(history, fire, rule.cooldown_hours)


def alerts_mean3sd(history: History, rule: Rule, k: float = 3.0) -> list[Alert]:
    """Baseline: last hour > mean + k sd (k = 3) of the previous 24 hours, and >= min_count."""
    y = history.negative.astype(np.float64)
    prev = _rolling(y, 24)
    mean, sd = prev.mean(axis=2), prev.std(axis=2, ddof=1)
    last = y[:, 24:]
    fire = (last > mean + k * sd) & (last >= rule.min_count)
    return _cool(history, _pad_left(fire, 24, y.shape[1]), rule.cooldown_hours)


def alerts_lasthour(history: History, rule: Rule, factor: float = 2.0) -> list[Alert]:
    """Baseline: last hour > factor (2) x the mean of the previous 12 hours, and >= min_count."""
    y = history.negative.astype(np.float64)
    mean = _rolling(y, 12).mean(axis=2)
    last = y[:, 12:]
    fire = (last > factor * mean) & (last >= rule.min_count)
    return _cool(history, _pad_left(fire, 12, y.shape[1]), rule.cooldown_hours)


#: The oracle's windows (hours ending at the run) and its false-alarm budget: the issue's.
ORACLE_WINDOWS = (1, 2, 3)
ORACLE_FALSE_ALARMS_PER_BRAND_MONTH = 1.0


def oracle_tails(history: History, rule: Rule) -> npt.NDArray[np.float64]:
    """Reference, synthetic history only: for each series and run, how improbable its last 1,
    2 or 3 hours of negatives are for a rule that knows each hour's true expected negatives
    (``history.expected``: the generator's seasonality, drift, volume noise, share wander and
    benign bursts, all but the final Poisson draw and the spikes). The smallest Poisson upper
    tail over the windows that reach ``min_count``; ``inf`` where none does. No real rule knows
    the rate, so what the oracle misses at a false-alarm rate, a rule that sees only counts
    misses too: an estimate of the ceiling."""
    if history.expected is None:
        raise ValueError("the oracle needs a synthetic history (its true expected counts)")
    y = history.negative.astype(np.float64)
    smallest = np.full(y.shape, np.inf)
    for w in ORACLE_WINDOWS:
        kernel = np.ones(w)
        obs = np.array([np.convolve(row, kernel)[: y.shape[1]] for row in y])
        exp = np.array([np.convolve(row, kernel)[: y.shape[1]] for row in history.expected])
        tail = stats.poisson.sf(obs - 1, np.maximum(exp, 1e-9))
        smallest = np.minimum(smallest, np.where(obs >= rule.min_count, tail, np.inf))
    smallest[:, : max(ORACLE_WINDOWS)] = np.inf
    return np.asarray(smallest, dtype=np.float64)


def alerts_oracle(
    history: History, rule: Rule, alpha: float, tails: npt.NDArray[np.float64] | None = None
) -> list[Alert]:
    """The oracle's alerts: series whose :func:`oracle_tails` fall below ``alpha`` (``tails``
    computed once when several alphas are tried)."""
    tails = oracle_tails(history, rule) if tails is None else tails
    return _cool(history, tails < alpha, rule.cooldown_hours)


def _rolling(y: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
    """For each hour t >= n, the n hours before it: shape (series, hours - n, n)."""
    windows = np.lib.stride_tricks.sliding_window_view(y, n, axis=1)
    return np.asarray(windows[:, : y.shape[1] - n, :], dtype=np.float64)


def _pad_left(fire: npt.NDArray[np.bool_], n: int, hours: int) -> npt.NDArray[np.bool_]:
    out = np.zeros((fire.shape[0], hours), dtype=bool)
    out[:, n:] = fire
    return out


def _cool(history: History, fire: npt.NDArray[np.bool_], cooldown_hours: int) -> list[Alert]:
    """Alerts after warm-up and cool-down, as the alerts job raises them: ``fire[i, j]`` is
    series ``i`` flagged by the run that ends hour ``j``; a run raises one alert per brand
    when any of its flagged series is out of cool-down, and every flagged series then
    starts a cool-down."""
    cooldown = Cooldown(cooldown_hours)
    alerts = []
    for j in np.flatnonzero(fire.any(axis=0)):
        at = int(j) + 1
        when = history.start + at * HOUR
        flagged: dict[str, list[int]] = {}
        for i in np.flatnonzero(fire[:, j]):
            if j >= history.first[i] + history.warmup:
                flagged.setdefault(history.keys[i][0], []).append(int(i))
        for rows in flagged.values():
            keys = [cooldown_key(*history.keys[i]) for i in rows]
            if any(cooldown.allows(key, when) for key in keys):
                for key in keys:
                    cooldown.admit(key, when)
                alerts.append(Alert(history.keys[rows[0]], at))
    return alerts


# ------------------------------------------------------------------------------- scoring


def score(
    history: History,
    alerts: Sequence[Alert],
    incidents: Sequence[Incident],
    grace: int,
    brands: Iterable[str] | None = None,
) -> MethodScore:
    """Match alerts to incidents of their brand; the rest are false alarms.

    An alert at hour ``at`` (its window end) belongs to an incident when
    ``start < at <= end + grace``: it fired after the incident began and while a run could
    still see it.
    """
    spans = [
        (inc, history.index(inc.start), math.ceil((inc.end - history.start) / HOUR)) for inc in incidents
    ]
    first_alert: dict[int, int] = {}
    false_alarms = 0
    for alert in alerts:
        hit = False
        for n, (inc, s, e) in enumerate(spans):
            if inc.brand == alert.key[0] and s < alert.at <= e + grace:
                hit = True
                first_alert[n] = min(first_alert.get(n, alert.at), alert.at)
        false_alarms += not hit
    return _summarise(spans, first_alert, false_alarms, history.brand_months(brands), grace)


def _summarise(
    spans: Sequence[tuple[Incident, int, int]],
    first_alert: dict[int, int],
    false_alarms: int,
    brand_months: float,
    grace: int,
    by_size: bool = True,
) -> MethodScore:
    delays = [first_alert[n] - spans[n][1] for n in sorted(first_alert)]
    sizes: dict[float, MethodScore] = {}
    if by_size:
        for size in sorted({inc.size for inc, _, _ in spans if inc.size is not None}):
            chosen = [n for n, (inc, _, _) in enumerate(spans) if inc.size == size]
            sub = {chosen.index(n): first_alert[n] for n in chosen if n in first_alert}
            sizes[size] = _summarise(
                [spans[n] for n in chosen], sub, false_alarms, brand_months, grace, by_size=False
            )
    return MethodScore(
        incidents=len(spans),
        detected=len(first_alert),
        detected_fast=sum(d <= HEADLINE_DELAY for d in delays),
        delays=delays,
        false_alarms=false_alarms,
        brand_months=brand_months,
        by_size=sizes,
    )


def backtest(
    history: History,
    rule: Rule | None = None,
    incidents: Sequence[Incident] | None = None,
    *,
    topic_share: bool = True,
    per_brand: bool = True,
) -> BacktestResult:
    """Replay our rule and both baselines on ``history`` and score them on ``incidents``
    (default: the history's own, i.e. the injected ones).

    Each baseline is also replayed with its threshold raised (k for mean + k sd, the factor
    for last hour) until it raises no more false alarms than our rule: the ``*_matched``
    scores compare detection at an equal false-alarm rate, which is the fair comparison.
    """
    rule = rule or Rule()
    known = list(history.incidents if incidents is None else incidents)
    brands = set(history.brands)
    unknown = sorted({inc.brand for inc in known} - brands)
    if unknown:
        logger.warning("incidents for brands not in the history are ignored: %s", ", ".join(unknown))
        known = [inc for inc in known if inc.brand in brands]
    grace = rule.window_hours
    ours = alerts_ours(history, rule, topic_share=topic_share, per_brand=per_brand)
    scores = {
        "ours": score(history, ours, known, grace),
        "mean3sd": score(history, alerts_mean3sd(history, rule), known, grace),
        "lasthour": score(history, alerts_lasthour(history, rule), known, grace),
    }
    target = scores["ours"].false_alarms
    thresholds: dict[str, float] = {}
    for name, grid, method in (
        ("mean3sd", np.arange(3.0, 30.01, 0.5), alerts_mean3sd),
        ("lasthour", np.arange(2.0, 40.01, 0.5), alerts_lasthour),
    ):
        for value in grid:
            matched = score(history, method(history, rule, float(value)), known, grace)
            if matched.false_alarms <= target:
                break
        scores[f"{name}_matched"] = matched
        thresholds[name] = float(value)
    for name, s in scores.items():
        logger.info("%s: %d detected of %d, %d false alarms", name, s.detected, s.incidents, s.false_alarms)
    if history.expected is not None:
        # The ceiling: the oracle at the false-alarm budget (the largest alpha of the
        # grid that stays within it).
        budget = ORACLE_FALSE_ALARMS_PER_BRAND_MONTH * history.brand_months()
        tails = oracle_tails(history, rule)
        for exponent in np.arange(2.0, 12.01, 0.25):
            oracle = score(history, alerts_oracle(history, rule, 10.0**-exponent, tails), known, grace)
            if oracle.false_alarms <= budget:
                break
        scores["oracle"] = oracle
        thresholds["oracle"] = float(10.0**-exponent)
    by_volume: dict[str, MethodScore] = {}
    if history.levels:
        for band, low, high in VOLUME_BANDS:
            chosen = {b for b, level in history.levels.items() if low <= level < high}
            mine = [a for a in ours if a.key[0] in chosen]
            sub = score(history, mine, [i for i in known if i.brand in chosen], grace, chosen)
            by_volume[band] = sub.by_size.get(HEADLINE_SIZE, sub)
    synthetic = any(inc.size is not None for inc in known)
    return BacktestResult(synthetic, scores, len(brands), history.hours, rule, thresholds, by_volume)
