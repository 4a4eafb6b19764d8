"""The one interface every scorer implements, and the text normalisation they share.

Scorers answer exactly one question each (is the format right? is anything made up? is the content right?)
so that a report never blends them: a model that answers in prose is a format failure, not a wrong answer
hidden inside an accuracy number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from harness.core.metric import Metric
from harness.core.text import fold
from harness.data.contract import OutputContract, ParsedOutput
from harness.data.suites import Example


@dataclass(frozen=True)
class ScoredCase:
    example: Example
    output: str
    """Raw generated text."""
    parsed: ParsedOutput
    """`parse_output(output, contract)`."""
    target: dict
    """`parse_target(example.target, contract)`."""


@runtime_checkable
class Scorer(Protocol):
    """Contract for every scorer.

    - `score` returns one value per case, aligned with `cases`: a float in [0, 1], or None when the measure
      does not apply to that case (e.g. hallucination of an output that did not parse).
    - The aggregate `Metric.n` equals the number of non-None per-example values; `Metric.value` is None when
      n == 0. Rates carry a Wilson 95% interval (`stats.proportion`); micro scores may carry a bootstrap one.
    - Scoring is deterministic (any resampling is seeded) and never raises on odd model output.
    - `higher_is_better` tells reports and the optimiser which way is good.
    """

    name: str
    higher_is_better: bool

    def score(self, cases: Sequence[ScoredCase], contract: OutputContract) -> tuple[list[float | None], Metric]: ...


def canonical(value: Any) -> str:
    """A comparison key for a JSON value: strings folded (`fold`), lists as sorted multisets, a one-item list as
    its item, and empty values (None, "", [], {}) dropped from objects so "absent" and "empty" compare equal."""
    return json.dumps(_canon(value), sort_keys=True, ensure_ascii=False)


def _canon(value: Any) -> Any:
    if isinstance(value, str):
        return fold(value)
    if isinstance(value, list):
        items = [_canon(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items() if not is_empty(v)}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)  # 1 and 1.0 are the same answer
    return str(value)


def is_empty(value: Any) -> bool:
    """An answer slot the model left blank; treated like an absent key."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (list, dict)) and not value)
