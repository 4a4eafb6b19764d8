"""The promotion gate: may this adapter replace what is in production (or, with nothing there yet, the best
prompting arm)? Four rules, each with its numbers, intervals and p-values, all read from test scores that were never
used to choose the adapter:

- task accuracy: significantly better than the reference, paired on the same test examples (McNemar's exact test
  for the p-value, a paired bootstrap for the interval); or, with a margin, not significantly worse by more than it;
- format compliance at or above its threshold;
- hallucination at or below its threshold (not defined for free text, where it passes as such);
- regression: the forgetting delta not significantly below its limit (never measured fails, unless allowed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.analysis.compare import compare_trials
from harness.analysis.formatting import fmt_metric, interval, p_value, pct, points
from harness.core.config import GateConfig
from harness.core.records import TrialView
from harness.core.selection import best
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
    """`production` (the adapter it would replace) or `prompting` (the best prompting arm, hosted or local)."""
    rules: tuple[GateRule, ...]
    config: GateConfig

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def failures(self) -> list[GateRule]:
        return [rule for rule in self.rules if not rule.passed]

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def text(self) -> str:
        head = (f"gate {'PASSED' if self.passed else 'FAILED'} for {self.candidate} against {self.reference_kind} "
                f"{self.reference}:")
        return "\n".join([head] + [f"  [{'pass' if r.passed else 'FAIL'}] {r.name}: {r.detail}" for r in self.rules])


def reference_for(store: Store, candidate: TrialView, suite: str) -> tuple[TrialView, str]:
    """The current production adapter of the suite, else the best prompting arm (on dev) of the candidate's study."""
    production = store.production(suite)
    if production is not None and production != candidate.id:
        return store.require_trial(production, complete=True), "production"
    arm = best(store.trials(candidate.study), trained=False)
    if arm is None:
        raise ValueError(f"study {candidate.study} has no complete prompting arm and suite {suite} has no production "
                         "adapter: there is nothing to gate against. Run a prompting arm in the study first.")
    return arm, "prompting"


def run_gate(store: Store, candidate: TrialView, reference: TrialView, kind: str, config: GateConfig) -> GateResult:
    comparison = compare_trials(store, candidate.id, reference.id, split="test")
    accuracy = comparison.score("task_accuracy")
    rules = [_accuracy_rule(accuracy, config, candidate.id, reference.id), _format_rule(candidate, config),
             _hallucination_rule(candidate, config), _regression_rule(candidate, config)]
    return GateResult(candidate.id, reference.id, kind, tuple(rules), config)


def _accuracy_rule(accuracy, config: GateConfig, candidate: str, reference: str) -> GateRule:
    if accuracy is None or accuracy.difference.value is None:
        return GateRule("task accuracy", False, "not scored on the same test examples for both")
    d = accuracy.difference
    better, within = d.low > 0, config.margin > 0 and d.low > -config.margin
    if better:
        verdict = "significantly better"
    elif within:
        verdict = f"not worse by more than the {pct(config.margin)}-point margin"
    elif d.high < 0:
        verdict = "significantly worse"
    else:
        verdict = "not significantly better" + (
            f", and possibly worse by more than the {pct(config.margin)}-point margin" if config.margin else "")
    return GateRule("task accuracy", better or within,
                    f"{candidate} {pct(accuracy.a)}% vs {reference} {pct(accuracy.b)}% on the same {d.n} test "
                    f"examples: {points(d)}, McNemar exact p {p_value(accuracy.p_value)} ({verdict})")


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
        return GateRule("regression", not config.require_regression,
                        "not measured (the sweep ran with regression.enabled: false)"
                        + ("; the gate requires it (gate.require_regression)" if config.require_regression else ""))
    worse = metric.high is not None and metric.high < limit
    return GateRule("regression", not worse,
                    f"{interval(metric, signed=True)} points, n={metric.n}, against a limit of {pct(limit, True)}"
                    + (" (significantly worse)" if worse else ""))
