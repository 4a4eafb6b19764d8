"""A results database written by v1 (tests/assets/results-v1.duckdb.gz) upgrades in place, and nothing is lost:
every row survives, every fact moved out of the details JSON reads back equal through the typed views, and only
what v1 got wrong changes (an unmeasured regression delta stored as 0.0 becomes null; a zero-width interval gets
the one this release's rules give)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import Throughput
from harness.evaluation.inference import mcnemar_exact
from harness.evaluation.stats import wilson_interval
from harness.store.database import Store
from harness.store.migrations import MIGRATIONS, applied

V1 = Path(__file__).parent / "assets" / "results-v1.duckdb.gz"


@pytest.fixture()
def v1(tmp_path) -> Path:
    """A copy of the v1 file, in a `results/` folder as v1 wrote it (`results_dir: results`)."""
    path = tmp_path / "results" / "harness.duckdb"
    path.parent.mkdir()
    with gzip.open(V1) as src, open(path, "wb") as out:
        shutil.copyfileobj(src, out)
    return path


def _raw(path: Path) -> dict:
    with duckdb.connect(str(path), read_only=True) as conn:
        def rows(sql):
            cur = conn.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

        return {
            "trials": {t["id"]: {**t, "details": json.loads(t["details"])} for t in rows("SELECT * FROM trials")},
            "metrics": rows("SELECT * FROM metrics ORDER BY trial_id, split, name"),
            "examples": rows("SELECT * FROM examples ORDER BY trial_id, split, example_id"),
            "runs": rows("SELECT * FROM runs ORDER BY run_id"),
            "studies": rows("SELECT * FROM studies ORDER BY study"),
            "migrations": [r["name"] for r in rows("SELECT name FROM _migrations")],
        }


def test_the_asset_is_a_v1_database(v1):
    before = _raw(v1)
    assert before["migrations"] == ["m001_initial"]
    assert len(before["trials"]) == 7 and len(before["studies"]) == 2


def test_v1_upgrades_in_place_on_first_read_and_nothing_is_lost(v1):
    before = _raw(v1)
    store = Store(v1)
    trials = {t.id: t for t in store.trials()}  # a read upgrades the file
    with duckdb.connect(str(v1), read_only=True) as conn:
        assert applied(conn, create=False) == [name for name, _ in MIGRATIONS]
    after = _raw(v1)

    # every row is still there; examples and runs unchanged column for column
    assert set(trials) == set(before["trials"]) == set(after["trials"])
    assert len(after["metrics"]) == len(before["metrics"])
    assert [{k: e[k] for k in old} for e, old in zip(after["examples"], before["examples"])] == before["examples"]
    assert all(e["error"] is None for e in after["examples"])  # a column added later: nothing to fill from v1
    for old, new in zip(before["runs"], after["runs"]):
        assert {k: new[k] for k in old} == old
        env = json.loads(old["environment"])
        assert (new["device"], new["device_name"], new["cpu_count"]) == (
            env["device"], env["device_name"], env["cpu_count"])

    # metrics: identical, except that an unmeasured value (n=0) is now null instead of 0.0, and that a zero-width
    # interval v1's bootstrap gave gets the one this release gives (m015: all labels wrong, no PIQA item changed)
    recomputed = 0
    for old, new in zip(before["metrics"], after["metrics"]):
        same = ("trial_id", "split", "name", "n")
        if old["n"] == 0:
            assert (new["value"], new["low"], new["high"]) == (None, None, None), old
            assert {k: new[k] for k in same} == {k: old[k] for k in same}
        elif old["low"] == old["high"] == old["value"] and old["name"] in ("macro_f1", "regression_delta"):
            recomputed += 1
            assert {k: new[k] for k in (*same, "value")} == {k: old[k] for k in (*same, "value")}
            if old["name"] == "macro_f1":
                assert (new["low"], new["high"]) == wilson_interval(old["value"] * old["n"], old["n"]), old
            else:
                exact = mcnemar_exact(0, 0, old["n"])
                assert (new["low"], new["high"]) == pytest.approx((exact.low, exact.high), rel=1e-12), old
        else:
            assert new == old
    assert recomputed == 18  # macro-F1 of the 7 trials on dev and test, and the 2 measured regression deltas
    assert all(t.stats_rules is None for t in trials.values())  # v1 recorded no rules version

    # every fact that moved out of details reads back equal through the typed view
    for tid, old in before["trials"].items():
        d, t = old["details"], trials[tid]
        for column in ("study", "number", "run_id", "method", "status", "failure_reason", "trained", "device",
                       "peak_memory_mb", "train_seconds", "eval_seconds", "objective", "feasible"):
            assert getattr(t, column) == old[column], (tid, column)
        assert t.params == json.loads(old["params"])
        assert t.shots == tuple(d["shots"]) and t.include_contract == d["include_contract"]
        assert t.throughput == {split: Throughput(e["examples"], e["seconds"], e["batch_size"], e["prompt_tokens"],
                                                  e["completion_tokens"]) for split, e in d["evaluation"].items()}
        stored = {k: v for k, v in d["labels"].items() if v}  # the JSON layout is v1's, byte for byte
        assert json.dumps({k: v.to_json() for k, v in t.label_reports.items()}) == json.dumps(stored)
        if d["training"] is None:
            assert t.training is None
        else:
            training = d["training"]
            assert (t.training.steps, t.training.stopped_by, t.training.examples) == (
                training["steps"], training["stopped_by"], training["examples"])
            assert [list(p) for p in t.training.loss_curve] == training["loss_curve"]
            assert [list(p) for p in t.training.dev_curve] == training["dev_curve"]
            setup = d["experiment_training"]
            assert t.training.examples_per_step == setup["batch_size"] * setup["gradient_accumulation"]
        unmeasured = t.metric("dev", "regression_delta").n == 0
        for name, value in d["constraints"].items():
            expected = None if name == "regression_delta" and unmeasured else value
            assert t.constraints[name] == expected, (tid, name)
        assert {k: t.provenance[k] for k in ("data", "budget", "model", "max_new_tokens")} == {
            k: d[k] for k in ("data", "budget", "model", "max_new_tokens")}
        assert not {"training", "evaluation", "labels", "constraints", "shots", "include_contract"} & set(
            t.provenance)


def test_v1_followups_become_studies_with_a_parent(v1):
    store = Store(v1)
    studies = {s.name: s for s in store.studies()}
    assert set(studies) == {"v1a", "v1b", "v1a+seeds", "v1a+curve"}
    assert (studies["v1a+seeds"].kind, studies["v1a+seeds"].parent) == ("seeds", "v1a")
    assert (studies["v1a+curve"].kind, studies["v1a+curve"].parent) == ("curve", "v1a")
    assert {k: s.name for k, s in store.followups("v1a").items()} == {"seeds": "v1a+seeds", "curve": "v1a+curve"}
    assert studies["v1a"].objective_metric == "task_accuracy" and studies["v1a"].maximize is True
    assert studies["v1a+seeds"].suite == studies["v1a"].suite


def test_v1_regression_delta_reads_as_not_measured(v1):
    trials = {t.id: t for t in Store(v1).trials()}
    assert trials["v1a/0"].metric("test", "regression_delta") == Metric(None, None, None, 0)  # prompting
    assert trials["v1b/1"].metric("test", "regression_delta") == Metric(None, None, None, 0)  # check was off
    assert trials["v1a/2"].metric("test", "regression_delta").n == 5  # measured: unchanged


def test_v1_artifact_paths_follow_the_database(v1, tmp_path):
    trials = {t.id: t for t in Store(v1).trials()}
    assert trials["v1a/2"].artifact_path == (v1.parent / "artifacts" / "v1a" / "2").resolve()
    moved = tmp_path / "archive" / "harness.duckdb"  # the whole results folder moved elsewhere
    v1.parent.rename(moved.parent)
    assert Store(moved).trial("v1b/1").artifact_path == (moved.parent / "artifacts" / "v1b" / "1").resolve()


def test_a_read_only_v1_file_says_how_to_upgrade(v1, monkeypatch):
    # root may write a 0444 file, so the permission is what the store asks about, not the mode bits
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != v1)
    with pytest.raises(HarnessError, match="written by an older release.*read-only.*writable"):
        Store(v1).trials()
    assert _raw(v1)["migrations"] == ["m001_initial"]  # untouched


def test_an_upgrade_keeps_the_file_as_it_was_and_says_where(v1, capsys):
    """`harness trials` upgraded a team's database in place, silently and for good, and the older release it came
    from went on reading the upgraded file. The file as it was stays beside it, and the upgrade says so."""
    before = _raw(v1)
    Store(v1).trials()
    kept = v1.with_name("harness.duckdb.before-m002")
    assert kept.is_file() and _raw(kept) == before  # the v1 file, unchanged
    err = capsys.readouterr().err
    assert f"upgraded results database {v1}" in err and str(kept) in err
    Store(v1).trials()  # nothing left to upgrade: no second copy, no second note
    assert "upgraded" not in capsys.readouterr().err


def test_a_write_to_an_older_file_keeps_it_as_it_was_too(v1, tmp_path):
    Store(v1).record_importance("s", {})  # a command that writes first upgrades through the same door
    assert v1.with_name("harness.duckdb.before-m002").is_file()


def _release_before_seals(path: Path) -> Path:
    """A results database as the release before trial seals left it: one study, one finished trial."""
    from harness.store.migrations import apply_migrations

    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        apply_migrations(conn, [m for m in MIGRATIONS if m[0] < "m023"])
        conn.execute("INSERT INTO studies (study, experiment_name, experiment, suite, suite_version, kind,"
                     " objective_metric, maximize) VALUES ('w', 'w', '{}', 'colours', '1.0.0', 'sweep',"
                     " 'task_accuracy', true)")
        conn.execute("INSERT INTO trials (id, study, number, method, params, status, trained)"
                     " VALUES ('w/0', 'w', 0, 'prompt', '{}', 'complete', false)")
    return path


def _migrations_of(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return applied(conn, create=False)


def test_merge_reads_an_older_workers_database_without_upgrading_it(tmp_path):
    """merge upgraded the other worker's file in place, and that worker, still on the older release, was then
    refused its own folder as "written by a newer harness"."""
    worker = _release_before_seals(tmp_path / "worker" / "harness.duckdb")
    before = worker.read_bytes()
    target = Store(tmp_path / "here" / "harness.duckdb")
    report = target.merge(Store(worker))
    assert report.trials == ["w/0"] and worker.read_bytes() == before
    assert "m023_trial_seals" not in _migrations_of(worker) and list(worker.parent.iterdir()) == [worker]
    assert [(c.trial_id, c.intact, c.on_upgrade) for c in target.seals()] == [("w/0", True, True)]


def test_the_copy_an_upgrade_keeps_is_not_upgraded_in_turn(tmp_path):
    path = _release_before_seals(tmp_path / "results" / "harness.duckdb")
    assert [s.name for s in Store(path).studies()] == ["w"]  # upgraded in place, a copy kept
    kept = path.with_name("harness.duckdb.before-m023")
    assert kept.is_file() and "m023_trial_seals" not in _migrations_of(kept)
    with pytest.raises(HarnessError, match=r"is the copy an upgrade kept for the older release"):
        Store(kept).studies()
    assert "m023_trial_seals" not in _migrations_of(kept)
