"""Results store: schema migrations, round trips, and the cross-process locking it exists to survive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from harness.core.errors import HarnessError
from harness.store.database import ExampleRow, MetricRow, Store, TrialRecord, trial_id
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
        artifact_path="results/artifacts/s1/0",
        details={"loss": [1.0, 0.5]},
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
    assert applied(conn) == ["m001_initial"]
    tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"_migrations", "studies", "runs", "trials", "metrics", "examples"} <= tables


def test_migrations_function_step_and_file_idempotent(tmp_path):
    extra = MIGRATIONS + [("m002_test", lambda c: c.execute("CREATE TABLE extra (x INTEGER)"))]
    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        assert apply_migrations(conn, extra) == ["m001_initial", "m002_test"]
    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        assert apply_migrations(conn, extra) == []
        assert conn.execute("SELECT count(*) FROM _migrations").fetchone()[0] == 2


def test_read_of_missing_file_is_empty_and_creates_nothing(tmp_path):
    store = Store(tmp_path / "sub" / "h.duckdb")
    assert store.list_trials() == [] and store.list_studies() == []
    assert store.get_trial("s1/0") is None and store.get_run("r") is None and store.get_study("s1") is None
    assert not (tmp_path / "sub").exists()


def test_study_and_run_round_trip(tmp_path):
    store = Store(tmp_path / "results" / "h.duckdb")
    store.record_study("s1", "exp", {"methods": ["lora"]}, "ticket-triage", "1.0.0", "smollm2-135m", "abc",
                       "dequantized", {"skipped_methods": {"qlora": "needs CUDA"}})  # fmt: skip
    first = store.get_study("s1")
    store.record_study("s1", "exp", {"methods": ["full"]}, "ticket-triage", "1.0.1", "smollm2-135m", "abc",
                       None, {})  # fmt: skip
    study = store.get_study("s1")
    assert study["experiment"] == {"methods": ["full"]} and study["suite_version"] == "1.0.1"
    assert study["created_at"] == first["created_at"]  # upsert keeps the creation time
    assert [s["study"] for s in store.list_studies()] == ["s1"]

    store.record_run("run-1", "s1", os.getpid(), "host", {"torch": "2.13.0", "git": "deadbeef"})
    run = store.get_run("run-1")
    assert run["environment"] == {"torch": "2.13.0", "git": "deadbeef"} and run["pid"] == os.getpid()


def test_trial_round_trip_with_metrics_and_examples(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    record = make_record()
    store.record_trial_start(TrialRecord(record.id, "s1", 0, "run-1", "lora", params=record.params))
    running = store.get_trial(record.id)
    assert running["status"] == "running" and running["metrics"] == {} and running["started_at"]

    store.record_trial_result(record)
    trial = store.get_trial(record.id)
    assert trial["status"] == "complete" and trial["params"] == {"r": 8, "lr": 1e-4}
    assert trial["details"] == {"loss": [1.0, 0.5]} and trial["trained"] is True and trial["feasible"] is True
    assert trial["started_at"] == "2025-01-02T03:04:05+00:00"
    assert trial["metrics"]["dev"]["task_accuracy"] == {"value": 0.5, "low": 0.4, "high": 0.6, "n": 100}
    assert trial["metrics"]["dev"]["format_compliance"] == {"value": 1.0, "low": None, "high": None, "n": 100}
    assert set(trial["metrics"]) == {"dev", "test"}
    assert [e["example_id"] for e in trial["examples"]] == ["ex-0", "ex-1"]
    assert trial["examples"][0]["scores"] == {"task_accuracy": 1.0}
    assert trial["examples"][0]["prompt_tokens"] == 12
    listed = store.list_trials()
    assert len(listed) == 1 and "examples" not in listed[0] and listed[0]["metrics"] == trial["metrics"]


def test_result_replaces_earlier_result(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    store.record_trial_result(make_record(accuracy=0.5, n_examples=3))
    store.record_trial_result(make_record(accuracy=0.8, n_examples=2))
    trial = store.get_trial("s1/0")
    assert trial["objective"] == 0.8 and trial["metrics"]["dev"]["task_accuracy"]["value"] == 0.8
    assert len(trial["examples"]) == 2
    with duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 3
    # A re-run of the same number starts clean: no stale metrics while it runs.
    store.record_trial_start(TrialRecord("s1/0", "s1", 0, "run-2", "lora"))
    assert store.get_trial("s1/0")["metrics"] == {} and store.get_trial("s1/0")["examples"] == []


def test_list_trials_filters_and_orders(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    for study, number in [("b", 1), ("a", 2), ("b", 0), ("a", 10)]:
        store.record_trial_result(make_record(study, number))
    assert [t["id"] for t in store.list_trials()] == ["a/2", "a/10", "b/0", "b/1"]
    only_b = store.list_trials("b")
    assert [t["id"] for t in only_b] == ["b/0", "b/1"]
    assert all(t["metrics"]["dev"]["task_accuracy"]["n"] == 100 for t in only_b)
    assert store.list_trials("missing") == []


def test_mark_failed_and_artifact_path(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    store.record_trial_start(TrialRecord("s1/0", "s1", 0, "run-1", "qlora"))
    store.mark_trial_failed("s1/0", "CUDA out of memory")
    trial = store.get_trial("s1/0")
    assert trial["status"] == "failed" and trial["failure_reason"] == "CUDA out of memory"
    assert trial["finished_at"] is not None
    store.mark_trial_failed("s1/0", "pruned at step 10", status="pruned")
    assert store.get_trial("s1/0")["status"] == "pruned"
    with pytest.raises(ValueError):
        store.mark_trial_failed("s1/0", "x", status="complete")

    store.set_artifact_path("s1/0", Path("results/artifacts/x"))
    assert store.get_trial("s1/0")["artifact_path"] == "results/artifacts/x"
    store.set_artifact_path("s1/0", None)
    assert store.get_trial("s1/0")["artifact_path"] is None


WRITER = """
import sys
from tests.test_store import make_record
from harness.store.database import Store
store = Store(sys.argv[1], lock_timeout_s=15)
print("ready", flush=True)
for i in range(int(sys.argv[2])):
    store.record_trial_result(make_record("s1", i, accuracy=i / 100, n_examples=5))
"""


def test_concurrent_writer_process_and_reader(tmp_path):
    db = tmp_path / "h.duckdb"
    total = 50
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(total)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    store = Store(db, lock_timeout_s=15)
    assert writer.stdout.readline().strip() == "ready"
    counts = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        done = writer.poll() is not None
        trials = store.list_trials("s1")
        counts.append(len(trials))
        for t in trials:  # every trial visible is whole: row, metrics and examples together
            assert t["status"] == "complete"
            assert set(t["metrics"]) == {"dev", "test"} and len(t["metrics"]["dev"]) == 2
        if trials:
            assert len(store.get_trial(trials[-1]["id"])["examples"]) == 5
        if done:
            break
    assert writer.wait(timeout=5) == 0
    assert counts[-1] == total
    assert any(0 < c < total for c in counts), "reads never interleaved with the writer"


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
            store.list_trials()
        with pytest.raises(HarnessError, match="Wait for that process"):
            store.record_run("r", "s", 1, "h", {})
        assert time.monotonic() - start < 3
    finally:
        holder.kill()
        holder.wait()
