"""Honest statistics for reports and alerts: intervals, tail probabilities, FDR control.

A weekly report that says "negative share +5 points" on 40 mentions is usually reporting
noise, and an alert that fires on every busy hour trains people to ignore it. Every number
Earful shows as a change therefore comes with an interval, and every alert with a tail
probability under a model that admits real data is burstier than Poisson. The functions here
are pure (counts in, numbers out) so they can be checked against published values::

    >>> wilson_interval(81, 263)
    Interval(estimate=0.30798..., low=0.25528..., high=0.36616...)
    >>> within_noise(newcombe_difference(56, 70, 48, 80))
    False

Conventions: ``level`` is the two-sided confidence level; a proportion with no
observations (``n == 0``) has no interval and the functions return ``None`` (the report
says "no mentions" rather than showing (0, 1)); tail functions return P(X >= x), the
probability of a count at least as large as the one seen.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps  # type: ignore[import-untyped]

__all__ = [
    "Interval",
    "benjamini_hochberg",
    "betabinomial_sf",
    "binomial_sf",
    "clopper_pearson_interval",
    "describe_change",
    "negative_binomial_sf",
    "net_sentiment_change",
    "net_sentiment_interval",
    "newcombe_difference",
    "overdispersion",
    "overdispersion_batch",
    "poisson_interval",
    "poisson_lognormal_sf",
    "poisson_ratio_interval",
    "poisson_sf",
    "wilson_interval",
    "within_noise",
]

#: Smallest overdispersion :func:`overdispersion` returns: real hourly counts are never
#: exactly Poisson, and a short, quiet history would otherwise claim they are.
DISPERSION_FLOOR = 0.01


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided confidence interval ``[low, high]``."""

    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (ends included)."""
        return self.low <= value <= self.high


@functools.lru_cache(maxsize=16)
def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, not {level}")
    return float(sps.norm.ppf(0.5 + level / 2))


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


# --------------------------------------------------------------------------- proportions


def wilson_interval(k: int, n: int, level: float = 0.95) -> Interval | None:
    """Wilson score interval for the proportion ``k / n`` (``None`` when ``n == 0``).

    Unlike the textbook Wald interval it never leaves [0, 1] and keeps close to its nominal
    coverage for small ``n`` and for shares near 0 or 1, which is where brand data lives.
    """
    _check_counts(k, n)
    if n == 0:
        return None
    z = _z(level)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, low, high)


def clopper_pearson_interval(k: int, n: int, level: float = 0.95) -> Interval | None:
    """Exact (Clopper–Pearson) interval for ``k / n``; conservative, used for count ratios."""
    _check_counts(k, n)
    if n == 0:
        return None
    a = 1 - level
    low = 0.0 if k == 0 else float(sps.beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(sps.beta.ppf(1 - a / 2, k + 1, n - k))
    return Interval(k / n, low, high)


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> Interval | None:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (method 10, Newcombe 1998).

    Each proportion gets its Wilson interval and the two are combined by "square and add",
    which keeps good coverage where the Wald difference interval fails (small counts, shares
    near 0 or 1). ``None`` when either week has no observations.
    """
    a = wilson_interval(k1, n1, level)
    b = wilson_interval(k2, n2, level)
    if a is None or b is None:
        return None
    d = a.estimate - b.estimate
    low = d - math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    high = d + math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high))


def _mover(
    e1: float, l1: float, u1: float, e2: float, l2: float, u2: float, r: float
) -> tuple[float, float, float]:
    """Interval for ``e1 - e2`` from the intervals of both (MOVER, Zou & Donner 2008).

    ``r`` is the correlation of the two estimates; with ``r == 0`` this is Newcombe's
    square-and-add.
    """
    d = e1 - e2
    lo_a, hi_b = e1 - l1, u2 - e2
    hi_a, lo_b = u1 - e1, e2 - l2
    low = d - math.sqrt(max(0.0, lo_a**2 + hi_b**2 - 2 * r * lo_a * hi_b))
    high = d + math.sqrt(max(0.0, hi_a**2 + lo_b**2 - 2 * r * hi_a * lo_b))
    return d, low, high


