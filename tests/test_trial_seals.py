"""A skeptic's edits to a results database, each of which changed what a decision reads: a finished trial's seal
emptied, the study's objective or direction changed, the gate's thresholds in what a trial ran with, the throughput
payback prices, and production's scores edited and sealed again after a gate read them. Written through the real
Store, edited through duckdb as the database's owner would."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pytest

from harness.core.errors import HarnessError
from harness.core.records import (
    GATE_SEALS,
    AdapterEvent,
    ExampleRow,
    MetricRow,
    StudyRecord,
    Throughput,
    TrialRecord,
)
from harness.lifecycle.integrity import check_sealed, evidence
from harness.store.database import Store
from harness.store.seal import write_seal


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(StudyRecord(name="s", experiment_name="s", experiment={"name": "s"}, suite="colours",
                                   suite_version="1.0.0", suite_path="", model_name="tiny", model_sha256="abc",
                                   objective_metric="task_accuracy", maximize=True))
    for number, right in ((0, 3), (1, 9)):
        store.record_trial_result(TrialRecord(
            id=f"s/{number}", study="s", number=number, run_id="r", method="lora", trained=True, status="complete",
            objective=right / 10, feasible=True, started_at=datetime(2026, 12, 1, tzinfo=timezone.utc),
            finished_at=datetime(2026, 12, 1, 0, 10, tzinfo=timezone.utc),
            metrics=[MetricRow("test", "task_accuracy", right / 10, 0.0, 1.0, 10)],
            examples=[ExampleRow("test", f"test:{i}", "x", "red", "red" if i < right else "blue",
                                 scores={"task_accuracy": float(i < right)}) for i in range(10)],
            throughput={"test": Throughput(10, 5.0, 4, 100, 20)},
            provenance={"experiment": {"gate": {"margin": 0.0}}}))
    return store


def _edit(store: Store, sql: str, *args) -> None:
    with duckdb.connect(str(store.path)) as conn:
        conn.execute(sql, list(args))


def test_untouched_trials_are_intact(store):
    assert all(check.intact and not check.on_upgrade for check in store.seals())
    assert evidence(store).problems == []


@pytest.mark.parametrize("edit", [
    "UPDATE trials SET scores_sha256 = NULL WHERE id = 's/0'",  # emptied: only an edit leaves a finished one so
    "UPDATE studies SET objective_metric = 'format_compliance' WHERE study = 's'",
    "UPDATE studies SET maximize = false WHERE study = 's'",
    "UPDATE trials SET details = json_merge_patch(details, '{\"experiment\": {\"gate\": {\"margin\": 1.0}}}')"
    " WHERE id = 's/0'",
    "UPDATE throughput SET seconds = 0.001 WHERE trial_id = 's/0'",
])
def test_an_edit_to_what_a_decision_reads_breaks_the_seal(store, edit):
    _edit(store, edit)
    assert any(not check.intact for check in store.seals(["s/0"]))
    with pytest.raises(HarnessError, match=r"trial s/0(.s recorded| is finished but has no seal)"):
        check_sealed(store, ["s/0", "s/1"], "the gate weighs their stored scores, so it did not run")


def test_production_edited_and_sealed_again_after_a_gate_read_it_is_refused_by_the_next_gate(store):
    seals = check_sealed(store, ["s/1", "s/0"], "gate")
    store.record_adapter_events([AdapterEvent("s/1", "colours", "production", "candidate", "promote", "ada",
                                              detail={GATE_SEALS: seals})])
    _edit(store, "UPDATE examples SET scores = '{\"task_accuracy\": 0.0}' WHERE trial_id = 's/1'")
    with duckdb.connect(str(store.path)) as conn:
        write_seal(conn, "s/1")
    assert all(check.intact for check in store.seals())  # consistent with itself: the seal alone cannot tell
    with pytest.raises(HarnessError, match=r"trial s/1 is sealed otherwise than when the gate read it for s/1's "
                                           r"move to production"):
        check_sealed(store, ["s/0", "s/1"], "the gate weighs their stored scores, so it did not run")
    assert [p for p in evidence(store).problems if "s/1 is sealed otherwise" in p]


def test_the_report_says_first_that_it_reads_edited_evidence(store):
    """report, show and compare used edited scores without a word; the report now leads its cautions with it."""
    from harness.analysis.decision_report import build_report, caution_lines

    _edit(store, "UPDATE examples SET scores = '{\"task_accuracy\": 1.0}' WHERE trial_id = 's/0'")
    report = build_report(store, store.study("s"), None, datetime.now(timezone.utc))
    first = caution_lines(report)[0]
    assert first.startswith("Trial s/0's recorded outcome") and "this report reads the edited numbers" in first


def test_show_and_compare_say_they_read_edited_evidence(store, capsys):
    from conftest import printed

    from harness.analysis.compare import compare_trials
    from harness.cli import main

    _edit(store, "UPDATE examples SET scores = '{\"task_accuracy\": 1.0}' WHERE trial_id = 's/0'")
    warnings = compare_trials(store, "s/1", "s/0").warnings
    assert warnings[0].startswith("trial s/0's recorded outcome") and "reads the edited numbers" in warnings[0]
    assert main(["show", "s/0", "--db", str(store.path)]) == 0
    said = " ".join(printed(capsys).split())
    assert "warning: trial s/0's recorded outcome" in said and "what follows reads the edited numbers" in said
    assert main(["show", "s/1", "--db", str(store.path)]) == 0
    assert "edited numbers" not in printed(capsys)


def test_trials_and_payback_say_they_read_edited_evidence_and_scripts_get_it_per_trial(store, capsys):
    """`trials` and `payback` printed edited numbers without a word; JSON and CSV now carry `seal_intact`."""
    import csv
    import io
    import json

    from conftest import printed

    from harness.cli import main
    from harness.core.records import RunRecord

    store.record_run(RunRecord("r", "s", 1, "host", "cpu", "cpu", 2, {}))
    db = ["--db", str(store.path)]
    _edit(store, "UPDATE throughput SET seconds = 0.001 WHERE trial_id = 's/1'")  # what payback prices serving by
    assert main(["trials", *db]) == 0
    said = " ".join(printed(capsys).split())
    assert "warning: trial s/1's recorded outcome" in said and "s/0's" not in said
    assert main(["trials", "--format", "json", *db]) == 0
    captured = capsys.readouterr()
    assert {t["id"]: t["seal_intact"] for t in json.loads(captured.out)} == {"s/0": True, "s/1": False}
    assert "warning: trial s/1" in captured.err  # beside the JSON, never inside it
    assert main(["trials", "--format", "csv", *db]) == 0
    rows = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert {row["id"]: row["seal_intact"] for row in rows} == {"s/0": "True", "s/1": "False"}
    assert main(["payback", "s/1", "--baseline", "s/0", "--volume", "1000", *db]) == 0
    assert "warning: trial s/1's recorded outcome" in " ".join(printed(capsys).split())


def test_many_broken_seals_are_counted_not_listed():
    from harness.store.seal import SealCheck, seal_warnings

    checks = [SealCheck(f"s/{i}", "a", "b") for i in range(7)] + [SealCheck("s/9", "c", "c")]
    (warning,) = seal_warnings(checks)
    assert warning.startswith("7 trials (s/0, s/1, s/2, s/3, s/4, ...) no longer match the seal")
    assert len(seal_warnings(checks[:3])) == 3 and seal_warnings(checks[-1:]) == []
