"""The paired tests are calibrated: noise reads as noise (false positives <= alpha) and real gaps are found.

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

from harness.evaluation.stats import mcnemar_exact, paired_bootstrap_diff, paired_bootstrap_test

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


@pytest.mark.parametrize("correlated", [False, True])
def test_mcnemar_false_positive_rate_is_at_most_alpha(correlated):
    reps = 1000
    rng = np.random.default_rng(1 if correlated else 2)
    hits = sum(mcnemar_exact(*null_binary(rng, correlated))[2] < ALPHA for _ in range(reps))
    assert hits / reps <= ALPHA + tolerance(reps)


@pytest.mark.parametrize("kind", ["binary", "binary-correlated", "scores"])
def test_bootstrap_false_positive_rate_is_at_most_alpha(kind):
    reps = 800
    rng = np.random.default_rng({"binary": 3, "binary-correlated": 4, "scores": 5}[kind])
    hits = 0
    for _ in range(reps):
        a, b = null_scores(rng) if kind == "scores" else null_binary(rng, kind == "binary-correlated")
        hits += paired_bootstrap_test(a.astype(float), b.astype(float), seed=int(rng.integers(1 << 31)),
                                      resamples=400)[1] < ALPHA  # fmt: skip
    assert hits / reps <= ALPHA + tolerance(reps)


def test_planted_difference_is_detected():
    """0.5 vs 0.8 accuracy on 200 examples: both tests must reject almost every time."""
    reps = 200
    rng = np.random.default_rng(6)
    mcnemar_hits = bootstrap_hits = covers_truth = 0
    for _ in range(reps):
        a, b = rng.random(N) < 0.5, rng.random(N) < 0.8
        mcnemar_hits += mcnemar_exact(a, b)[2] < ALPHA
        diff, p = paired_bootstrap_test(a.astype(float), b.astype(float), seed=0, resamples=500)
        bootstrap_hits += p < ALPHA
        covers_truth += diff.low <= -0.3 <= diff.high
    assert mcnemar_hits / reps >= 0.95 and bootstrap_hits / reps >= 0.95
    assert covers_truth / reps >= 0.95 - tolerance(reps)  # the interval's coverage of the true difference


def test_mcnemar_hand_checked():
    a = [False] * 8 + [True] * 2 + [True] * 5
    b = [True] * 8 + [False] * 2 + [True] * 5
    assert mcnemar_exact(a, b) == (8, 2, pytest.approx(0.109375))
    assert mcnemar_exact([True, False], [True, False]) == (0, 0, 1.0)
    assert mcnemar_exact([], []) == (0, 0, 1.0)
    with pytest.raises(ValueError):
        mcnemar_exact([True], [])


pairs_of_flags = st.lists(st.tuples(st.booleans(), st.booleans()), max_size=80)


@settings(max_examples=60, deadline=None)
@given(pairs_of_flags)
def test_mcnemar_properties(pairs):
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    b01, b10, p = mcnemar_exact(a, b)
    assert 0.0 <= p <= 1.0
    assert b01 + b10 == sum(x != y for x, y in pairs)
    assert mcnemar_exact(b, a) == (b10, b01, p)  # swapping the arms swaps the counts, same p
    if b01 + b10:
        assert p == pytest.approx(binomtest(b10, b01 + b10, 0.5).pvalue)


scores = st.floats(0, 1, allow_nan=False)
paired_scores = st.lists(st.tuples(scores, scores), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(paired_scores, st.integers(0, 2**31))
def test_bootstrap_test_properties(pairs, seed):
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    diff, p = paired_bootstrap_test(a, b, seed=seed, resamples=200)
    assert 0.0 < p <= 1.0
    assert diff == paired_bootstrap_diff(a, b, seed=seed, resamples=200)
    assert diff.low <= diff.value + 1e-12 and diff.value <= diff.high + 1e-12
    swapped, p_swapped = paired_bootstrap_test(b, a, seed=seed, resamples=200)
    assert swapped.value == pytest.approx(-diff.value, abs=1e-12)
    assert (swapped.low, swapped.high) == pytest.approx((-diff.high, -diff.low), abs=1e-12)
    assert p_swapped == pytest.approx(p)
    same, p_same = paired_bootstrap_test(a, a, seed=seed, resamples=200)
    assert (same.value, p_same) == (0.0, 1.0)


def test_bootstrap_test_edge_cases():
    assert paired_bootstrap_test([], []) == (paired_bootstrap_diff([], []), 1.0)
    _, p = paired_bootstrap_test([1.0] * 30, [0.0] * 30, resamples=999)
    assert p == pytest.approx(1 / 1000)  # every example favours A: as small as the resampling can resolve
