"""Uncertainty for every number the harness reports.

Suites are small (often a few hundred test examples), so a bare accuracy hides how much of a difference between
two trials is noise. Rates get a Wilson interval (well behaved near 0 and 1, unlike the normal approximation);
means and paired differences get a seeded percentile bootstrap, so reruns reproduce the same interval, expanded
for small samples (`inference.expanded_alpha`), where a plain percentile interval is too narrow. Tests whose
interval and p-value must agree (every "is A better than B") live in `inference`.
An empty sample gives `Metric(None)` rather than 0 or NaN: "not measured" must never read as "zero".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from harness.core.metric import Metric
from harness.evaluation.inference import ALPHA, expanded_alpha, mcnemar_exact, spread_n

_CHUNK = 2_000_000
"""Max resample-index cells drawn at once, to bound memory for large n."""


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; `successes` may be fractional (a sum of rates)."""
    if n <= 0:
        raise ValueError("wilson_interval needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n], got {successes} of {n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not 1e-17 rounding noise
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def proportion(flags: Sequence[bool | float]) -> Metric:
    """Mean of 0/1 flags (or values in [0, 1]) with a Wilson 95% interval."""
    values = [float(f) for f in flags]
    if not values:
        return Metric(None, None, None, 0)
    total = sum(values)
    low, high = wilson_interval(total, len(values))
    return Metric(total / len(values), low, high, len(values))


def bootstrap_mean(values: Sequence[float], seed: int = 0, resamples: int = 2000) -> Metric:
    """Mean with a seeded percentile-bootstrap 95% interval (for scores that are not 0/1 flags); scores in [0, 1]
    that all sit at a bound get `at_a_bound`'s interval."""
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    if x.size == 0:
        return Metric(None, None, None, 0)
    if x.size == 1 and x[0] not in (0.0, 1.0):  # one value has no spread to resample: no interval, not [v, v]
        return Metric(float(x[0]), None, None, 1)
    means = _resampled_sums(x[None, :], seed, resamples)[0] / x.size
    low, high = interval_of(means, int(x.size))
    if x.min() >= 0.0 and x.max() <= 1.0:
        low, high = at_a_bound(float(x.mean()), float(low), float(high), int(x.size))
    return Metric(float(x.mean()), float(low), float(high), int(x.size))


def paired_bootstrap_diff(a: Sequence[float], b: Sequence[float], seed: int = 0, resamples: int = 2000) -> Metric:
    """mean(a) - mean(b) over the same examples; resampling pairs keeps the per-example correlation.

    An interval that excludes 0 means the difference is unlikely to be resampling noise.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap_diff needs aligned samples, got {len(a)} and {len(b)} values")
    d = np.asarray([float(x) - float(y) for x, y in zip(a, b)], dtype=np.float64)
    if d.size == 0:
        return Metric(None, None, None, 0)
    if d.size == 1:
        return Metric(float(d[0]), None, None, 1)
    diffs = _resampled_sums(d[None, :], seed, resamples)[0] / d.size
    low, high = interval_of(diffs, spread_n(d))
    return Metric(float(d.mean()), float(low), float(high), int(d.size))


def paired_difference(a: Sequence[float], b: Sequence[float], seed: int = 0, resamples: int = 2000) -> Metric:
    """mean(a) - mean(b) over the same items, with the interval the decision rule gives such a difference: McNemar's
    exact interval where every score is 0 or 1 (a forgetting check's items), `paired_bootstrap_diff` otherwise.

    A percentile bootstrap of 0/1 pairs reads [0, 0] when no item changed and covered the true difference only
    about 87% of the time with 1% of 200 items discordant; McNemar's interval stays as wide as the pairs allow."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs aligned samples, got {len(a)} and {len(b)} values")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size == 0 or not all(np.all((v == 0.0) | (v == 1.0)) for v in (x, y)):
        return paired_bootstrap_diff(a, b, seed, resamples)
    result = mcnemar_exact(int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1))), int(x.size))
    return Metric(result.estimate, result.low, result.high, int(x.size))


