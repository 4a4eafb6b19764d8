"""A team upgrades the harness over a results folder written by the release of 2026-11-27 (migrations m001-m009):
the file upgrades once and cleanly, its studies still rebuild their config (recheck, export, audit, predict need
it), the gates its registry recorded still count as looks at test, and a re-check does not report a device change
that the old release never recorded. The old file is built here from SQL, as that release wrote it."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from harness.core.config import ExperimentConfig
from harness.core.typed import build
from harness.lifecycle.recheck import setting_changes
from harness.store.database import Store
from harness.store.migrations import MIGRATIONS, apply_migrations, m013_padding_free_as_it_ran

OLD_RELEASE = [m for m in MIGRATIONS if m[0] <= "m009"]
SUBSET = "d63d9259723ad5cbd0384bb36957b5d5e7a8d19367358cd87defb536ac685d41"
EXPERIMENT = {"name": "old", "model": "tiny", "suite": "toy-colours", "results_dir": "results",
              "space": {"prompt": {"shots": 0}, "lora": {"r": 16}},
              "training": {"batch_size": 16, "padding_free": None, "precision": "auto"}}


def _gate(candidate: str) -> str:
    return json.dumps({"candidate": candidate, "reference": "old/0", "reference_kind": "prompting", "passed": True,
                       "rules": [{"name": "task accuracy", "passed": True, "detail": "+100.0 points"}],
                       "config": {"margin": 0.2, "min_format_compliance": 0.9}})


def write_old_results(path: Path, device: str = "cpu") -> Path:
    """A results database as the 2026-11-27 release left it: a sweep study with padding_free null, a run on `device`
    that named its device by kind only, two gated promotions and a paired re-check in the registry, no looks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {"device": device, "device_name": device, "cpu_count": 2, "torch_threads": 2, "git_commit": "cb65d4d",
           "python": "3.11.0", "versions": {}}
    then = datetime(2026, 11, 28, 9, 0)
    with duckdb.connect(str(path)) as conn:
        apply_migrations(conn, OLD_RELEASE)
        conn.execute("INSERT INTO studies (study, experiment_name, experiment, suite, suite_version, kind,"
                     " objective_metric, maximize) VALUES ('old', 'old', ?, 'toy-colours', '1.0.0', 'sweep',"
                     " 'task_accuracy', true)", [json.dumps(EXPERIMENT)])
        conn.execute("INSERT INTO runs (run_id, study, environment, device, device_name, cpu_count)"
                     " VALUES ('run1', 'old', ?, ?, ?, 2)", [json.dumps(env), device, device])
        for number, method in enumerate(("prompt", "lora", "lora")):
            details = {"data": {"suite": "toy-colours", "subset_sha256": {"test": SUBSET}}}
            conn.execute("INSERT INTO trials (id, study, number, run_id, method, params, status, trained, details)"
                         " VALUES (?, 'old', ?, 'run1', ?, '{}', 'complete', ?, ?)",
                         [f"old/{number}", number, method, method != "prompt", json.dumps(details)])
        events = [("old/2", "staging", "candidate", "promote", _gate("old/2"), None),
                  ("old/1", "production", "candidate", "promote", _gate("old/1"), None),
                  ("old/1", "production", "production", "recheck", None,
                   json.dumps({"paired": True, "change": {"value": 0.0, "low": 0.0, "high": 0.0, "n": 40}}))]
        for minute, (trial, status, previous, action, gate, detail) in enumerate(events):
            conn.execute("INSERT INTO adapter_events (trial_id, suite, status, previous, action, actor, forced, gate,"
                         " detail, recorded_at) VALUES (?, 'toy-colours', ?, ?, ?, 'ada', false, ?, ?, ?)",
                         [trial, status, previous, action, gate, detail, then + timedelta(minutes=minute)])
    return path


