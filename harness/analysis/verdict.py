"""Did fine-tuning beat prompting? The best fine-tuned trial against the best prompting arm of each kind (the local
model prompted, and a hosted model behind an endpoint), all chosen on dev and compared on the same test examples by
the decision rule (`harness.analysis.decision`), on the study's objective metric. The stronger arm on dev is the
real opponent, and the verdict is given against it; an adapter that breaks a constraint is never announced as the
answer, and a trial whose training was cut short by its time cap never stands for fine-tuning.

    YES        the fine-tuned trial is better, beyond noise, and meets every dev constraint
    NOT READY  it is better, but breaks a dev constraint
    NO         the opponent is better, beyond noise
    NOT SHOWN  the interval includes 0, or (task accuracy on a label suite with a near-majority label) the
               fine-tuned trial is not shown to beat always answering the commonest test label (`floor.py`)
    no verdict a side is missing, or they share no scored test example
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.analysis.compare import store_labels
from harness.analysis.decision import Decision, Outcome, compare_macro_f1, compare_paired, scores_of
from harness.analysis.floor import floor_check
from harness.analysis.formatting import broken_constraint, fmt_metric, older_rules_remark, params_text
from harness.core.records import TrialView
from harness.core.selection import best, rank_key
from harness.store.database import Store

ScoresOf = Callable[[str, str], dict[str, float | None]]
"""(trial id, metric) -> {test example id: that example's value of the metric, None where it has none}."""
LabelsOf = Callable[[str], dict[str, tuple[str, str]]]
"""trial id -> {test example id: (true label, predicted label)}: what macro-F1, which has no per-example value, is
compared on (`decision.compare_macro_f1`; `compare.store_labels` reads them)."""


@dataclass(frozen=True)
class Verdict:
    text: str
    decision: Decision | None = None
    """Fine-tuned (A) against the real opponent (B), on the objective metric, test, paired."""
    finetuned: str | None = None
    prompting: str | None = None
    """The real opponent: the best prompting arm on dev, hosted or local."""
    opponent_kind: str | None = None
    """`hosted` or `local`."""
    ready: bool = False
    """A fine-tuned trial beat the real opponent beyond noise and meets every dev constraint."""

    @property
    def head(self) -> str:
        """The verdict's first word(s): YES, NOT READY, NO, NOT SHOWN, or No verdict."""
        return self.text.split(" - ", 1)[0] if " - " in self.text else "No verdict"


def arm_kind(trial: TrialView) -> str:
    return "hosted" if trial.device == "hosted" else "local"


def verdict(trials: Iterable[TrialView], scores: ScoresOf, metric: str = "task_accuracy",
            higher_is_better: bool | None = None, labels: LabelsOf | None = None) -> Verdict:
    trials = list(trials)
    tuned = best([t for t in trials if not t.under_trained], trained=True)
    arms = {kind: best([t for t in trials if arm_kind(t) == kind], trained=False) for kind in ("hosted", "local")}
    arms = {kind: arm for kind, arm in arms.items() if arm is not None}
    if tuned is None:
        cut = best(trials, trained=True)
        if cut is not None:
            return Verdict(f"No verdict: the only fine-tuned trial{'s' if _count_cut(trials) > 1 else ''} stopped "
                           f"short of {'their' if _count_cut(trials) > 1 else 'its'} step budget: {cut.id} trained "
                           f"{_share(cut)} before its time cap, so it does not stand for fine-tuning. Raise "
                           "budget.trial_train_seconds, lower budget.max_steps, or run on a faster machine.")
    if tuned is None or not arms:
        missing = "fine-tuned" if tuned is None else "prompting"
        return Verdict(f"No verdict yet: the study has no completed {missing} trial.")
    opponent = max(arms.values(), key=rank_key)
    kind = arm_kind(opponent)
    if (difference := _other_test_data(tuned, opponent)) is not None:
        return Verdict(f"No verdict: {tuned.id} and the best prompting arm {opponent.id} were scored on different test "
                       f"data ({difference}), so their scores are not on the same examples. Re-run the study under a "
                       "new name (--study NEW_NAME) on one version of the suite.", None, tuned.id, opponent.id, kind)
    setups = {t.model_setup_sha256 for t in (tuned, opponent)}
    if None not in setups and len(setups) > 1:
        return Verdict(f"No verdict: {tuned.id} and the best prompting arm {opponent.id} ran on a model folder whose "
                       "config, tokenizer or chat template differed between them, so they were not prompted alike. "
                       "Re-run the study under a new name (--study NEW_NAME) on one set-up of the model.", None,
                       tuned.id, opponent.id, kind)
    suites = {t.data.suite_setup_sha256 for t in (tuned, opponent)}
    if None not in suites and len(suites) > 1:
        return Verdict(f"No verdict: {tuned.id} and the best prompting arm {opponent.id} were scored under a suite "
                       "whose instruction, `output:` or `scorers:` differed between them (suite.yaml edited under one "
                       "version), so they were not prompted and scored alike. Re-run the study under a new name "
                       "(--study NEW_NAME) on one version of the suite.", None, tuned.id, opponent.id, kind)

    def compared(arm: TrialView) -> Decision:
        if metric == "macro_f1":
            if labels is None:
                return compare_macro_f1({}, {}, why=("macro-F1 is compared on the answers' labels, read with the "
                                                     "suite's contract, and the study's suite folder is not at hand "
                                                     "in the version it was scored on"))
            return compare_macro_f1(labels(tuned.id), labels(arm.id))
        return compare_paired(scores(tuned.id, metric), scores(arm.id, metric), metric,
                              higher_is_better=higher_is_better)

    decisions = {k: compared(arm) for k, arm in arms.items()}
    decision = decisions[kind]
    if decision.test == "none":
        return Verdict(f"No verdict: {tuned.id} and the best prompting arm {opponent.id} cannot be compared on "
                       f"{metric}: {decision.why}.", decision, tuned.id, opponent.id, kind)

    def scored(trial: TrialView) -> str:
        return fmt_metric(trial.metric("test", metric), name=metric)

    evidence = (f"{tuned.method} {tuned.id} scored {scored(tuned)}; the real opponent, the best prompting arm on dev, "
                f"is {_describe(opponent)} with {scored(opponent)}. Difference on test {metric}: "
                f"{decision.evidence()}; every trial chosen on dev.")
    for other_kind, arm in arms.items():
        if other_kind != kind and decisions[other_kind].test != "none":
            evidence += (f" Against the best {other_kind} prompting arm, {_describe(arm)} with {scored(arm)}: "
                         f"{decisions[other_kind].evidence()}.")
    evidence += "".join(f" {line}" for line in weak_opponents(trials, arms))
    check = floor_check(tuned, metric)  # the gate and payback's quality bar read the same check
    floor = check.floor if check is not None else None
    if check is not None and decision.outcome is Outcome.BETTER and (
            floor.near_majority or not check.beaten):  # said where it matters, always checked
        evidence += (f" Against always answering `{floor.label}`, the commonest test label ({floor.count} of "
                     f"{floor.n} test examples): {check.decision.evidence()}.")
    if (weak := below_floor(tuned, opponent, metric)) is not None:
        evidence += f" {weak}"
    broken = list(tuned.broken_constraints)
    breaks = ", ".join(broken_constraint(tuned, name) for name in broken)
    beaten = f"fine-tuning beat {kind} prompting"
    if decision.outcome is Outcome.BETTER and check is not None and not check.beaten:
        head, ready = (f"NOT SHOWN - {tuned.id} beat {kind} prompting, but is not shown to beat always answering "
                       f"`{floor.label}`, the commonest test label."), False
    elif decision.outcome is Outcome.BETTER and not broken:
        head, ready = f"YES - {beaten}.", True
    elif decision.outcome is Outcome.BETTER:
        head, ready = (f"NOT READY - {beaten} on {metric}, but no adapter meets the constraints: the best, "
                       f"{tuned.id}, breaks {breaks}."), False
    elif decision.outcome is Outcome.WORSE:
        head, ready = f"NO - {kind} prompting beat fine-tuning.", False
    else:
        head, ready = "NOT SHOWN - the difference is within noise (the interval includes 0).", False
    if not head.startswith(("YES", "NOT READY")) and (short := short_training(tuned)) is not None:
        evidence += f" {short}"  # "fine-tuning loses", read by a boss, after 10 steps on 300 e-mails
    if broken and not head.startswith("NOT READY"):  # a tie must not read as "fine-tune, it costs nothing"
        evidence += f" {tuned.id} also breaks {breaks}, so it is not ready whatever test says."
    # the difference is computed now, by this release's rules; the arms' own intervals are read as stored
    evidence += older_rules_remark([(tuned, [metric, *broken]), *((arm, [metric]) for arm in arms.values())])
    return Verdict(f"{head} {evidence}", decision, tuned.id, opponent.id, kind, ready)


def weak_opponents(trials: list[TrialView], arms: dict[str, TrialView]) -> Iterable[str]:
    """What the opponents leave unmeasured, a sentence each: a prompting arm that breaks a dev constraint (a hosted
    model whose server ignored the JSON format scored 0% format) is a weak measure of prompting, and a hosted arm that
    failed left hosted prompting unmeasured; the verdict and the report's cautions say so rather than read as the
    whole answer."""
    for arm in arms.values():
        if arm.broken_constraints:
            weak = ", ".join(broken_constraint(arm, name) for name in arm.broken_constraints)
            yield (f"{arm.id} itself breaks {weak}, so it is a weak measure of what {arm_kind(arm)} prompting can "
                   "do here.")
    if "hosted" not in arms and (failed := [t.id for t in trials if arm_kind(t) == "hosted" and t.status == "failed"]):
        yield (f"The hosted arm{'s' if len(failed) > 1 else ''} ({', '.join(failed)}) failed, so hosted prompting was "
               "not measured; run the same command again to retry.")
    yield from untried_prompting(trials, arms)


def below_floor(tuned: TrialView, opponent: TrialView, metric: str) -> str | None:
    """The opponent scored no better on test than always answering the commonest test label: a straw man, whatever
    the fine-tuned trial scored against it."""
    check = floor_check(tuned, metric)
    said = opponent.metric("test", metric)
    if check is None or said is None or said.value is None or said.value > check.floor.share:
        return None
    return (f"{opponent.id} scored no better than always answering `{check.floor.label}` ({check.floor.share:.1%}), "
            f"so it is a weak measure of what {arm_kind(opponent)} prompting can do here.")


def short_training(tuned: TrialView) -> str | None:
    """Less than one pass over the train examples: a loss says what this budget gives, not what fine-tuning can."""
    training = tuned.training
    if training is None or (training.passes or 1.0) >= 1.0:
        return None
    return (f"{tuned.id} trained {training.steps} steps of {training.examples_per_step} examples, "
            f"{training.passes:.1f} passes over its {training.examples} train examples: this says fine-tuning did not "
            "win at this budget, not that it cannot (raise budget.max_steps or budget.epochs).")


SEARCHED = frozenset({"dspy", "api_dspy"})
"""Prompting methods whose prompt (shots, with MIPRO an instruction) was searched on train."""


def strong_prompting(trial: TrialView) -> bool:
    """A prompting arm as a team would prompt at its best: shots retrieved for each input, or a searched prompt."""
    params = trial.params
    return trial.method in SEARCHED or (int(params.get("shots") or 0) > 0 and params.get("shot_selection") == "similar")


def untried_prompting(trials: Iterable[TrialView], arms: dict[str, TrialView]) -> list[str]:
    """Where no complete prompting trial of a kind prompted as a team would at its best: the opponent is then the best
    of weaker prompting. A 0-shot arm was called the real opponent, +66.7 points, while the space offered similar
    shots that never ran."""
    done = [t for t in trials if t.complete and not t.trained]
    out = []
    for kind, arm in arms.items():
        if not any(strong_prompting(t) for t in done if arm_kind(t) == kind):
            method = "api" if kind == "hosted" else "prompt"
            shown = f" ({params_text(arm.params)})" if params_text(arm.params) else ""
            out.append(f"No {kind} prompting trial retrieved shots for each input or searched its prompt, so "
                       f"{arm.id}{shown} is the best of weaker prompting, not the strongest a "
                       f"team would try: enqueue {{method: {method}, shots: 3, shot_selection: similar}} (or a "
                       f"{'api_dspy' if kind == 'hosted' else 'dspy'} arm) and resume with --trials one higher.")
    return out


def _other_test_data(a: TrialView, b: TrialView) -> str | None:
    """How the two trials' test data differ, by what each recorded: the suite's test file, or the subset drawn from it;
    None where they agree, or a trial recorded neither."""
    for what, field in (("the suite's test.jsonl", "split_sha256"), ("the test subset drawn", "subset_sha256")):
        ours, theirs = (getattr(t.data, field).get("test") for t in (a, b))
        if ours and theirs and ours != theirs:
            return f"{what} differs: sha256 {ours[:12]} for {a.id}, {theirs[:12]} for {b.id}"
    return None


def _count_cut(trials: list[TrialView]) -> int:
    return sum(1 for t in trials if t.trained and t.complete and t.under_trained)


def _share(trial: TrialView) -> str:
    training = trial.training
    return f"{training.steps} of {training.planned_steps} steps" if training and training.planned_steps else "part"


def _describe(arm: TrialView) -> str:
    what = f"{arm.hosted.model} via {arm.hosted.endpoint}" if arm.hosted else "the local model"
    return f"{arm.id} ({what}, {params_text(arm.params)})"


def store_scores(store: Store) -> ScoresOf:
    """Per-example test values read from the store."""
    def read(trial: str, metric: str) -> dict[str, float | None]:
        return scores_of(store.examples(trial, "test"), metric)

    return read


def study_verdict(store: Store, study: str) -> Verdict:
    """The verdict of a study, on its own objective metric and direction."""
    view = store.study(study)
    metric = view.objective_metric if view is not None else "task_accuracy"
    direction = view.maximize if view is not None else None
    labels = store_labels(store, view) if view is not None and metric == "macro_f1" else None
    return verdict(store.trials(study), store_scores(store), metric, direction, labels)