def net_sentiment_interval(positive: int, negative: int, n: int, level: float = 0.95) -> Interval | None:
    """Interval for net sentiment ``(positive - negative) / n`` in one period.

    The positive and negative shares come from one multinomial sample, so they are negatively
    correlated; their Wilson intervals are combined by MOVER with that correlation
    (``-sqrt(p+ p- / ((1 - p+)(1 - p-)))``), the same square-and-add idea Newcombe uses for
    independent samples. ``None`` when ``n == 0``.
    """
    if positive < 0 or negative < 0 or positive + negative > n:
        raise ValueError(f"need positive + negative <= n, got {positive} + {negative} > {n}")
    pos = wilson_interval(positive, n, level)
    neg = wilson_interval(negative, n, level)
    if pos is None or neg is None:
        return None
    pp, pn = pos.estimate, neg.estimate
    denom = (1 - pp) * (1 - pn)
    r = -math.sqrt(pp * pn / denom) if denom > 0 else 0.0
    d, low, high = _mover(pp, pos.low, pos.high, pn, neg.low, neg.high, r)
    return Interval(d, max(-1.0, low), min(1.0, high))


def net_sentiment_change(
    positive: int,
    negative: int,
    n: int,
    positive_before: int,
    negative_before: int,
    n_before: int,
    level: float = 0.95,
) -> Interval | None:
    """Interval for the week-over-week change in net sentiment (this week minus last week).

    The two weeks are independent samples, so their net-sentiment intervals
    (:func:`net_sentiment_interval`) are combined by Newcombe's square-and-add. The result
    ranges over [-2, 2]. ``None`` when either week has no mentions.
    """
    now = net_sentiment_interval(positive, negative, n, level)
    before = net_sentiment_interval(positive_before, negative_before, n_before, level)
    if now is None or before is None:
        return None
    d, low, high = _mover(now.estimate, now.low, now.high, before.estimate, before.low, before.high, 0.0)
    return Interval(d, max(-2.0, low), min(2.0, high))


# ---------------------------------------------------------------------------------- counts


def poisson_interval(count: int, level: float = 0.95) -> Interval:
    """Exact (Garwood) interval for the mean of a Poisson count; conservative by design."""
    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    a = 1 - level
    low = 0.0 if count == 0 else float(sps.chi2.ppf(a / 2, 2 * count)) / 2
    high = float(sps.chi2.ppf(1 - a / 2, 2 * count + 2)) / 2
    return Interval(float(count), low, high)


def poisson_ratio_interval(
    count: int, count_before: int, exposure: float = 1.0, exposure_before: float = 1.0, level: float = 0.95
) -> Interval | None:
    """Interval for the ratio of two Poisson rates, e.g. this week's volume over last week's.

    Conditional on the total ``count + count_before``, ``count`` is binomial with
    ``p = R e / (R e + e_before)``; the exact (Clopper–Pearson) interval for ``p`` maps to
    one for ``R``. ``None`` when both counts are zero; the upper end is ``inf`` when
    ``count_before`` is zero.
    """
    if count < 0 or count_before < 0:
        raise ValueError(f"counts cannot be negative ({count}, {count_before})")
    total = count + count_before
    cp = clopper_pearson_interval(count, total, level)
    if cp is None:
        return None
    scale = exposure_before / exposure

    def ratio(p: float) -> float:
        return math.inf if p >= 1 else p / (1 - p) * scale

    estimate = math.inf if count_before == 0 else count / count_before * scale
    return Interval(estimate, ratio(cp.low), ratio(cp.high))


def poisson_sf(x: int | npt.ArrayLike, mean: float | npt.ArrayLike) -> npt.NDArray[np.float64]:
    """P(X >= x) for X ~ Poisson(mean)."""
    return np.asarray(sps.poisson.sf(np.asarray(x) - 1, mean), dtype=np.float64)


def negative_binomial_sf(
    x: int | npt.ArrayLike, mean: float | npt.ArrayLike, dispersion: float | npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """P(X >= x) for a negative binomial with ``Var X = mean + dispersion * mean**2``.

    ``dispersion == 0`` is the Poisson limit. This is the NB2 parametrisation: size
    ``1 / dispersion``, success probability ``size / (size + mean)``.
    """
    x_, mu, alpha = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64),
        np.asarray(mean, dtype=np.float64),
        np.asarray(dispersion, dtype=np.float64),
    )
    out = np.empty(x_.shape, dtype=np.float64)
    poisson = alpha <= 1e-12
    out[poisson] = sps.poisson.sf(x_[poisson] - 1, mu[poisson])
    nb = ~poisson
    size = 1.0 / alpha[nb]
    out[nb] = sps.nbinom.sf(x_[nb] - 1, size, size / (size + mu[nb]))
    return out


