"""The promotion gate: may this adapter replace what is in production (or, with nothing there yet, the best
prompting arm)? Every rule with its numbers, all read from test scores that were never used to choose the adapter,
and every rule the sweep applied read the same way here:

- the study's objective metric, by the decision rule (`harness.analysis.decision`): better than the reference on
  the same test examples, or, with `gate.margin`, not worse by more than it; scored on different test subsets, the
  two are not compared at all, and the rule fails as not decided (only an override, on the record, passes it);
- trained in full: a trial its time cap cut short of its step budget does not stand for the method;
- the sweep's constraints: an adapter the sweep called infeasible on dev is refused (format, hallucination,
  forgetting at their experiment limits);
- format compliance on test at or above its threshold;
- hallucination on test at or below its threshold (not defined for free text, where it passes as such);
- forgetting: the regression delta's point estimate within its limit, as the sweep reads it, with its interval
  shown (never measured fails, unless allowed).

A refused gate changes nothing, but like a passed one it is recorded (`harness registry --history`), with how many
other candidates were gated on the same test subset before, against any reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

from harness.analysis.compare import objective_of, require_same_examples, store_labels, why_subsets_differ
from harness.analysis.decision import Decision, compare_macro_f1, compare_paired, scores_of
from harness.analysis.floor import floor_check
from harness.analysis.formatting import BROKEN_AT_ESTIMATE_ONLY, broken_at_estimate_only, fmt_metric, interval, pct
from harness.core.config import GateConfig
from harness.core.errors import HarnessError
from harness.core.records import ExampleView, TrialView
from harness.core.selection import best
from harness.core.text import listed_with_and
from harness.evaluation.rules import STATS_RULES
from harness.store.database import Store


@dataclass(frozen=True)
class GateRule:
    name: str
    passed: bool
    detail: str
    """The numbers behind the decision, with intervals and p-values."""


@dataclass(frozen=True)
class GateResult:
    candidate: str
    reference: str
    reference_kind: str
    """`production` (the adapter it would replace), `last production` (the suite has none: the adapter last taken out
    of production) or `prompting` (the best prompting arm, hosted or local)."""
    rules: tuple[GateRule, ...]
    config: GateConfig
    decision: Decision
    """The candidate against the reference on the objective metric."""
    subset: str | None = None
    """sha256 of the test subset both were scored on."""
    earlier: int = 0
    """Distinct other candidates gated on this test subset of the suite before this evaluation, against any
    reference: every gate of every study looks at the same test examples (counted against this reference alone, the
    count began at 0 again with each new study's prompting arm)."""
    repeated: int = 0
    """Times this candidate itself was gated on this test subset before: a gate run again until it passes is a look
    at test each time."""
    unpaired: str | None = None
    """Why the candidate and the reference cannot be compared on the same test examples (scored on different test
    subsets); None when they were. The objective rule then fails as not decided: only an override passes it, and
    the record says the comparison was not like for like."""
    thresholds_from: str = ""
    """Where `config` came from, in words (the experiment's `gate:`, the suite's, or the defaults)."""
    setup_note: str = ""
    """Said when the two were scored under suite.yaml set-ups that differ (instruction, contract or scorers, edited
    under one version): each answered its own prompt, and was scored by its own rules."""

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def failures(self) -> list[GateRule]:
        return [rule for rule in self.rules if not rule.passed]

    def to_dict(self) -> dict:
        """As stored with the promotion: with the interval rules its comparison was computed under."""
        return {**asdict(self), "passed": self.passed, "stats_rules": STATS_RULES}

    def text(self) -> str:
        head = (f"gate {'PASSED' if self.passed else 'FAILED'} for {self.candidate} against {self.reference_kind} "
                f"{self.reference}:")
        looks = (f"  earlier looks: {self.earlier} other candidate(s) were gated on this test subset before "
                 "(against any reference, in any study); every evaluation is recorded (`harness registry "
                 "--history`), and each extra look at the same test makes a pass by luck likelier." if self.earlier
                 else "  earlier looks: no other candidate was gated on this test subset (every look, compares "
                      "included, is in `harness registry --history`); this evaluation is recorded.")
        if self.repeated:
            looks += (f" {self.candidate} itself was gated on it {self.repeated} time(s) before: each re-run is "
                      "another look too.")
        rules = [f"  [{'pass' if r.passed else 'FAIL'}] {r.name}: {r.detail}" for r in self.rules]
        margin = (f"margin {pct(self.config.margin)} points (not worse by more than it)" if self.config.margin
                  else "margin 0 (better than the reference, beyond noise)")
        source = [f"  thresholds: {margin}" + (f"; from {self.thresholds_from}" if self.thresholds_from else "")]
        setup = [f"  note: {self.setup_note}"] if self.setup_note else []
        return "\n".join([head, *rules, *source, *setup, looks])


def reference_for(store: Store, candidate: TrialView, suite: str) -> tuple[TrialView, str]:
    """The current production adapter of the suite; else the adapter last taken out of production; else the best
    prompting arm (on dev) of the candidate's study.

    The adapter last in production keeps the bar where production set it: a candidate refused against production
    passed against its own study's prompting arm once production was retired by hand, a minute later, though it
    scored 30.6 points below the retired adapter on the same test examples. Retiring it for a reason the scores do
    not show (it leaked data) is what `--force --reason` records."""
    production = store.production(suite)
    if production is not None and production != candidate.id:
        return store.require_trial(production, complete=True), "production"
    if (last := last_production(store, suite, candidate)) is not None:
        return last, "last production"
    arm = best(store.trials(candidate.study), trained=False)
    if arm is None:
        raise ValueError(f"study {candidate.study} has no complete prompting arm and suite {suite} has no production "
                         "adapter: there is nothing to gate against, so there is no gate for --force to override "
                         "either. Run a prompting arm in the study first (enqueue one and resume the sweep with "
                         "--trials one higher).")
    return arm, "prompting"


def last_production(store: Store, suite: str, candidate: TrialView) -> TrialView | None:
    """The adapter last taken out of production in `suite` (retired by hand, replaced or rolled back), other than the
    candidate; None where there is none. Scored on another test subset, it is still the reference, and the gate
    refuses as it refuses against live production (not compared like for like): falling back to prompting there let
    a candidate scored on 30 of the retired adapter's 36 test examples pass."""
    left = [e.trial_id for e in store.adapter_events(suite=suite)
            if e.previous == "production" and e.status != "production" and e.trial_id != candidate.id]
    last = store.trial(left[-1]) if left else None
    return last if last is not None and last.complete else None


def run_gate(store: Store, candidate: TrialView, reference: TrialView, kind: str, config: GateConfig,
             suite: str | None = None) -> GateResult:
    """Read both trials' test scores and the earlier gate evaluations, then apply `gate`."""
    metric = objective_of(store, candidate)
    subset = candidate.data.subset_sha256.get("test")
    looks = [look.candidate for look in store.looks(suite=suite, kind="gate", subset=subset)]
    earlier = {name for name in looks if name != candidate.id}
    study = store.study(candidate.study)
    rows = {trial.id: {row.example_id: row for row in store.examples(trial.id, "test")}
            for trial in (candidate, reference)}
    labels = store_labels(store, study) if metric == "macro_f1" and study is not None else None
    return gate(candidate, reference, kind, config, scores_of(rows[candidate.id].values(), metric),
                scores_of(rows[reference.id].values(), metric), metric,
                study.maximize if study is not None else None, subset, len(earlier), looks.count(candidate.id),
                _unpaired(store, candidate, reference, rows[candidate.id], rows[reference.id]),
                None if labels is None else (labels(candidate.id), labels(reference.id)))


def _unpaired(store: Store, candidate: TrialView, reference: TrialView, candidate_rows: dict[str, ExampleView],
              reference_rows: dict[str, ExampleView]) -> str | None:
    """Why the two were not scored on the same test examples (`compare.require_same_examples` decides), in the
    gate's words, or None when they were. compare's own refusal speaks of compare and payback, so it is not shown."""
    try:
        require_same_examples(store, candidate, reference, candidate_rows, reference_rows, split="test")
    except HarnessError:
        shared = len(set(candidate_rows) & set(reference_rows))
        return (f"{candidate.id} and {reference.id} were scored on different test subsets ({candidate.id} on "
                f"{len(candidate_rows)} examples, {reference.id} on {len(reference_rows)}, {shared} shared ids; "
                f"{why_subsets_differ(store, candidate, reference, 'test')}), so no paired test of the two is like "
                "for like")
    return None


def gate(candidate: TrialView, reference: TrialView, kind: str, config: GateConfig,
         candidate_scores: Mapping[str, float | None], reference_scores: Mapping[str, float | None], metric: str,
         higher_is_better: bool | None = None, subset: str | None = None, earlier: int = 0,
         repeated: int = 0, unpaired: str | None = None,
         labels: tuple[Mapping[str, tuple[str, str]], Mapping[str, tuple[str, str]]] | None = None) -> GateResult:
    """Every rule, on typed views and per-example test scores of the objective metric. `unpaired`: why the two were
    not scored on the same test examples; the objective is then not compared at all (its rule fails, undecided).
    `labels`: each side's (true, predicted) test labels, which a macro_f1 objective is compared on
    (`decision.compare_macro_f1`); without them it is not decided."""
    if unpaired is None and metric == "macro_f1":
        decision = compare_macro_f1(*(labels or ({}, {})), margin=config.margin,
                                    why="the study's suite folder, whose contract reads the answers' labels, is not "
                                        "at hand in the version it was scored on")
    elif unpaired is None:
        decision = compare_paired(candidate_scores, reference_scores, metric, higher_is_better=higher_is_better,
                                  margin=config.margin)
    else:  # ids they share may name other examples, and a share of the subset is another test: no pairing is sound
        decision = replace(compare_paired({}, {}, metric, higher_is_better=higher_is_better, margin=config.margin),
                           why=unpaired)
    rules = (_objective_rule(decision, candidate.id, reference.id), *_floor_rule(candidate, metric),
             _trained_rule(candidate), _feasible_rule(candidate), _format_rule(candidate, config),
             _hallucination_rule(candidate, config), _regression_rule(candidate, config))
    setups = {candidate.data.suite_setup_sha256, reference.data.suite_setup_sha256}
    note = (f"{candidate.id} and {reference.id} were scored under suite set-ups that differ (the suite's "
            "instruction, `output:` or `scorers:`): each answered its own prompt and was scored by its own rules, so "
            "the difference is not the adapters' alone." if None not in setups and len(setups) > 1 else "")
    return GateResult(candidate.id, reference.id, kind, rules, config, decision, subset, earlier, repeated, unpaired,
                      setup_note=note)


def _floor_rule(candidate: TrialView, metric: str) -> tuple[GateRule, ...]:
    """On task accuracy of a label suite, the candidate beats always answering the commonest test label by the
    decision rule, as the verdict requires (`analysis/floor.py`): an adapter answering one label on every input had
    passed the gate against a prompting arm that scored below that constant answer."""
    check = floor_check(candidate, metric)
    return () if check is None else (GateRule("beats the constant answer", check.beaten, check.evidence()),)


def _objective_rule(decision: Decision, candidate: str, reference: str) -> GateRule:
    if decision.test == "none":
        return GateRule(decision.metric, False, f"not decided: {decision.why}")
    return GateRule(decision.metric, decision.passes,
                    f"{candidate} {pct(decision.a)}% vs {reference} {pct(decision.b)}% on the same test examples: "
                    f"{decision.evidence()} ({decision.reading()})")


def _trained_rule(candidate: TrialView) -> GateRule:
    training = candidate.training
    if training is None:
        return GateRule("trained in full", True, "no training record (nothing to cut short)")
    share = f"{training.steps} of {training.planned_steps} steps" if training.planned_steps else (
        f"{training.steps} steps")
    if candidate.under_trained:
        return GateRule("trained in full", False, f"its time cap stopped training at {share}: it is under-trained, "
                                                  "so it does not stand for what the method can do. Re-run it with a "
                                                  "larger budget.trial_train_seconds or a smaller budget.max_steps")
    return GateRule("trained in full", True, f"{share}, stopped by {training.stopped_by}")


def _feasible_rule(candidate: TrialView) -> GateRule:
    broken = candidate.broken_constraints
    if candidate.feasible is False or broken:
        listed = ", ".join(f"{name} ({_excess_text(candidate, name, excess)})" for name, excess in broken.items())
        return GateRule("sweep constraints", False, f"the sweep found it infeasible on dev: {listed or 'see show'}")
    checked = [name for name, excess in (("format", candidate.constraints.get("format_compliance")),
                                         ("hallucination", candidate.constraints.get("hallucination_rate")),
                                         ("forgetting", candidate.constraints.get("regression_delta")))
               if excess is not None]
    unchecked = [name for name in ("format", "hallucination", "forgetting") if name not in checked]
    return GateRule("sweep constraints", True, f"feasible on dev ({listed_with_and(checked) or 'nothing'} within the "
                    "experiment's limits" + (f"; {listed_with_and(unchecked)} not measured" if unchecked else "") + ")")



def _excess_text(candidate: TrialView, name: str, excess: float) -> str:
    """How far a dev constraint is broken; a rate with no value (no compliant output to check) was not measured, and
    the sweep counts it as the worst rate (`constraint_excess`): say so rather than print a measured-looking gap."""
    metric = candidate.metric("dev", name)
    if metric is not None and metric.value is None:
        return "no compliant output on dev to check it: counted as the worst rate"
    only = f", {BROKEN_AT_ESTIMATE_ONLY}" if broken_at_estimate_only(candidate, name) else ""
    return f"beyond its limit by {pct(excess)} points{only}"


def _format_rule(candidate: TrialView, config: GateConfig) -> GateRule:
    metric = candidate.metric("test", "format_compliance")
    ok = metric is not None and metric.value is not None and metric.value >= config.min_format_compliance
    return GateRule("format compliance", ok,
                    f"{fmt_metric(metric)} against a minimum of {pct(config.min_format_compliance)}%")


def _hallucination_rule(candidate: TrialView, config: GateConfig) -> GateRule:
    metric = candidate.metric("test", "hallucination_rate")
    limit = f"a maximum of {pct(config.max_hallucination_rate)}%"
    if metric is None:
        return GateRule("hallucination", True, "not defined for a free-text suite")
    if metric.value is None:
        return GateRule("hallucination", False, f"no compliant output to check, against {limit}")
    return GateRule("hallucination", metric.value <= config.max_hallucination_rate,
                    f"{fmt_metric(metric)} against {limit}")


def _regression_rule(candidate: TrialView, config: GateConfig) -> GateRule:
    metric = candidate.metric("test", "regression_delta")
    limit = -config.max_regression_drop
    if metric is None or metric.value is None:
        return GateRule("forgetting", not config.require_regression,
                        "not measured (the sweep ran with regression.enabled: false)"
                        + ("; the gate requires it (gate.require_regression)" if config.require_regression else ""))
    within = metric.value >= limit - 1e-12
    # a pass at the estimate alone is said too: 8 items read +12.5 [-50.0, +52.7] against -5 and printed a plain pass
    doubt = "; its interval reaches past the limit, so it is met at its estimate only (a larger regression.limit " \
        "narrows it)" if within and metric.low is not None and metric.low < limit else ""
    return GateRule("forgetting", within,
                    f"{interval(metric, signed=True)} points, n={metric.n}: the point estimate is "
                    f"{'within' if within else 'beyond'} the limit of {pct(limit, True)} (read as the sweep reads "
                    f"it){doubt}")
