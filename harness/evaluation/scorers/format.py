"""format_compliance: did the output have the contract's structure? Content is judged elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from harness.core.metric import Metric
from harness.data.contract import OutputContract
from harness.evaluation.scorers.base import ScoredCase
from harness.evaluation.stats import proportion


class FormatCompliance:
    """1.0 when the output parsed to a JSON object with the required keys/types (`ParsedOutput.compliant`).

    Wrapping that `parse_output` tolerates (fences, trailing text) still counts as compliant; it is a property
    of a deployable parser, and `ParsedOutput.strict` keeps the stricter reading for anyone who needs it.
    """

    name = "format_compliance"
    higher_is_better = True

    def score(self, cases: Sequence[ScoredCase], contract: OutputContract) -> tuple[list[float | None], Metric]:
        values: list[float | None] = [1.0 if c.parsed.compliant else 0.0 for c in cases]
        return values, proportion([v for v in values if v is not None])
