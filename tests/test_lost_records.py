"""The results database and the study storage disagree after a crash or a mistake, as a reliability engineer left
them: a results database deleted or moved aside while the journal kept the study, and a journal cut short after a
trial was recorded in the database but before Optuna was told. Neither loses a finished trial or runs it again."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
from pathlib import Path

import optuna
from conftest import printed

from harness.cli import main
from harness.store.database import Store

EXPERIMENT = """
name: kept
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 32, dev_limit: 6, test_limit: 6}}
budget: {{trials: 2}}
space:
  prompt: {{shots: [0, 1]}}
enqueue: [{{method: prompt, shots: 0}}, {{method: prompt, shots: 1}}]
"""


def swept_twice(tmp_path: Path, tiny_model_dir: Path, toy_suite: Path) -> tuple[Path, Path]:
    path = tmp_path / "kept.yaml"
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=tmp_path / "results"))
    assert main(["sweep", str(path)]) == 0
    return path, tmp_path / "results"


def states(results: Path) -> list[str]:
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(results / "optuna-journal.log")))
    return [t.state.name for t in optuna.load_study(study_name="kept", storage=journal).trials]


def test_a_results_database_lost_while_the_journal_kept_the_study_is_refused(tmp_path, tiny_model_dir, toy_suite,
                                                                             capsys):
    """Deleted, or moved aside as a damaged one's error suggests, the database lost both trials: the sweep said "study
    kept has its 2 trials", then "No verdict yet", and exited 0."""
    path, results = swept_twice(tmp_path, tiny_model_dir, toy_suite)
    capsys.readouterr()
    (results / "harness.duckdb").rename(tmp_path / "aside.duckdb")
    for command in (["sweep", str(path)], ["sweep", str(path), "--check"], ["sweep", str(path), "--trials", "3"]):
        assert main(command) == 2
        said = " ".join(printed(capsys).split())
        assert ("holds 2 finished trial(s) of study kept (kept/0, kept/1) that "
                f"{results / 'harness.duckdb'} should hold and does not") in said and "Put the database back" in said
    journal = results / "optuna-journal.log"  # trials recorded before they named their database: the journal is
    records = journal.read_text().splitlines()  # this folder's own, so its trials are this database's
    journal.write_text("".join(line + "\n" for line in records if '"results"' not in line))
    assert main(["sweep", str(path)]) == 2 and "holds 2 finished trial(s)" in printed(capsys)
    elsewhere = [line.replace(str(results / "harness.duckdb"), "/elsewhere/harness.duckdb") for line in records]
    journal.write_text("".join(line + "\n" for line in elsewhere))  # each trial a worker's with its own database
    assert main(["sweep", str(path), "--check"]) == 0
    other_host = [line.replace(f'"{socket.gethostname()}:', '"another-machine:') for line in records]
    journal.write_text("".join(line + "\n" for line in other_host))  # the same --results path on another machine
    assert main(["sweep", str(path), "--check"]) == 0
    (tmp_path / "aside.duckdb").rename(results / "harness.duckdb")  # put back, the study goes on as before
    journal.write_text("".join(line + "\n" for line in records))
    assert main(["sweep", str(path)]) == 0
    assert [t.status for t in Store(results / "harness.duckdb").trials("kept")] == ["complete", "complete"]


def test_a_trial_recorded_before_its_process_ended_is_completed_not_run_again(tmp_path, tiny_model_dir, toy_suite,
                                                                              capsys):
    """A journal cut after the database held trial kept/1 complete (a kill in that window, or a full disk): the
    resume marked it failed, "ended while the trial was running", kept its scores on a failed row, and ran its
    configuration again as kept/2."""
    path, results = swept_twice(tmp_path, tiny_model_dir, toy_suite)
    journal = results / "optuna-journal.log"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    told = max(i for i, r in enumerate(records) if r.get("op_code") == 6 and r.get("state") == 1)
    ended = subprocess.Popen(["true"])
    ended.wait()  # a process that has ended: the cut trial's, as a resume on this host finds it
    kept = records[:told]
    for r in kept:
        if r.get("user_attr", {}).get("pid") is not None:
            r["user_attr"]["pid"] = ended.pid
    journal.write_text("".join(json.dumps(r) + "\n" for r in kept))
    assert states(results) == ["COMPLETE", "RUNNING"]
    capsys.readouterr()
    assert main(["sweep", str(path)]) == 0
    said = " ".join(printed(capsys).split())
    assert "trial kept/1: recorded as finished before its process ended" in said and "marked failed" not in said
    assert states(results) == ["COMPLETE", "COMPLETE"]
    assert [t.status for t in Store(results / "harness.duckdb").trials("kept")] == ["complete", "complete"]


def test_a_dead_workers_trial_ends_at_its_last_sign_of_life_not_when_a_resume_found_it(tmp_path):
    """A trial killed 20 s in read "ran 112.3 s (wall) before it stopped": its end was the moment the next sweep
    marked it failed."""
    from datetime import datetime, timedelta, timezone

    from test_store import make_record

    store = Store(tmp_path / "harness.duckdb")
    started = datetime.now(timezone.utc) - timedelta(minutes=10)
    store.record_trial_start(dataclasses.replace(make_record(), status="running", started_at=started,
                                                 finished_at=None))
    last_seen = started + timedelta(seconds=20)
    store.mark_trial_failed("s1/0", "interrupted: process 1 ended", ended_at=last_seen)
    trial = store.trial("s1/0")
    assert trial.status == "failed" and trial.finished_at - trial.started_at == timedelta(seconds=20)


def test_trials_says_when_a_running_trials_process_has_ended(tmp_path, capsys):
    """After a kill -9, `harness trials` showed the dead trial as running, with no word, until someone resumed."""
    from test_store import make_record

    from harness.core.records import RunRecord

    ended = subprocess.Popen(["true"])
    ended.wait()
    store = Store(tmp_path / "harness.duckdb")
    store.record_run(RunRecord("run-1", "s1", ended.pid, socket.gethostname(), "cpu", "cpu", 2, {}))
    store.record_trial_start(dataclasses.replace(make_record(), status="running", finished_at=None))
    assert main(["trials", "--db", str(tmp_path)]) == 0
    said = " ".join(printed(capsys).split())
    assert f"s1/0 (process {ended.pid}) shows as running, but the process that ran it on this machine has ended" in said
    assert "Re-run the sweep to resume" in said
