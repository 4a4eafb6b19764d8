"""`harness compare A B`: is trial A really better than trial B, or is the difference noise?

Leads compare two trials before promoting one. Both are scored on the same examples, so every score is paired on
example_id and decided by `harness.analysis.decision` (McNemar's exact test and its exact interval for 0/1 scores, a
paired percentile bootstrap, expanded for small samples, for the rest; pairs without a value on either side are left
out and counted; macro-F1, which has no per-example value, by both sides' labels resampled together within each true
label, as the verdict and the gate do). The primary score is the study's objective metric, read on its own; the other
scores are read together, at Holm-adjusted p-values. regression_delta is shown from the stored metrics, as
information only: it is measured against the base model, not paired between A and B.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.table import Table
from rich.text import Text

from harness.analysis.decision import (
    Decision,
    Outcome,
    check_margin,
    compare_macro_f1,
    compare_paired,
    read_together,
    scores_of,
)
from harness.analysis.formatting import (
    counted,
    interval,
    is_score,
    number,
    regression_metric,
    scored,
    under_trained_text,
)
from harness.core.config import ExperimentConfig
from harness.core.errors import HarnessError, SuiteError
from harness.core.metric import Metric
from harness.core.records import ExampleView, LookAtTest, StudyView, TrialView, ran_with
from harness.core.text import id_order
from harness.core.typed import build
from harness.data.contract import OutputContract
from harness.data.suites import Suite, load_suite
from harness.evaluation.labels import answered_labels
from harness.store.database import Store

_MICRO = {"field_f1", "field_precision", "field_recall"}
"""Scores whose stored figure is a micro average (pooled over fields), where a paired test reads per-example means."""
ORDER = ("task_accuracy", "macro_f1", "format_compliance", "hallucination_rate", "field_f1", "field_precision",
         "field_recall")


@dataclass(frozen=True)
class TrialSide:
    id: str
    method: str
    params: dict
    feasible: bool | None
    trained: bool
    regression_delta: Metric | None
    """Stored against the base model; None or n=0 means not measured. Not a paired test."""
    metrics: dict[str, Metric] = field(default_factory=dict)
    """Its stored scores on the compared split, each with its 95% interval and n, as `harness show` gives them."""


@dataclass(frozen=True)
class Disagreement:
    example_id: str
    input: str
    target: str
    output_a: str
    output_b: str
    a_correct: bool
    b_correct: bool


@dataclass(frozen=True)
class Comparison:
    a: TrialSide
    b: TrialSide
    split: str
    n_shared: int
    only_a: int
    only_b: int
    primary: str
    """The metric the comparison decides on: the study's objective (read on its own)."""
    scores: list[Decision]
    """The primary metric first, then every other score both trials have, read together (Holm)."""
    disagreements: list[Disagreement]
    """The first `max_disagreements` shared examples where task_accuracy differs, in example id order with numbers
    read as numbers (`test:102` before `test:1008`)."""
    n_disagreements: int
    warnings: list[str] = field(default_factory=list)

    def score(self, name: str) -> Decision | None:
        return next((s for s in self.scores if s.metric == name), None)

    @property
    def decision(self) -> Decision | None:
        """The decision on the primary metric."""
        return self.score(self.primary)


