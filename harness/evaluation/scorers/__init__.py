"""Scorer registry: every scorer by name, so suites and experiments can list them in YAML.

Each scorer measures one thing (see `base.Scorer` for the contract they all keep). Unknown names fail early with
the list of valid ones instead of silently producing a report without that column. A few metrics are computed
over a whole split rather than per example (macro-F1, the regression delta); `higher_is_better` knows them too,
so every metric has one direction, which the sweep optimises in and every reader ranks by.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.core.metric import Metric
from harness.core.registry import Registry
from harness.data.contract import OutputContract
from harness.evaluation.scorers.accuracy import FieldF1, FieldPrecision, FieldRecall, TaskAccuracy
from harness.evaluation.scorers.base import ScoredCase, Scorer
from harness.evaluation.scorers.format import FormatCompliance
from harness.evaluation.scorers.hallucination import HallucinationRate
from harness.evaluation.scorers.rouge import RougeL

SCORERS: Registry[Scorer] = Registry("scorer")
for _scorer in (
    FormatCompliance(), HallucinationRate(), TaskAccuracy(), FieldPrecision(), FieldRecall(), FieldF1(), RougeL()
):
    SCORERS.register(_scorer)

SPLIT_METRICS = {"macro_f1": True, "regression_delta": True}
"""Metrics computed over a whole split (not by a per-example scorer), with their `higher_is_better`."""


def higher_is_better(metric: str) -> bool | None:
    """The direction of a scorer's or split metric's value; None for a name the harness does not produce."""
    if metric in SCORERS:
        return SCORERS.get(metric).higher_is_better
    return SPLIT_METRICS.get(metric)


def score_cases(
    cases: Sequence[ScoredCase], contract: OutputContract, names: Iterable[str]
) -> tuple[dict[str, list[float | None]], dict[str, Metric]]:
    """Run the named scorers over the same cases: per-example values and aggregates, keyed by scorer name."""
    scorers = [SCORERS.get(n) for n in names]  # resolve all first: a typo fails before any work
    values: dict[str, list[float | None]] = {}
    metrics: dict[str, Metric] = {}
    for scorer in scorers:
        per_case, metric = scorer.score(cases, contract)
        if len(per_case) != len(cases):
            raise RuntimeError(f"scorer {scorer.name!r} returned {len(per_case)} values for {len(cases)} cases")
        values[scorer.name], metrics[scorer.name] = per_case, metric
    return values, metrics
