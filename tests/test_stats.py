"""The statistics behind reports and alerts, against published values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps  # type: ignore[import-untyped]

from earful.pipeline.stats import (
    DISPERSION_FLOOR,
    Interval,
    benjamini_hochberg,
    betabinomial_sf,
    binomial_sf,
    clopper_pearson_interval,
    describe_change,
    negative_binomial_sf,
    net_sentiment_change,
    net_sentiment_interval,
    newcombe_difference,
    overdispersion,
    overdispersion_batch,
    poisson_interval,
    poisson_lognormal_sf,
    poisson_ratio_interval,
    poisson_sf,
    wilson_interval,
    within_noise,
)


def close(interval: Interval | None, low: float, high: float, places: int = 4) -> bool:
    assert interval is not None
    return round(interval.low, places) == low and round(interval.high, places) == high


# ----------------------------------------------------------------------------- proportions


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe_1998(k: int, n: int, low: float, high: float) -> None:
    assert close(wilson_interval(k, n), low, high)


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((0, 10, 0, 20), -0.1611, 0.2775),
        ((10, 10, 0, 20), 0.6791, 1.0),
    ],
)
def test_newcombe_difference_matches_method_10_of_newcombe_1998(
    counts: tuple[int, int, int, int], low: float, high: float
) -> None:
    assert close(newcombe_difference(*counts), low, high)


def test_no_mentions_means_no_interval() -> None:
    assert wilson_interval(0, 0) is None
    assert clopper_pearson_interval(0, 0) is None
    assert newcombe_difference(0, 0, 3, 10) is None
    assert net_sentiment_interval(0, 0, 0) is None
    assert net_sentiment_change(1, 1, 5, 0, 0, 0) is None
    assert poisson_ratio_interval(0, 0) is None
    assert within_noise(None)
    assert describe_change(None) == "no data"


def test_one_mention_gives_a_wide_but_proper_interval() -> None:
    one = wilson_interval(1, 1)
    assert one is not None
    assert one.high == 1.0
    assert 0.2 < one.low < 0.21  # z^2 / (1 + z^2)
    net = net_sentiment_interval(0, 1, 1)
    assert net is not None
    assert net.estimate == -1.0
    assert -1.0 <= net.low < net.high <= 1.0


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match="positive"):
        net_sentiment_interval(3, 3, 5)
    with pytest.raises(ValueError, match="confidence level"):
        wilson_interval(1, 2, level=95)


def test_clopper_pearson_agrees_with_scipy() -> None:
    for k, n in [(0, 12), (3, 12), (12, 12), (40, 97)]:
        ours = clopper_pearson_interval(k, n)
        theirs = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert ours is not None
        assert ours.low == pytest.approx(theirs.low, abs=1e-9)
        assert ours.high == pytest.approx(theirs.high, abs=1e-9)


def test_net_sentiment_change_keeps_its_coverage() -> None:
    """A Newcombe-style interval for the change in net sentiment covers the truth ~95% of weeks."""
    rng = np.random.default_rng(3)
    p_now, p_before = (0.30, 0.25, 0.45), (0.35, 0.15, 0.50)
    truth = (p_now[0] - p_now[1]) - (p_before[0] - p_before[1])
    covered = 0
    runs = 600
    for _ in range(runs):
        a = rng.multinomial(80, p_now)
        b = rng.multinomial(120, p_before)
        interval = net_sentiment_change(int(a[0]), int(a[1]), 80, int(b[0]), int(b[1]), 120)
        assert interval is not None
        covered += interval.covers(truth)
    assert 0.93 <= covered / runs <= 0.975


def test_a_change_within_noise_says_so() -> None:
    small = newcombe_difference(22, 40, 20, 40)  # +5 points on 40 mentions
    assert within_noise(small)
    assert describe_change(small).endswith("within noise")
    big = newcombe_difference(560, 700, 480, 800)
    assert not within_noise(big)
    assert describe_change(big).startswith("+20.0 points")


# ---------------------------------------------------------------------------------- counts


def test_garwood_interval_for_a_count() -> None:
    assert close(poisson_interval(0), 0.0, 3.6889)
    assert close(poisson_interval(5), 1.6235, 11.6683)
    with pytest.raises(ValueError, match="negative"):
        poisson_interval(-1)


def test_ratio_of_two_counts_by_the_conditional_binomial() -> None:
    ratio = poisson_ratio_interval(30, 20)
    assert ratio is not None
    assert ratio.estimate == 1.5
    cp = sps.binomtest(30, 50).proportion_ci(method="exact")
    assert ratio.low == pytest.approx(cp.low / (1 - cp.low))
    assert ratio.high == pytest.approx(cp.high / (1 - cp.high))
    assert within_noise(ratio, null=1.0)  # +50% on 20 mentions is noise
    assert "+50%" in describe_change(ratio, null=1.0)
    assert not within_noise(poisson_ratio_interval(300, 200), null=1.0)
    new = poisson_ratio_interval(4, 0)
    assert new is not None
    assert math.isinf(new.estimate)
    assert math.isinf(new.high)
    # Exposures: 30 in one day against 70 in a week is a rate ratio of 3.
    per_day = poisson_ratio_interval(30, 70, exposure=1, exposure_before=7)
    assert per_day is not None
    assert per_day.estimate == pytest.approx(3.0)


def test_tails_agree_with_scipy() -> None:
    assert poisson_sf(7, 3.2) == pytest.approx(sps.poisson.sf(6, 3.2))
    mean, alpha = 12.0, 0.3
    size = 1 / alpha
    assert negative_binomial_sf(25, mean, alpha) == pytest.approx(
        sps.nbinom.sf(24, size, size / (size + mean))
    )
    assert sps.nbinom.var(size, size / (size + mean)) == pytest.approx(mean + alpha * mean**2)
    assert negative_binomial_sf(9, 4.0, 0.0) == pytest.approx(sps.poisson.sf(8, 4.0))
    assert binomial_sf(9, 30, 0.2) == pytest.approx(sps.binom.sf(8, 30, 0.2))
    assert betabinomial_sf(9, 30, 0.2, 0.0) == pytest.approx(sps.binom.sf(8, 30, 0.2))
    # Overdispersion makes a high count less surprising.
    assert betabinomial_sf(12, 30, 0.2, 0.05) > binomial_sf(12, 30, 0.2)
    assert negative_binomial_sf(25, mean, alpha) > poisson_sf(25, mean)
    # Vectorised, with mixed Poisson and negative-binomial entries.
    got = negative_binomial_sf([8, 8], [2.0, 2.0], [0.0, 0.5])
    assert got[0] == pytest.approx(sps.poisson.sf(7, 2.0))
    assert got[1] > got[0]
    assert poisson_sf(0, 1.0) == 1.0  # P(X >= 0)


def test_poisson_lognormal_tail_is_exact_for_log_normal_noise() -> None:
    """A count of 20 whose rate wanders by a log-normal factor of +-35%: the tail matches a
    simulation down to a few in a hundred thousand, where the negative binomial with the same
    variance is more than ten times too sure."""
    rng = np.random.default_rng(1)
    mean, alpha = 20.0, 0.12
    sigma2 = math.log1p(alpha)
    draws = rng.poisson(mean * np.exp(rng.normal(-sigma2 / 2, math.sqrt(sigma2), 2_000_000)))
    assert (draws.var() - draws.mean()) / draws.mean() ** 2 == pytest.approx(alpha, rel=0.03)
    for x in (40, 60, 80):
        empirical = float((draws >= x).mean())
        assert poisson_lognormal_sf(x, mean, alpha) == pytest.approx(empirical, rel=0.1)
    assert poisson_lognormal_sf(80, mean, alpha) > 10 * negative_binomial_sf(80, mean, alpha)
    # No dispersion is Poisson; small counts hardly care about the tail's shape.
    assert poisson_lognormal_sf([3, 9], [2.0, 2.0], [0.0, 0.0]) == pytest.approx(sps.poisson.sf([2, 8], 2.0))
    assert poisson_lognormal_sf(4, 0.5, alpha) == pytest.approx(negative_binomial_sf(4, 0.5, alpha), rel=0.1)
    assert poisson_lognormal_sf(0, 3.0, alpha) == pytest.approx(1.0)
    tail = poisson_lognormal_sf(np.arange(0, 200, 10), 50.0, 0.3)
    assert (np.diff(tail) <= 0).all()


def test_overdispersion_recovers_the_negative_binomial_parameter() -> None:
    rng = np.random.default_rng(5)
    means = rng.uniform(5, 40, size=50)
    alpha = 0.2
    counts = rng.poisson(rng.gamma(1 / alpha, alpha * means, size=(30, 50)))
    assert overdispersion(counts) == pytest.approx(alpha, abs=0.04)
    poisson = rng.poisson(means, size=(30, 50))
    assert overdispersion(poisson) < 0.02


def test_overdispersion_has_a_floor_and_a_prior_for_tiny_histories() -> None:
    assert overdispersion([[3, 3, 3], [3, 3, 3]]) >= DISPERSION_FLOOR
    assert overdispersion(np.zeros((6, 10))) == 0.1  # all zero: nothing known, the prior
    assert overdispersion([[4, 5, 6]]) == 0.1  # one period: no variance to see
    # Two weeks of a steady series are shrunk towards the prior, not trusted to be Poisson.
    two = overdispersion([[10, 11, 9, 10], [10, 9, 11, 10]])
    assert DISPERSION_FLOOR < two < 0.1


def test_one_past_incident_does_not_swamp_the_dispersion() -> None:
    rng = np.random.default_rng(9)
    counts = rng.poisson(20, size=(6, 56)).astype(float)
    counts[2, 17] = 200  # one incident in one baseline week
    plain = overdispersion(counts, clip=None)
    robust = overdispersion(counts)
    assert plain > 0.05
    assert robust < 0.02
    batch = overdispersion_batch(np.stack([counts, counts]))
    assert batch.shape == (2,)
    assert batch[0] == pytest.approx(robust)


# ------------------------------------------------------------------------ multiple testing


def test_benjamini_hochberg_by_hand() -> None:
    rejected, adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.005], 0.05)
    assert rejected.tolist() == [True, True, True, True]
    assert adjusted.tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # Eight tests at q = 0.05: thresholds 0.00625, 0.0125, 0.01875, ...; only two pass.
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    rejected, adjusted = benjamini_hochberg(p, 0.05)
    assert rejected.tolist() == [True, True] + [False] * 6
    assert adjusted[:2].tolist() == pytest.approx([0.008, 0.032])
    assert adjusted[2] == pytest.approx(0.042 * 8 / 5)  # step-up: the minimum from above


def test_benjamini_hochberg_ignores_untested_and_rejects_bad_levels() -> None:
    rejected, adjusted = benjamini_hochberg([0.001, float("nan"), 0.5], 0.05)
    assert rejected.tolist() == [True, False, False]
    assert np.isnan(adjusted[1])
    assert adjusted[0] == pytest.approx(0.002)  # two tests, not three
    empty, _ = benjamini_hochberg([], 0.05)
    assert empty.size == 0
    with pytest.raises(ValueError, match="false discovery rate"):
        benjamini_hochberg([0.1], 5)