def compare_trials(store: Store, a_id: str, b_id: str, split: str = "test", max_disagreements: int = 10,
                   seed: int = 0, metric: str | None = None, margin: float = 0.0) -> Comparison:
    """Compare two complete trials example by example on `split`; raises HarnessError when that is impossible.

    `metric` is the primary metric (default: A's study's objective), `margin` its non-inferiority margin."""
    check_margin(margin)
    trial_a, trial_b = store.require_trial(a_id, complete=True), store.require_trial(b_id, complete=True)
    a_id, b_id = trial_a.id, trial_b.id
    if a_id == b_id:
        raise HarnessError(f"both trial ids are {a_id!r}; give two different trials to compare.")
    rows_a, rows_b = _rows(store, a_id, split), _rows(store, b_id, split)
    shared = sorted(set(rows_a) & set(rows_b))
    require_same_examples(store, trial_a, trial_b, rows_a, rows_b, split)
    if not shared:
        raise _nothing_shared(a_id, b_id, rows_a, rows_b, split)
    warnings = [*(f"{check.problem()}: this comparison reads the edited numbers." for check in
                  store.seals([a_id, b_id]) if not check.intact), *_warnings(trial_a, trial_b)]
    pairs = [(rows_a[i], rows_b[i]) for i in shared]
    names = set.intersection(*({k for r in rows.values() for k in r.scores} for rows in (rows_a, rows_b)))
    names.discard("regression_delta")
    primary = metric or objective_of(store, trial_a)
    study = store.study(trial_a.study)
    labels = store_labels(store, study, split) if study is not None else None
    if labels is not None:  # macro-F1 has no per-example score: both sides' labels are resampled together
        names.add("macro_f1")
    elif primary == "macro_f1":
        warnings.append(f"macro_f1 is compared on the answers' labels, read with the contract of {trial_a.id}'s "
                        "suite folder, which is not at hand at the version it was scored on; it is not decided here.")
    elif all(t.metric(split, "macro_f1") is not None for t in (trial_a, trial_b)):  # scored, then not compared
        warnings.append(f"macro_f1, which both trials were scored on, is not compared here: it is read from the "
                        f"answers' labels with the contract of {trial_a.id}'s suite folder, which is not at hand at "
                        f"the version it was scored on ({study.suite_path if study else 'no study'}). The other "
                        "scores are adjusted together without it; run this where the suite folder is.")
    if primary not in names and not (primary == "macro_f1" and labels is None):
        warnings.append(f"{primary} (the objective) has no per-example score on {split} for both trials; it is "
                        "not decided here.")

    def decide(name: str, margin: float = 0.0) -> Decision:
        if name == "macro_f1" and labels is not None:
            return compare_macro_f1(labels(a_id), labels(b_id), margin=margin, seed=seed)
        return compare_paired(scores_of(rows_a.values(), name), scores_of(rows_b.values(), name), name,
                              margin=margin, seed=seed)

    if fields := sorted(names & _MICRO, key=_order):
        verb = "is" if len(fields) == 1 else "are"
        warnings.append(f"{', '.join(fields)} {verb} compared here as the mean of each example's value, every "
                        "example weighing alike; `show` and `trials` give the micro average, every field pooled over "
                        "the examples, so their figures differ a little from these.")
    head = [decide(primary, margin)] if primary in names else []
    scores = head + read_together([decide(name) for name in sorted(names - {primary}, key=_order)])
    if "task_accuracy" not in names:
        warnings.append(f"task_accuracy is not scored on {split} for both trials; no disagreements listed.")
        disagreements = []
    else:
        disagreements = sorted((
            Disagreement(x.example_id, x.input, x.target, x.output, y.output, _correct(x), _correct(y))
            for x, y in pairs if _scored(x) and _scored(y) and _correct(x) != _correct(y)
        ), key=lambda d: id_order(d.example_id))  # fmt: skip
    return Comparison(
        a=_side(trial_a, split), b=_side(trial_b, split), split=split, n_shared=len(shared),
        only_a=len(rows_a) - len(shared), only_b=len(rows_b) - len(shared), primary=primary, scores=scores,
        disagreements=disagreements[:max_disagreements], n_disagreements=len(disagreements), warnings=warnings,
    )  # fmt: skip


def comparison_look(store: Store, comparison: Comparison, actor: str | None) -> LookAtTest:
    """A compare on test as a look at test: which pair, on which subset, what the primary decision read."""
    a = store.require_trial(comparison.a.id)
    decision = comparison.decision
    return LookAtTest("compare", suite_of(store, a), a.data.subset_sha256.get(comparison.split), comparison.a.id,
                      comparison.b.id, comparison.primary,
                      {"alpha": decision.alpha if decision else None, "margin": decision.margin if decision else 0.0},
                      decision.outcome.value if decision else "not decided", actor,
                      {"decision": asdict(decision) if decision else None})


