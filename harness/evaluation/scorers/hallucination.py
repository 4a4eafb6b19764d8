"""hallucination_rate: of the outputs that have the right shape, how many state something not allowed/given?

Only compliant outputs count: an output that did not parse is a format failure, and counting it here too would
let one failure show up in two scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.core.metric import Metric
from harness.core.text import fold, written_in
from harness.data.contract import OutputContract, label_lookup, number_values, numbers_in, string_values
from harness.evaluation.scorers.base import ScoredCase
from harness.evaluation.stats import proportion


class HallucinationRate:
    """Per compliant output: 1.0 when it names a label outside the set (compared folded), uses a key outside
    `fields`, or (grounded contracts; of the keys it lists, where it lists some) gives a string value not written in
    the input as words of it (folded; `art` inside `heart` is not, `written_in`), or (with `grounded_numbers`) a
    number the input does not write.
    Non-compliant outputs get None and are excluded from n.

    Text contracts: None for every example (n=0). Free-text reasoning has no closed set or span to check
    against, and calling a wrong number "made up" would just repeat task_accuracy under another name.
    """

    name = "hallucination_rate"
    higher_is_better = False

    def score(self, cases: Sequence[ScoredCase], contract: OutputContract) -> tuple[list[float | None], Metric]:
        if contract.kind == "text":
            return [None] * len(cases), Metric(None, None, None, 0)
        values = [
            (1.0 if hallucinated(c.parsed.value, c.example.input, contract) else 0.0) if c.parsed.compliant else None
            for c in cases
        ]
        return values, proportion([v for v in values if v is not None])


def hallucinated(value: dict | None, source: str, contract: OutputContract) -> bool:
    """Whether a (compliant) parsed output contains anything the contract or the input does not support."""
    if value is None or contract.kind == "text":
        return False
    if contract.kind == "label":
        label = value.get(contract.key)
        return not isinstance(label, str) or fold(label) not in label_lookup(contract.labels)
    if contract.fields and any(key not in contract.fields for key in value):
        return True
    grounded = dict(contract.grounded_items(value))  # every key's value, or the keys the contract grounds
    text = fold(source) if grounded else ""
    if not all(written_in(fold(s), text) for s in string_values(grounded)):
        return True
    if contract.grounded_numbers:
        written = numbers_in(source)
        return any(n not in written for n in number_values(grounded))
    return False
