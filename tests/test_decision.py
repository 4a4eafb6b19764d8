"""The one decision rule: intervals agree with the p-values beside them, outcomes read off one interval, worked
cases whose answers are computed by hand here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.analysis.decision import (
    Outcome,
    compare_paired,
    compare_to_value,
    compare_unpaired,
    outcome_of,
    read_together,
    smallest_exact_p,
)
from harness.evaluation.inference import (
    ALPHA,
    binomial_exact,
    clopper_pearson,
    holm,
    mcnemar_exact,
    newcombe_unpaired,
    percentile_bootstrap,
)


def paired(both: int, a_only: int, b_only: int, neither: int) -> tuple[dict, dict]:
    """{id: 0/1} for A and B from the four cells of the 2x2 table."""
    a, b = [], []
    for count, (x, y) in ((both, (1, 1)), (a_only, (1, 0)), (b_only, (0, 1)), (neither, (0, 0))):
        a += [float(x)] * count
        b += [float(y)] * count
    return {f"e{i}": v for i, v in enumerate(a)}, {f"e{i}": v for i, v in enumerate(b)}


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 60), st.integers(0, 60),
       st.sampled_from([0.01, 0.05, 0.1]))
def test_exact_interval_excludes_zero_exactly_when_mcnemar_p_is_below_alpha(both, a_only, b_only, neither, alpha):
    pairs = both + a_only + b_only + neither
    if pairs == 0:
        return
    result = mcnemar_exact(a_only, b_only, pairs, alpha)
    excludes_zero = result.low > 0 or result.high < 0
    assert excludes_zero == (result.p_value < alpha)
    assert result.low <= result.estimate <= result.high
    assert -1 <= result.low and result.high <= 1


def test_two_hundred_examples_with_four_discordant_pairs_read_not_shown():
    """The issue's case: 4 discordant pairs, all for A. p = 2 x 0.5^4 = 0.125, so not better beyond noise, and the
    interval says the same (a percentile bootstrap gave [+0.5, +4.0] here, which read as 'better')."""
    a, b = paired(150, 4, 0, 46)
    decision = compare_paired(a, b, "task_accuracy")
    assert decision.p_value == pytest.approx(0.125)
    assert decision.difference.value == pytest.approx(0.02)
    assert decision.difference.low < 0 < decision.difference.high
    assert decision.outcome is Outcome.NOT_SHOWN
    assert (decision.a_only, decision.b_only, decision.difference.n) == (4, 0, 200)


def test_no_discordant_pair_still_leaves_an_interval_as_wide_as_the_pairs_allow():
    result = mcnemar_exact(0, 0, 200)
    share_high = clopper_pearson(0, 200)[1]  # 1 - 0.025^(1/200)
    assert share_high == pytest.approx(1 - 0.025 ** (1 / 200))
    assert (result.low, result.high, result.p_value) == (pytest.approx(-share_high), pytest.approx(share_high), 1.0)


def test_planted_win_is_better_with_hand_checked_p():
    a, b = paired(100, 14, 2, 44)  # 16 discordant, 14 for A: p = 2 * P(X >= 14 | 16, 1/2)
    expected_p = 2 * sum(__import__("math").comb(16, k) for k in range(14, 17)) / 2**16
    decision = compare_paired(a, b, "task_accuracy")
    assert decision.p_value == pytest.approx(expected_p)
    assert decision.outcome is Outcome.BETTER and decision.passes
    swapped = compare_paired(b, a, "task_accuracy")
    assert swapped.outcome is Outcome.WORSE and swapped.p_value == pytest.approx(expected_p)


def test_margin_makes_not_worse_a_first_class_outcome():
    a, b = paired(180, 3, 3, 14)  # equal accuracy on 200 pairs
    strict = compare_paired(a, b, "task_accuracy")
    assert strict.outcome is Outcome.NOT_SHOWN and not strict.passes
    lenient = compare_paired(a, b, "task_accuracy", margin=0.05)
    assert strict.difference == lenient.difference  # the margin changes the reading, not the numbers
    assert lenient.difference.low > -0.05
    assert lenient.outcome is Outcome.NOT_WORSE and lenient.passes
    tight = compare_paired(a, b, "task_accuracy", margin=0.01)
    assert tight.difference.low < -0.01 and tight.outcome is Outcome.NOT_SHOWN


def test_lower_is_better_metrics_are_read_in_their_direction():
    a = {f"e{i}": 0.0 for i in range(60)}  # A never hallucinates
    b = {f"e{i}": 1.0 if i < 20 else 0.0 for i in range(60)}
    decision = compare_paired(a, b, "hallucination_rate")
    assert decision.difference.value < 0 and decision.outcome is Outcome.BETTER
    assert outcome_of(-0.2, -0.1, higher_is_better=False, margin=0) is Outcome.BETTER
    assert outcome_of(0.1, 0.2, higher_is_better=False, margin=0) is Outcome.WORSE
    assert outcome_of(-0.01, 0.03, higher_is_better=False, margin=0.05) is Outcome.NOT_WORSE


def test_missing_values_are_left_out_and_counted():
    a = {"x": 1.0, "y": None, "z": 1.0, "w": 0.0}
    b = {"x": 0.0, "y": 1.0, "z": None, "v": 1.0}
    decision = compare_paired(a, b, "task_accuracy")
    assert (decision.difference.n, decision.excluded) == (1, 2)
    nothing = compare_paired({"x": 1.0}, {"y": 1.0}, "task_accuracy")
    assert nothing.test == "none" and nothing.outcome is Outcome.NOT_SHOWN and "share no" in nothing.why


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=40), st.integers(0, 2**31),
       st.sampled_from([0.0, 0.1, -0.2]), st.sampled_from([None, 1, 2, 6, 30]))
def test_bootstrap_interval_excludes_the_null_exactly_when_its_p_is_below_alpha(values, seed, null, n):
    draws = np.random.default_rng(seed).choice(np.asarray(values), size=(500, len(values))).mean(axis=1)
    result = percentile_bootstrap(draws, float(np.mean(values)), null=null, n=n)
    assert (result.low > null or result.high < null) == (result.p_value < ALPHA)
    if n is not None:  # expanded: never narrower than the plain interval, never a smaller p
        plain = percentile_bootstrap(draws, float(np.mean(values)), null=null)
        assert result.low <= plain.low and result.high >= plain.high and result.p_value >= plain.p_value


def test_scores_that_are_not_0_1_get_the_paired_bootstrap():
    rng = np.random.default_rng(0)
    base = rng.random(120)
    a = {f"e{i}": float(min(1, v + 0.15)) for i, v in enumerate(base)}
    b = {f"e{i}": float(v) for i, v in enumerate(base)}
    decision = compare_paired(a, b, "field_f1")
    assert decision.test == "paired-bootstrap" and decision.outcome is Outcome.BETTER
    assert (decision.difference.low > 0) == (decision.p_value < ALPHA)


def test_no_bootstrap_claims_what_no_exact_test_could_show_on_so_few_examples():
    """Three pairs that all lean one way: every bootstrap draw lies above 0 (p = 0, "better"), but flipping their signs
    gives 8 equally likely arrangements, so no test reaches p < 0.25. Six pairs can (p = 2/64)."""
    three = compare_paired({"a": 0.5, "b": 0.6, "c": 0.7}, {"a": 0.1, "b": 0.2, "c": 0.3}, "field_f1")
    assert three.test == "none" and three.outcome is Outcome.NOT_SHOWN and not three.passes
    assert three.difference.value == pytest.approx(0.4) and three.difference.low is None and three.difference.n == 3
    assert "only 3 pairs" in three.why and "0.25" in three.why and "score more examples" in three.evidence()
    six = compare_paired({str(i): 0.6 for i in range(6)}, {str(i): 0.2 + i / 100 for i in range(6)}, "field_f1")
    assert six.test == "paired-bootstrap" and six.outcome is Outcome.BETTER
    assert smallest_exact_p(5) == pytest.approx(1 / 16) and smallest_exact_p(6) == pytest.approx(1 / 32)
    assert compare_to_value([0.9, 0.8, 0.95], 0.5, "field_f1").test == "none"
    assert compare_unpaired([0.9, 0.8, 0.95], [0.1, 0.2, 0.3], "field_f1").test == "none"  # 2 / C(6, 3) = 0.1
    assert smallest_exact_p(3, 4) == pytest.approx(2 / 35) and smallest_exact_p(4, 4) == pytest.approx(2 / 70)


def test_a_typed_in_figure_is_weighed_with_the_candidates_exact_interval():
    flags = [1.0] * 170 + [0.0] * 30  # 85% on 200
    low, high = clopper_pearson(170, 200)
    equal = compare_to_value(flags, 0.85, "task_accuracy")
    assert equal.test == "exact-binomial"
    assert (equal.difference.low, equal.difference.high) == (pytest.approx(low - 0.85), pytest.approx(high - 0.85))
    assert equal.outcome is Outcome.NOT_SHOWN
    assert compare_to_value(flags, 0.85, "task_accuracy", margin=0.06).outcome is Outcome.NOT_WORSE
    assert compare_to_value(flags, 0.70, "task_accuracy").outcome is Outcome.BETTER
    result = binomial_exact(170, 200, 0.85)
    assert (result.low < 0 < result.high) and result.p_value >= ALPHA


def test_unpaired_comparison_on_different_examples():
    now = [1.0] * 40 + [0.0] * 60
    before = [1.0] * 80 + [0.0] * 20
    decision = compare_unpaired(now, before, "task_accuracy")
    assert decision.test == "newcombe-score" and decision.outcome is Outcome.WORSE
    assert decision.difference.value == pytest.approx(-0.4)
    # Newcombe's published example (1998, method 10): 56/70 against 48/80 is +0.2000, 95% CI [0.0524, 0.3339]
    published = newcombe_unpaired(56, 70, 48, 80)
    assert (published.low, published.high) == (pytest.approx(0.0524, abs=5e-5), pytest.approx(0.3339, abs=5e-5))
    rates = compare_unpaired([0.5, 0.25, 1.0, 0.75], [0.0, 0.5, 0.25, 0.1], "task_accuracy")
    assert rates.test == "unpaired-bootstrap"  # not 0/1: each side resampled on its own


def test_an_unpaired_interval_on_a_handful_of_examples_is_wide_not_zero():
    """One example each, both right: a bootstrap reads [0, 0] (certainty); the score interval says how little one
    example shows."""
    tiny = compare_unpaired([1.0], [1.0], "task_accuracy")
    assert tiny.difference.low < -0.7 and tiny.difference.high > 0.7 and tiny.outcome is Outcome.NOT_SHOWN


@pytest.mark.parametrize("a, n_a, b, n_b", [(56, 70, 48, 80), (9, 10, 3, 10), (30, 100, 45, 100), (5, 5, 0, 4),
                                            (40, 60, 40, 60), (1, 1, 0, 1)])
def test_the_unpaired_interval_leaves_out_zero_exactly_when_p_is_below_alpha(a, n_a, b, n_b):
    result = newcombe_unpaired(a, n_a, b, n_b)
    assert result.low <= result.estimate <= result.high
    assert (result.low > 0 or result.high < 0) == (result.p_value < ALPHA)
    for alpha in (0.01, 0.1, 0.5):  # at every level, not only 5%
        at = newcombe_unpaired(a, n_a, b, n_b, alpha)
        assert (at.low > 0 or at.high < 0) == (result.p_value < alpha)


def test_holm_adjusts_and_demotes_what_only_looked_significant_alone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    wins = [compare_paired(*paired(100, 9, 1, 40), "task_accuracy"),   # p ~ 0.021
            compare_paired(*paired(100, 8, 1, 40), "format_compliance"),  # p ~ 0.039
            compare_paired(*paired(100, 2, 2, 40), "field_f1")]
    assert [d.outcome for d in wins[:2]] == [Outcome.BETTER, Outcome.BETTER]
    together = read_together(wins)
    assert [d.adjusted_p for d in together] == pytest.approx(holm([d.p_value for d in wins]))
    assert together[1].outcome is Outcome.NOT_SHOWN  # 0.039 x 2 > 0.05
    assert "Holm-adjusted" in together[1].evidence()


@pytest.mark.parametrize("n,p10,p01", [(200, 0.02, 0.0), (200, 0.3, 0.3), (60, 0.15, 0.02), (500, 0.005, 0.0),
                                       (30, 0.02, 0.01)])
def test_exact_interval_covers_the_true_difference(n, p10, p01):
    """Coverage of the true difference, simulated: at least 95% (less three standard errors of the estimate)."""
    rng = np.random.default_rng(n)
    reps, hits = 1500, 0
    for _ in range(reps):
        a_only, b_only, _ = rng.multinomial(n, [p10, p01, 1 - p10 - p01])
        r = mcnemar_exact(int(a_only), int(b_only), n)
        hits += r.low - 1e-12 <= p10 - p01 <= r.high + 1e-12
    assert hits / reps >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / reps)