def _rows(store: Store, trial: str, split: str) -> dict[str, ExampleView]:
    return {e.example_id: e for e in store.examples(trial, split)}


def require_same_examples(store: Store, trial_a: TrialView, trial_b: TrialView,
                          rows_a: dict[str, ExampleView] | None = None, rows_b: dict[str, ExampleView] | None = None,
                          split: str = "test") -> None:
    """Refuse to weigh two trials against each other unless they were scored on the same suite and the same
    `split` examples (ids, inputs and targets): otherwise a difference may be the data's, not the trials'."""
    a, b = trial_a.id, trial_b.id
    suite_a, suite_b = suite_of(store, trial_a), suite_of(store, trial_b)
    if suite_a and suite_b and suite_a != suite_b:
        raise HarnessError(f"{a} was scored on suite {suite_a} and {b} on suite {suite_b}: different tasks and "
                           f"examples, so neither comparison nor payback means anything. Pick two trials of the same "
                           f"suite (`harness trials` shows each trial's study).")
    rows_a = _rows(store, a, split) if rows_a is None else rows_a
    rows_b = _rows(store, b, split) if rows_b is None else rows_b
    if rows_a and rows_b and not set(rows_a) & set(rows_b):
        raise _nothing_shared(a, b, rows_a, rows_b, split)
    # no stored outputs to match (a record without examples): the subsets' recorded hashes must agree
    difference = (_example_difference(a, b, rows_a, rows_b, split) if rows_a and rows_b
                  else _hash_difference(trial_a, trial_b, split))
    if difference:
        raise HarnessError(
            f"{a} and {b} were scored on different {split} subsets of suite {suite_a or suite_b or '(unknown)'}: "
            f"{difference} ({why_subsets_differ(store, trial_a, trial_b, split)}). Their scores are not on the same "
            f"examples, so neither a paired test nor a payback is like for like. Compare trials scored on the same "
            f"subset, or re-run one with the other's data.{split}_limit and seed."
        )


def why_subsets_differ(store: Store, trial_a: TrialView, trial_b: TrialView, split: str) -> str:
    """What the two trials recorded differently about `split`'s subset, as far as their records say: the split file,
    the suite version, the subset's size limit or the seed that draws it."""
    data = [t.data for t in (trial_a, trial_b)]
    configs = [_ran_with(store, t) for t in (trial_a, trial_b)]
    said = []
    files = [d.split_sha256.get(split) for d in data]
    if None not in files and files[0] != files[1]:
        said.append(f"another {split}.jsonl: sha256 {files[0][:12]} and {files[1][:12]}")
    versions = [d.suite_version for d in data]
    if None not in versions and versions[0] != versions[1]:
        said.append(f"suite versions {versions[0]} and {versions[1]}")
    if None not in configs:
        for what, read in ((f"data.{split}_limit", lambda c: getattr(c.data, f"{split}_limit")),
                           ("seed", lambda c: c.seed)):
            values = [read(c) for c in configs]
            if values[0] != values[1]:
                said.append(f"{what} {values[0]} and {values[1]}")
    return "; ".join(said) or f"a different data.{split}_limit, seed, suite version or {split}.jsonl"


def _ran_with(store: Store, trial: TrialView) -> ExperimentConfig | None:
    """The experiment `trial` ran with, typed; None where its study or a readable record of it is missing."""
    study = store.study(trial.study)
    try:
        return None if study is None else build(ExperimentConfig, ran_with(trial, study), f"trial {trial.id}")
    except HarnessError:
        return None


