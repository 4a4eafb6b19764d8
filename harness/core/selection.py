"""Selection rules, in one place: how trials rank, which one is best, and when one is feasible.

Everything here reads dev only (the objective and the dev constraints). Test scores never enter a choice, so the
test split stays an honest report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from harness.core.metric import Metric
from harness.core.records import TrialView

FINISHED = ("complete", "pruned")

IMPORTANCE_MIN_TRIALS, IMPORTANCE_MIN_VARYING = 3, 2
"""Parameter importance of a method is reported once it has this many completed trials and parameters that vary:
across methods the parameters are conditional, and with one varying parameter the answer is trivially 1.0."""


def oriented(trial: TrialView) -> float:
    """The dev objective, signed so that larger is better whatever the metric's direction; worst when missing."""
    if trial.objective is None:
        return float("-inf")
    return trial.objective if trial.maximize else -trial.objective


def rank_key(trial: TrialView) -> tuple[bool, float, float]:
    """Feasible trials first, then the better dev objective, then, between equals, the one that spends fewer tokens
    a dev query: a team serves the cheaper of two arms that score alike, and payback prices against the opponent
    (two prompting arms tied on dev had it priced against the dearer one, a saving that was only a longer prompt)."""
    dev = trial.throughput.get("dev")
    tokens = dev.prompt_tokens_per_query + dev.completion_tokens_per_query if dev is not None else math.inf
    return bool(trial.feasible), oriented(trial), -tokens


def ranked(trials: Iterable[TrialView]) -> list[TrialView]:
    """Finished trials (complete before pruned) by rank_key, best first; failed and running ones last, in order."""
    trials = list(trials)
    done = [t for t in trials if t.status in FINISHED]
    rest = [t for t in trials if t.status not in FINISHED]
    return sorted(done, key=lambda t: (t.complete, *rank_key(t)), reverse=True) + rest


def best(trials: Iterable[TrialView], trained: bool | None = None, feasible_only: bool = False) -> TrialView | None:
    """The best complete trial (optionally only trained or only prompting ones, optionally only feasible)."""
    pool = [t for t in trials if t.complete and (trained is None or t.trained == trained)
            and (t.feasible or not feasible_only)]
    return max(pool, key=rank_key) if pool else None


def constraint_excess(dev: Mapping[str, Metric], regression: Metric, *, min_format_compliance: float,
                      max_hallucination_rate: float, max_regression_drop: float,
                      measures_hallucination: bool) -> dict[str, float | None]:
    """How far each dev constraint is exceeded (<= 0 is satisfied); None where it was not measured.

    No compliant output at all counts as the worst hallucination rate, never as a pass. A suite without a notion of
    hallucination (free text) and a regression check that did not run give None: not measured, not passed.
    """
    format_compliance = dev["format_compliance"].value or 0.0
    hallucination = dev["hallucination_rate"].value
    return {
        "format_compliance": min_format_compliance - format_compliance,
        "hallucination_rate": None if not measures_hallucination
        else (1.0 if hallucination is None else hallucination) - max_hallucination_rate,
        "regression_delta": None if regression.value is None else -max_regression_drop - regression.value,
    }


def is_feasible(excess: Mapping[str, float | None]) -> bool:
    """Every measured constraint is met."""
    return all(value <= 0 for value in excess.values() if value is not None)