#: Gauss–Hermite nodes for the log-normal mixtures; 32 keep tail probabilities down to 1e-6
#: within a few per cent of the exact value.
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(32)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()


def poisson_lognormal_sf(
    x: int | npt.ArrayLike, mean: float | npt.ArrayLike, dispersion: float | npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """P(X >= x) for a Poisson whose rate is ``mean`` times a log-normal factor (mean 1) with
    ``Var X = mean + dispersion * mean**2``, like :func:`negative_binomial_sf`.

    Real counts swing by multiplicative factors (a busy day, a busy hour, a share that
    wanders) whose product is closer to log-normal than to the negative binomial's gamma, and
    the log-normal's right tail is much heavier: for a count of 100 that wanders by +-35%,
    the negative binomial puts a one-in-ten-thousand hour at about one in a hundred thousand.
    Small counts, where the Poisson part dominates, get nearly the same answer from both.
    ``dispersion == 0`` is the Poisson limit. Integrated by Gauss–Hermite quadrature.
    """
    x_, mu, alpha = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64),
        np.asarray(mean, dtype=np.float64),
        np.asarray(dispersion, dtype=np.float64),
    )
    sigma2 = np.log1p(np.maximum(alpha, 0.0))
    factor = np.exp(np.sqrt(sigma2)[..., None] * _HERMITE_NODES - sigma2[..., None] / 2)
    tail = sps.poisson.sf(x_[..., None] - 1, mu[..., None] * factor)
    return np.asarray(np.minimum(1.0, (tail * _HERMITE_WEIGHTS).sum(axis=-1)), dtype=np.float64)


def binomial_sf(
    x: int | npt.ArrayLike, n: int | npt.ArrayLike, p: float | npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """P(X >= x) for X ~ Binomial(n, p): is a share improbably high?"""
    return np.asarray(sps.binom.sf(np.asarray(x) - 1, n, p), dtype=np.float64)


def betabinomial_sf(
    x: int | npt.ArrayLike, n: int | npt.ArrayLike, p: float | npt.ArrayLike, rho: float | npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """P(X >= x) for a beta-binomial with mean share ``p`` and intra-class correlation ``rho``.

    ``Var X = n p (1 - p) (1 + (n - 1) rho)``: a share that wanders from hour to hour more
    than sampling explains. ``rho == 0`` is the binomial.
    """
    x_, n_, p_, r_ = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64),
        np.asarray(n, dtype=np.float64),
        np.asarray(p, dtype=np.float64),
        np.asarray(rho, dtype=np.float64),
    )
    out = np.empty(x_.shape, dtype=np.float64)
    plain = r_ <= 1e-12
    out[plain] = sps.binom.sf(x_[plain] - 1, n_[plain], p_[plain])
    bb = ~plain
    k = (1 - r_[bb]) / r_[bb]
    out[bb] = sps.betabinom.sf(x_[bb] - 1, n_[bb], p_[bb] * k, (1 - p_[bb]) * k)
    return out


