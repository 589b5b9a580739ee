"""The negative-spike rule shared by ``earful alerts`` and ``earful backtest``, on real numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from earful.pipeline.config import AlertSettings
from earful.pipeline.detect import (
    COUNT_WEIGHT,
    HOUR,
    Cooldown,
    Rule,
    Series,
    Verdict,
    check,
    check_many,
    cooldown_key,
    decide,
    decide_arrays,
    scan,
)

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
RULE = Rule()


def seasonal(weeks: float, level: float = 10.0) -> np.ndarray:
    """Hourly expected negatives with a daily and a weekly cycle (no noise)."""
    h = np.arange(int(weeks * 168))
    daily = 0.65 + 0.35 * np.cos(2 * np.pi * (h % 24 - 15) / 24)
    weekly = np.where((h // 24) % 7 >= 5, 0.75, 1.0)
    return level * daily * weekly / 0.65


def noisy(mean: np.ndarray, seed: int = 1, dispersion: float = 0.05) -> np.ndarray:
    """Negative-binomial counts around ``mean`` (gamma-Poisson)."""
    rng = np.random.default_rng(seed)
    return rng.poisson(rng.gamma(1 / dispersion, dispersion * mean)).astype(np.int64)


def with_spike(counts: np.ndarray, mean: np.ndarray, start: int, hours: int, size: float) -> np.ndarray:
    out = counts.copy()
    out[start : start + hours] += np.round((size - 1) * mean[start : start + hours]).astype(np.int64)
    return out


def test_spike_of_negative_mentions_is_tested_against_past_weeks_and_alerts() -> None:
    mean = seasonal(7)
    counts = noisy(mean)
    end = len(counts)  # the last three hours are the spike
    series = Series(START, with_spike(counts, mean, end - 3, 3, 3.0))
    verdict = check(series, START + end * HOUR, RULE)
    assert verdict.tested
    assert verdict.reason == "the same 3 hours of the week in the past 6 weeks"
    assert verdict.baseline_period == 168
    assert verdict.baseline_periods == 6
    assert verdict.window_start == START + (end - 3) * HOUR
    assert verdict.ratio > 2.5
    assert verdict.p_value < 1e-5
    assert verdict.share_p_value is None  # no totals given
    assert decide([verdict], RULE) == [True]
    quiet = check(Series(START, counts), START + end * HOUR, RULE)
    assert quiet.tested
    assert 0.5 < quiet.ratio < 1.5
    assert decide([quiet], RULE) == [False]


def test_an_early_spike_is_found_in_its_first_hours() -> None:
    """Two hours into a doubling the whole window is only 1.67x, but its last two hours are 2x."""
    mean = seasonal(7, level=40)
    counts = noisy(mean, seed=4)
    end = len(counts) - 5  # a weekday afternoon
    counts[end - 3 : end] = np.round(mean[end - 3 : end] * [1, 2, 2])  # noise-free, to see the shape
    series = Series(START, counts)
    verdict = check(series, START + end * HOUR, RULE)
    assert verdict.peak_hours in (1, 2)
    assert verdict.ratio >= RULE.min_ratio
    assert decide([verdict], RULE) == [True]


def test_share_of_negative_mentions_is_tested_when_totals_are_known() -> None:
    mean = seasonal(7, level=20)
    negative = noisy(mean, seed=2)
    other = noisy(3 * mean, seed=3)
    end = len(negative)
    spiked = with_spike(negative, mean, end - 3, 3, 2.5)
    series = Series(START, spiked, spiked + other)
    verdict = check(series, START + end * HOUR, RULE)
    assert verdict.share_observed is not None
    assert verdict.share_expected is not None
    assert verdict.share_expected == pytest.approx(0.25, abs=0.03)
    assert verdict.share_observed > 0.4
    assert verdict.share_p_value is not None
    assert verdict.share_p_value < 1e-5
    # Weighted Bonferroni: the share test, which cancels busy and quiet hours, gets 0.8.
    assert verdict.combined_p_value == pytest.approx(
        min(1.0, verdict.p_value / COUNT_WEIGHT, verdict.share_p_value / (1 - COUNT_WEIGHT))
    )
    # The size is negatives per other mention against the usual (an odds ratio).
    assert verdict.effect is not None
    assert verdict.effect == pytest.approx(
        (verdict.share_observed / (1 - verdict.share_observed))
        / (verdict.share_expected / (1 - verdict.share_expected)),
        rel=0.05,
    )
    # A burst of all mentions keeps the share: the share test is not surprised.
    burst_total = spiked + other
    burst_total[end - 3 :] += 3 * (spiked[end - 3 :] - negative[end - 3 :])
    calm = check(Series(START, spiked, burst_total), START + end * HOUR, RULE)
    assert calm.share_p_value is not None
    assert calm.share_p_value > 0.05


def test_p_values_are_honest_on_quiet_weeks() -> None:
    """Without spikes, about 1% of hours have p < 0.01: the tests are neither blind nor jumpy."""
    rates = []
    for seed in range(4):
        mean = seasonal(10, level=15)
        s = scan(
            Series(START, noisy(mean, seed=seed), noisy(4 * mean, seed=seed + 10) + noisy(mean, seed=seed)),
            RULE,
        )
        tested = s.tested & (s.ends >= 2 * 168 + 3)
        rates.append(float((s.combined_p_value[tested] < 0.01).mean()))
    assert 0.002 < float(np.mean(rates)) < 0.02


def test_p_values_are_honest_in_the_tail_of_a_busy_series() -> None:
    """Busy hours multiply (volume, share): log-normal swings of +-30% on 150 negatives an
    hour. The negative binomial's tail would call many such hours one in ten thousand."""
    rng = np.random.default_rng(11)
    mean = seasonal(12, level=150)
    swing = np.exp(rng.normal(-0.045, 0.3, mean.size))
    counts = rng.poisson(mean * swing).astype(np.int64)
    s = scan(Series(START, counts), RULE)
    tested = s.tested & (s.ends >= 2 * 168 + 3)
    assert float((s.p_value[tested] < 1e-3).mean()) < 3e-3


