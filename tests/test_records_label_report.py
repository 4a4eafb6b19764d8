"""LabelReport's contract with the store: it writes the JSON layout every release has written, byte for byte, and
reads back every report ever stored (those before 2026-12-05 without F1 intervals), so no migration is needed."""

from __future__ import annotations

import json

import pytest

from harness.core.label_report import INVALID, LabelReport, LabelRow
from harness.data.contract import OutputContract, parse_output, parse_target
from harness.data.suites import Example
from harness.evaluation.labels import label_report, with_f1_intervals
from harness.evaluation.scorers import ScoredCase

CONTRACT = OutputContract(kind="label", key="intent", labels=("refund", "card_lost"))
ANSWERS = [("card_lost", "card_lost"), ("card_lost", "refund"), ("refund", "refund"), ("refund", "no idea"),
           ("refund", "refund")]
"""(true label, what the output said): card_lost 1 of 2 right; refund 2 of 3, once answered outside the set."""

OLD_LAYOUT = {
    "n": 5,
    "invalid": 1,
    "macro_f1": 2 / 3,
    "macro_labels": 2,
    "labels": {
        "card_lost": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1},
        "refund": {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3, "predicted": 3},
    },
    "confusion": {"card_lost": {"card_lost": 1, "refund": 1}, "refund": {"refund": 2, "(invalid)": 1}},
}
"""What the dict-building `label_report` of releases up to this one returned for ANSWERS, key order included."""


def _report() -> LabelReport:
    cases = []
    for i, (true, said) in enumerate(ANSWERS):
        target, output = json.dumps({"intent": true}), json.dumps({"intent": said})
        cases.append(ScoredCase(Example(f"test:{i}", "x", target), output, parse_output(output, CONTRACT),
                                parse_target(target, CONTRACT)))
    return label_report(cases, CONTRACT)


def test_a_fresh_report_is_stored_as_the_old_code_stored_it():
    assert _report().to_json() == OLD_LAYOUT
    assert json.dumps(_report().to_json()) == json.dumps(OLD_LAYOUT)  # byte-equal: the same keys in the same order


def test_intervals_are_stored_after_the_row_and_only_where_a_label_has_one():
    stored = with_f1_intervals(_report(), {"refund": (0.25, 0.9)}).to_json()
    refund = {**OLD_LAYOUT["labels"]["refund"], "f1_low": 0.25, "f1_high": 0.9}  # as scoring's dict.update added them
    expected = {**OLD_LAYOUT, "labels": {"card_lost": OLD_LAYOUT["labels"]["card_lost"], "refund": refund}}
    assert json.dumps(stored) == json.dumps(expected)


def test_round_trip_through_json_text():
    for report in (_report(), with_f1_intervals(_report(), {"refund": (0.25, 0.9), "card_lost": (0.1, 1.0)})):
        assert LabelReport.from_json(report.to_json()) == report
        assert LabelReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_a_report_stored_before_intervals_reads_with_none_and_writes_back_unchanged():
    text = json.dumps(OLD_LAYOUT)  # a row of a release before 2026-12-05: no f1_low, f1_high
    report = LabelReport.from_json(json.loads(text))
    assert report.labels["refund"] == LabelRow(precision=2 / 3, recall=2 / 3, f1=2 / 3, support=3, predicted=3)
    assert report.labels["refund"].f1_low is None and report.labels["refund"].f1_high is None
    assert report.confusion["refund"][INVALID] == 1 and report.correct("refund") == 2
    assert json.dumps(report.to_json()) == text


def test_equal_reports_give_byte_equal_json_whatever_order_they_were_built_in():
    report = _report()
    shuffled = LabelReport(report.n, report.invalid, report.macro_f1, report.macro_labels,
                           dict(reversed(report.labels.items())),
                           {true: dict(reversed(row.items())) for true, row in reversed(report.confusion.items())})
    assert shuffled == report and json.dumps(shuffled.to_json()) == json.dumps(report.to_json())
    assert list(shuffled.to_json()["confusion"]["refund"]) == ["refund", INVALID]  # invalid last in a row


def test_an_interval_has_both_bounds_or_none():
    with pytest.raises(ValueError, match="both bounds"):
        LabelRow(precision=1.0, recall=1.0, f1=1.0, support=1, predicted=1, f1_low=0.2)
