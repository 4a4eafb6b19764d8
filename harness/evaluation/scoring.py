"""Scoring one split: parse every output against the contract, run every scorer, and add the split metrics.

Generation happens before this (in harness.training); this module only judges text, so it never needs a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.label_report import LabelReport
from harness.core.metric import CORE_SCORERS, Metric
from harness.data.contract import OutputContract, parse_output, parse_target
from harness.data.suites import Example, Suite
from harness.evaluation.labels import label_bootstrap, label_report, with_f1_intervals
from harness.evaluation.scorers import ScoredCase, score_cases


@dataclass(frozen=True)
class SplitScores:
    metrics: dict[str, Metric]
    per_example: list[dict[str, float | None]]
    """Aligned with the examples: {scorer: value}."""
    labels: LabelReport | None
    """Per-label precision/recall/F1 with F1's interval, and the confusion matrix (label contracts only)."""


def scorer_names(suite: Suite) -> tuple[str, ...]:
    """The core scorers, then the suite's own, each once."""
    return tuple(dict.fromkeys(CORE_SCORERS + tuple(suite.scorers)))


def metric_names(suite: Suite) -> tuple[str, ...]:
    """Every metric scoring a split of this suite produces, with a value: what an objective may name. A free-text
    suite's hallucination_rate is stored, but never measured (n=0: no closed set or span to check against)."""
    names = scorer_names(suite) + (("macro_f1",) if suite.contract.kind == "label" else ())
    return tuple(n for n in names if not (suite.contract.kind == "text" and n == "hallucination_rate"))


def score_split(examples: Sequence[Example], outputs: Sequence[str], suite: Suite, seed: int) -> SplitScores:
    contract: OutputContract = suite.contract
    cases = [ScoredCase(ex, out, parse_output(out, contract), parse_target(ex.target, contract))
             for ex, out in zip(examples, outputs, strict=True)]
    values, metrics = score_cases(cases, contract, scorer_names(suite))
    labels = label_report(cases, contract) if contract.kind == "label" else None
    if labels is not None:
        metrics["macro_f1"], intervals = label_bootstrap(cases, contract, seed=seed, report=labels)
        labels = with_f1_intervals(labels, intervals)
    per_example = [{name: column[i] for name, column in values.items()} for i in range(len(cases))]
    return SplitScores(metrics, per_example, labels)
