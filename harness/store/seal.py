"""A finished trial's evidence, sealed: one sha256 over what every decision reads of it (its outcome, the settings it
ran with, its metrics, per-example outputs and scores, its throughput, and its study's suite and objective), written
in the same transaction as the trial.

The registry's hash chain (`chain.py`) covers the adapter's history, but a gate weighs the trials' stored scores,
and those were editable without a trace: a per-example score set to 1 passed an adapter at "100%" while `show`
said 50%. The seal makes such an edit visible: the gate recomputes both sides' seals before it weighs them, and
records them in its event, which the chain covers, so a score edited and resealed after a promotion still differs
from what the gate read. `harness registry --verify` checks every seal.

Columns a later step legitimately changes are outside the seal: the adapter's folder (retention removes weights)
and the reason of a failed trial. A study's settings written into its older trials' `details` seal them again
(`reseal_one`), and so must a migration that rewrites a sealed column (`reseal`, as the one that added seals did).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from harness.store.canonical import canonical, plain, rows

TRIAL_FIELDS = ("id", "study", "number", "run_id", "method", "params", "status", "trained", "objective", "feasible",
                "train_steps", "planned_steps", "stopped_by", "train_examples", "shots", "include_contract",
                "constraints", "label_reports", "stats_rules", "weights_sha256")
"""The trial's columns a reader decides with: what it was, whether it finished and trained in full, its objective,
feasibility and constraints, and which adapter it saved."""
STUDY_FIELDS = ("suite", "objective_metric", "maximize")
"""The study's columns every decision about the trial reads: which suite's registry it is in, and which metric, in
which direction, decides (an objective edited to format_compliance let a 30% adapter replace a 100% one)."""
METRIC_FIELDS = ("split", "name", "value", "low", "high", "n")
EXAMPLE_FIELDS = ("split", "example_id", "input", "target", "output", "scores", "error")
THROUGHPUT_FIELDS = ("split", "examples", "seconds", "batch_size", "prompt_tokens", "completion_tokens", "batches")
"""What payback prices serving from."""
JSON_FIELDS = frozenset({"params", "shots", "constraints", "label_reports", "weights_sha256", "scores", "details",
                         "batches"})


def seal(trial: Mapping[str, Any], metrics: Iterable[Mapping[str, Any]], examples: Iterable[Mapping[str, Any]],
         throughput: Iterable[Mapping[str, Any]] = (), study: Mapping[str, Any] | None = None) -> str:
    """The sha256 of a trial's row (with its provenance and the settings it ran with, `details`), its metric,
    example and throughput rows, and its study's objective, as read back from the database."""
    return hashlib.sha256(canonical({
        "trial": {name: _plain(name, trial.get(name)) for name in (*TRIAL_FIELDS, "details")},
        "study": {name: _plain(name, (study or {}).get(name)) for name in STUDY_FIELDS},
        "metrics": _rows_of(metrics, METRIC_FIELDS),
        "examples": _rows_of(examples, EXAMPLE_FIELDS),
        "throughput": _rows_of(throughput, THROUGHPUT_FIELDS),
    }).encode()).hexdigest()


def _rows_of(found: Iterable[Mapping[str, Any]], fields: tuple[str, ...]) -> list[list[Any]]:
    return sorted(([_plain(n, row.get(n)) for n in fields] for row in found), key=json.dumps)


def _plain(name: str, value: Any) -> Any:
    return plain(value, name in JSON_FIELDS)


def trial_seal(conn: duckdb.DuckDBPyConnection, trial_id: str) -> str:
    """The seal of `trial_id` as its rows stand now."""
    return seals_now(conn, [trial_id]).get(trial_id) or seal({}, (), (), (), None)


def seals_now(conn: duckdb.DuckDBPyConnection, trial_ids: list[str]) -> dict[str, str]:
    """The seal of each of `trial_ids` that is in the database, as its rows stand now: one read of each table for
    them all (a trial at a time made `harness trials` 20 times slower on 200 trials)."""
    if not trial_ids:
        return {}
    wanted = "list_contains(?, {})"
    trials = rows(conn.execute(f"SELECT * FROM trials WHERE {wanted.format('id')}", [trial_ids]))
    studies = {row["study"]: row for row in rows(conn.execute(
        "SELECT * FROM studies WHERE study IN (SELECT study FROM trials WHERE list_contains(?, id))", [trial_ids]))}
    grouped = {}
    for table in ("metrics", "examples", "throughput"):
        grouped[table] = by_trial = {}
        for row in rows(conn.execute(f"SELECT * FROM {table} WHERE {wanted.format('trial_id')}", [trial_ids])):
            by_trial.setdefault(row["trial_id"], []).append(row)
    return {trial["id"]: seal(trial, grouped["metrics"].get(trial["id"], ()), grouped["examples"].get(trial["id"], ()),
                              grouped["throughput"].get(trial["id"], ()), studies.get(trial["study"]))
            for trial in trials}


