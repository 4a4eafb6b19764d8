"""A trial's interval rules version goes into the results database with it and comes back on its typed view, through
a write, a re-write and a merge of another worker's database."""

from __future__ import annotations

from harness.core.records import MetricRow, RunRecord, StudyRecord, TrialRecord
from harness.evaluation.rules import STATS_RULES
from harness.store.database import Store


def _study() -> StudyRecord:
    return StudyRecord(name="s", experiment_name="s", experiment={}, suite="toy", suite_version="1.0.0",
                       suite_path="suites/toy", model_name="tiny", model_sha256="abc", objective_metric="rouge_l",
                       maximize=True)


def _trial(number: int, rules: int | None, run: str = "run-1") -> TrialRecord:
    return TrialRecord(f"s/{number}", "s", number, run, "prompt", status="complete", stats_rules=rules,
                       metrics=[MetricRow("test", "rouge_l", 0.41, 0.35, 0.47, 40)])


def test_the_rules_version_is_stored_with_the_trial_and_read_back_typed(tmp_path):
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study())
    store.record_trial_start(TrialRecord("s/0", "s", 0, "run-1", "prompt"))
    assert store.trial("s/0").stats_rules is None  # running: nothing scored yet
    store.record_trial_result(_trial(0, STATS_RULES))
    store.record_trial_result(_trial(1, None))  # a writer that does not say: not recorded, never assumed current
    assert {t.id: t.stats_rules for t in store.trials("s")} == {"s/0": STATS_RULES, "s/1": None}
    assert store.trial("s/0").stats_rules == STATS_RULES


def test_a_merged_worker_database_keeps_each_trials_rules(tmp_path):
    ours, theirs = Store(tmp_path / "a" / "harness.duckdb"), Store(tmp_path / "b" / "harness.duckdb")
    for store, run in ((ours, "run-a"), (theirs, "run-b")):
        store.record_study(_study())
        store.record_run(RunRecord(run, "s", 1, "host", "cpu", "cpu", 2, {}))
    ours.record_trial_result(_trial(0, STATS_RULES, "run-a"))
    theirs.record_trial_result(_trial(1, STATS_RULES - 1, "run-b"))
    assert ours.merge(theirs).trials == ["s/1"]
    assert {t.id: t.stats_rules for t in ours.trials()} == {"s/0": STATS_RULES, "s/1": STATS_RULES - 1}