def _example_difference(a: str, b: str, rows_a: dict[str, ExampleView], rows_b: dict[str, ExampleView],
                        split: str) -> str | None:
    shared = set(rows_a) & set(rows_b)
    changed = sorted(i for i in shared if _content(rows_a[i]) != _content(rows_b[i]))
    if len(shared) == len(rows_a) == len(rows_b) and not changed:
        return None
    return (f"{a} has {len(rows_a)} {split} examples and {b} has {len(rows_b)}, {len(shared)} shared"
            + (f", {len(changed)} of them with another input or target (e.g. {changed[0]})" if changed else ""))


def _hash_difference(trial_a: TrialView, trial_b: TrialView, split: str) -> str | None:
    hashes = [t.data.subset_sha256.get(split) for t in (trial_a, trial_b)]
    if None in hashes or hashes[0] == hashes[1]:
        return None
    return f"their recorded {split} subsets differ (sha256 {hashes[0][:12]} and {hashes[1][:12]})"


def _nothing_shared(a: str, b: str, rows_a: dict, rows_b: dict, split: str) -> HarnessError:
    return HarnessError(
        f"trials {a} and {b} share no {split} examples ({len(rows_a)} and {len(rows_b)} {split} "
        "examples, no common example_id), so nothing can be paired. Compare trials evaluated on the same "
        "suite, or pick another split with --split."
    )


def objective_of(store: Store, trial: TrialView) -> str:
    """The metric the trial's study optimised (task_accuracy for a record without a study)."""
    study = store.study(trial.study)
    return study.objective_metric if study is not None else "task_accuracy"


def suite_of(store: Store, trial: TrialView) -> str | None:
    """The suite a trial was scored on: its study's, else what its provenance says."""
    study = store.study(trial.study)
    if study is not None:
        return study.suite
    return trial.data.suite


def _warnings(trial_a: TrialView, trial_b: TrialView) -> list[str]:
    out = []
    version_a, version_b = trial_a.data.suite_version, trial_b.data.suite_version
    if version_a != version_b:
        out.append(f"suite_version differs: {trial_a.id} {version_a}, {trial_b.id} {version_b} (the examples "
                   "compared are the same).")
    setups = {trial_a.data.suite_setup_sha256, trial_b.data.suite_setup_sha256}
    if None not in setups and len(setups) > 1:
        out.append(f"the suite's instruction, `output:` or `scorers:` differed between {trial_a.id} and {trial_b.id} "
                   "(suite.yaml edited since one was scored): they were not prompted and scored alike, so the "
                   "difference is not the trials' alone.")
    for trial in (trial_a, trial_b):  # the verdict and the gate refuse such a trial; a compare must say why
        if trial.under_trained:
            out.append(f"{trial.id} is {under_trained_text(trial)}: its time cap stopped it, so it does not stand "
                       f"for its method; the verdict and the gate do not use it.")
    return out


def _content(row: ExampleView) -> tuple[str, str]:
    return row.input, row.target


def _scored(row: ExampleView) -> bool:
    """False for an example left out of every metric (a request the endpoint refused)."""
    return row.scores.get("task_accuracy") is not None


def _correct(row: ExampleView) -> bool:
    return bool(row.scores.get("task_accuracy"))


