"""Did fine-tuning beat prompting? The best fine-tuned trial against the best prompting arm of each kind (the local
model prompted, and a hosted model behind an endpoint), all chosen on dev and compared on the same test examples
with a paired bootstrap. The stronger arm on dev is the real opponent, and the verdict is given against it; an
adapter that breaks a constraint is never announced as the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.analysis.formatting import fmt_metric, params_text, points
from harness.core.metric import Metric
from harness.core.records import TrialView
from harness.core.selection import best, rank_key
from harness.evaluation.stats import paired_bootstrap_diff
from harness.store.database import Store

TestCorrectness = Callable[[str], dict[str, float]]
"""A trial id -> {test example id: 1.0 if its task answer was right, else 0.0}."""


@dataclass(frozen=True)
class Verdict:
    text: str
    difference: Metric | None = None
    """Fine-tuned minus the real opponent, test task accuracy, paired."""
    finetuned: str | None = None
    prompting: str | None = None
    """The real opponent: the best prompting arm on dev, hosted or local."""
    opponent_kind: str | None = None
    """`hosted` or `local`."""
    ready: bool = False
    """A fine-tuned trial beat the real opponent beyond noise and meets every dev constraint."""


def arm_kind(trial: TrialView) -> str:
    return "hosted" if trial.device == "hosted" else "local"


def verdict(trials: Iterable[TrialView], correctness: TestCorrectness) -> Verdict:
    trials = list(trials)
    tuned = best(trials, trained=True)
    arms = {kind: best([t for t in trials if arm_kind(t) == kind], trained=False) for kind in ("hosted", "local")}
    arms = {kind: arm for kind, arm in arms.items() if arm is not None}
    if tuned is None or not arms:
        missing = "fine-tuned" if tuned is None else "prompting"
        return Verdict(f"No verdict yet: the study has no completed {missing} trial.")
    opponent = max(arms.values(), key=rank_key)
    diffs = {kind: _paired(tuned, arm, correctness) for kind, arm in arms.items()}
    diff = diffs[arm_kind(opponent)]
    if diff is None:
        return Verdict("No verdict: the fine-tuned trial and the best prompting arm share no test examples.")
    kind = arm_kind(opponent)
    evidence = (f"{tuned.method} {tuned.id} scored {fmt_metric(tuned.metric('test', 'task_accuracy'))}; the real "
                f"opponent, the best prompting arm on dev, is {_describe(opponent)} with "
                f"{fmt_metric(opponent.metric('test', 'task_accuracy'))}. Difference {points(diff)} (paired bootstrap "
                f"over the same {diff.n} test examples; every trial chosen on dev).")
    for other_kind, arm in arms.items():
        if other_kind != kind and diffs[other_kind] is not None:
            evidence += (f" Against the best {other_kind} prompting arm, {_describe(arm)} with "
                         f"{fmt_metric(arm.metric('test', 'task_accuracy'))}: {points(diffs[other_kind])}.")
    broken = [name for name, excess in tuned.constraints.items() if excess is not None and excess > 0]
    beaten = f"fine-tuning beat {kind} prompting"
    if diff.low > 0 and not broken:
        head, ready = f"YES - {beaten}.", True
    elif diff.low > 0:
        head, ready = (f"NOT READY - {beaten} on accuracy, but no adapter meets the constraints: the best, "
                       f"{tuned.id}, breaks {', '.join(broken)} on dev."), False
    elif diff.high < 0:
        head, ready = f"NO - {kind} prompting beat fine-tuning.", False
    else:
        head, ready = "NOT SHOWN - the difference is within noise (the interval includes 0).", False
    return Verdict(f"{head} {evidence}", diff, tuned.id, opponent.id, kind, ready)


def _paired(a: TrialView, b: TrialView, correctness: TestCorrectness) -> Metric | None:
    x, y = correctness(a.id), correctness(b.id)
    shared = sorted(set(x) & set(y))
    return paired_bootstrap_diff([x[i] for i in shared], [y[i] for i in shared], seed=0) if shared else None


def _describe(arm: TrialView) -> str:
    what = f"{arm.hosted.model} via {arm.hosted.endpoint}" if arm.hosted else "the local model"
    return f"{arm.id} ({what}, {params_text(arm.params)})"


def store_correctness(store: Store) -> TestCorrectness:
    """Per-example test correctness read from the store."""
    def correct(trial: str) -> dict[str, float]:
        return {e.example_id: float(e.scores.get("task_accuracy") or 0.0) for e in store.examples(trial, "test")}

    return correct
