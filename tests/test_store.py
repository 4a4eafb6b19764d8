"""Results store: schema migrations, round trips, and the cross-process locking it exists to survive."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from harness.core.errors import HarnessError
from harness.core.label_report import INVALID, LabelReport, LabelRow
from harness.core.metric import Metric
from harness.core.records import (
    ExampleRow,
    MetricRow,
    RunRecord,
    StudyRecord,
    Throughput,
    TrainingSummary,
    TrialRecord,
    trial_id,
)
from harness.store.database import Store, TrialIdTaken
from harness.store.migrations import MIGRATIONS, applied, apply_migrations

REPO = Path(__file__).resolve().parents[1]


def make_record(study="s1", number=0, accuracy=0.5, n_examples=2) -> TrialRecord:
    return TrialRecord(
        id=trial_id(study, number),
        study=study,
        number=number,
        run_id="run-1",
        method="lora",
        params={"r": 8, "lr": 1e-4},
        status="complete",
        trained=True,
        started_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        finished_at=datetime(2025, 1, 2, 3, 5, 5, tzinfo=timezone.utc),
        device="cpu",
        peak_memory_mb=512.0,
        train_seconds=50.0,
        eval_seconds=10.0,
        objective=accuracy,
        feasible=True,
        artifact_path=None,
        training=TrainingSummary(10, "max_steps", 80, 8, ((5, 1.0), (10, 0.5)), ((10, accuracy),)),
        shots=("train:3",),
        include_contract=False,
        constraints={"format_compliance": -0.1, "hallucination_rate": None, "regression_delta": -0.05},
        label_reports={"dev": LabelReport(
            n=2, invalid=1, macro_f1=1 / 3, macro_labels=2, confusion={"a": {"a": 1}, "b": {INVALID: 1}},
            labels={"a": LabelRow(1.0, 1.0, 1.0, 1, 1, f1_low=0.2, f1_high=1.0), "b": LabelRow(None, 0.0, 0.0, 1, 0)})},
        throughput={"dev": Throughput(n_examples, 2.0, 8, 24, 10, ((6, 1.25), (4, 0.75)), 0.125)},
        provenance={"model": {"name": "tiny"}},
        metrics=[
            MetricRow("dev", "task_accuracy", accuracy, accuracy - 0.1, accuracy + 0.1, 100),
            MetricRow("dev", "format_compliance", 1.0, None, None, 100),
            MetricRow("test", "task_accuracy", accuracy, None, None, 50),
        ],
        examples=[
            ExampleRow("dev", f"ex-{i}", f"in {i}", '{"intent": "a"}', '{"intent": "a"}', 12, 5, 0.01,
                       {"task_accuracy": 1.0})
            for i in range(n_examples)
        ],  # fmt: skip
    )


def test_migrations_apply_once_in_memory():
    conn = duckdb.connect(":memory:")
    assert apply_migrations(conn) == [name for name, _ in MIGRATIONS]
    assert apply_migrations(conn) == []
    assert applied(conn) == [name for name, _ in MIGRATIONS]
    tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"_migrations", "studies", "runs", "trials", "metrics", "examples", "throughput",
            "parameter_importance"} <= tables


def test_migrations_function_step_and_file_idempotent(tmp_path):
    extra = MIGRATIONS + [("m999_test", lambda c: c.execute("CREATE TABLE extra (x INTEGER)"))]
    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        assert apply_migrations(conn, extra) == [name for name, _ in extra]
    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        assert apply_migrations(conn, extra) == []
        assert conn.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(extra)


def test_a_failing_migration_leaves_nothing_half_applied(tmp_path):
    def broken(conn):
        conn.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("boom")

    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        with pytest.raises(RuntimeError):
            apply_migrations(conn, MIGRATIONS + [("m999_broken", broken)])
        assert "m999_broken" not in applied(conn)
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert "half" not in tables


def test_read_of_missing_file_is_empty_and_creates_nothing(tmp_path):
    store = Store(tmp_path / "sub" / "h.duckdb")
    assert store.trials() == [] and store.studies() == []
    assert store.trial("s1/0") is None and store.run("r") is None and store.study("s1") is None
    assert not (tmp_path / "sub").exists()


def study_record(name="s1", version="1.0.0", **changes) -> StudyRecord:
    fields = dict(name=name, experiment_name="exp", experiment={"methods": ["lora"]}, suite="ticket-triage",
                  suite_version=version, suite_path="/abs/suites/ticket-triage", model_name="smollm2-135m",
                  model_sha256="abc", objective_metric="task_accuracy", maximize=True, model_note="dequantized",
                  notes={"skipped_methods": {"qlora": "needs CUDA"}})
    return StudyRecord(**{**fields, **changes})


def test_a_project_copied_with_its_suites_reads_its_own_copy(tmp_path):
    """A suite in the project folder is recorded relative to the database; one elsewhere (bundled, shared) stays
    absolute. Recorded absolute, a copy would read, and check, the original's suite while that exists."""
    project, shared = tmp_path / "proj", tmp_path / "shared" / "suites" / "common"
    (project / "suites" / "mine").mkdir(parents=True)
    store = Store(project / "results" / "harness.duckdb")
    store.record_study(study_record("a", suite_path=str(project / "suites" / "mine")))
    store.record_study(study_record("b", suite_path=str(shared)))
    shutil.copytree(project, tmp_path / "copy")
    copied = Store(tmp_path / "copy" / "results" / "harness.duckdb")
    assert copied.study("a").suite_path == str((tmp_path / "copy" / "suites" / "mine").resolve())
    assert copied.study("b").suite_path == str(shared.resolve())
    assert store.study("a").suite_path == str((project / "suites" / "mine").resolve())


