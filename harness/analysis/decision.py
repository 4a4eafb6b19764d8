"""Is A better than B? The one home of that question: the verdict, the gate, `compare`, payback's quality bar,
`recheck` and the dashboard all ask it here, and print the `Decision` it returns.

The rule, word for word as README's Metrics section states it:

    Two arms are compared on one metric, in its direction: the study's objective metric (task accuracy unless the
    experiment names another), on the test examples both were scored on. Examples where either arm has no value are left
    out, and counted. For 0/1 scores the test is McNemar's exact test, and the 95% interval of the difference is built
    from the same test (the Clopper-Pearson intervals of the share of disagreeing pairs the first arm wins, which the
    test inverts, and of the disagreeing pairs' share of all pairs, spanning every difference the two allow:
    conservative, about a third wider than the usual paired interval on 100 pairs, and not centred on the estimate), so
    the interval excludes 0 exactly when p < 0.05; for other scores it is a paired percentile bootstrap, expanded for
    small samples, whose p-value is read off the same draws as its interval, with the same guarantee; where so few pairs
    are scored that no exact test could show a difference at all (5 or fewer at 95%), or, for scores other than 0/1, so
    few of them differ, there is no test and the outcome is not shown (for 0/1 scores, pairs that all agree still bound
    the difference: the interval counts how many could have differed). The outcome is read off that one interval: better
    when it lies wholly on the good side of 0, not worse when a margin is set and its bad end stays within the margin,
    worse when it lies wholly on the bad side, and not shown otherwise. A figure typed in by the user is weighed the
    same way, with the candidate's own exact interval against it. Secondary metrics reported together are read at
    Holm-adjusted p-values, and the output says so.

Pure functions over typed views (`ExampleView`s, or {example id: value} read from them): no store in here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from harness.analysis.formatting import counted, p_value, pct, points
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import ExampleView
from harness.evaluation.inference import (
    ALPHA,
    TestResult,
    binomial_exact,
    holm,
    mcnemar_exact,
    newcombe_unpaired,
    percentile_bootstrap,
    spread_n,
)
from harness.evaluation.labels import paired_macro_f1_draws, too_few_a_label
from harness.evaluation.scorers import higher_is_better as direction_of
from harness.evaluation.stats import bootstrap_means

RESAMPLES = 2000


class Outcome(StrEnum):
    BETTER = "better"
    NOT_WORSE = "not worse"
    """Within the margin: A's bad end stays inside it (non-inferiority)."""
    WORSE = "worse"
    NOT_SHOWN = "not shown"


TESTS = {
    "mcnemar-exact": "McNemar exact",
    "paired-bootstrap": "paired bootstrap",
    "paired-label-bootstrap": "paired bootstrap of macro-F1, within each true label",
    "unpaired-bootstrap": "unpaired bootstrap (different examples)",
    "newcombe-score": "Newcombe score interval (different examples)",
    "exact-binomial": "exact binomial against a fixed figure",
    "bootstrap-vs-figure": "bootstrap against a fixed figure",
    "none": "no test",
}


