"""A label suite's per-label report, typed on both sides of the store: precision, recall and F1 per label (with F1's
interval), macro-F1 and the confusion matrix of one split.

`harness.evaluation.labels.label_report` computes it; a trial stores it as `LabelReport.to_json` gives it, and the
report, the rules check and the dashboard read it back through `LabelReport.from_json` by attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INVALID = "(invalid)"
"""The predicted class of an output that names no label of the set: a column of the confusion matrix, never a row."""


@dataclass(frozen=True)
class LabelRow:
    """One label's line of a `LabelReport`."""

    precision: float | None
    """None where the label was never predicted."""
    recall: float | None
    """None where the split holds no example of it."""
    f1: float | None
    """None where it was neither predicted nor true."""
    support: int
    """Examples whose true label it is."""
    predicted: int
    """Outputs that named it."""
    f1_low: float | None = None
    f1_high: float | None = None
    """F1's 95% bootstrap interval; None where F1 has none, and in reports recorded before 2026-12-05."""

    def __post_init__(self) -> None:
        if (self.f1_low is None) != (self.f1_high is None):  # to_json writes both bounds or neither
            raise ValueError(f"an F1 interval needs both bounds, got [{self.f1_low}, {self.f1_high}]")

    def to_json(self) -> dict[str, Any]:
        """The stored row; the interval's keys only where it has one, as scoring has always added them."""
        row: dict[str, Any] = {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                               "support": self.support, "predicted": self.predicted}
        if self.f1_low is not None:
            row.update(f1_low=self.f1_low, f1_high=self.f1_high)
        return row

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LabelRow:
        return cls(raw["precision"], raw["recall"], raw["f1"], raw["support"], raw["predicted"],
                   raw.get("f1_low"), raw.get("f1_high"))


@dataclass(frozen=True)
class LabelReport:
    """Per-label precision, recall and F1, macro-F1 and the confusion matrix of one split of a label suite
    (`harness.evaluation.labels.label_report` computes it). It is stored as `to_json` gives it: the layout every
    release has written, so reports of any age read back without a migration."""

    n: int
    invalid: int
    """Outputs that named no label of the set (predicted `INVALID`)."""
    macro_f1: float | None
    """Mean F1 over the labels with support; None where no label has any."""
    macro_labels: int
    """How many labels macro-F1 averages over (those with support)."""
    labels: Mapping[str, LabelRow]
    """Every label of the contract, sorted by name."""
    confusion: Mapping[str, Mapping[str, int]]
    """{true label: {predicted label or INVALID: count}}; pairs never seen are left out."""

    def correct(self, label: str) -> int:
        """How many examples of `label` were answered with it (the confusion matrix's diagonal)."""
        return self.confusion.get(label, {}).get(label, 0)

    def to_json(self) -> dict[str, Any]:
        """The stored layout: keys in the order releases have written them, labels and confusion rows sorted
        (INVALID last in a row), so equal reports give byte-equal JSON."""
        return {
            "n": self.n,
            "invalid": self.invalid,
            "macro_f1": self.macro_f1,
            "macro_labels": self.macro_labels,
            "labels": {name: self.labels[name].to_json() for name in sorted(self.labels)},
            "confusion": {true: {said: row[said] for said in sorted(row, key=_invalid_last)}
                          for true, row in sorted(self.confusion.items())},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LabelReport:
        """A stored report of any release (those before 2026-12-05 have no F1 intervals: their rows read None)."""
        return cls(raw["n"], raw["invalid"], raw["macro_f1"], raw["macro_labels"],
                   {name: LabelRow.from_json(row) for name, row in raw["labels"].items()},
                   {true: dict(row) for true, row in raw["confusion"].items()})


def _invalid_last(predicted: str) -> tuple[bool, str]:
    return predicted == INVALID, predicted