def test_a_busy_hour_that_raises_every_mention_is_not_an_incident() -> None:
    """With all mentions known, the size is negatives per other mention: twice the volume
    with the usual share is significant as a count, but not a negative spike."""
    mean = seasonal(7, level=40)
    negative, other = noisy(mean, seed=12, dispersion=0.01), noisy(4 * mean, seed=13, dispersion=0.01)
    end = len(negative) - 5
    negative[end - 2 : end] *= 2
    other[end - 2 : end] *= 2
    verdict = check(Series(START, negative, negative + other), START + end * HOUR, RULE)
    assert verdict.p_value < 1e-4  # the count is surprising ...
    assert verdict.effect is not None
    assert verdict.effect < RULE.min_ratio  # ... the share is not
    assert decide([verdict], RULE) == [False]
    counts_only = check(Series(START, negative), START + end * HOUR, RULE)
    assert counts_only.effect is not None
    assert counts_only.effect >= 1.8
    assert decide([counts_only], RULE) == [True]


def test_a_past_incident_does_not_hide_the_next_one() -> None:
    mean = seasonal(7)
    counts = noisy(mean, seed=5)
    end = len(counts)
    counts = with_spike(counts, mean, end - 3 - 168 * 2, 3, 6.0)  # same hours, two weeks ago
    verdict = check(Series(START, with_spike(counts, mean, end - 3, 3, 3.0)), START + end * HOUR, RULE)
    assert decide([verdict], RULE) == [True]
    assert verdict.expected < 1.3 * mean[end - 3 :].sum()


def test_brand_new_brand_is_not_tested_and_says_why() -> None:
    series = Series(START, np.array([0, 2, 30, 40, 35, 20], dtype=np.int64))
    verdict = check(series, START + 6 * HOUR, RULE)
    assert not verdict.tested
    assert verdict.reason == "not tested: 3 hours of history before the window, at least 24 are needed"
    assert verdict.p_value == 1.0
    assert decide([verdict], RULE) == [False]
    early = check(series, START + 2 * HOUR, RULE)
    assert not early.tested
    assert "starts before the series" in early.reason