@dataclass(frozen=True)
class Decision:
    """A against B on one metric: the paired difference, its 95% interval and p-value (one test), the outcome."""

    metric: str
    higher_is_better: bool
    test: str
    """A key of TESTS: `mcnemar-exact`, `paired-bootstrap`, `unpaired-bootstrap`, `newcombe-score`,
    `exact-binomial`, `bootstrap-vs-figure` or `none`."""
    a: float | None
    """A's mean over the pairs compared (which may be fewer than A's reported n, when values are missing)."""
    b: float | None
    """B's mean over the same pairs, or the fixed figure A is weighed against."""
    difference: Metric
    """A - B with its 95% interval; n is the number of pairs (or of A's examples, unpaired)."""
    p_value: float
    """Two-sided, for "no difference", from the test the interval inverts."""
    outcome: Outcome
    margin: float = 0.0
    """Non-inferiority margin in the metric's units (0.02 = 2 points); 0: A must be better."""
    alpha: float = ALPHA
    excluded: int = 0
    """Examples left out because A or B has no value there (a refused request, a non-compliant output): shared
    examples when paired, either side's when unpaired or against a figure."""
    a_only: int | None = None
    """0/1 scores: pairs where only A is right (in the metric's sense, 1.0), and where only B is."""
    b_only: int | None = None
    adjusted_p: float | None = None
    """Holm-adjusted p when read together with other metrics; the outcome then follows it."""
    p_below: float | None = None
    """Where `p_value` reads 0 because every bootstrap draw fell on one side of 0: the draws only show p below this
    (the text prints `p < p_below`). None for exact tests and for any p above 0."""
    adjusted_below: float | None = None
    """The same bound for `adjusted_p` where it reads 0."""
    why: str = ""
    """Why there is no test (no shared examples with values), or why "better" is not claimed; empty otherwise."""

    @property
    def decided_p(self) -> float:
        return self.p_value if self.adjusted_p is None else self.adjusted_p

    def p_text(self, adjusted: bool = False) -> str:
        """`= 0.031`, `< 0.001`, or `< 0.024` where p read 0 off bootstrap draws that can only bound it."""
        p, below = (self.adjusted_p, self.adjusted_below) if adjusted else (self.p_value, self.p_below)
        if p == 0.0 and below is not None and below >= 0.001:
            return f"< {below:.2g}"
        return p_value(p) if p < 0.001 else f"= {p_value(p)}"

    @property
    def passes(self) -> bool:
        """Better, or not worse within the margin."""
        return self.outcome in (Outcome.BETTER, Outcome.NOT_WORSE)

    def evidence(self) -> str:
        """`+14.4 points, 95% CI [+5.0, +23.1], McNemar exact p = 0.004 (14 pairs only A right, 2 only B), 160
        pairs`."""
        if self.test == "none":
            return f"{self.metric}: {self.why}"
        d = self.difference
        text = f"{points(d, self.metric)}, {TESTS[self.test]} p {self.p_text()}"
        if self.margin:  # "p = 1 ... not worse" read as a contradiction: p tests no difference, the margin the interval
            text += " of no difference"
        if self.adjusted_p is not None:
            text += f" (Holm-adjusted {self.p_text(adjusted=True)})"
        if self.a_only is not None:
            marked = "right" if self.higher_is_better else "flagged"
            text += f" ({counted(self.a_only, 'pair')} only A {marked}, {self.b_only} only B)"
        unit = "pair" if self.test in ("mcnemar-exact", "paired-bootstrap", "paired-label-bootstrap") else "example"
        text += f", {counted(d.n, unit)}" + (f" ({self.excluded} without a value left out)" if self.excluded else "")
        return text

    def reading(self) -> str:
        """The outcome in words, with the margin when one applies."""
        if self.outcome is Outcome.NOT_WORSE:
            return (f"not worse by more than the {pct(self.margin)}-point margin"
                    + (f" ({self.why})" if self.why else ""))
        if self.outcome is Outcome.NOT_SHOWN:
            return "not shown" + self._why_not_shown() + (
                f" and not within the {pct(self.margin)}-point margin" if self.margin else "")
        return f"{self.outcome.value}, beyond noise"

    def _why_not_shown(self) -> str:
        if self.test == "none":
            return ""
        d = self.difference
        if d.low is None or not (d.low > 0 or d.high < 0):
            return " (the interval includes 0)"
        # its own 95% interval leaves 0 out, so "the interval includes 0" would be false: say what held it back
        if self.adjusted_p is not None and (self.adjusted_below is not None or self.adjusted_p >= self.alpha):
            if self.adjusted_below is not None:
                return (f" (its draws show the Holm-adjusted p only below {self.adjusted_below:.2g}, not below "
                        f"{self.alpha:g}: score more examples)")
            return f" (Holm-adjusted p {self.p_text(adjusted=True).removeprefix('= ')} is not below {self.alpha:g})"
        if self.p_below is not None and self.p_below >= self.alpha:
            return (f" (its draws show p only below {self.p_below:.2g}, not below {self.alpha:g}: score more "
                    "examples)")
        return ""


MARGIN_RULE = "a margin is a share of accuracy in [0, 1), e.g. 0.02 for 2 points"
"""What a non-inferiority margin is, said wherever one is refused (`--margin`, `QualityBar`, `compare_trials`)."""


def margin_problem(margin: float) -> str | None:
    """MARGIN_RULE when `margin` breaks it, else None. A margin of 1 or more would call any candidate "not worse"
    (5 read as 500 points), and a negative one would silently be no margin at all."""
    return None if math.isfinite(margin) and 0.0 <= margin < 1.0 else MARGIN_RULE


def check_margin(margin: float, name: str = "margin") -> float:
    """`margin`, or a HarnessError that names `name` (the flag or field) and says what a margin is."""
    problem = margin_problem(margin)
    if problem:
        raise HarnessError(f"{name} {margin!r}: {problem}.")
    return margin


def scores_of(rows: Iterable[ExampleView], metric: str) -> dict[str, float | None]:
    """{example id: the metric's per-example value (None where it does not apply)}."""
    return {row.example_id: _value(row.scores.get(metric)) for row in rows}