def test_a_database_recorded_with_absolute_suite_paths_is_upgraded_to_relative_ones(tmp_path):
    """m017: a study recorded before 2026-12-06 (absolute path) reads the copy's suite once the project is copied."""
    project = tmp_path / "proj"
    (project / "suites" / "mine").mkdir(parents=True)
    path = project / "results" / "harness.duckdb"
    Store(path).record_study(study_record("a", suite_path="/elsewhere/suites/x"))
    Store(path).record_study(study_record("b"))
    with duckdb.connect(str(path)) as conn:  # as that release wrote it, and before this migration ran
        conn.execute("UPDATE studies SET suite_path = ? WHERE study = 'b'", [str(project / "suites" / "mine")])
        conn.execute("DELETE FROM _migrations WHERE name = 'm017_suite_paths_in_the_project_relative'")
    assert Store(path).study("b").suite_path == str((project / "suites" / "mine").resolve())  # upgraded in place
    shutil.copytree(project, tmp_path / "copy")
    copied = Store(tmp_path / "copy" / "results" / "harness.duckdb")
    assert copied.study("b").suite_path == str((tmp_path / "copy" / "suites" / "mine").resolve())
    assert copied.study("a").suite_path == "/elsewhere/suites/x"  # outside the project: kept as it was


def test_study_and_run_round_trip(tmp_path):
    store = Store(tmp_path / "results" / "h.duckdb")
    store.record_study(study_record())
    first = store.study("s1")
    store.record_study(study_record(version="1.0.1", experiment={"methods": ["full"]}))
    study = store.study("s1")
    assert study.experiment == {"methods": ["full"]} and study.suite_version == "1.0.1"
    assert study.created_at == first.created_at  # upsert keeps the creation time
    assert (study.kind, study.parent, study.maximize, study.objective_metric) == ("sweep", None, True, "task_accuracy")
    store.record_study(study_record("s1+seeds", kind="seeds", parent="s1"))
    assert [s.name for s in store.studies()] == ["s1", "s1+seeds"]
    assert {k: v.name for k, v in store.followups("s1").items()} == {"seeds": "s1+seeds"}

    store.record_run(RunRecord("run-1", "s1", os.getpid(), "host", "cpu", "x86_64", 2, {"torch": "2.13.0"}))
    run = store.run("run-1")
    assert run.environment == {"torch": "2.13.0"} and run.pid == os.getpid()
    assert (run.device, run.device_name, run.cpu_count) == ("cpu", "x86_64", 2)
    assert run.env.python is None and run.env.versions is None  # typed: what this run did not record reads None
    assert store.runs(["run-1", "nope"]) == {"run-1": run}