def test_short_history_falls_back_to_the_past_days() -> None:
    mean = seasonal(1.5)
    counts = noisy(mean, seed=6)
    three_days = check(Series(START, counts[: 3 * 24 + 3]), START + (3 * 24 + 3) * HOUR, RULE)
    assert three_days.tested
    assert three_days.baseline_period == 24
    assert three_days.baseline_periods == 3
    assert "on the past 3 days" in three_days.reason
    assert "weekly pattern is not known yet" in three_days.reason
    ten_days = check(Series(START, counts[: 10 * 24 + 3]), START + (10 * 24 + 3) * HOUR, RULE)
    assert ten_days.baseline_period == 24
    assert ten_days.baseline_periods == 10
    two_weeks = check(Series(START, noisy(seasonal(2.1))), START + (2 * 168 + 3) * HOUR, RULE)
    assert two_weeks.baseline_period == 168
    assert two_weeks.baseline_periods == 2
    assert "only 2 of 6 weeks of history so far" in two_weeks.reason


def test_all_zero_history_still_has_a_positive_expectation() -> None:
    counts = np.zeros(3 * 168, dtype=np.int64)
    end = len(counts)
    counts[end - 3 :] = [2, 3, 2]
    verdict = check(Series(START, counts), START + end * HOUR, RULE)
    assert verdict.tested
    assert 0 < verdict.expected <= 0.5
    assert np.isfinite(verdict.ratio)
    assert verdict.p_value < 0.005
    assert decide([verdict], RULE) == [True]  # seven where there were never any
    counts[end - 3 :] = [1, 0, 1]
    assert decide([check(Series(START, counts), START + end * HOUR, RULE)], RULE) == [False]  # min_count


def test_large_but_small_excess_is_not_an_alert() -> None:
    """1.4x on a big brand is significant, but under min_ratio."""
    mean = seasonal(7, level=400)
    counts = noisy(mean, seed=8, dispersion=0.001)
    end = len(counts) - 5
    verdict = check(Series(START, with_spike(counts, mean, end - 3, 3, 1.4)), START + end * HOUR, RULE)
    assert verdict.p_value < 0.005
    assert verdict.ratio < RULE.min_ratio
    assert decide([verdict], RULE) == [False]
    assert decide([verdict], Rule(min_ratio=1.2)) == [True]


def test_decide_corrects_for_all_tests_of_a_run() -> None:
    def verdict(p: float) -> Verdict:
        return Verdict(True, "", START, START + 3 * HOUR, 20, 5.0, 4.0, p, 0.05)

    alone = [verdict(0.004)]
    assert decide(alone, RULE) == [True]
    crowd = alone + [verdict(0.5)] * 9  # 0.004 * 10 > 0.01
    assert decide(crowd, RULE) == [False] * 10
    untested = Verdict(False, "new", START, START + 3 * HOUR, 50, 0.0, 0.0, 1.0, 0.0)
    assert decide([*alone, untested, untested], RULE) == [True, False, False]  # not counted as tests
    assert decide([], RULE) == []


def test_scan_and_check_agree() -> None:
    mean = seasonal(3)
    series = Series(START, noisy(mean, seed=7), noisy(4 * mean, seed=8) + noisy(mean, seed=7))
    ends = np.array([2, 30, 200, 340, 400, 500], dtype=np.int64)
    s = scan(series, RULE, ends)
    for i, e in enumerate(ends):
        v = check(series, START + int(e) * HOUR, RULE)
        assert v.tested == bool(s.tested[i])
        assert v.observed == s.observed[i]
        if v.tested:
            assert v.p_value == pytest.approx(s.p_value[i])
            assert v.combined_p_value == pytest.approx(s.combined_p_value[i])


def test_verdict_is_json_for_the_alert_explanation() -> None:
    mean = seasonal(3)
    series = Series(START, noisy(mean), noisy(5 * mean))
    data = check(series, START + 400 * HOUR, RULE).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["window_end"] == "2026-01-21T16:00:00+00:00"


def test_hours_after_the_series_count_as_no_mentions() -> None:
    series = Series(START, np.full(3 * 168, 4, dtype=np.int64))
    verdict = check(series, START + (3 * 168 + 2) * HOUR, RULE)
    assert verdict.tested
    assert verdict.observed == 4  # one counted hour, two hours without rows


