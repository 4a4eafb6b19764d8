"""Content correctness: task_accuracy (whole answer right) and field precision/recall/F1 (partial credit).

Both read the parsed object whatever its compliance, so that format and content stay separate scores; an
output with no parsable object simply has no content (wrong, no predicted fields).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.core.metric import Metric
from harness.core.text import fold
from harness.data.contract import OutputContract, answers_equal
from harness.evaluation.scorers.base import ScoredCase, canonical, declared_numbers, is_empty
from harness.evaluation.stats import bootstrap_ratio, proportion


class TaskAccuracy:
    """1.0 when the answer equals the reference.

    label: the `key` value equals the target label after strip+casefold (whitespace folded, Unicode NFC).
    json: the whole object equals the target, strings folded, lists as multisets, a one-item list equal to its
    string, empty slots (None, "", []) equal to absent ones, and a number written as a string equal to that number
    where the schema types the slot as a number (`declared_numbers`).
    text: the final answers are equal (`contract.answers_equal`: by value when `numeric`); the reasoning before
    it is not judged here (see rouge_l).
    """

    name = "task_accuracy"
    higher_is_better = True

    def score(self, cases: Sequence[ScoredCase], contract: OutputContract) -> tuple[list[float | None], Metric]:
        values: list[float | None] = [1.0 if _correct(c, contract) else 0.0 for c in cases]
        return values, proportion([v for v in values if v is not None])


def _correct(case: ScoredCase, contract: OutputContract) -> bool:
    value = case.parsed.value
    if value is None:
        return False
    if contract.kind == "label":
        got, want = value.get(contract.key), case.target.get(contract.key)
        return isinstance(got, str) and isinstance(want, str) and fold(got) == fold(want)
    if contract.kind == "text":
        return answers_equal(value["answer"], case.target["answer"], contract)
    return canonical(declared_numbers(value, contract.schema)) == canonical(
        declared_numbers(case.target, contract.schema))


def field_pairs(value: dict | None, schema: dict) -> Counter:
    """The (key, normalised value) pairs an answer asserts; a list slot asserts one pair per item. A key's value is
    compared whole, a nested object included."""
    pairs: Counter = Counter()
    for key, slot in (declared_numbers(value, schema) or {}).items():
        items: list[Any] = slot if isinstance(slot, list) else [slot]
        for item in items:
            if not is_empty(item):
                pairs[(key, canonical(item))] += 1
    return pairs


class _FieldScore:
    """Micro precision/recall/F1 over (key, value) pairs, for json contracts only (None per example otherwise).

    Per example: that example's own precision/recall/F1 (precision None with no predicted pairs, recall None
    with no reference pairs, F1 1.0 when both are empty). Aggregate: the micro ratio over the examples whose
    value is not None, with a seeded bootstrap 95% interval over examples.
    """

    name = ""
    higher_is_better = True
    _part = ""

    def score(self, cases: Sequence[ScoredCase], contract: OutputContract) -> tuple[list[float | None], Metric]:
        if contract.kind != "json":
            return [None] * len(cases), Metric(None, None, None, 0)
        values: list[float | None] = []
        nums: list[float] = []
        dens: list[float] = []
        for case in cases:
            pred, gold = field_pairs(case.parsed.value, contract.schema), field_pairs(case.target, contract.schema)
            tp = sum((pred & gold).values())
            n_pred, n_gold = sum(pred.values()), sum(gold.values())
            num, den = {
                "precision": (tp, n_pred),
                "recall": (tp, n_gold),
                "f1": (2 * tp, n_pred + n_gold),
            }[self._part]
            if den == 0 and self._part != "f1":
                values.append(None)
                continue
            values.append(num / den if den else 1.0)
            nums.append(num)
            dens.append(den)
        return values, bootstrap_ratio(nums, dens, empty=1.0 if self._part == "f1" else None)


class FieldPrecision(_FieldScore):
    name = "field_precision"
    _part = "precision"


class FieldRecall(_FieldScore):
    name = "field_recall"
    _part = "recall"


class FieldF1(_FieldScore):
    name = "field_f1"
    _part = "f1"
