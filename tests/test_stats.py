"""Intervals behave as documented: known Wilson values, seeded bootstrap, n == 0 handled."""

import numpy as np
import pytest

from harness.evaluation.inference import mcnemar_exact
from harness.evaluation.stats import (
    Metric,
    bootstrap_mean,
    bootstrap_ratio,
    paired_bootstrap_diff,
    paired_difference,
    proportion,
    wilson_interval,
)


def test_wilson_known_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-3) and high == 1.0
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)


def test_wilson_rejects_bad_input():
    with pytest.raises(ValueError):
        wilson_interval(1, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_proportion():
    m = proportion([True] * 8 + [False] * 2)
    assert m.value == pytest.approx(0.8) and m.n == 10
    assert (m.low, m.high) == pytest.approx(wilson_interval(8, 10))
    assert m.to_dict() == {"value": m.value, "low": m.low, "high": m.high, "n": 10}


@pytest.mark.parametrize("fn", [proportion, bootstrap_mean])
def test_empty_is_not_zero(fn):
    assert fn([]) == Metric(None, None, None, 0)
    assert paired_bootstrap_diff([], []) == Metric(None, None, None, 0)
    assert bootstrap_ratio([], []) == Metric(None, None, None, 0)


def test_bootstrap_mean_seeded_and_covers_mean():
    values = np.random.default_rng(1).normal(0.5, 0.1, size=200).tolist()
    a, b = bootstrap_mean(values, seed=3), bootstrap_mean(values, seed=3)
    assert a == b
    assert a.low < a.value < a.high and a.n == 200
    assert a.value == pytest.approx(float(np.mean(values)))
    assert a.high - a.low == pytest.approx(2 * 1.96 * np.std(values) / np.sqrt(200), rel=0.2)


def test_one_value_has_no_interval_rather_than_a_zero_width_one():
    assert bootstrap_mean([0.25]) == Metric(0.25, None, None, 1)  # not [25.0, 25.0]: one example shows no spread
    assert paired_bootstrap_diff([0.75], [0.25]) == Metric(0.5, None, None, 1)
    assert bootstrap_mean([1.0]).low is not None  # a [0, 1] score at a bound keeps the Wilson interval of 1 of 1
    assert bootstrap_ratio([1.0], [3.0]) == Metric(1 / 3, None, None, 1)  # one example's field F1: read [v, v]
    assert bootstrap_ratio([2.0], [2.0], empty=1.0).low is not None


def test_paired_bootstrap_detects_planted_difference():
    rng = np.random.default_rng(0)
    b = (rng.random(300) < 0.5).astype(float)
    a = b.copy()
    flip = rng.choice(np.flatnonzero(b == 0), size=45, replace=False)  # a fixes 45 of b's errors
    a[flip] = 1.0
    m = paired_bootstrap_diff(a.tolist(), b.tolist(), seed=0)
    assert m.value == pytest.approx(0.15) and m.n == 300
    assert 0 < m.low < m.value < m.high


def test_paired_bootstrap_identical_inputs_cover_zero():
    rng = np.random.default_rng(0)
    a = (rng.random(100) < 0.6).astype(float).tolist()
    b = list(a)
    b[:10] = [1 - v for v in b[:10]]  # noisy but balanced-ish disagreement
    same = paired_bootstrap_diff(a, a)
    assert same.value == 0 and same.low == 0 and same.high == 0
    m = paired_bootstrap_diff(a, b, seed=5)
    assert m.low <= 0 <= m.high


def test_a_0_1_paired_difference_gets_mcnemars_interval_not_a_bootstraps():
    """A forgetting check on 200 items: none changed reads about [-1.8, +1.8] points, not [0, 0]; two lost items
    get McNemar's exact interval; graded scores keep the bootstrap."""
    base = [1.0] * 120 + [0.0] * 80
    same = paired_difference(base, base)
    assert same.value == 0 and same.low < -0.015 and same.high > 0.015 and same.n == 200
    lost = list(base)
    lost[:2] = [0.0, 0.0]
    exact = mcnemar_exact(0, 2, 200)
    assert paired_difference(lost, base) == Metric(-0.01, exact.low, exact.high, 200)
    graded = [0.5, 0.25, 1.0, 0.75, 0.0, 0.5]
    assert paired_difference(graded, graded[::-1], seed=3) == paired_bootstrap_diff(graded, graded[::-1], seed=3)
    assert paired_difference([], []) == Metric(None, None, None, 0)
    with pytest.raises(ValueError):
        paired_difference([1.0], [])


def test_paired_bootstrap_needs_alignment():
    with pytest.raises(ValueError):
        paired_bootstrap_diff([1, 0], [1])


def test_bootstrap_ratio_micro():
    m = bootstrap_ratio([1, 2, 0], [2, 2, 0], seed=0, empty=1.0)
    assert m.value == pytest.approx(0.75) and m.n == 3 and m.low <= m.value <= m.high
    assert bootstrap_ratio([0], [0], empty=1.0).value == 1.0
    assert bootstrap_ratio([0], [0]).value is None


def test_scores_that_all_sit_at_a_bound_get_the_interval_a_rate_of_n_gets():
    """26 perfect extractions: every bootstrap draw is 1, so the percentile interval read [100.0, 100.0] beside task
    accuracy's [87.1, 100.0] on the same 26 examples. Both now say what 26 examples can show."""
    low, high = wilson_interval(26, 26)
    assert low == pytest.approx(0.871, abs=5e-4) and high == 1.0
    perfect_f1 = bootstrap_ratio([2] * 26, [2] * 26, empty=1.0)  # every expected field found, nothing extra
    assert (perfect_f1.value, perfect_f1.low, perfect_f1.high, perfect_f1.n) == (1.0, low, 1.0, 26)
    assert bootstrap_mean([1.0] * 26) == Metric(1.0, low, 1.0, 26)  # e.g. ROUGE-L
    assert bootstrap_mean([0.0] * 26) == Metric(0.0, *wilson_interval(0, 26), 26)
    assert bootstrap_mean([2.0] * 26) == Metric(2.0, 2.0, 2.0, 26)  # not a share: left as the bootstrap reads it
    spread = bootstrap_mean([1.0] * 25 + [0.5])  # draws differ: the bootstrap's own interval stands
    assert spread.low < spread.value < 1.0 and spread.high == 1.0
