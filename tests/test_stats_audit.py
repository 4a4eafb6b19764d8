"""A statistician's audit of the numbers behind the verdict: each test, interval and reading checked against an
independent computation (scipy, a formula written out here, or brute-force enumeration), with the cases the audit
found wrong pinned down: ties that let a bootstrap claim what no exact test could, values left out uncounted, a NaN
read as p = 0, and a Holm-demoted result described as if its interval held 0."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binomtest, multinomial, norm

from harness.analysis.compare import Comparison, TrialSide, comparison_text
from harness.analysis.decision import Outcome, compare_paired, compare_to_value, compare_unpaired, read_together
from harness.evaluation.inference import (
    clopper_pearson,
    expanded_alpha,
    holm,
    mcnemar_exact,
    newcombe_unpaired,
    percentile_bootstrap,
)
from harness.evaluation.stats import bootstrap_mean, bootstrap_means, wilson_interval


def sign_flip_p(differences: list[float]) -> float:
    """Two-sided exact sign-flip (randomisation) p-value of the mean difference, by enumerating every flip."""
    d = np.asarray(differences, dtype=np.float64)
    observed = abs(d.mean())
    means = [abs((d * signs).mean()) for signs in itertools.product((1, -1), repeat=d.size)]
    return float(np.mean([m >= observed - 1e-12 for m in means]))


def by_id(values: list[float | None]) -> dict[str, float | None]:
    return {f"e{i}": v for i, v in enumerate(values)}


# -- the formulas, against independent computations -----------------------------------------------------------


def test_wilson_and_clopper_pearson_match_the_formula_and_scipy():
    z = norm.ppf(0.975)
    for n in (1, 2, 7, 30):
        for k in range(n + 1):
            p = k / n
            centre, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
            by_hand = (max(0.0, (centre - half) / (1 + z * z / n)), min(1.0, (centre + half) / (1 + z * z / n)))
            assert wilson_interval(k, n) == pytest.approx(by_hand, abs=1e-12)
            exact = binomtest(k, n).proportion_ci(method="exact")
            assert clopper_pearson(k, n) == pytest.approx((exact.low, exact.high), abs=1e-9)


def test_mcnemar_p_is_the_exact_binomial_test_of_the_discordant_pairs():
    for discordant in range(1, 25):
        for a_only in range(discordant + 1):
            expected = binomtest(a_only, discordant, 0.5).pvalue
            assert mcnemar_exact(a_only, discordant - a_only, 60).p_value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n,p10,p01", [(8, 0.3, 0.1), (12, 0.2, 0.2), (15, 0.05, 0.0), (15, 0.45, 0.1)])
def test_mcnemar_interval_covers_the_true_difference_exactly_enumerated(n, p10, p01):
    """Coverage computed exactly (every 2x2 table weighed by its multinomial probability), not simulated."""
    law = multinomial(n, [p10, p01, 1 - p10 - p01])
    covered = 0.0
    for a_only in range(n + 1):
        for b_only in range(n + 1 - a_only):
            r = mcnemar_exact(a_only, b_only, n)
            if r.low - 1e-12 <= p10 - p01 <= r.high + 1e-12:
                covered += law.pmf([a_only, b_only, n - a_only - b_only])
    assert covered >= 0.95


def test_newcombe_interval_matches_method_10_written_out():
    def by_hand(a, n_a, b, n_b):
        (la, ua), (lb, ub) = wilson_interval(a, n_a), wilson_interval(b, n_b)
        pa, pb = a / n_a, b / n_b
        return (pa - pb - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2),
                pa - pb + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2))

    for a, n_a, b, n_b in [(0, 5, 3, 7), (5, 5, 0, 4), (12, 30, 20, 31), (56, 70, 48, 80)]:
        r = newcombe_unpaired(a, n_a, b, n_b)
        assert (r.low, r.high) == pytest.approx(by_hand(a, n_a, b, n_b), abs=1e-12)


def test_holm_matches_the_step_down_definition():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = list(rng.random(int(rng.integers(1, 6))) ** 3)
        k = len(p)
        order = sorted(range(k), key=lambda i: p[i])
        # adjusted p of the r-th smallest: max over j <= r of min(1, (k - j) p_(j))
        expected = {order[r]: max(min(1.0, (k - j) * p[order[j]]) for j in range(r + 1)) for r in range(k)}
        assert holm(p) == pytest.approx([expected[i] for i in range(k)])


# -- what the audit found ------------------------------------------------------------------------------------


def test_ties_do_not_let_a_bootstrap_claim_what_no_exact_test_could_show():
    """100 field-F1 pairs, 4 of which differ (all in A's favour): flipping the signs of those 4 gives 16 equally
    likely arrangements, so no exact test reaches p < 0.125; the 96 ties cannot move. The bootstrap, counting all
    100 pairs, read p = 0.031 and "better"."""
    a, b = [0.5] * 100, [0.5] * 100
    a[:4] = [0.75] * 4
    assert sign_flip_p([x - y for x, y in zip(a[:10], b[:10])]) == pytest.approx(0.125)
    four = compare_paired(by_id(a), by_id(b), "field_f1")
    assert four.test == "none" and four.outcome is Outcome.NOT_SHOWN and not four.passes
    assert "4 of the 100 pairs differ (the rest tie)" in four.why and "0.125" in four.why
    assert four.difference.value == pytest.approx(0.01) and four.difference.n == 100
    a[:6] = [0.75] * 6  # 6 that differ can reach 2 / 64: the bootstrap decides again
    assert compare_paired(by_id(a), by_id(b), "field_f1").test == "paired-bootstrap"
    same = compare_paired(by_id(b), by_id(b), "field_f1")
    assert same.test == "none" and "0 of the 100 pairs differ (all tie)" in same.why
    # the same against a fixed figure: 4 of 50 scores away from it
    scores = [0.8] * 46 + [0.9] * 4
    figure = compare_to_value(scores, 0.8, "field_f1")
    assert figure.test == "none" and "4 of the 50 examples differ from 0.8" in figure.why


def test_with_a_margin_ties_still_show_not_worse_but_never_better():
    """Against a margin the test is of "worse by the margin", which tied pairs do move: 100 identical outputs are
    not worse. But 5 of 100 pairs differing is too few for any test of "no difference", so never "better"."""
    b = [0.5] * 100
    same = compare_paired(by_id(b), by_id(b), "field_f1", margin=0.02)
    assert same.test == "paired-bootstrap" and same.outcome is Outcome.NOT_WORSE and same.passes and not same.why
    a = [0.5] * 100
    a[:5] = [1.0] * 5
    spread = compare_paired(by_id(a), by_id(b), "field_f1", margin=0.02)
    assert spread.outcome is Outcome.NOT_WORSE and spread.difference.low == 0  # expanded for 5 values, 0 stays in
    assert compare_paired(by_id(a), by_id(b), "field_f1").test == "none"  # ... and without a margin: no test
    # 5 of 6 pairs differ: so few ties that nearly every draw holds a differing pair and the interval leaves 0 out
    few = compare_paired(by_id([1.0] * 5 + [0.5]), by_id([0.5] * 6), "field_f1", margin=0.02)
    assert few.difference.low > 0
    assert few.outcome is Outcome.NOT_WORSE and "better is not claimed: only 5 of the 6 pairs differ" in few.why
    assert "not worse by more than the 2.0-point margin (better is not claimed" in few.reading()
    lower = compare_paired(by_id(b), by_id(b), "latency_s", higher_is_better=False, margin=0.02)
    assert lower.outcome is Outcome.NOT_WORSE  # the margin is read in the metric's direction


def test_a_bootstrap_against_a_fixed_figure_is_not_called_paired():
    rng = np.random.default_rng(0)
    decision = compare_to_value(list(rng.uniform(0.6, 1.0, 40)), 0.5, "field_f1")
    assert decision.test == "bootstrap-vs-figure" and decision.outcome is Outcome.BETTER
    text = decision.evidence()
    assert "bootstrap against a fixed figure" in text and "pair" not in text and "40 examples" in text


def test_an_unpaired_comparison_counts_the_examples_it_leaves_out():
    now = [1.0] * 30 + [0.0] * 10 + [None] * 3
    before = [1.0] * 20 + [0.0] * 20 + [None] * 2
    decision = compare_unpaired(now, before, "task_accuracy")
    assert decision.excluded == 5 and decision.difference.n == 40
    assert "(5 without a value left out)" in decision.evidence()
    assert compare_unpaired([None, None], [1.0], "task_accuracy").excluded == 2


def test_a_nan_score_is_left_out_and_counted_not_read_as_p_zero():
    """One NaN made every bootstrap draw NaN: the p-value read 0 ("p < 0.001") and the outcome "better", with the
    difference printed as "+nan points"."""
    a = by_id([0.6] * 30 + [0.0] * 10)
    b = by_id([0.6] * 30 + [0.0] * 10)
    a["e0"] = float("nan")
    decision = compare_paired(a, b, "field_f1")
    assert decision.excluded == 1 and decision.difference.n == 39
    assert decision.outcome is Outcome.NOT_SHOWN and "nan" not in decision.evidence()
    flags = by_id([1.0] * 20 + [0.0] * 20)
    flags["e1"] = math.inf
    assert compare_paired(flags, by_id([1.0] * 40), "task_accuracy").excluded == 1
    assert compare_to_value([1.0, float("nan"), 0.0], 0.5, "task_accuracy").excluded == 1


def test_holm_demotion_reads_in_words_that_match_the_interval():
    """Alone, p = 0.039 and its interval leaves 0 out; read with a second score, Holm lifts it to 0.078. The reading
    must not then say "the interval includes 0" (it does not), and with a margin, an interval wholly on the good
    side is still within the margin: "not worse", not "not shown ... and not within the margin"."""
    a = by_id([1.0] * 8 + [0.0] * 1 + [1.0] * 40 + [0.0] * 51)  # 8 pairs only A right, 1 only B
    b = by_id([0.0] * 8 + [1.0] * 1 + [1.0] * 40 + [0.0] * 51)
    alone = compare_paired(a, b, "format_compliance")
    assert alone.outcome is Outcome.BETTER and alone.difference.low > 0 and alone.p_value == pytest.approx(0.0390625)
    other = compare_paired(a, a, "task_accuracy")
    demoted = read_together([alone, other])[0]
    assert demoted.outcome is Outcome.NOT_SHOWN and demoted.adjusted_p == pytest.approx(0.078125)
    assert "interval includes 0" not in demoted.reading() and "Holm-adjusted p 0.0781" in demoted.reading()
    with_margin = read_together([compare_paired(a, b, "format_compliance", margin=0.02), other])[0]
    assert with_margin.outcome is Outcome.NOT_WORSE and with_margin.passes
    assert "not within" not in with_margin.reading()


def test_the_compare_paragraph_counts_holm_scores_in_the_right_number():
    a = by_id([1.0] * 30 + [0.0] * 10)
    b = by_id([0.0] * 30 + [0.0] * 10)
    primary = compare_paired(a, b, "task_accuracy")
    secondary = read_together([compare_paired(a, b, "format_compliance")])
    side = TrialSide("s/1", "lora", {}, True, True, None)
    text = comparison_text(Comparison(side, TrialSide("s/0", "prompt", {}, True, False, None), "test", 40, 0, 0,
                                      "task_accuracy", [primary, *secondary], [], 30))
    assert "Holm-adjusted over 1 score)" in text


# -- small samples: the expanded percentile bootstrap ---------------------------------------------------------


def test_expanded_share_matches_hesterbergs_formula_and_fades_with_n():
    from scipy.stats import t

    for n in (2, 6, 30, 500):
        expected = 2 * norm.cdf(-math.sqrt(n / (n - 1)) * t.isf(0.025, n - 1))
        assert expanded_alpha(0.05, n) == pytest.approx(expected, rel=1e-12)
    assert expanded_alpha(0.05, 6) < 0.01 and 0.049 < expanded_alpha(0.05, 500) < 0.05
    assert expanded_alpha(0.05, 1) == 0.0  # no spread to estimate: the draws' whole range


def test_a_paired_bootstrap_of_8_differences_rejects_a_true_null_at_about_its_level():
    """Under "no difference" the paired differences are symmetric about 0. The plain percentile bootstrap of 8 normal
    differences rejected 11% of such nulls at a nominal 5% (13% at 6 pairs); expanded, 5.6% (5.5% at 6), in 1,000
    simulated samples each."""
    rng = np.random.default_rng(11)
    zeros = by_id([0.0] * 8)
    rejected = plain = 0
    for trial in range(400):
        d = rng.normal(0, 0.1, 8)
        decision = compare_paired(by_id(list(d)), zeros, "field_f1", seed=trial)
        rejected += decision.p_value < 0.05
        assert (decision.outcome is not Outcome.NOT_SHOWN) == (decision.p_value < 0.05)
        plain += percentile_bootstrap(bootstrap_means(d, trial), float(d.mean())).p_value < 0.05
    assert rejected / 400 <= 0.075 and plain / 400 >= 0.09


def test_a_mean_of_10_scores_gets_an_interval_that_covers_it_about_95_percent_of_the_time():
    """Ten ROUGE-like scores (beta(2, 3), mean 0.4): in 9,000 simulated samples the plain percentile interval covered
    the mean 90% of the time, the expanded one 94.5%. 1,000 here: 89.4% and 93.4%."""
    rng = np.random.default_rng(5)
    covered = plain = 0
    for trial in range(1000):
        x = rng.beta(2, 3, 10)
        metric = bootstrap_mean(x, seed=trial)
        covered += metric.low <= 0.4 <= metric.high
        low, high = np.percentile(bootstrap_means(x, trial), [2.5, 97.5])
        plain += low <= 0.4 <= high
    assert covered / 1000 >= 0.925 and plain / 1000 <= 0.915, (covered, plain)


def test_a_bootstrap_p_of_zero_is_given_with_the_bound_its_draws_can_show():
    """Every draw on one side reads p = 0, which no test can show: the draws bound p by what one draw on the null's
    side would give. On 6 pairs the expanded interval makes that bound 0.03, near the exact sign-flip test's 0.031,
    and "p < 0.001" overclaimed it; JSON had only the 0. On 400 values 2,000 draws bound it near 0.001."""
    a = by_id([0.9, 0.8, 0.95, 0.85, 0.9, 0.99])
    b = by_id([0.1, 0.2, 0.15, 0.1, 0.3, 0.2])
    few = compare_paired(a, b, "rouge_l")
    assert few.p_value == 0.0 and few.p_below is not None
    assert few.p_below == pytest.approx(sign_flip_p([0.8, 0.6, 0.8, 0.75, 0.6, 0.79]), abs=0.005)
    assert f"p < {few.p_below:.2g}" in few.evidence() and "< 0.001" not in few.evidence()
    many = compare_paired(by_id([0.5 + 0.01 * (i % 3) for i in range(400)]), by_id([0.4] * 400), "rouge_l")
    assert many.p_value == 0.0 and many.p_below < 0.002 and f"p < {many.p_below:.2g}" in many.evidence()
    assert compare_paired(by_id([1.0] * 30 + [0.0] * 30), by_id([0.0] * 30 + [1.0] * 30), "rouge_l").p_below is None


def test_holm_over_unresolved_bootstrap_ps_follows_their_bound():
    """Two scores on 6 pairs, each p < 0.03 by its draws: Holm over the two can only say p < 0.06, and an exact test
    reads 0.062, so neither is "better"; alone, each still is."""
    a = by_id([0.9, 0.8, 0.95, 0.85, 0.9, 0.99])
    b = by_id([0.1, 0.2, 0.15, 0.1, 0.3, 0.2])
    alone = compare_paired(a, b, "rouge_l")
    assert alone.outcome is Outcome.BETTER
    together = read_together([alone, compare_paired(a, b, "field_f1")])
    for decision in together:
        assert decision.adjusted_p == 0.0 and decision.adjusted_below >= 0.05
        assert decision.outcome is Outcome.NOT_SHOWN
        assert f"its draws show the Holm-adjusted p only below {decision.adjusted_below:.2g}, not below 0.05" \
            in decision.reading()


def test_a_single_bootstrap_that_cannot_show_p_below_alpha_claims_no_difference():
    """3 new examples against 40 (recheck's unpaired bootstrap): every draw on one side, yet its draws could only show
    p below 0.12. It read "worse", beside a printed "p < 0.001"."""
    three, forty = [0.1, 0.15, 0.12], [0.8 + 0.005 * (i % 5) for i in range(40)]
    decision = compare_unpaired(three, forty, "rouge_l")
    assert decision.p_value == 0.0 and decision.p_below >= 0.05
    assert decision.outcome is Outcome.NOT_SHOWN and decision.difference.high < 0  # the interval alone leaves 0 out
    assert f"its draws show p only below {decision.p_below:.2g}, not below 0.05" in decision.reading()
    enough = compare_unpaired([0.1 + 0.01 * (i % 3) for i in range(30)], forty, "rouge_l")
    assert enough.outcome is Outcome.WORSE and enough.p_below < 0.05


def test_a_mean_score_reads_in_its_own_units_everywhere():
    """ROUGE-L printed 0.047 in `trials` and the verdict's arms, but `-4.1 points` as their difference, and 4.7% in
    `compare` and payback."""
    from harness.analysis.formatting import points, scored
    from harness.core.metric import Metric

    a = by_id([0.1 + 0.01 * (i % 5) for i in range(40)])
    b = by_id([0.2 + 0.01 * (i % 3) for i in range(40)])
    evidence = compare_paired(a, b, "rouge_l").evidence()
    assert evidence.startswith("-0.") and "points" not in evidence.split(",")[0]
    assert points(Metric(-0.041, -0.064, -0.012, 14), "rouge_l") == "-0.041, 95% CI [-0.064, -0.012]"
    assert points(Metric(0.25, 0.1, 0.4, 14)) == "+25.0 points, 95% CI [+10.0, +40.0]"
    assert (scored(0.047, "rouge_l"), scored(0.62, "task_accuracy")) == ("0.047", "62.0%")