def test_cooldown_lets_one_episode_alert_once() -> None:
    cooldown = Cooldown(24)
    key = cooldown_key("Acme", "delivery")
    assert key != cooldown_key("Acme")
    t = START
    assert cooldown.admit(key, t)
    assert not cooldown.admit(key, t + timedelta(hours=1))
    assert not cooldown.allows(key, t + timedelta(hours=23))
    assert cooldown.admit(cooldown_key("Acme"), t + timedelta(hours=1))  # another key
    assert cooldown.admit(key, t + timedelta(hours=24))
    remembered = Cooldown.from_alerts(24, {key: t})
    assert not remembered.allows(key, t + timedelta(hours=5))
    assert Cooldown(0).admit(key, t)
    assert Cooldown(0).admit(key, t)


def test_rule_comes_from_the_alert_settings() -> None:
    settings = AlertSettings(window_hours=4, baseline_weeks=8, min_count=7, false_discovery_rate=0.02)
    rule = Rule.from_settings(settings)
    assert (rule.window_hours, rule.baseline_weeks, rule.min_count, rule.fdr) == (4, 8, 7, 0.02)
    assert rule.min_ratio == AlertSettings().min_ratio == Rule().min_ratio
    assert Rule.from_settings(AlertSettings()) == Rule()
    with pytest.raises(ValueError, match="fdr"):
        Rule(fdr=1.5)
    with pytest.raises(ValueError, match="min_ratio"):
        Rule(min_ratio=0.5)


def test_series_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Series(datetime(2026, 1, 5), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="on the hour"):
        Series(START + timedelta(minutes=30), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="below negative"):
        Series(START, np.array([3, 1]), np.array([2, 5]))
    with pytest.raises(ValueError, match="on the hour"):
        check(Series(START, np.zeros(30, dtype=np.int64)), START + timedelta(minutes=90), RULE)


def test_the_correction_runs_per_brand_when_given_groups() -> None:
    """One brand's clear p-value is not drowned by another brand's thirty quiet topics."""
    rule = Rule(fdr=0.005)
    p = np.array([0.001, 0.5, *np.linspace(0.2, 0.9, 30)])
    observed = np.full(p.size, 20)
    size = np.full(p.size, 3.0)
    tested = np.ones(p.size, dtype=bool)
    groups = np.array([0, 0, *[1] * 30])
    across = decide_arrays(p, observed, size, tested, rule)
    per_brand = decide_arrays(p, observed, size, tested, rule, groups)
    assert not across.any()  # 0.001 > 0.005 / 32
    assert per_brand.tolist() == [True] + [False] * 31  # 0.001 <= 0.005 / 2


def test_check_many_gives_what_check_gives_series_by_series() -> None:
    """The vectorised check lays series end to end; nothing of one may leak into another."""
    rng = np.random.default_rng(5)
    end = START + timedelta(weeks=8)
    series = []
    for hours_back in (8 * 168, 6 * 168 + 5, 3 * 168, 9 * 24 + 7, 30, 4, 0):
        n = hours_back
        neg = rng.poisson(seasonal(n / 168 + 1, level=6.0)[:n]) if n else np.zeros(0, dtype=np.int64)
        if n > 10:
            neg[-2:] += 25  # a spike in the window for some
        tot = neg + rng.poisson(30.0, size=n)
        start = end - n * HOUR
        series.append(Series(start, neg.astype(np.int64), tot.astype(np.int64)))
        series.append(Series(start, neg.astype(np.int64), None))
        if n > 5:  # an array that stops before the end: the last hours had no mentions
            series.append(Series(start, neg[:-3].astype(np.int64), tot[:-3].astype(np.int64)))
    with_totals = [s for s in series if s.total is not None]
    without = [s for s in series if s.total is None]
    for group in (with_totals, without, series):
        many = check_many(group, end, RULE)
        one = [check(s, end, RULE) for s in group]
        assert many == one
    assert any(v.tested and v.share_p_value is not None for v in check_many(with_totals, end, RULE))
    assert any(not v.tested for v in check_many(with_totals, end, RULE))
    assert check_many([], end, RULE) == []
