"""Did fine-tuning beat prompting? The best of each side, both chosen on dev, compared on the same test examples
with a paired bootstrap, so a difference that is noise reads as noise, and an adapter that breaks a constraint is
never announced as the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.analysis.formatting import fmt_metric, params_text, points
from harness.core.metric import Metric
from harness.core.records import TrialView
from harness.core.selection import best
from harness.evaluation.stats import paired_bootstrap_diff
from harness.store.database import Store

TestCorrectness = Callable[[str], dict[str, float]]
"""A trial id -> {test example id: 1.0 if its task answer was right, else 0.0}."""


@dataclass(frozen=True)
class Verdict:
    text: str
    difference: Metric | None = None
    finetuned: str | None = None
    prompting: str | None = None
    ready: bool = False
    """A fine-tuned trial beat prompting beyond noise and meets every dev constraint."""


def verdict(trials: Iterable[TrialView], correctness: TestCorrectness) -> Verdict:
    trials = list(trials)
    tuned, prompted = best(trials, trained=True), best(trials, trained=False)
    if tuned is None or prompted is None:
        missing = "fine-tuned" if tuned is None else "prompting"
        return Verdict(f"No verdict yet: the study has no completed {missing} trial.")
    a, b = correctness(tuned.id), correctness(prompted.id)
    shared = sorted(set(a) & set(b))
    if not shared:
        return Verdict("No verdict: the two best trials share no test examples.")
    diff = paired_bootstrap_diff([a[i] for i in shared], [b[i] for i in shared], seed=0)
    evidence = (
        f"{tuned.method} {tuned.id} scored {fmt_metric(tuned.metric('test', 'task_accuracy'))} and prompting "
        f"{prompted.id} ({params_text(prompted.params)}) {fmt_metric(prompted.metric('test', 'task_accuracy'))} "
        f"test task accuracy; difference {points(diff)} (paired bootstrap over the same {diff.n} test examples; "
        "both trials chosen on dev)."
    )
    broken = [name for name, excess in tuned.constraints.items() if excess is not None and excess > 0]
    if diff.low > 0 and not broken:
        head, ready = "YES - fine-tuning beat prompting.", True
    elif diff.low > 0:
        head, ready = (f"NOT READY - fine-tuning beat prompting on accuracy, but no adapter meets the constraints: "
                       f"the best, {tuned.id}, breaks {', '.join(broken)} on dev."), False
    elif diff.high < 0:
        head, ready = "NO - prompting beat fine-tuning.", False
    else:
        head, ready = "NOT SHOWN - the difference is within noise (the interval includes 0).", False
    return Verdict(f"{head} {evidence}", diff, tuned.id, prompted.id, ready)


def store_correctness(store: Store) -> TestCorrectness:
    """Per-example test correctness read from the store."""
    def correct(trial: str) -> dict[str, float]:
        return {e.example_id: float(e.scores.get("task_accuracy") or 0.0) for e in store.examples(trial, "test")}

    return correct
