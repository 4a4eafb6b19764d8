"""The constant-answer floor of a label suite: what always answering the commonest test label scores.

On any label suite, task accuracy reads against it, not against 0: 55 `routine` tickets of 60 make 92% for a
model that never reads its input. The verdict weighs the fine-tuned trial against it by the same paired rule as
against the opponent (`harness.analysis.decision`): an adapter that collapsed onto the majority label scored exactly
the floor, 95.0%, and was announced as a YES because the prompting arm scored 2.5%, below a constant answer.

Both arms' per-example correctness comes from the trial's confusion matrix on test: the constant answer is right on
exactly the examples whose true label is the commonest one, and the trial on those it answered with their own label.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.analysis.decision import Decision, Outcome, compare_paired
from harness.core.label_report import LabelReport
from harness.core.records import TrialView

FLOOR_METRIC = "task_accuracy"
"""The metric the floor is read on: a constant answer has no format, hallucination or forgetting score."""


@dataclass(frozen=True)
class Floor:
    label: str
    """The commonest test label, which the constant answer always gives."""
    count: int
    n: int
    labels: int = 2
    """How many labels the test set holds."""

    @property
    def share(self) -> float:
        return self.count / self.n

    @property
    def near_majority(self) -> bool:
        """Whether the floor is worth saying where nothing falls to it: one label holds more than half the test set,
        or there are two. Below that (3 labels at 48/26/26) it is still checked: an adapter that answered the 48%
        label every time read YES against a prompting arm at 26%."""
        return self.count * 2 > self.n or self.labels <= 2


def floor_of(report: LabelReport | None) -> Floor | None:
    """The constant answer of a test label report (always the commonest label, whatever its share); None where there
    is no report."""
    if report is None or not report.n:
        return None
    supports = {name: row.support for name, row in report.labels.items() if row.support}
    if not supports:
        return None
    label, count = max(supports.items(), key=lambda item: (item[1], item[0]))
    return Floor(label, count, report.n, len(supports))


def against_floor(report: LabelReport, floor: Floor) -> Decision:
    """The trial (A) against always answering `floor.label` (B), paired on the test examples of its report."""
    trial: dict[str, float] = {}
    constant: dict[str, float] = {}
    for true, row in report.confusion.items():
        for said, count in row.items():
            for k in range(count):
                key = f"{true}\x00{said}\x00{k}"
                trial[key] = float(said == true)
                constant[key] = float(true == floor.label)
    return compare_paired(trial, constant, FLOOR_METRIC, higher_is_better=True)


@dataclass(frozen=True)
class FloorCheck:
    """A trial weighed against the constant answer of its test set: what the verdict, the gate and payback's quality
    bar all require it to beat, by the same paired rule as against any opponent."""

    floor: Floor
    decision: Decision

    @property
    def beaten(self) -> bool:
        return self.decision.outcome is Outcome.BETTER

    @property
    def constant(self) -> str:
        """`always answering `green` (24 of 60 test examples)`."""
        return f"always answering `{self.floor.label}` ({self.floor.count} of {self.floor.n} test examples)"

    def evidence(self) -> str:
        """`against always answering `green` (24 of 60 test examples): -5.0 points, 95% CI [...], ...`."""
        return f"against {self.constant}: {self.decision.evidence()}"


def floor_check(trial: TrialView, metric: str) -> FloorCheck | None:
    """The trial against the constant answer where the metric is task accuracy on a label suite; else None."""
    report = trial.label_reports.get("test")
    floor = floor_of(report) if metric == FLOOR_METRIC else None
    return None if floor is None else FloorCheck(floor, against_floor(report, floor))
