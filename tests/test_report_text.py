"""`harness show`'s per-label lines: each F1 with its interval, the columns in line whatever script a label is in."""

from __future__ import annotations

import dataclasses

from rich.cells import cell_len
from views import trial_view

from harness.analysis.report import trial_detail
from harness.core.label_report import LabelReport, LabelRow
from harness.core.metric import Metric


def label(f1: float, support: int, low: float | None = None, high: float | None = None) -> LabelRow:
    return LabelRow(precision=f1, recall=f1, f1=f1, support=support, predicted=support, f1_low=low, f1_high=high)


def test_label_lines_give_each_f1_its_interval_and_stay_in_line_in_any_script():
    per_label = {"挂失银行卡": label(0.25, 10, 0.05, 0.55), "card_arrival": label(0.5, 10, 0.2, 0.8),
                 "الكرت": label(0.75, 10)}  # recorded before intervals: none to show
    report = LabelReport(n=30, invalid=0, macro_f1=0.5, macro_labels=3, labels=per_label,
                         confusion={"挂失银行卡": {"card_arrival": 3}})
    trial = trial_view(1, label_reports={"test": report},
                       metrics={"test": {"macro_f1": Metric(0.5, 0.31, 0.68, 30)}})
    lines = trial_detail(trial, []).splitlines()
    assert "per label (test, macro-F1 50.0 [31.0, 68.0] over 3 labels); weakest 3:" in lines
    rows = [line for line in lines if " F1 " in line and "support" in line]
    assert rows[0].strip().startswith("挂失银行卡") and "F1 25.0 [5.0, 55.0]" in rows[0]
    assert "F1 75.0 " in rows[2] and "[" not in rows[2].split("F1")[1]  # no interval was recorded: none is shown
    # the F1 column starts at the same terminal cell on every row, though 挂失银行卡 takes two cells a character
    assert len({cell_len(row.split(" F1 ")[0]) for row in rows}) == 1


def test_confusions_seen_once_each_are_not_listed_as_a_pattern_and_few_examples_a_label_are_named():
    report = LabelReport(n=30, invalid=0, macro_f1=0.5, macro_labels=3, labels={"a": label(0.5, 10)},
                         confusion={"a": {"b": 1, "c": 1}, "b": {"a": 1}})
    text = trial_detail(trial_view(1, label_reports={"test": report}), [])
    assert "no confusion repeated" in text and "commonest confusions" not in text
    assert "(fewest test examples a label: a 10: their F1 and macro-F1 intervals are rough" in text
    # the fewest, not the mean: 38, 1 and 1 read as "13 test examples a label"
    rare = dataclasses.replace(report, n=40, labels={"routine": label(0.9, 38), "urgent": label(0.0, 1),
                                                    "legal": label(0.0, 1)})
    assert "(fewest test examples a label: legal 1, urgent 1, routine 38:" in trial_detail(
        trial_view(1, label_reports={"test": rare}), [])
    report = dataclasses.replace(report, n=300, labels={"a": label(0.5, 100)}, confusion={"a": {"b": 2, "c": 1}})
    text = trial_detail(trial_view(1, label_reports={"test": report}), [])
    assert "commonest confusions" in text and "2 x a -> b" in text and "rough" not in text


def test_show_gives_the_score_of_always_answering_the_commonest_test_label():
    """10 `false` of 12 make 83% for a model that never reads its input: the floor a score reads against."""
    skewed = LabelReport(n=12, invalid=0, macro_f1=0.5, macro_labels=2, confusion={},
                         labels={"false": label(0.9, 10), "true": label(0.1, 2)})
    text = trial_detail(trial_view(1, label_reports={"test": skewed}), [])
    assert "always answering `false`, the commonest test label, would score 83.3% [" in text and "n=12" in text
    balanced = LabelReport(n=30, invalid=0, macro_f1=0.5, macro_labels=3, confusion={},
                           labels={"a": label(0.5, 10), "b": label(0.5, 10), "c": label(0.5, 10)})
    assert "always answering" not in trial_detail(trial_view(1, label_reports={"test": balanced}), [])