def _order(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def _side(trial: TrialView, split: str) -> TrialSide:
    regression = regression_metric(trial)
    return TrialSide(trial.id, trial.method, dict(trial.params), trial.feasible, trial.trained, regression,
                     dict(trial.metrics.get(split, {})))


# -- output -------------------------------------------------------------------------------------------------


def comparison_table(comparison: Comparison) -> Table:
    """One row per score: both values, A - B with its 95% interval, the p-value, the test and the reading."""
    c = comparison
    table = Table(title=Text(f"{c.a.id} (A) vs {c.b.id} (B) on {c.split}, paired over {c.n_shared} shared "
                             f"examples. Values in %, differences in points, [95% interval]{_scores_note(c)}. "
                             f"{c.primary} decides; the other scores are read together at Holm-adjusted p."))
    for column in ("score", f"A {c.a.id}", f"B {c.b.id}", "A - B [95% CI]", "p", "test", "pairs", "reading"):
        table.add_column(Text(column), overflow="fold")
    for s in c.scores:
        pairs = str(s.difference.n) + (f" ({s.excluded} without a value)" if s.excluded else "")
        name = s.metric + (" (primary)" if s.metric == c.primary else "")
        _row(table, name, _value_cell(c.a, s.metric, s.a, c.n_shared), _value_cell(c.b, s.metric, s.b, c.n_shared),
             interval(s.difference, signed=True, name=s.metric), _p_cell(s), _test_cell(s), pairs, _reading(s, c))
    for side in (c.a, c.b):
        _row(table, f"regression_delta {side.id}", "", "", _regression(side), "",
             "stored, vs base model", "", "information only")  # fmt: skip
    return table


def _value_cell(side: TrialSide, metric: str, value: float | None, shared: int) -> str:
    """One side's value with its own 95% interval as its trial recorded it, where that is the value compared, over
    the `shared` examples compared; the bare value otherwise (the shared examples are a part of what it was scored
    on, or a rate counts some of them only, and its stored interval is of another n)."""
    stored = side.metrics.get(metric)
    if stored is not None and stored.value is not None and value is not None and stored.n == shared \
            and math.isclose(stored.value, value):
        return interval(stored, name=metric)  # in % as the table's title says (a mean score as itself)
    return number(value, name=metric)


def _scores_note(c: Comparison) -> str:
    scores = [s.metric for s in c.scores if is_score(s.metric)]
    return f"; {', '.join(scores)} as a score in [0, 1], its difference too" if scores else ""


def _p_cell(s: Decision) -> str:
    """The p-value and its Holm adjustment; `-` where no test ran (the reading says why): the 1.0 a Decision holds
    there is a placeholder, and printed it would read as a measured non-difference."""
    if s.test == "none":
        return "-"
    shown = s.p_text().removeprefix("= ")
    return shown + (f" (Holm {s.p_text(adjusted=True).removeprefix('= ')})" if s.adjusted_p is not None else "")


def _test_cell(s: Decision) -> str:
    if s.test == "none":
        return "no test"
    return s.test if s.a_only is None else f"{s.test}: {s.a_only} A only, {s.b_only} B only"


def disagreement_table(comparison: Comparison) -> Table:
    """The listed examples where exactly one trial got task_accuracy right, with both outputs."""
    c = comparison
    table = Table(title=Text(f"first {len(c.disagreements)} of {c.n_disagreements} {c.split} examples where "
                             f"{c.a.id} and {c.b.id} disagree on task_accuracy"))  # fmt: skip
    for column in ("example", "input", "target", f"A {c.a.id}", f"B {c.b.id}"):
        table.add_column(Text(column), overflow="fold")
    for d in c.disagreements:
        _row(table, d.example_id, d.input[:120], d.target, _mark(d.a_correct) + d.output_a,
             _mark(d.b_correct) + d.output_b)  # fmt: skip
    return table


def _row(table: Table, *cells: str) -> None:
    """Cells as literal text: ids and model outputs may contain [brackets] that rich would read as markup."""
    table.add_row(*(Text(cell) for cell in cells))


def comparison_text(comparison: Comparison) -> str:
    """One paragraph in plain words: which is better on the primary metric, by how much, and whether it is noise."""
    c = comparison
    d = c.decision
    if d is None or d.test == "none":
        why = f": {d.why}" if d is not None else ": it is not scored per example for both"
        head = f"{c.a.id} and {c.b.id} cannot be compared on {c.split} {c.primary}{why}."
    else:
        evidence = (f"{c.a.id} scored {scored(d.a, c.primary)} and {c.b.id} {scored(d.b, c.primary)} {c.split} "
                    f"{c.primary} on the same "
                    f"{d.difference.n} examples; difference (A - B) {d.evidence()}")  # fmt: skip
        if d.outcome is Outcome.BETTER:
            head = f"{evidence}. {c.a.id} is better than {c.b.id} on {c.primary}, beyond noise."
        elif d.outcome is Outcome.WORSE:
            head = f"{evidence}. {c.b.id} is better than {c.a.id} on {c.primary}, beyond noise."
        elif d.outcome is Outcome.NOT_WORSE:
            head = f"{evidence}. {c.a.id} is {d.reading()} than {c.b.id}."
        else:
            head = f"{evidence}. The difference is not distinguishable from noise (the interval includes 0)."
    others = [f"{s.metric} {s.evidence()}" for s in c.scores if s.metric != c.primary
              and s.outcome in (Outcome.BETTER, Outcome.WORSE)]  # fmt: skip
    tested = sum(1 for s in c.scores if s.metric != c.primary and s.test != "none")
    tail = (f" Other scores that differ beyond noise (A - B; Holm-adjusted over {counted(tested, 'score')}): "
            f"{'; '.join(others)}." if others else "")
    regression = "; ".join(f"{side.id} {_regression(side)}" for side in (c.a, c.b))
    tail += f" Regression vs base model (stored, not paired): {regression}."
    tail += "".join(f" Warning: {w}" for w in c.warnings)
    return head + tail


def comparison_json(comparison: Comparison) -> str:
    """Everything in the Comparison; metrics as {"value", "low", "high", "n"} like `harness trials --format json`. A
    score no test was run on (`test` "none") has `p_value` null and its reason in `why`, as the table shows it."""
    shown = asdict(comparison)
    for score in shown["scores"]:
        if score["test"] == "none":
            score["p_value"] = None
    return json.dumps(shown, indent=2, ensure_ascii=False)


def _reading(s: Decision, c: Comparison) -> str:
    if s.test == "none":
        return s.why
    if s.outcome is Outcome.BETTER:
        return f"{c.a.id} better"
    if s.outcome is Outcome.WORSE:
        return f"{c.b.id} better"
    if s.outcome is Outcome.NOT_WORSE:
        return f"{c.a.id} {s.reading()}"
    d = s.difference
    if d.low is None or not (d.low > 0 or d.high < 0):
        return "noise (CI includes 0)"
    return s.reading()  # its interval leaves 0 out: what held it back (Holm, or draws too few to show p < alpha)


def _regression(side: TrialSide) -> str:
    metric = side.regression_delta
    if metric is None or metric.value is None:
        return "not trained" if not side.trained else "not measured"
    return f"{interval(metric, signed=True)} points, n={metric.n}"


def _mark(correct: bool) -> str:
    return "(right) " if correct else "(wrong) "


def study_contract(study: StudyView | None, version: str | None = None) -> OutputContract | None:
    """The output contract of the study's suite folder as it is now, if it still holds the version the trials were
    scored on (`version`, else the study's): None where the folder is gone, no longer loads, or holds another version
    (its contract may have changed since)."""
    suite = study_suite(study, version)
    return None if suite is None else suite.contract


def study_suite(study: StudyView | None, version: str | None = None) -> Suite | None:
    """The study's suite folder as it is now, where it still loads and holds the version the trials were scored on
    (`version`, else the study's); None otherwise."""
    if study is None or not study.suite_path or not Path(study.suite_path).is_dir():
        return None
    try:
        suite = load_suite(study.suite_path)
    except SuiteError:
        return None
    return suite if suite.version == (version or study.suite_version) else None


def store_labels(store: Store, study: StudyView, split: str = "test") -> Callable[[str], dict[str, tuple[str, str]]] \
        | None:
    """Each trial's answers on `split` as (true label, predicted label), parsed with the contract of the study's suite
    folder (what macro-F1 is compared on, in the verdict, the gate and `compare`); None where that contract is not
    at hand (`study_contract`) or is not a label one: macro-F1 is then not compared, and the verdict and the gate
    say so."""
    contract = study_contract(study)
    if contract is None or contract.kind != "label":
        return None

    def read(trial: str) -> dict[str, tuple[str, str]]:
        return answered_labels([(e.example_id, e.target, e.output) for e in store.examples(trial, split)], contract)

    return read