def write_seal(conn: duckdb.DuckDBPyConnection, trial_id: str, on_upgrade: bool = False) -> str:
    """Seal `trial_id` as its rows stand, in the caller's transaction."""
    digest = trial_seal(conn, trial_id)
    conn.execute("UPDATE trials SET scores_sha256 = ?, sealed_on_upgrade = ? WHERE id = ?",
                 [digest, on_upgrade, trial_id])
    return digest


def reseal(conn: duckdb.DuckDBPyConnection) -> None:
    """Seal every finished trial as it stands, marked as sealed on upgrade (the upgrade that added seals does this)."""
    for (trial_id,) in conn.execute("SELECT id FROM trials WHERE status <> 'running' ORDER BY id").fetchall():
        write_seal(conn, trial_id, on_upgrade=True)


def reseal_one(conn: duckdb.DuckDBPyConnection, trial_id: str) -> None:
    """Seal `trial_id` again after a legitimate change to a sealed column (a study's settings written into its older
    trials), keeping whether it was first sealed on upgrade. Call it only for a trial whose seal held before."""
    previous = conn.execute("SELECT sealed_on_upgrade FROM trials WHERE id = ?", [trial_id]).fetchone()
    write_seal(conn, trial_id, bool(previous and previous[0]))


@dataclass(frozen=True)
class SealCheck:
    trial_id: str
    recorded: str | None
    """The seal written with the trial; None for one still running."""
    now: str
    """The seal of its rows as they stand."""
    running: bool = False
    """A running trial has no seal yet; every other one has one (the upgrade that added seals sealed them all), so a
    finished trial without one was written or emptied by hand."""
    on_upgrade: bool = False
    """Sealed by the upgrade that added seals, as the trial stood then, not when it was scored."""

    @property
    def intact(self) -> bool:
        return self.recorded == self.now or (self.recorded is None and self.running)

    def problem(self) -> str:
        """In words, for a broken seal."""
        if self.recorded is None:
            return (f"trial {self.trial_id} is finished but has no seal: every finished trial is sealed when scored, "
                    "so it was written or its seal emptied outside the harness")
        return (f"trial {self.trial_id}'s recorded outcome, settings, metrics, throughput or per-example outputs and "
                f"scores were changed after it was scored (sealed {self.recorded[:12]}, now {self.now[:12]})")


def seal_warnings(checks: Iterable[SealCheck]) -> list[str]:
    """What to say before numbers read from these trials: each broken seal with what changed, or, past a few, how many
    and which, so that nobody reads an edited score as measured."""
    broken = [check for check in checks if not check.intact]
    verify = "`harness registry --verify` lists every such trial"
    if len(broken) <= 3:
        return [f"{check.problem()}: what follows reads the edited numbers ({verify})." for check in broken]
    shown = ", ".join(check.trial_id for check in broken[:5]) + (", ..." if len(broken) > 5 else "")
    return [f"{len(broken)} trials ({shown}) no longer match the seal written when they were scored: their evidence "
            f"was changed or written outside the harness, and what follows reads the edited numbers ({verify})."]


def check_seals(conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str] | None = None) -> list[SealCheck]:
    """Each trial's recorded seal against its rows as they stand: every trial, or those of `trial_ids`."""
    if trial_ids is None:
        ids = [r[0] for r in conn.execute("SELECT id FROM trials ORDER BY id").fetchall()]
    else:
        ids = list(dict.fromkeys(trial_ids))
    if not ids:
        return []
    now = seals_now(conn, ids)
    recorded = {r[0]: r[1:] for r in conn.execute("SELECT id, scores_sha256, status, sealed_on_upgrade FROM trials "
                                                  "WHERE list_contains(?, id)", [ids]).fetchall()}
    return [SealCheck(trial_id, recorded[trial_id][0], now[trial_id], recorded[trial_id][1] == "running",
                      bool(recorded[trial_id][2])) for trial_id in ids if trial_id in recorded]