def test_show_names_the_constraint_an_infeasible_trial_breaks():
    broken = trial_view(1, feasible=False, constraints={"format_compliance": -0.1, "regression_delta": 0.02},
                        metrics={"dev": {"regression_delta": Metric(-0.07, -0.205, 0.031, 100)}})
    # a 5-point limit: broken at -7.0, while the interval reaches back to +3.1, within it
    assert ("feasible no: breaks regression_delta on the general check (-7.0 points, 95% CI [-20.5, +3.1], n=100, "
            "broken at its estimate only: its 95% interval reaches back within the limit)") in trial_detail(broken, [])
    settled = trial_view(5, feasible=False, constraints={"regression_delta": 0.02},
                         metrics={"dev": {"regression_delta": Metric(-0.07, -0.09, -0.055, 100)}})
    assert "feasible no: breaks regression_delta on the general check (-7.0 points, 95% CI [-9.0, -5.5], n=100)\n" \
        in trial_detail(settled, [])
    assert "feasible yes" in trial_detail(trial_view(2, feasible=True, constraints={"format_compliance": -0.1}), [])


def test_show_says_a_failed_trial_has_no_adapter_rather_than_that_retention_removed_it():
    assert "artifact: none (the trial failed)" in trial_detail(trial_view(3, status="failed", trained=True), [])
    assert "artifact: not kept (retention)" in trial_detail(trial_view(4, status="complete", trained=True), [])



def test_a_column_counts_no_n_while_no_trial_has_a_score():
    from harness.analysis.report import ranking_table

    running = ranking_table([trial_view(0, status="running")], "task_accuracy")
    assert [c.header for c in running.columns][4:6] == ["dev acc", "test acc"]  # not "(n=varies)"
    scored = trial_view(1, metrics={"dev": {"task_accuracy": Metric(0.5, 0.4, 0.6, 50)}})
    assert [c.header for c in ranking_table([scored], "task_accuracy").columns][4] == "dev acc (n=50)"


def test_show_says_a_hosted_arm_asked_for_structured_output_and_a_local_one_decoded_constrained():
    """An endpoint may ignore `response_format`; only the harness's and vLLM's own decoding cannot leave the
    contract, so only they are said to be constrained."""
    from harness.core.records import EngineInfo

    hosted = trial_detail(trial_view(1, engine=EngineInfo("hosted", None, None, constrained=True)), [])
    assert "structured output requested (an endpoint may ignore it" in hosted and "decoding constrained" not in hosted
    local = trial_detail(trial_view(2, engine=EngineInfo("hf", "5.25.0", "float32", constrained=True)), [])
    assert "decoding constrained to the contract" in local and "structured output" not in local


def test_a_failed_trial_has_no_place_in_the_ranking():
    """An interrupted search, the study's only trial, read "rank 1"."""
    from harness.analysis.report import ranking_table

    table = ranking_table([trial_view(0, status="failed", objective=None), trial_view(1, objective=0.5)])
    ranks = list(table.columns[0].cells)
    trials = list(table.columns[1].cells)
    assert dict(zip(trials, ranks)) == {"s/1": "1", "s/0": "-"}


def test_show_says_why_macro_f1_has_no_interval_when_labels_have_too_few_test_examples():
    rare = LabelReport(n=40, invalid=0, macro_f1=0.3, macro_labels=3, confusion={},
                       labels={"routine": label(0.9, 38), "urgent": label(0.0, 1), "legal": label(0.0, 1)})
    trial = trial_view(1, label_reports={"test": rare}, metrics={"test": {"macro_f1": Metric(0.3, None, None, 40)}})
    text = " ".join(trial_detail(trial, []).split())
    assert "(no macro-F1 interval: too few test examples a label for macro-F1's bootstrap: 2 of 3 labels have 1 or 2" \
        in text and "rough" not in text


def test_the_trials_table_says_why_a_macro_f1_has_no_interval():
    from rich.console import Console

    from harness.analysis.report import NO_MACRO_INTERVAL, ranking_table

    few = trial_view(1, metrics={"test": {"macro_f1": Metric(0.5, None, None, 20),
                                          "task_accuracy": Metric(0.45, 0.26, 0.66, 20)}})
    console = Console(width=200, record=True)
    console.print(ranking_table([few], "task_accuracy"))
    assert " ".join(NO_MACRO_INTERVAL.split()) in " ".join(console.export_text().split())
    resampled = trial_view(2, metrics={"test": {"macro_f1": Metric(0.5, 0.3, 0.7, 200)}})
    assert ranking_table([resampled], "task_accuracy").caption is None