def compare_paired(a: Mapping[str, float | None], b: Mapping[str, float | None], metric: str, *,
                   higher_is_better: bool | None = None, margin: float = 0.0, alpha: float = ALPHA,
                   seed: int = 0) -> Decision:
    """A against B over the examples both were scored on (matched by id); pairs where either has no value are left
    out and counted in `excluded`."""
    good = _direction(metric, higher_is_better)
    shared = sorted(set(a) & set(b))
    pairs = [(a[i], b[i]) for i in shared if _has_value(a[i]) and _has_value(b[i])]
    excluded = len(shared) - len(pairs)
    if not pairs:
        why = ("the two share no test examples" if not shared
               else f"no shared example has a {metric} value for both ({excluded} shared)")
        return _undecided(metric, good, margin, alpha, excluded, why)
    x = np.asarray([p[0] for p in pairs], dtype=np.float64)
    y = np.asarray([p[1] for p in pairs], dtype=np.float64)
    common = dict(metric=metric, higher_is_better=good, a=float(x.mean()), b=float(y.mean()), margin=margin,
                  alpha=alpha, excluded=excluded)
    if _binary(x) and _binary(y):
        a_only, b_only = int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1)))
        if (floor := smallest_exact_p(len(pairs))) >= alpha:  # 4 of 4 pairs one way is p = 0.125: no test at all
            few = f"{len(pairs)} pair{'s' if len(pairs) > 1 else ''}"
            none = _no_test(common, float((x - y).mean()), len(pairs), few, floor)
            return replace(none, a_only=a_only, b_only=b_only)
        result = mcnemar_exact(a_only, b_only, len(pairs), alpha)
        return _decision(result, len(pairs), "mcnemar-exact", common, a_only=a_only, b_only=b_only)
    d = x - y
    if (few := _too_few(common, d, "pairs")) is not None:
        return few
    result = percentile_bootstrap(bootstrap_means(d, seed, RESAMPLES), float(d.mean()), alpha=alpha,
                                  n=spread_n(d))
    return _short_of_better(_decision(result, len(pairs), "paired-bootstrap", common), d, "pairs")


def compare_macro_f1(a: Mapping[str, tuple[str, str]], b: Mapping[str, tuple[str, str]], *, margin: float = 0.0,
                     alpha: float = ALPHA, seed: int = 0, why: str = "the two share no test examples") -> Decision:
    """A against B on macro-F1, over the examples both answered: {example id: (true label, predicted)} of each.
    Macro-F1 has no per-example value, so the pairs are resampled together (within each true label) and macro-F1
    computed for both in every draw; the interval and p come from those draws, as a paired bootstrap's do. Where 5
    or fewer examples were answered differently, no test could show a difference, and none is run (with a margin,
    answers that barely differ can still read "not worse")."""
    metric = "macro_f1"
    common = dict(metric=metric, higher_is_better=True, margin=margin, alpha=alpha, excluded=0)
    shared = sorted(set(a) & set(b))
    if not shared:  # `why`: what the caller knows of why there is nothing to compare
        return _undecided(metric, True, margin, alpha, 0, why)
    if any(a[i][0] != b[i][0] for i in shared):  # the same example id with another reference: not the same test
        return _undecided(metric, True, margin, alpha, 0, "their shared examples have different true labels")
    true = [a[i][0] for i in shared]
    left, right = [a[i][1] for i in shared], [b[i][1] for i in shared]
    a_macro, b_macro, draws = paired_macro_f1_draws(true, left, right, seed)
    common.update(a=a_macro, b=b_macro)
    if (few := too_few_a_label(Counter(true).values())) is not None:
        return replace(_undecided(metric, True, margin, alpha, 0, few), a=a_macro, b=b_macro)
    differing = sum(x != y for x, y in zip(left, right))
    if margin == 0 and (floor := smallest_exact_p(differing)) >= alpha:
        return _no_test(common, a_macro - b_macro, len(shared), _differing(differing, len(shared), "examples"),
                        floor)
    result = percentile_bootstrap(draws, a_macro - b_macro, alpha=alpha, n=differing)
    return _decision(result, len(shared), "paired-label-bootstrap", common)


