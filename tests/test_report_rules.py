"""What `harness show`, `harness trials` and the verdict say about intervals computed by older rules: on a results
database holding a trial scored by this release, one scored by the rules of version 5, and one recorded before
versions were kept (as an upgraded database holds it)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console

from harness.analysis.formatting import OLDER_RULES_MARK, older_rules_remark, rules_note
from harness.analysis.report import ranking_table, trial_detail, trials_csv, trials_json
from harness.cli import main
from harness.core.metric import Metric
from harness.core.records import MetricRow, StudyRecord, TrialRecord
from harness.evaluation.rules import STATS_RULES, VERSIONS
from harness.store.database import Store

ROUGE, FORGETTING = Metric(0.41, 0.35, 0.47, 40), Metric(-0.015, -0.095, 0.058, 200)


def write_rules_db(path: Path) -> Store:
    """s/0 prompting, this release's rules; s/1 an adapter recorded before rules were kept; s/2 one of version 5."""
    store = Store(path)
    store.record_study(StudyRecord(name="s", experiment_name="s", experiment={}, suite="notes", suite_version="1.0.0",
                                   suite_path="suites/notes", model_name="tiny", model_sha256="abc",
                                   objective_metric="rouge_l", maximize=True))
    for number, method, rules in ((0, "prompt", STATS_RULES), (1, "lora", None), (2, "lora", 5)):
        trained = method != "prompt"
        metrics = [MetricRow.of(split, name, metric) for split in ("dev", "test") for name, metric in (
            ("rouge_l", ROUGE), ("task_accuracy", Metric(0.6, 0.5, 0.7, 40)),
            *((("regression_delta", FORGETTING),) if trained else ()))]
        store.record_trial_result(TrialRecord(f"s/{number}", "s", number, "run-1", method, params={"method": method},
                                              status="complete", trained=trained, feasible=True, objective=0.41,
                                              stats_rules=rules, metrics=metrics))
    return store


def _rendered(table) -> str:
    console = Console(record=True, width=300)
    console.print(table)
    return console.export_text()


def test_show_says_which_rules_computed_an_old_trials_intervals_and_what_really_rescores(tmp_path):
    store = write_rules_db(tmp_path / "harness.duckdb")
    current, unrecorded, five = (store.trial(f"s/{n}") for n in range(3))
    assert "Intervals" not in trial_detail(current, [])
    text = trial_detail(unrecorded, [])
    assert ("Intervals scored before rule versions were recorded, possibly by older rules than this release's "
            f"(v{STATS_RULES}, {VERSIONS[-1].date}), which changed: the forgetting delta takes McNemar's exact "
            "interval") in text
    assert "expanded percentile bootstrap" in text and "per-item answers were not stored" in text
    assert "`harness sweep EXPERIMENT --study NEW_NAME`" in text and "recheck" not in text  # recheck re-scores no trial
    text = trial_detail(five, [])
    assert f"Intervals by the rules of 2026-12-05 (v5); this release's (v{STATS_RULES}) changed: ROUGE-L" in text
    assert "McNemar" not in text  # version 5 had it


def test_the_cli_show_prints_the_note(tmp_path, capsys):
    write_rules_db(tmp_path / "harness.duckdb")
    assert main(["show", "s/1", "--db", str(tmp_path / "harness.duckdb")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "possibly by older rules than this release's" in out and "McNemar" in out


def test_the_trials_table_marks_only_the_intervals_older_rules_computed(tmp_path):
    store = write_rules_db(tmp_path / "harness.duckdb")
    lines = _rendered(ranking_table(store.trials(), {"s": "rouge_l"})).splitlines()
    rows = {trial: next(line for line in lines if f" {trial} " in line) for trial in ("s/0", "s/1", "s/2")}
    assert OLDER_RULES_MARK not in rows["s/0"]
    assert rows["s/1"].count("0.470]" + OLDER_RULES_MARK) == 2 and "+5.8]" + OLDER_RULES_MARK in rows["s/1"]
    assert "60.0 [50.0, 70.0] " in rows["s/1"]  # task accuracy's Wilson interval never changed: unmarked
    assert rows["s/2"].count(OLDER_RULES_MARK) == 2 and "+5.8]" + OLDER_RULES_MARK not in rows["s/2"]
    assert any("interval possibly computed by older rules than this release's; `harness show TRIAL`" in line
               for line in lines)
    table = _rendered(ranking_table([store.trial("s/0")], {"s": "rouge_l"}))
    assert "older rules" not in table and OLDER_RULES_MARK not in table


def test_json_and_csv_carry_each_trials_rules_version(tmp_path):
    trials = write_rules_db(tmp_path / "harness.duckdb").trials()
    assert [row["stats_rules"] for row in json.loads(trials_json(trials))] == [STATS_RULES, None, 5]
    assert [row["stats_rules"] for row in csv.DictReader(io.StringIO(trials_csv(trials)))] == [str(STATS_RULES), "",
                                                                                                "5"]


def test_the_verdicts_remark_names_only_the_stored_intervals_it_prints_that_older_rules_computed(tmp_path):
    store = write_rules_db(tmp_path / "harness.duckdb")
    current, unrecorded = store.trial("s/0"), store.trial("s/1")
    remark = older_rules_remark([(unrecorded, ["task_accuracy", "regression_delta"]), (current, ["rouge_l"])])
    assert remark == (" The stored intervals of s/1 (regression_delta) may come from older rules than this release's; "
                      "`harness show s/1` says what changed.")
    assert older_rules_remark([(unrecorded, ["task_accuracy"]), (current, ["rouge_l"])]) == ""
    assert rules_note(unrecorded, ["task_accuracy"]) is None