def test_trial_round_trip_is_typed(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    record = make_record()
    store.record_trial_start(TrialRecord(record.id, "s1", 0, "run-1", "lora", params=record.params))
    running = store.trial(record.id)
    assert running.status == "running" and running.metrics == {} and running.started_at is not None

    store.record_trial_result(record)
    trial = store.trial(record.id)
    assert trial.status == "complete" and trial.params == {"r": 8, "lr": 1e-4}
    assert trial.trained is True and trial.feasible is True and trial.maximize is True
    assert trial.started_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert trial.metric("dev", "task_accuracy") == Metric(0.5, 0.4, 0.6, 100)
    assert trial.metric("dev", "format_compliance") == Metric(1.0, None, None, 100)
    assert set(trial.metrics) == {"dev", "test"}
    assert trial.training == record.training and trial.shots == ("train:3",) and trial.include_contract is False
    assert trial.constraints == record.constraints and trial.label_reports == record.label_reports
    assert trial.throughput == {"dev": Throughput(2, 2.0, 8, 24, 10, ((6, 1.25), (4, 0.75)), 0.125)}
    assert trial.throughput["dev"].completion_tokens_per_s == 5.0
    assert trial.provenance == {"model": {"name": "tiny"}}
    examples = store.examples(record.id)
    assert [e.example_id for e in examples] == ["ex-0", "ex-1"]
    assert examples[0].scores == {"task_accuracy": 1.0} and examples[0].prompt_tokens == 12
    assert store.examples(record.id, "test") == []
    assert store.trials() == [trial]


def test_require_trial_names_what_exists(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    store.record_study(study_record())
    store.record_trial_result(make_record())
    assert store.require_trial("s1/0").id == "s1/0" and store.require_trial("0").id == "s1/0"
    with pytest.raises(HarnessError, match="no trial 's1/7'.*harness trials"):
        store.require_trial("s1/7")
    with pytest.raises(HarnessError, match="not a trial id"):
        store.require_trial("s1")
    store.record_trial_start(TrialRecord("s1/1", "s1", 1, "run-1", "lora"))
    with pytest.raises(HarnessError, match="s1/1 is running"):
        store.require_trial("s1/1", complete=True)


def test_result_replaces_earlier_result(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    store.record_trial_result(make_record(accuracy=0.5, n_examples=3))
    store.record_trial_result(make_record(accuracy=0.8, n_examples=2))
    trial = store.trial("s1/0")
    assert trial.objective == 0.8 and trial.metric("dev", "task_accuracy").value == 0.8
    assert len(store.examples("s1/0")) == 2
    with duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM throughput").fetchone()[0] == 1
    # The same run starting it again starts clean: no stale metrics while it runs.
    store.record_trial_start(TrialRecord("s1/0", "s1", 0, make_record().run_id, "lora"))
    assert store.trial("s1/0").metrics == {} and store.examples("s1/0") == []


def test_a_new_run_never_takes_a_recorded_trials_id(tmp_path):
    """Optuna numbers trials from 0 in a storage that does not know the study: such a trial must not replace the
    stored one (its scores, and the adapter a registry entry points at)."""
    store = Store(tmp_path / "h.duckdb")
    store.record_trial_result(make_record(accuracy=0.8, n_examples=2))
    with pytest.raises(TrialIdTaken, match=r"trial s1/0 is already in .*--study NEW_NAME"):
        store.record_trial_start(TrialRecord("s1/0", "s1", 0, "another-run", "lora"))
    assert store.trial("s1/0").objective == 0.8 and len(store.examples("s1/0")) == 2


def test_trials_filter_and_order(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    for study, number in [("b", 1), ("a", 2), ("b", 0), ("a", 10)]:
        store.record_trial_result(make_record(study, number))
    assert [t.id for t in store.trials()] == ["a/2", "a/10", "b/0", "b/1"]
    only_b = store.trials("b")
    assert [t.id for t in only_b] == ["b/0", "b/1"]
    assert all(t.metric("dev", "task_accuracy").n == 100 for t in only_b)
    assert store.trials("missing") == []


def test_direction_comes_from_the_study(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    store.record_study(study_record(objective_metric="hallucination_rate", maximize=False))
    store.record_trial_result(make_record())
    assert store.trial("s1/0").maximize is False


def test_mark_failed_and_artifact_paths_relative_to_the_database(tmp_path):
    store = Store(tmp_path / "results" / "h.duckdb")
    store.record_trial_start(TrialRecord("s1/0", "s1", 0, "run-1", "qlora"))
    store.mark_trial_failed("s1/0", "CUDA out of memory")
    trial = store.trial("s1/0")
    assert trial.status == "failed" and trial.failure_reason == "CUDA out of memory"
    assert trial.finished_at is not None
    store.mark_trial_failed("s1/0", "pruned at step 10", status="pruned")
    assert store.trial("s1/0").status == "pruned"
    with pytest.raises(ValueError):
        store.mark_trial_failed("s1/0", "x", status="complete")

    inside = tmp_path / "results" / "artifacts" / "x"
    store.set_artifact_path("s1/0", inside)
    with duckdb.connect(str(tmp_path / "results" / "h.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT artifact_path FROM trials").fetchone()[0] == "artifacts/x"
    assert store.trial("s1/0").artifact_path == inside.resolve()
    moved = tmp_path / "elsewhere" / "h.duckdb"  # a results folder moved as a whole still finds its adapters
    (tmp_path / "results").rename(tmp_path / "elsewhere")
    assert Store(moved).trial("s1/0").artifact_path == (tmp_path / "elsewhere" / "artifacts" / "x").resolve()
    outside = tmp_path / "other" / "model"
    Store(moved).set_artifact_path("s1/0", outside)
    assert Store(moved).trial("s1/0").artifact_path == outside.resolve()
    Store(moved).set_artifact_path("s1/0", None)
    assert Store(moved).trial("s1/0").artifact_path is None


def test_importance_round_trip(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    store.record_importance("s1", {"lora": {"r": 0.7, "learning_rate": 0.3}})
    store.record_importance("s1", {"lora": {"r": 0.2, "learning_rate": 0.8}})
    assert store.importance("s1") == {"lora": {"learning_rate": 0.8, "r": 0.2}}
    assert store.importance("other") == {}


WRITER = """
import sys
from tests.test_store import make_record
from harness.store.database import Store
store = Store(sys.argv[1], lock_timeout_s=15)
total = int(sys.argv[2])
print("ready", flush=True)
for i in range(total):
    if i == total // 2:  # a handshake, so the reader sees a half-written study on any machine's timing
        print("half", flush=True)
        sys.stdin.readline()
    store.record_trial_result(make_record("s1", i, accuracy=i / 100, n_examples=5))
"""


def test_concurrent_writer_process_and_reader(tmp_path):
    db = tmp_path / "h.duckdb"
    total = 50
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(total)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    store = Store(db, lock_timeout_s=15)
    assert writer.stdout.readline().strip() == "ready"
    assert writer.stdout.readline().strip() == "half"
    assert len(store.trials("s1")) == total // 2  # the writer waits here: its first half is visible, whole
    writer.stdin.write("go\n")
    writer.stdin.flush()
    counts = []
    deadline = time.monotonic() + 600  # a guard against a hung writer only: the loop ends when the writer does
    while time.monotonic() < deadline:
        done = writer.poll() is not None
        trials = store.trials("s1")
        counts.append(len(trials))
        for t in trials:  # every trial visible is whole: row, metrics, throughput and examples together
            assert t.status == "complete" and "dev" in t.throughput
            assert set(t.metrics) == {"dev", "test"} and len(t.metrics["dev"]) == 2
        if trials:
            assert len(store.examples(trials[-1].id)) == 5
        if done:
            break
    assert writer.wait(timeout=5) == 0
    assert counts[-1] == total
    assert counts == sorted(counts), "a read saw fewer trials than the read before it"


HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(30)
"""


def test_lock_timeout_names_the_holder(tmp_path):
    db = tmp_path / "h.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        store = Store(db, lock_timeout_s=0.3)
        start = time.monotonic()
        with pytest.raises(HarnessError, match=rf"locked by process {holder.pid}\b"):
            store.trials()
        with pytest.raises(HarnessError, match="Wait for that process"):
            store.record_run(RunRecord("r", "s", 1, "h", "cpu", "cpu", 1, {}))
        assert time.monotonic() - start < 20  # gave up on its 0.3 s timeout, not when the holder's 30 s ended
    finally:
        holder.kill()
        holder.wait()


def test_merge_brings_another_workers_finished_trials_in_once(tmp_path):
    """Workers on other machines write their own database; `harness merge` loads them into one, idempotently."""
    from harness.core.records import RunRecord, StudyRecord

    main, other = Store(tmp_path / "main/harness.duckdb"), Store(tmp_path / "worker/harness.duckdb")
    for store in (main, other):
        store.record_study(StudyRecord(name="s1", experiment_name="e", experiment={}, suite="toy", suite_version="1",
                                       suite_path="/x", model_name="tiny", model_sha256="0" * 64, model_note="",
                                       objective_metric="task_accuracy", maximize=True, notes={}))
    main.record_trial_result(make_record(number=0, accuracy=0.4))
    other.record_run(RunRecord("run-2", "s1", 7, "host-b", "cpu", "cpu", 2, {}))
    running = make_record(number=1)
    main.record_trial_start(running)  # main saw trial 1 start, the worker finished it
    other.record_trial_result(make_record(number=1, accuracy=0.7))
    other.record_trial_result(make_record(number=2, accuracy=0.6))
    other.record_trial_start(make_record(number=3))  # still running over there: not merged
    artifact = tmp_path / "worker/artifacts/s1/2"
    artifact.mkdir(parents=True)
    other.set_artifact_path("s1/2", artifact)

    report = main.merge(other)
    assert sorted(report.trials) == ["s1/1", "s1/2"] and report.artifacts == ["artifacts/s1/2"]
    assert report.running == ["s1/3"]  # said, not dropped unsaid
    trials = {t.id: t for t in main.trials("s1")}
    assert set(trials) == {"s1/0", "s1/1", "s1/2"}
    assert trials["s1/1"].status == "complete" and trials["s1/1"].objective == 0.7
    assert trials["s1/1"].metric("dev", "task_accuracy").n == 100 and len(main.examples("s1/1")) == 2
    assert trials["s1/0"].objective == 0.4  # its own trials are untouched
    assert main.run("run-2").host == "host-b"
    assert main.merge(other).trials == []  # a second merge adds nothing
    with pytest.raises(HarnessError, match="is this results database"):
        main.merge(main)


def test_retention_never_deletes_an_adapter_in_staging_or_production(tmp_path):
    from harness.core.records import AdapterEvent
    from harness.sweep import retention

    store = Store(tmp_path / "results/harness.duckdb")
    for number, accuracy in enumerate((0.9, 0.8, 0.3)):
        record = make_record(number=number, accuracy=accuracy)
        record.artifact_path = str(tmp_path / "results/artifacts/s1" / str(number))
        Path(record.artifact_path).mkdir(parents=True)
        store.record_trial_result(record)
    store.record_adapter_events([AdapterEvent("s1/2", "toy", "production", "candidate", "promote", "ana")])
    assert retention.apply(store, "s1", keep_best=1) == ["s1/1"]  # the worst is in production: kept
    assert (tmp_path / "results/artifacts/s1/2").is_dir() and not (tmp_path / "results/artifacts/s1/1").exists()


def test_merge_command_copies_adapters_and_keeps_the_studys_best(tmp_path, capsys):
    from harness.cli import main
    from harness.core.records import StudyRecord

    main_db, other = Store(tmp_path / "main/harness.duckdb"), Store(tmp_path / "worker/harness.duckdb")
    for store in (main_db, other):
        store.record_study(StudyRecord(name="s1", experiment_name="e", experiment={"retention": {"keep_best": 1}},
                                       suite="toy", suite_version="1", suite_path="/x", model_name="tiny",
                                       model_sha256="0" * 64, model_note="", objective_metric="task_accuracy",
                                       maximize=True, notes={}))
    for store, number, accuracy in ((main_db, 0, 0.5), (other, 1, 0.9)):
        record = make_record(number=number, accuracy=accuracy)
        record.artifact_path = str(store.path.parent / "artifacts/s1" / str(number))
        Path(record.artifact_path, "adapter_model.safetensors").parent.mkdir(parents=True)
        Path(record.artifact_path, "adapter_model.safetensors").write_bytes(b"weights")
        store.record_trial_result(record)

    other.record_trial_start(make_record(number=2))  # its worker was killed: running there for ever

    assert main(["merge", str(tmp_path / "worker"), "--db", str(main_db.path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1 trial(s) merged" in out and "1 adapter folder(s) copied" in out and "removed the weights of s1/0" in out
    assert "registry event" not in out  # a worker's database has no history to leave behind
    assert "1 trial(s) that " in out and "holds as running were not merged: s1/2. If their worker is still running" \
        in out


def test_merge_says_which_history_stays_in_the_source(tmp_path, capsys):
    """A trial promoted and gated in the source arrives as a candidate: merge says so rather than dropping it unsaid."""
    from harness.cli import main
    from harness.core.records import AdapterEvent, LookAtTest, StudyRecord

    main_db, other = Store(tmp_path / "main/harness.duckdb"), Store(tmp_path / "other/harness.duckdb")
    for store in (main_db, other):
        store.record_study(StudyRecord(name="s1", experiment_name="e", experiment={}, suite="toy", suite_version="1",
                                       suite_path="/x", model_name="tiny", model_sha256="0" * 64, model_note="",
                                       objective_metric="task_accuracy", maximize=True, notes={}))
    record = make_record(number=1, accuracy=0.9)
    record.artifact_path = str(other.path.parent / "artifacts/s1/1")
    Path(record.artifact_path).mkdir(parents=True)
    Path(record.artifact_path, "adapter_model.safetensors").write_bytes(b"weights")
    other.record_trial_result(record)
    other.record_adapter_events([AdapterEvent("s1/1", "toy", "production", "candidate", "promote", "ana"),
                                 AdapterEvent("s1/1", "toy", "retired", "production", "withdraw", "ana", "drift")])
    other.record_look(LookAtTest("gate", "toy", "abc", "s1/1", None, "task_accuracy", {}, "passed", "ana"))
    assert main(["merge", str(tmp_path / "other"), "--db", str(main_db.path)]) == 0
    said = capsys.readouterr()  # the warnings are on standard error
    out = " ".join((said.out + said.err).split())
    assert "also holds 2 registry event(s) and 1 look(s) at test of the merged trials, which merge does not carry" \
        in out and f"harness registry --history --db {other.path}" in out
    assert (tmp_path / "main/artifacts/s1/1/adapter_model.safetensors").read_bytes() == b"weights"
    assert main_db.trial("s1/1").artifact_path == tmp_path / "main/artifacts/s1/1"
    assert not (tmp_path / "main/artifacts/s1/0").exists()  # keep_best 1: the merged, better trial stays


def test_merge_never_copies_an_adapter_folder_holding_a_symbolic_link(tmp_path, capsys):
    """A link inside another worker's adapter folder would be copied as the file it points to (any file this user
    may read): the folder is left where it is, and the warning names the link."""
    from harness.cli import main
    from harness.core.records import StudyRecord

    main_db, other = Store(tmp_path / "main/harness.duckdb"), Store(tmp_path / "worker/harness.duckdb")
    for store in (main_db, other):
        store.record_study(StudyRecord(name="s1", experiment_name="e", experiment={}, suite="toy",
                                       suite_version="1", suite_path="/x", model_name="tiny", model_sha256="0" * 64,
                                       model_note="", objective_metric="task_accuracy", maximize=True, notes={}))
    record = make_record(number=1, accuracy=0.9)
    folder = other.path.parent / "artifacts/s1/1"
    folder.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("not an adapter")
    (folder / "adapter_model.safetensors").symlink_to(secret)
    record.artifact_path = str(folder)
    other.record_trial_result(record)
    assert main(["merge", str(tmp_path / "worker"), "--db", str(main_db.path)]) == 0
    said = capsys.readouterr()  # the warnings are on standard error
    out = said.out + said.err
    assert "0 adapter folder(s) copied" in out and "is a symbolic link" in out and str(secret) in out
    assert not (tmp_path / "main/artifacts/s1/1").exists()


def test_a_damaged_block_reads_as_an_unreadable_database_not_a_traceback(tmp_path):
    """Bytes overwritten inside a real results database: DuckDB's checksum catches it (a plain duckdb.Error), and
    the store names the file and the fix, as for a truncated one."""
    import gzip

    db = tmp_path / "harness.duckdb"
    whole = bytearray(gzip.decompress((REPO / "tests/assets/results-v1.duckdb.gz").read_bytes()))
    whole[5000:5000 + 14000] = b"GARBAGE" * 2000
    db.write_bytes(bytes(whole))
    with pytest.raises(HarnessError, match=r"cannot be read: .* cut short or damaged") as refused:
        Store(db).trials()
    assert str(db) in str(refused.value)


def test_a_trial_that_did_not_complete_is_refused_with_the_way_it_could(tmp_path):
    """A re-run resumes what an interruption stopped, but a trial that failed on its own error is counted, and its
    configuration would fail the same way: the advice differs."""
    store = Store(tmp_path / "h.duckdb")
    store.record_study(study_record("s1"))
    for number in range(3):
        store.record_trial_start(dataclasses.replace(make_record("s1", number), status="running"))
    store.mark_trial_failed("s1/0", "ConfigError: unknown scorer 'task_acuracy'")
    store.mark_trial_failed("s1/1", "interrupted by the user (Ctrl-C) during the trial")
    advice = {}
    for number in range(3):
        with pytest.raises(HarnessError, match="this needs a complete trial") as err:
            store.require_trial(f"s1/{number}", complete=True)
        advice[number] = str(err.value)
    assert "fix what its reason names" in advice[0] and "re-run the sweep" not in advice[0]
    assert advice[1].endswith("or re-run the sweep to finish it.") and advice[2].endswith("to finish it.")


@pytest.mark.parametrize("refusal", ["Read-only file system", "Operation not permitted"])
def test_a_database_on_a_read_only_mount_is_not_called_damaged_when_a_command_must_write(tmp_path, monkeypatch,
                                                                                       refusal):
    """`compare` on test, on a results folder mounted read-only (or a file made immutable with `chattr +i`), said the
    database was damaged and to restore it from a backup or move it aside; reading commands worked on it. The mount
    is what a test cannot make as root, so DuckDB's refusal of a writer is what is replayed, word for word."""
    import duckdb

    from harness.store import database

    store = Store(tmp_path / "harness.duckdb")
    store.record_trial_result(make_record(number=0))
    real = duckdb.connect

    def read_only_mount(path, read_only=False, **kwargs):
        if not read_only:
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": {refusal}')
        return real(path, read_only=read_only, **kwargs)

    monkeypatch.setattr(database.duckdb, "connect", read_only_mount)
    assert [t.id for t in store.trials()] == ["s1/0"]  # reading works where it is
    with pytest.raises(HarnessError) as info:
        store.mark_trial_failed("s1/0", "x")
    said = str(info.value)
    assert "cannot be written here (a read-only folder or file)" in said and "Copy the results folder" in said
    assert "damaged" not in said and "backup" not in said


def test_a_database_this_user_may_not_read_is_not_called_damaged(tmp_path, monkeypatch):
    """Another user's results folder: its permissions, not its contents, keep this user out, and moving it aside
    (the advice for a damaged file) would lose a sound database."""
    import duckdb

    from harness.store import database

    store = Store(tmp_path / "harness.duckdb")
    store.record_trial_result(make_record(number=0))

    def not_yours(path, read_only=False, **kwargs):
        raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Permission denied')

    monkeypatch.setattr(database.duckdb, "connect", not_yours)
    with pytest.raises(HarnessError) as info:
        store.trials()
    said = str(info.value)
    assert "cannot be opened by this user" in said and "ask its owner for read access" in said
    assert "damaged" not in said and "move it aside" not in said


def test_show_of_a_trial_stopped_before_any_timing_gives_the_time_it_ran(tmp_path):
    """A DSPy search interrupted after 9.5 minutes read `train 0.0 s  eval 0.0 s` in `harness show`; its cost
    counts its wall time, and so does what show says."""
    import dataclasses

    from harness.analysis.report import trial_detail

    store = Store(tmp_path / "harness.duckdb")
    started = datetime.now(timezone.utc) - timedelta(minutes=9, seconds=30)
    store.record_trial_start(dataclasses.replace(make_record(), method="dspy", trained=False, train_seconds=None,
                                                 eval_seconds=None, started_at=started))
    store.mark_trial_failed("s1/0", "interrupted by the user (Ctrl-C) during the trial")
    shown = trial_detail(store.trial("s1/0"), [])
    assert "train 0.0 s" not in shown
    wall = float(shown.split("ran ", 1)[1].split(" s (wall)")[0])
    assert 570 <= wall < 600 and "before it stopped, with no train or eval timing recorded" in shown
    assert "train 50.0 s  eval 10.0 s" in trial_detail(dataclasses.replace(store.trial("s1/0"), train_seconds=50.0,
                                                                           eval_seconds=10.0), [])