def at_a_bound(value: float | None, low: float, high: float, n: int) -> tuple[float, float]:
    """(low, high), unless every example of a [0, 1] score sits at the same bound (all perfect, or all wrong): then
    every bootstrap draw has the same mean and the percentile interval reads [1, 1], certainty from n examples. There
    the interval is the Wilson interval of n successes (or none) in n, as a rate of n examples gets."""
    if n > 0 and value in (0.0, 1.0) and low == high == value:
        return wilson_interval(value * n, n)
    return low, high


def bootstrap_ratio(
    numerators: Sequence[float],
    denominators: Sequence[float],
    seed: int = 0,
    resamples: int = 2000,
    empty: float | None = None,
) -> Metric:
    """sum(num) / sum(den) (a micro average, e.g. field F1) with a seeded bootstrap over examples.

    `empty` is the value when the denominator sums to 0 (e.g. 1.0 for F1 when nothing was expected or
    predicted); resamples that hit a zero denominator use it too. n is the number of examples.
    """
    if len(numerators) != len(denominators):
        raise ValueError("bootstrap_ratio needs one numerator per denominator")
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if num.size == 0:
        return Metric(None, None, None, 0)
    value = _ratio(num.sum(), den.sum(), empty)
    if num.size == 1 and value not in (0.0, 1.0):  # as in bootstrap_mean: one example, no spread, no interval
        return Metric(value, None, None, 1)
    sums = _resampled_sums(np.stack([num, den]), seed, resamples)
    ratios = [_ratio(s_num, s_den, empty) for s_num, s_den in zip(sums[0], sums[1])]
    finite = np.asarray([r for r in ratios if r is not None], dtype=np.float64)
    if value is None or finite.size == 0:
        return Metric(value, None, None, int(num.size))
    low, high = interval_of(finite, int(num.size))
    if 0.0 <= value <= 1.0:  # a share (field precision, recall, F1), so bounded as a rate is
        low, high = at_a_bound(value, float(low), float(high), int(num.size))
    return Metric(value, float(low), float(high), int(num.size))


def ratio_draws(numerators: Sequence[float], denominators: Sequence[float], seed: int = 0,
                resamples: int = 2000) -> np.ndarray:
    """sum(num) / sum(den) over `resamples` seeded bootstrap draws of the pairs (denominators all > 0: seconds, say),
    for a statistic built from the ratio (a speed, then a cost) whose interval `interval_of` reads."""
    den = np.asarray(denominators, dtype=np.float64)
    if den.size == 0 or np.any(den <= 0):
        raise ValueError("ratio_draws needs at least one pair, every denominator above 0")
    sums = _resampled_sums(np.stack([np.asarray(numerators, dtype=np.float64), den]), seed, resamples)
    return sums[0] / sums[1]


def interval_of(draws: np.ndarray, n: int, method: str = "linear") -> tuple[float, float]:
    """The 95% interval of a statistic of `n` values from its bootstrap draws: the expanded percentile interval.
    `method` is numpy's percentile method ("nearest" where a draw may be infinite)."""
    half = 100 * expanded_alpha(ALPHA, n) / 2
    low, high = np.percentile(draws, [half, 100 - half], method=method)
    return float(low), float(high)


def _ratio(num: float, den: float, empty: float | None) -> float | None:
    return float(num / den) if den > 0 else empty


def bootstrap_means(values: np.ndarray, seed: int = 0, resamples: int = 2000) -> np.ndarray:
    """The means of `resamples` seeded bootstrap draws of `values` (for percentile tests and intervals)."""
    x = np.asarray(values, dtype=np.float64)
    return _resampled_sums(x[None, :], seed, resamples)[0] / x.size


def _resampled_sums(rows: np.ndarray, seed: int, resamples: int) -> np.ndarray:
    """Sum of each row over `resamples` bootstrap draws of its columns (same draws for every row)."""
    rng = np.random.default_rng(seed)
    n = rows.shape[1]
    out = np.empty((rows.shape[0], resamples), dtype=np.float64)
    step = max(1, _CHUNK // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[:, start:stop] = rows[:, idx].sum(axis=2)
    return out