def _dump(path: Path) -> dict:
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = [r[0] for r in conn.execute("SHOW TABLES").fetchall() if r[0] != "_migrations"]
        out = {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
        out["_migrations"] = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
        out["looks_at_test"] = [r[1:-1] for r in out["looks_at_test"]]  # ids and times differ between files only
        return out


@pytest.fixture()
def old(tmp_path) -> Path:
    return write_old_results(tmp_path / "results" / "harness.duckdb")


def test_an_old_study_rebuilds_its_config_as_it_ran(old, tmp_path):
    study = Store(old).study("old")
    config = build(ExperimentConfig, dict(study.experiment), "study old")  # what recheck, export and audit do
    assert config.training.padding_free is False  # null meant off on a CPU
    on_gpu = Store(write_old_results(tmp_path / "gpu" / "harness.duckdb", device="cuda")).study("old")
    assert build(ExperimentConfig, dict(on_gpu.experiment), "study old").training.padding_free is True
    assert {k: v for k, v in study.experiment["training"].items() if k != "padding_free"} == {
        k: v for k, v in EXPERIMENT["training"].items() if k != "padding_free"}  # nothing else moved


def test_the_upgrade_runs_once_and_a_copy_upgraded_twice_is_the_same(old, tmp_path):
    twice = tmp_path / "copy" / "harness.duckdb"
    twice.parent.mkdir()
    shutil.copy(old, twice)
    Store(old).trials()
    Store(twice).trials()
    assert Store(twice).looks() and apply_migrations(duckdb.connect(str(twice))) == []  # nothing left to apply
    assert _dump(old) == _dump(twice)
    assert len(Store(twice).looks()) == 3  # the second open added no look


def test_an_interrupted_upgrade_leaves_nothing_half_done(old):
    def dies_halfway(conn):
        m013_padding_free_as_it_ran(conn)  # writes the study, then the process dies
        raise KeyboardInterrupt

    with duckdb.connect(str(old)) as conn:
        with pytest.raises(KeyboardInterrupt):
            apply_migrations(conn, [m for m in MIGRATIONS if m[0] < "m013"] + [("m013_padding_free_as_it_ran",
                                                                                 dies_halfway)])
        stored = json.loads(conn.execute("SELECT experiment FROM studies").fetchone()[0])
        assert stored["training"]["padding_free"] is None
        assert "m013_padding_free_as_it_ran" not in {r[0] for r in conn.execute("SELECT name FROM _migrations")
                                                     .fetchall()}
    assert Store(old).study("old").experiment["training"]["padding_free"] is False  # the next open finishes it


def test_gates_the_old_registry_recorded_count_as_earlier_looks(old):
    store = Store(old)
    gates = store.looks(suite="toy-colours", kind="gate", reference="old/0", subset=SUBSET)
    assert [(look.candidate, look.outcome, look.actor) for look in gates] == [("old/2", "passed", "ada"),
                                                                              ("old/1", "passed", "ada")]
    assert gates[0].rule["thresholds"]["margin"] == 0.2 and gates[0].at.year == 2026
    rechecks = store.looks(kind="recheck")
    assert [(look.candidate, look.outcome) for look in rechecks] == [("old/1", "not shown")]
    assert len(store.adapter_events()) == 3  # the registry itself is untouched


def test_a_look_recorded_after_the_upgrade_is_not_copied_again(tmp_path):
    path = write_old_results(tmp_path / "r" / "harness.duckdb")
    with duckdb.connect(str(path)) as conn:  # upgraded by the release that added looks, then a gate recorded both
        apply_migrations(conn, [m for m in MIGRATIONS if m[0] < "m013"])
        conn.execute("INSERT INTO adapter_events (trial_id, suite, status, previous, action, actor, forced, gate,"
                     " recorded_at) VALUES ('old/2', 'toy-colours', 'production', 'staging', 'promote', 'bo', false,"
                     " ?, ?)", [_gate("old/2"), datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=1)])
    assert [look.actor for look in Store(path).looks(kind="gate")] == ["ada", "ada"]


def test_a_recheck_does_not_call_a_device_the_old_release_never_named_a_change(old):
    store = Store(old)
    changes = setting_changes(store, store.trial("old/1"), None)
    device = [c for c in changes if c.startswith("device")]
    assert device and "named it only 'cpu'" in device[0] and "not recorded" in device[0] and "->" not in device[0]
    assert any(c.startswith("harness commit cb65d4d -> ") for c in changes)  # a real difference still reads as one
