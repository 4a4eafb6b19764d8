"""The one shape every reported number has: a value, its 95% interval, and how many observations are behind it.

"Not measured" is `value=None, n=0`, never 0: a trained trial whose forgetting was not checked must not read as
"no forgetting".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    value: float | None
    """Point estimate; None when nothing was measured (n == 0)."""
    low: float | None = None
    """Lower end of the 95% interval (None when not computed)."""
    high: float | None = None
    n: int = 0
    """Number of observations behind the estimate."""

    @property
    def measured(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Metric:
        return cls(raw.get("value"), raw.get("low"), raw.get("high"), int(raw.get("n") or 0))


NOT_MEASURED = Metric(None, None, None, 0)

CORE_SCORERS = ("format_compliance", "hallucination_rate", "task_accuracy")
"""Scorers every suite runs, whatever else it lists: format, made-up content and correctness, kept apart."""

CORE_METRICS = ("task_accuracy", "format_compliance", "hallucination_rate", "regression_delta")
"""The four numbers every trial reports, in the order tables show them."""