def compare_unpaired(a: Sequence[float], b: Sequence[float], metric: str, *, higher_is_better: bool | None = None,
                     margin: float = 0.0, alpha: float = ALPHA, seed: int = 0) -> Decision:
    """A against B on different examples: far wider than a paired comparison. 0/1 scores get Newcombe's score
    interval, whose width stays honest on a handful of examples (a bootstrap of 3 right out of 3 against 5 of 5
    reads [0, 0]); other scores, each side resampled on its own."""
    good = _direction(metric, higher_is_better)
    x, y = _valued(a), _valued(b)
    excluded = len(a) - int(x.size) + len(b) - int(y.size)
    if not x.size or not y.size:
        return _undecided(metric, good, margin, alpha, excluded, "one side has no scored example")
    common = dict(metric=metric, higher_is_better=good, a=float(x.mean()), b=float(y.mean()), margin=margin,
                  alpha=alpha, excluded=excluded)
    if _binary(x) and _binary(y):
        result = newcombe_unpaired(int(x.sum()), int(x.size), int(y.sum()), int(y.size), alpha)
        return _decision(result, int(x.size), "newcombe-score", common)
    if (floor := smallest_exact_p(int(x.size), int(y.size))) >= alpha:
        return _no_test(common, float(x.mean() - y.mean()), int(x.size), f"{x.size} examples against {y.size}",
                        floor)
    draws = bootstrap_means(x, seed, RESAMPLES) - bootstrap_means(y, seed + 1, RESAMPLES)
    result = percentile_bootstrap(draws, float(x.mean() - y.mean()), alpha=alpha, n=min(int(x.size), int(y.size)))
    return _decision(result, int(x.size), "unpaired-bootstrap", common)


def compare_to_value(a: Sequence[float | None], value: float, metric: str, *, higher_is_better: bool | None = None,
                     margin: float = 0.0, alpha: float = ALPHA, seed: int = 0) -> Decision:
    """A's scores against a fixed figure (one the user typed in, or an absolute bar): A's own exact interval for
    0/1 scores, a bootstrap otherwise."""
    good = _direction(metric, higher_is_better)
    x = _valued(a)
    if not x.size:
        return _undecided(metric, good, margin, alpha, len(a), f"no scored example has a {metric} value")
    common = dict(metric=metric, higher_is_better=good, a=float(x.mean()), b=value, margin=margin, alpha=alpha,
                  excluded=len(a) - int(x.size))
    if _binary(x):
        return _decision(binomial_exact(int(x.sum()), int(x.size), value, alpha), int(x.size), "exact-binomial",
                         common)
    if (few := _too_few(common, x - value, "examples", f" from {value:g}")) is not None:
        return few
    result = percentile_bootstrap(bootstrap_means(x, seed, RESAMPLES) - value, float(x.mean()) - value, alpha=alpha,
                                  n=spread_n(x - value))
    return _short_of_better(_decision(result, int(x.size), "bootstrap-vs-figure", common), x - value, "examples")


def read_together(decisions: Sequence[Decision]) -> list[Decision]:
    """Several metrics reported side by side: each re-read at its Holm-adjusted p-value (the intervals stay the
    per-metric 95% ones), so the chance that any of them reads "beyond noise" by luck stays at most alpha."""
    tested = [i for i, d in enumerate(decisions) if d.test != "none"]
    adjusted = holm([decisions[i].p_value for i in tested])
    # Holm only grows with its inputs: run on each p = 0's bound in its place, it bounds the adjusted p that reads 0
    bounds = holm([decisions[i].p_value if decisions[i].p_below is None else decisions[i].p_below for i in tested])
    out = list(decisions)
    for i, p, bound in zip(tested, adjusted, bounds):
        d, below = decisions[i], bound if p == 0.0 else None
        # the draws cannot show an adjusted p below alpha when its bound is not: the outcome follows the bound then
        out[i] = replace(d, adjusted_p=p, adjusted_below=below,
                         outcome=_at_adjusted_p(d, p if below is None else below))
    return out


def _at_adjusted_p(d: Decision, adjusted: float) -> Outcome:
    """The outcome once the p-value is Holm-adjusted: "better" or "worse" needs the adjusted p below alpha. A
    demoted "better" still lies wholly inside any margin, so with one set it reads "not worse", as its interval does."""
    if d.outcome not in (Outcome.BETTER, Outcome.WORSE) or adjusted < d.alpha:
        return d.outcome
    return Outcome.NOT_WORSE if d.outcome is Outcome.BETTER and d.margin > 0 else Outcome.NOT_SHOWN


# -- the reading -------------------------------------------------------------------------------------------------


def outcome_of(low: float, high: float, higher_is_better: bool, margin: float) -> Outcome:
    """The one reading of an interval of A - B: wholly good, within the margin, wholly bad, or none of these."""
    good_low, good_high = (low, high) if higher_is_better else (-high, -low)
    if good_low > 0:
        return Outcome.BETTER
    if margin > 0 and good_low > -margin:
        return Outcome.NOT_WORSE
    if good_high < 0:
        return Outcome.WORSE
    return Outcome.NOT_SHOWN


