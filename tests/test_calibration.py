"""The decision's paired tests are calibrated: noise reads as noise (false positives <= alpha) and real gaps are found.

Each simulation draws many datasets with a fixed numpy seed inside one test, so it is fast and reproducible.
The observed false-positive rate is itself an estimate from `REPS` datasets; the bound allows alpha plus
three binomial standard errors of that estimate (TOLERANCE), so a calibrated test fails it with probability
about 0.1% for a fresh seed. Exact McNemar is conservative, so "at most" is the right claim for it too.
Hypothesis checks the input properties: p in [0, 1], symmetry when the arms are swapped.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from harness.analysis.decision import Outcome, compare_paired
from harness.evaluation.inference import mcnemar_exact

ALPHA = 0.05
N = 200  # examples per simulated dataset: a typical small test split


def tolerance(reps: int) -> float:
    """Three standard errors of a false-positive rate of ALPHA estimated from `reps` datasets."""
    return 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


def null_binary(rng: np.random.Generator, correlated: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both arms from the same distribution: i.i.d. Bernoulli(0.7), or per-example difficulty shared by both.

    The correlated case is the realistic one (two models agree on easy examples, so few pairs disagree).
    """
    p = rng.beta(2, 1, size=N) if correlated else np.full(N, 0.7)
    return rng.random(N) < p, rng.random(N) < p


def null_scores(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """F1-like scores in [0, 1] with identical marginals, paired through a shared per-example difficulty."""
    base = rng.beta(2, 2, size=N)
    a, b = (np.clip(base + rng.normal(0, 0.2, N), 0, 1) for _ in range(2))
    return a, b


def decide(a: np.ndarray, b: np.ndarray, metric: str = "task_accuracy", seed: int = 0):
    ids = [f"e{i}" for i in range(len(a))]
    return compare_paired(dict(zip(ids, map(float, a))), dict(zip(ids, map(float, b))), metric, seed=seed)


@pytest.mark.parametrize("correlated", [False, True])
def test_mcnemar_false_positive_rate_is_at_most_alpha(correlated):
    reps = 1000
    rng = np.random.default_rng(1 if correlated else 2)
    hits = sum(decide(*null_binary(rng, correlated)).p_value < ALPHA for _ in range(reps))
    assert hits / reps <= ALPHA + tolerance(reps)


def test_bootstrap_false_positive_rate_is_at_most_alpha():
    reps = 600
    rng = np.random.default_rng(5)
    hits = sum(decide(*null_scores(rng), metric="field_f1", seed=int(rng.integers(1 << 31))).p_value < ALPHA
               for _ in range(reps))
    assert hits / reps <= ALPHA + tolerance(reps)


def test_planted_difference_is_detected():
    """0.5 vs 0.8 accuracy on 200 examples: the test must reject almost every time, and cover the truth."""
    reps = 200
    rng = np.random.default_rng(6)
    rejects = covers_truth = 0
    for _ in range(reps):
        d = decide(rng.random(N) < 0.5, rng.random(N) < 0.8)
        rejects += d.p_value < ALPHA
        covers_truth += d.difference.low <= -0.3 <= d.difference.high
    assert rejects / reps >= 0.95
    assert covers_truth / reps >= 0.95 - tolerance(reps)


def test_mcnemar_hand_checked():
    result = mcnemar_exact(2, 8, 15)  # A only right 2, B only right 8: p = 2 * P(X <= 2 | 10, 1/2)
    assert result.p_value == pytest.approx(0.109375)
    assert result.estimate == pytest.approx(-6 / 15)
    assert mcnemar_exact(0, 0, 2).p_value == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(0, 0, 0)


pairs_of_flags = st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(pairs_of_flags)
def test_mcnemar_properties(pairs):
    a = np.asarray([x for x, _ in pairs], dtype=float)
    b = np.asarray([y for _, y in pairs], dtype=float)
    d, swapped = decide(a, b), decide(b, a)
    assert 0.0 <= d.p_value <= 1.0
    assert d.a_only + d.b_only == sum(x != y for x, y in pairs)
    if len(pairs) <= 5:  # 5 of 5 pairs one way is p = 0.0625 at best: no test runs, and none is claimed
        assert d.test == swapped.test == "none" and d.outcome is swapped.outcome is Outcome.NOT_SHOWN
        assert d.difference.low is None and d.p_value == 1.0
        return
    assert (swapped.a_only, swapped.b_only, swapped.p_value) == (d.b_only, d.a_only, pytest.approx(d.p_value))
    assert (swapped.difference.low, swapped.difference.high) == pytest.approx((-d.difference.high, -d.difference.low))
    if d.a_only + d.b_only:
        assert d.p_value == pytest.approx(binomtest(d.a_only, d.a_only + d.b_only, 0.5).pvalue)
