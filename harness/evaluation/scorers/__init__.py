"""Scorer registry: every scorer by name, so suites and experiments can list them in YAML.

Each scorer measures one thing (see `base.Scorer` for the contract they all keep). Unknown names fail early
with the list of valid ones instead of silently producing a report without that column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.core.errors import ConfigError
from harness.data.contract import OutputContract
from harness.evaluation.scorers.accuracy import FieldF1, FieldPrecision, FieldRecall, TaskAccuracy
from harness.evaluation.scorers.base import ScoredCase, Scorer
from harness.evaluation.scorers.format import FormatCompliance
from harness.evaluation.scorers.hallucination import HallucinationRate
from harness.evaluation.scorers.rouge import RougeL
from harness.evaluation.stats import Metric

__all__ = [
    "ScoredCase",
    "Scorer",
    "register",
    "get_scorer",
    "scorer_names",
    "score_cases",
    "FormatCompliance",
    "HallucinationRate",
    "TaskAccuracy",
    "FieldPrecision",
    "FieldRecall",
    "FieldF1",
    "RougeL",
]

_REGISTRY: dict[str, Scorer] = {}


def register(scorer: Scorer) -> Scorer:
    """Add a scorer instance under its `name`; a second scorer with the same name is refused."""
    if not isinstance(scorer, Scorer) or not isinstance(getattr(scorer, "name", None), str) or not scorer.name:
        raise TypeError(f"{scorer!r} does not implement the Scorer protocol (name, higher_is_better, score)")
    existing = _REGISTRY.get(scorer.name)
    if existing is not None and existing is not scorer:
        raise ValueError(f"a scorer named {scorer.name!r} is already registered")
    _REGISTRY[scorer.name] = scorer
    return scorer


def get_scorer(name: str) -> Scorer:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown scorer {name!r}; use one of: {', '.join(scorer_names())}"
        ) from None


def scorer_names() -> list[str]:
    return sorted(_REGISTRY)


def score_cases(
    cases: Sequence[ScoredCase], contract: OutputContract, names: Iterable[str]
) -> tuple[dict[str, list[float | None]], dict[str, Metric]]:
    """Run the named scorers over the same cases: per-example values and aggregates, keyed by scorer name."""
    scorers = [get_scorer(n) for n in names]  # resolve all first: a typo fails before any work
    values: dict[str, list[float | None]] = {}
    metrics: dict[str, Metric] = {}
    for scorer in scorers:
        per_case, metric = scorer.score(cases, contract)
        if len(per_case) != len(cases):
            raise RuntimeError(f"scorer {scorer.name!r} returned {len(per_case)} values for {len(cases)} cases")
        values[scorer.name], metrics[scorer.name] = per_case, metric
    return values, metrics


for _scorer in (
    FormatCompliance(), HallucinationRate(), TaskAccuracy(), FieldPrecision(), FieldRecall(), FieldF1(), RougeL()
):
    register(_scorer)