def _decision(result: TestResult, n: int, test: str, common: dict, **extra) -> Decision:
    difference = Metric(result.estimate, result.low, result.high, n)
    outcome = outcome_of(result.low, result.high, common["higher_is_better"], common["margin"])
    decision = Decision(test=test, difference=difference, p_value=result.p_value, outcome=outcome,
                        p_below=result.p_below, **common, **extra)
    if result.p_below is not None and result.p_below >= decision.alpha:  # 3 values against 40: p < 0.12 is all
        decision = replace(decision, outcome=_at_adjusted_p(decision, result.p_below))  # the draws can show
    return decision


def smallest_exact_p(n: int, m: int | None = None) -> float:
    """The smallest two-sided p-value an exact permutation test can reach: on n pairs (or n examples against a fixed
    figure) by flipping signs, on n examples against m by relabelling. Where even that is not below alpha, no test
    can show a difference, and a percentile bootstrap (which reads p = 0 off three pairs that all lean one way) must
    not claim one either: 5 pairs or fewer at alpha 0.05, or 3 examples against 3."""
    if m is None:
        return min(1.0, math.ldexp(2.0, -n))  # 2 / 2^n, read as 0 past a float's range (2.0 ** 1024 overflows)
    ways = math.comb(n + m, n)
    return min(1.0, 2.0 / ways) if ways.bit_length() < 1000 else 0.0


def _too_few(common: dict, d: np.ndarray, unit: str, against: str = "") -> Decision | None:
    """No test, when too few differences `d` (A - B, or A - the figure) can move a sign-flip test of the hypothesis
    the outcome would rest on: "no difference" (ties cannot), or with a margin "worse by the margin" (only
    differences of exactly minus the margin cannot); None when a test can reach alpha."""
    good = d if common["higher_is_better"] else -d
    margin = common["margin"]
    moving = int(np.count_nonzero(good + margin)) if margin > 0 else int(np.count_nonzero(d))
    if (floor := smallest_exact_p(moving)) < common["alpha"]:
        return None
    return _no_test(common, float(d.mean()), int(d.size), _differing(moving, int(d.size), unit, against), floor)


def _short_of_better(decision: Decision, d: np.ndarray, unit: str) -> Decision:
    """With a margin, enough pairs may move the test against the margin but too few differ at all for any test of
    "no difference": then the interval may read "not worse", never "better"."""
    differing = int(np.count_nonzero(d))
    if decision.outcome is not Outcome.BETTER or smallest_exact_p(differing) < decision.alpha:
        return decision
    why = (f"better is not claimed: only {_differing(differing, int(d.size), unit)}, too few for any test of "
           "no difference")
    return replace(decision, outcome=Outcome.NOT_WORSE, why=why)


def _no_test(common: dict, estimate: float, n: int, what: str, floor: float) -> Decision:
    """No test: `what` (`3 pairs`, `4 of the 200 pairs differ`) is too few for any exact test to reach alpha."""
    why = (f"only {what}: no test can show a difference at {1 - common['alpha']:.0%} on so few (the smallest "
           f"p-value an exact test reaches here is {floor:.3g}); score more examples")
    return Decision(test="none", difference=Metric(estimate, None, None, n), p_value=1.0, outcome=Outcome.NOT_SHOWN,
                    why=why, **common)


def _undecided(metric: str, good: bool, margin: float, alpha: float, excluded: int, why: str) -> Decision:
    return Decision(metric, good, "none", None, None, Metric(None), 1.0, Outcome.NOT_SHOWN, margin, alpha,
                    excluded, why=why)


def _direction(metric: str, given: bool | None) -> bool:
    if given is not None:
        return given
    known = direction_of(metric)
    if known is None:
        raise ValueError(f"metric {metric!r} has no known direction; pass higher_is_better")
    return known


def _has_value(value: float | None) -> bool:
    """None, and NaN or infinity (no score at all), are "no value": left out and counted, never averaged in (one NaN
    made every bootstrap draw NaN, and the p-value read 0)."""
    return value is not None and math.isfinite(value)


def _valued(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if _has_value(v)], dtype=np.float64)


def _differing(differing: int, n: int, unit: str, against: str = "") -> str:
    """`3 pairs`, or, where ties leave fewer that differ (and only those can move a sign-flip test), `4 of the 200
    pairs differ (the rest tie)`."""
    if differing == n:
        return f"{n} {unit}"
    return f"{differing} of the {n} {unit} differ{against} ({'the rest tie' if differing else 'all tie'})"


def _binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0.0) | (values == 1.0)))


def _value(value) -> float | None:
    return None if value is None else float(value)