def overdispersion(
    counts: npt.ArrayLike,
    *,
    floor: float = DISPERSION_FLOOR,
    prior: float = 0.1,
    prior_weight: float = 20.0,
    clip: float | None = 3.0,
) -> float:
    """Method-of-moments negative-binomial dispersion from repeated counts.

    ``counts`` has one row per period (e.g. week) and one column per comparable slot (e.g.
    the same three hours of the week); a 1-D array is one column. Per column the excess of
    the variance over the mean estimates ``dispersion * mean**2``; columns are pooled as
    ``sum(var - mean) / sum(mean**2)``, so quiet slots, where the estimate is mostly noise,
    weigh little. The result is shrunk towards ``prior`` as if ``prior_weight`` degrees of
    freedom had seen it, so one week of history does not claim to know the tails, and it
    never falls below ``floor`` (an all-zero history has no information and gets the prior).
    Outlying counts are clipped first (``clip``, see :func:`overdispersion_batch`).
    """
    data = np.asarray(counts, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError(f"counts must be 1-D or 2-D (periods x slots), not {data.ndim}-D")
    return float(overdispersion_batch(data, floor=floor, prior=prior, prior_weight=prior_weight, clip=clip))


def overdispersion_batch(
    counts: npt.NDArray[np.float64],
    *,
    floor: float = DISPERSION_FLOOR,
    prior: float = 0.1,
    prior_weight: float = 20.0,
    clip: float | None = 3.0,
) -> npt.NDArray[np.float64]:
    """:func:`overdispersion` over the last two axes (periods, slots) of ``counts``, for every
    index of the leading axes at once (the backtest scores thousands of hours per call).

    With ``clip``, counts further than ``clip`` standard deviations from their slot's median
    are pulled in to that distance first (twice, the second time with the first estimate):
    a past incident or a viral afternoon in the baseline is one cell among hundreds and
    must not make every later hour look ordinary. Without it this is the plain moment
    estimate, which a single outlier dominates.
    """
    data = np.asarray(counts, dtype=np.float64)
    periods, slots = data.shape[-2], data.shape[-1]
    shape = data.shape[:-2]
    if periods < 2 or slots == 0:
        return np.full(shape, max(floor, prior))
    df = (periods - 1) * slots
    estimate = np.full(shape, prior)
    weight = np.zeros(shape)
    median = np.median(data, axis=-2, keepdims=True)
    for _ in range(2 if clip is not None else 1):
        values = data
        if clip is not None:
            a = estimate[..., None, None]
            spread = clip * np.sqrt(median + a * median**2 + 1.0)
            values = np.clip(data, median - spread, median + spread)
        mean = values.mean(axis=-2)
        excess = (values.var(axis=-2, ddof=1) - mean).sum(axis=-1)
        weight = (mean**2).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = np.where(weight > 0, np.maximum(0.0, excess) / weight, prior)
    shrunk = (df * estimate + prior_weight * prior) / (df + prior_weight)
    return np.asarray(np.maximum(floor, np.where(weight > 0, shrunk, prior)), dtype=np.float64)


# ----------------------------------------------------------------------- multiple testing


def benjamini_hochberg(
    p_values: npt.ArrayLike, q: float = 0.05
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Benjamini–Hochberg: which hypotheses to reject at false discovery rate ``q``.

    Testing every brand and topic every hour makes some small p-values certain by chance;
    BH keeps the expected share of false alerts among all alerts at ``q``. Returns the
    rejections and the adjusted p-values (reject where adjusted <= q), in input order.
    NaN p-values (untested) are never rejected and do not count as tests.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if not 0 < q < 1:
        raise ValueError(f"the false discovery rate must be between 0 and 1, not {q}")
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = tested.size
    if m:
        order = tested[np.argsort(p[tested], kind="stable")]
        scaled = p[order] * m / np.arange(1, m + 1)
        adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    rejected = np.zeros(p.shape, dtype=bool)
    rejected[tested] = adjusted[tested] <= q
    return rejected, adjusted


# ------------------------------------------------------------------------------- wording


def within_noise(interval: Interval | None, null: float = 0.0) -> bool:
    """Whether a change is within noise: its interval covers ``null`` (0 for a difference,
    1 for a ratio). No interval (no data) counts as noise."""
    return interval is None or interval.covers(null)


def describe_change(interval: Interval | None, *, unit: str = "points", null: float = 0.0) -> str:
    """One phrase for a report cell: ``"+5.2 points (−1.0 to +11.4), within noise"``.

    Differences of shares are shown in percentage points, ratios as percentages.
    """
    if interval is None:
        return "no data"
    if null == 1.0:

        def fmt(v: float) -> str:
            return "∞" if math.isinf(v) else f"{(v - 1) * 100:+.0f}%"

    else:

        def fmt(v: float) -> str:
            return f"{v * 100:+.1f} {unit}" if unit == "points" else f"{v:+.3g}"

    text = f"{fmt(interval.estimate)} ({fmt(interval.low)} to {fmt(interval.high)})"
    return text + (", within noise" if within_noise(interval, null) else "")
