"""A finished trial's evidence, sealed: one sha256 over what every decision reads of it (its outcome, metrics and
per-example outputs and scores), written in the same transaction as the trial.

The registry's hash chain (`chain.py`) covers the adapter's history, but a gate weighs the trials' stored scores,
and those were editable without a trace: a per-example score set to 1 passed an adapter at "100%" while `show`
said 50%. The seal makes such an edit visible: the gate recomputes both sides' seals before it weighs them, and
records them in its event, which the chain covers, so a score edited and resealed after a promotion still differs
from what the gate read. `harness registry --verify` checks every seal.

Columns a later step legitimately changes are outside the seal: the adapter's folder (retention removes weights),
the reason of a failed trial, and `details` (a study's settings recorded on its trials). A migration that rewrites
a sealed column must seal the trials again (`reseal`), as the one that added the seal did.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

TRIAL_FIELDS = ("id", "study", "number", "run_id", "method", "params", "status", "trained", "objective", "feasible",
                "train_steps", "planned_steps", "stopped_by", "train_examples", "shots", "include_contract",
                "constraints", "label_reports", "stats_rules", "weights_sha256")
"""The trial's columns a reader decides with: what it was, whether it finished and trained in full, its objective,
feasibility and constraints, and which adapter it saved."""
METRIC_FIELDS = ("split", "name", "value", "low", "high", "n")
EXAMPLE_FIELDS = ("split", "example_id", "input", "target", "output", "scores", "error")
JSON_FIELDS = frozenset({"params", "shots", "constraints", "label_reports", "weights_sha256", "scores"})


def seal(trial: Mapping[str, Any], metrics: Iterable[Mapping[str, Any]], examples: Iterable[Mapping[str, Any]]) -> str:
    """The sha256 of a trial's row, metric rows and example rows as read back from the database."""
    canonical = {
        "trial": {name: _plain(name, trial.get(name)) for name in TRIAL_FIELDS},
        "metrics": sorted(([_plain(n, m.get(n)) for n in METRIC_FIELDS] for m in metrics), key=json.dumps),
        "examples": sorted(([_plain(n, e.get(n)) for n in EXAMPLE_FIELDS] for e in examples), key=json.dumps),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


def _plain(name: str, value: Any) -> Any:
    """A value as the seal reads it: JSON columns parsed (their spacing is the database's), times in ISO form, a
    non-finite float as text (JSON has none)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if name in JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:  # not JSON: sealed as the text it is
            return value
    return value


def trial_seal(conn: duckdb.DuckDBPyConnection, trial_id: str) -> str:
    """The seal of `trial_id` as its rows stand now."""
    trial = _rows(conn.execute("SELECT * FROM trials WHERE id = ?", [trial_id]))
    metrics = _rows(conn.execute("SELECT * FROM metrics WHERE trial_id = ?", [trial_id]))
    examples = _rows(conn.execute("SELECT * FROM examples WHERE trial_id = ?", [trial_id]))
    return seal(trial[0] if trial else {}, metrics, examples)


def write_seal(conn: duckdb.DuckDBPyConnection, trial_id: str) -> str:
    """Seal `trial_id` as its rows stand, in the caller's transaction."""
    digest = trial_seal(conn, trial_id)
    conn.execute("UPDATE trials SET scores_sha256 = ? WHERE id = ?", [digest, trial_id])
    return digest


def reseal(conn: duckdb.DuckDBPyConnection) -> None:
    """Seal every finished trial again as it stands (the upgrade that added seals does this)."""
    for (trial_id,) in conn.execute("SELECT id FROM trials WHERE status <> 'running' ORDER BY id").fetchall():
        write_seal(conn, trial_id)


@dataclass(frozen=True)
class SealCheck:
    trial_id: str
    recorded: str | None
    """The seal written with the trial; None for one still running (or one a release before seals left unsealed)."""
    now: str
    """The seal of its rows as they stand."""

    @property
    def intact(self) -> bool:
        return self.recorded is None or self.recorded == self.now

    def problem(self) -> str:
        """In words, for a broken seal."""
        return (f"trial {self.trial_id}'s recorded outcome, metrics or per-example outputs and scores were changed "
                f"after it was scored (sealed {self.recorded[:12] if self.recorded else '-'}, now {self.now[:12]})")


def check_seals(conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str] | None = None) -> list[SealCheck]:
    """Each trial's recorded seal against its rows as they stand: every trial, or those of `trial_ids`."""
    if trial_ids is None:
        ids = [r[0] for r in conn.execute("SELECT id FROM trials ORDER BY id").fetchall()]
    else:
        ids = list(dict.fromkeys(trial_ids))
    out = []
    for trial_id in ids:
        row = conn.execute("SELECT scores_sha256 FROM trials WHERE id = ?", [trial_id]).fetchone()
        if row is not None:
            out.append(SealCheck(trial_id, row[0], trial_seal(conn, trial_id)))
    return out


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values)) for values in cur.fetchall()]
