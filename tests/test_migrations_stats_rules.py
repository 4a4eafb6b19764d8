"""m015: trials record the interval rules they were scored under. A database written by the release before (its
migrations m001-m014, rows as that release wrote them) upgrades once, in one transaction: its trials read "not
recorded", the intervals their stored row determines are recomputed exactly as this release computes them, and every
other number is kept as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from harness.core.records import MetricRow, TrialRecord
from harness.evaluation.inference import mcnemar_exact
from harness.evaluation.rules import STATS_RULES
from harness.evaluation.stats import bootstrap_mean, wilson_interval
from harness.store.database import Store
from harness.store.migrations import MIGRATIONS, apply_migrations, m015_stats_rules

OLD_RELEASE = [m for m in MIGRATIONS if m[0] <= "m014"]

RECOMPUTED = {  # (trial, split, name): the row as the old release stored it, and what this release gives
    ("old/1", "test", "field_f1"): ((1.0, 1.0, 1.0, 26), wilson_interval(26, 26)),  # 26 perfect extractions
    ("old/1", "test", "macro_f1"): ((0.0, 0.0, 0.0, 8), wilson_interval(0, 8)),  # every label wrong
    ("old/1", "dev", "rouge_l"): ((1.0, 1.0, 1.0, 1), wilson_interval(1, 1)),
    ("old/1", "test", "rouge_l"): ((0.42, 0.42, 0.42, 1), (None, None)),  # one value: no interval
    ("old/1", "dev", "regression_delta"): ((0.0, 0.0, 0.0, 200), None),  # no PIQA item changed: McNemar
    ("old/1", "test", "regression_delta"): ((0.0, 0.0, 0.0, 200), None),
}
KEPT = {  # intervals the stored row does not determine under today's rules, or that never changed
    ("old/1", "test", "task_accuracy"): (1.0, 0.8677, 1.0, 26),  # Wilson under every version
    ("old/2", "test", "rouge_l"): (0.4, 0.35, 0.45, 40),  # a plain percentile bootstrap: needs the draws again
    ("old/2", "test", "field_f1"): (0.5, 0.5, 0.5, 1),  # one field ratio keeps [v, v] under today's rules too
    ("old/2", "dev", "regression_delta"): (0.0, -0.01, 0.01, 200),  # a bootstrap with items changed both ways
    ("old/2", "test", "regression_delta"): (-0.015, -0.04, 0.01, 200),
    ("old/2", "regression", "piqa_accuracy"): (0.7, 0.633, 0.76, 200),
}


def write_old_results(path: Path) -> Path:
    """A results database as the release of 2026-12-05 before this one left it: two trials and their metrics."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        apply_migrations(conn, OLD_RELEASE)
        conn.execute("INSERT INTO studies (study, experiment_name, experiment, suite, suite_version, kind,"
                     " objective_metric, maximize) VALUES ('old', 'old', '{}', 'toy', '1.0.0', 'sweep',"
                     " 'task_accuracy', true)")
        for number in (1, 2):
            conn.execute("INSERT INTO trials (id, study, number, run_id, method, params, status, trained, details)"
                         " VALUES (?, 'old', ?, 'run1', 'lora', '{}', 'complete', true, '{}')",
                         [f"old/{number}", number])
        rows = [(*key, *old) for key, (old, _) in RECOMPUTED.items()] + [(*key, *row) for key, row in KEPT.items()]
        conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return path


def _metrics(path: Path) -> dict[tuple, tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return {tuple(r[:3]): tuple(r[3:]) for r in conn.execute("SELECT * FROM metrics").fetchall()}


@pytest.fixture()
def old(tmp_path) -> Path:
    return write_old_results(tmp_path / "results" / "harness.duckdb")


def test_old_trials_read_not_recorded_and_what_their_rows_determine_is_recomputed(old):
    store = Store(old)
    assert [t.stats_rules for t in store.trials()] == [None, None]  # the read upgraded the file
    after = _metrics(old)
    for key, ((value, _, _, n), expected) in RECOMPUTED.items():
        assert after[key][0] == value and after[key][3] == n, key
        if expected is None:  # written in closed form: equal to scipy's beta quantile but for rounding
            mcnemar = mcnemar_exact(0, 0, n)
            assert after[key][1:3] == pytest.approx((mcnemar.low, mcnemar.high), rel=1e-12), key
        else:
            assert after[key][1:3] == expected, key  # bit for bit
    assert after[("old/1", "dev", "regression_delta")][1] == pytest.approx(-0.0183, abs=1e-4)  # README's +-1.8 points
    assert {key: after[key] for key in KEPT} == KEPT
    # the recomputed ROUGE-L rows are what this release's scorer gives those values
    assert after[("old/1", "dev", "rouge_l")][1:3] == (lambda m: (m.low, m.high))(bootstrap_mean([1.0]))
    assert after[("old/1", "test", "rouge_l")][1:3] == (lambda m: (m.low, m.high))(bootstrap_mean([0.42]))


def test_a_trial_written_after_the_upgrade_records_its_rules(old):
    store = Store(old)
    store.record_trial_result(TrialRecord("old/3", "old", 3, "run2", "prompt", status="complete",
                                          stats_rules=STATS_RULES,
                                          metrics=[MetricRow("test", "task_accuracy", 0.5, 0.4, 0.6, 100)]))
    assert {t.id: t.stats_rules for t in store.trials()} == {"old/1": None, "old/2": None, "old/3": STATS_RULES}


def test_the_upgrade_runs_once_and_running_it_again_changes_nothing(old, tmp_path):
    twice = tmp_path / "copy" / "harness.duckdb"
    twice.parent.mkdir()
    shutil.copy(old, twice)
    Store(old).trials()
    Store(twice).trials()
    upgraded = _metrics(twice)
    with duckdb.connect(str(twice)) as conn:
        assert apply_migrations(conn) == []
        m015_stats_rules(conn)  # by hand, once more: the column exists, and no row is left to recompute
    assert _metrics(twice) == upgraded == _metrics(old)


def test_an_interrupted_upgrade_leaves_nothing_half_done(old):
    before = _metrics(old)

    def dies_halfway(conn):
        m015_stats_rules(conn)  # adds the column and rewrites the intervals, then the process dies
        raise KeyboardInterrupt

    with duckdb.connect(str(old)) as conn:
        with pytest.raises(KeyboardInterrupt):
            apply_migrations(conn, OLD_RELEASE + [("m015_stats_rules", dies_halfway)])
        names = {r[0] for r in conn.execute("SELECT name FROM _migrations").fetchall()}
        columns = {r[0] for r in conn.execute("DESCRIBE trials").fetchall()}
    assert "m015_stats_rules" not in names and "stats_rules" not in columns
    assert _metrics(old) == before
    assert [t.stats_rules for t in Store(old).trials()] == [None, None]  # the next open finishes it
    assert _metrics(old)[("old/1", "test", "rouge_l")][1:3] == (None, None)
