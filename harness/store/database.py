"""Results store: studies, runs, trials, metrics and per-example outputs in one DuckDB file.

Concurrency is the design constraint. DuckDB lets one process at a time open a file for writing and then
refuses every other process, read-only ones included. A sweep writes while `report` or a second sweep reads,
so this module never holds a connection: each write opens the file, runs one short transaction, commits and
closes; each read opens it read-only, queries, closes. Both retry with jittered backoff while another
process holds the lock, for up to `lock_timeout_s`, then raise a HarnessError that names the holder.
A trial's row, metrics and examples are replaced in one transaction, so a reader sees all of it or none.

Values always travel as SQL parameters; identifiers are fixed. JSON columns hold `json.dumps` text and
are decoded on read. Timestamps are stored as naive UTC and read back as ISO strings with +00:00.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from harness.core.errors import HarnessError
from harness.store.migrations import apply_migrations

DEFAULT_DB = Path("results/harness.duckdb")
STATUSES = ("running", "complete", "pruned", "failed")

T = TypeVar("T")

# DuckDB shares one database instance per file inside a process and refuses a read-only and a read-write
# connection to it at once, so calls from threads of one process take turns.
_PROCESS_LOCK = threading.RLock()


@dataclass
class MetricRow:
    split: str  # dev | test | regression
    name: str
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


@dataclass
class ExampleRow:
    split: str
    example_id: str
    input: str
    target: str
    output: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    scores: dict = field(default_factory=dict)


@dataclass
class TrialRecord:
    id: str  # trial_id(study, number)
    study: str
    number: int
    run_id: str | None
    method: str
    params: dict = field(default_factory=dict)
    status: str = "running"
    failure_reason: str | None = None
    trained: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    device: str | None = None
    peak_memory_mb: float | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    objective: float | None = None
    feasible: bool | None = None
    artifact_path: str | None = None
    details: dict = field(default_factory=dict)
    metrics: list[MetricRow] = field(default_factory=list)
    examples: list[ExampleRow] = field(default_factory=list)


def trial_id(study: str, number: int) -> str:
    """The trial primary key: "<study>/<number>"."""
    return f"{study}/{number}"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _ts(value: datetime | str | None) -> datetime | None:
    """Normalise to naive UTC, so values from different machines compare correctly."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=timezone.utc).isoformat()


def _dumps(value: Any) -> str:
    # numpy scalars and Paths show up in configs and scores; store them as plain values.
    return json.dumps(value, ensure_ascii=False, default=lambda o: o.item() if hasattr(o, "item") else str(o))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _is_lock_error(exc: BaseException) -> bool:
    msg = str(exc)
    return isinstance(exc, duckdb.IOException) and ("Could not set lock" in msg or "Conflicting lock" in msg)


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


_TRIAL_COLUMNS = (
    "id", "study", "number", "run_id", "method", "params", "status", "failure_reason", "trained",
    "started_at", "finished_at", "device", "peak_memory_mb", "train_seconds", "eval_seconds", "objective",
    "feasible", "artifact_path", "details",
)  # fmt: skip
_INSERT_TRIAL = f"INSERT INTO trials ({', '.join(_TRIAL_COLUMNS)}) VALUES ({', '.join('?' * len(_TRIAL_COLUMNS))})"
_INSERT_METRIC = "INSERT INTO metrics (trial_id, split, name, value, low, high, n) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_EXAMPLE = (
    "INSERT INTO examples (trial_id, split, example_id, input, target, output, prompt_tokens,"
    " completion_tokens, latency_s, scores) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class Store:
    """The results database at `path`; cheap to construct, opens the file only for each call."""

    def __init__(self, path: str | os.PathLike = DEFAULT_DB, lock_timeout_s: float = 30.0):
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._migrated = False

    # -- connection handling -------------------------------------------------------------------------

    def _with_connection(self, read_only: bool, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Open, run `fn`, close; retry while another process holds the file, up to lock_timeout_s."""
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.005
        while True:
            try:
                with _PROCESS_LOCK:
                    conn = duckdb.connect(str(self.path), read_only=read_only)
                    try:
                        return fn(conn)
                    finally:
                        conn.close()
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise self._locked_error(exc) from exc
                time.sleep(min(delay * random.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 0.05)  # a short cap: a polling reader must not starve a writer

    def _locked_error(self, exc: BaseException) -> HarnessError:
        held = re.search(r"held in (.*?) \(PID (\d+)\)", str(exc))
        holder = f"process {held.group(2)} ({held.group(1)})" if held else "another process"
        return HarnessError(
            f"results database {self.path} is locked by {holder}; still locked after {self.lock_timeout_s:g} s. "
            "DuckDB lets only one process open the file at a time. Wait for that process to finish "
            "(or stop it if it is stuck), or write to a different database file. DuckDB said: "
            f"{exc}"
        )

    def _write(self, fn: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """One short transaction; migrations run on this Store's first write."""

        def run(conn: duckdb.DuckDBPyConnection) -> None:
            if not self._migrated:
                apply_migrations(conn)
                self._migrated = True
            conn.execute("BEGIN TRANSACTION")
            try:
                fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._with_connection(False, run)

    def _read(self, fn: Callable[[duckdb.DuckDBPyConnection], T], empty: T) -> T:
        """Read-only; a missing file or one not yet migrated reads as `empty` and is never created."""
        if not self.path.exists():
            return empty

        def run(conn: duckdb.DuckDBPyConnection) -> T:
            found = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = '_migrations'"
            ).fetchone()[0]
            return fn(conn) if found else empty

        return self._with_connection(True, run)

    # -- writes ----------------------------------------------------------------------------------------

    def record_study(
        self,
        study: str,
        experiment_name: str,
        experiment: dict,
        suite: str,
        suite_version: str,
        model_name: str,
        model_sha256: str,
        model_note: str | None = None,
        notes: dict | None = None,
    ) -> None:
        """Create or update a study; created_at keeps the first value."""
        values = [study, experiment_name, _dumps(experiment), suite, suite_version, model_name, model_sha256,
                  model_note, _now(), _dumps(notes or {})]  # fmt: skip
        self._write(lambda c: c.execute(
            "INSERT INTO studies (study, experiment_name, experiment, suite, suite_version, model_name,"
            " model_sha256, model_note, created_at, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (study) DO UPDATE SET experiment_name = excluded.experiment_name,"
            " experiment = excluded.experiment, suite = excluded.suite, suite_version = excluded.suite_version,"
            " model_name = excluded.model_name, model_sha256 = excluded.model_sha256,"
            " model_note = excluded.model_note, notes = excluded.notes",
            values,
        ))  # fmt: skip

    def record_run(self, run_id: str, study: str, pid: int, host: str, environment: dict) -> None:
        values = [run_id, study, _now(), pid, host, _dumps(environment)]
        self._write(lambda c: c.execute(
            "INSERT OR REPLACE INTO runs (run_id, study, started_at, pid, host, environment)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            values,
        ))  # fmt: skip

    def record_trial_start(self, record: TrialRecord) -> None:
        """Write the trial as running; a re-run of the same number replaces the old row and its results."""
        started = record.started_at or _now()
        self._replace_trial(record, status="running", started_at=started, with_results=False)

    def record_trial_result(self, record: TrialRecord) -> None:
        """Replace the trial row, metrics and examples in one transaction: readers never see half a trial."""
        self._replace_trial(record, status=record.status, started_at=record.started_at, with_results=True)

    def _replace_trial(self, r: TrialRecord, status: str, started_at: datetime | None, with_results: bool):
        if status not in STATUSES:
            raise ValueError(f"trial status {status!r} is not one of {', '.join(STATUSES)}")
        row = [r.id, r.study, r.number, r.run_id, r.method, _dumps(r.params), status, r.failure_reason,
               r.trained, _ts(started_at), _ts(r.finished_at), r.device, r.peak_memory_mb, r.train_seconds,
               r.eval_seconds, r.objective, r.feasible, None if r.artifact_path is None else str(r.artifact_path),
               _dumps(r.details)]  # fmt: skip
        metrics = [[r.id, m.split, m.name, m.value, m.low, m.high, m.n] for m in r.metrics] if with_results else []
        examples = [
            [r.id, e.split, e.example_id, e.input, e.target, e.output, e.prompt_tokens, e.completion_tokens,
             e.latency_s, _dumps(e.scores)]
            for e in (r.examples if with_results else [])
        ]  # fmt: skip

        def write(c: duckdb.DuckDBPyConnection) -> None:
            if started_at is None:  # keep the start time recorded by record_trial_start
                prev = c.execute("SELECT started_at FROM trials WHERE id = ?", [r.id]).fetchone()
                row[_TRIAL_COLUMNS.index("started_at")] = prev[0] if prev else None
            for table, key in (("metrics", "trial_id"), ("examples", "trial_id"), ("trials", "id")):
                c.execute(f"DELETE FROM {table} WHERE {key} = ?", [r.id])  # fixed identifiers only
            c.execute(_INSERT_TRIAL, row)
            if metrics:
                c.executemany(_INSERT_METRIC, metrics)
            if examples:
                c.executemany(_INSERT_EXAMPLE, examples)

        self._write(write)

    def mark_trial_failed(self, trial_id: str, reason: str, status: str = "failed") -> None:
        """Record why a trial did not complete (status failed or pruned); its finished_at is now."""
        if status not in ("failed", "pruned"):
            raise ValueError(f"mark_trial_failed status must be 'failed' or 'pruned', not {status!r}")
        self._write(lambda c: c.execute(
            "UPDATE trials SET status = ?, failure_reason = ?, finished_at = ? WHERE id = ?",
            [status, reason, _now(), trial_id],
        ))  # fmt: skip

    def set_artifact_path(self, trial_id: str, path: str | os.PathLike | None) -> None:
        value = None if path is None else str(path)
        self._write(lambda c: c.execute("UPDATE trials SET artifact_path = ? WHERE id = ?", [value, trial_id]))

    # -- reads -----------------------------------------------------------------------------------------

    def list_studies(self) -> list[dict]:
        return self._read(lambda c: [_study(r) for r in _rows(c.execute("SELECT * FROM studies ORDER BY study"))], [])

    def get_study(self, study: str) -> dict | None:
        rows = self._read(lambda c: _rows(c.execute("SELECT * FROM studies WHERE study = ?", [study])), [])
        return _study(rows[0]) if rows else None

    def get_run(self, run_id: str) -> dict | None:
        rows = self._read(lambda c: _rows(c.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])), [])
        if not rows:
            return None
        run = rows[0]
        return {**run, "started_at": _iso(run["started_at"]), "environment": _loads(run["environment"])}

    def list_trials(self, study: str | None = None) -> list[dict]:
        """Trials ordered by study, number, each with metrics {split: {name: {value, low, high, n}}}."""

        def read(c: duckdb.DuckDBPyConnection) -> list[dict]:
            # One connection, so trials and metrics come from the same committed snapshot.
            cond, args = ("", []) if study is None else ("WHERE t.study = ?", [study])
            trials = _rows(c.execute(f"SELECT t.* FROM trials t {cond} ORDER BY t.study, t.number", args))
            metrics = _rows(c.execute(
                f"SELECT m.* FROM metrics m JOIN trials t ON m.trial_id = t.id {cond} ORDER BY m.split, m.name",
                args,
            ))  # fmt: skip
            return _assemble(trials, metrics)

        return self._read(read, [])

    def get_trial(self, trial_id: str) -> dict | None:
        """One trial as in list_trials plus `examples`, a list of dicts ordered by split, example_id."""

        def read(c: duckdb.DuckDBPyConnection) -> dict | None:
            trials = _rows(c.execute("SELECT * FROM trials WHERE id = ?", [trial_id]))
            if not trials:
                return None
            metrics = _rows(c.execute("SELECT * FROM metrics WHERE trial_id = ? ORDER BY split, name", [trial_id]))
            examples = _rows(c.execute(
                "SELECT * FROM examples WHERE trial_id = ? ORDER BY split, example_id", [trial_id]
            ))  # fmt: skip
            trial = _assemble(trials, metrics)[0]
            for e in examples:
                del e["trial_id"]
                e["scores"] = _loads(e["scores"])
            trial["examples"] = examples
            return trial

        return self._read(read, None)


def _study(row: dict) -> dict:
    return {**row, "experiment": _loads(row["experiment"]), "notes": _loads(row["notes"]),
            "created_at": _iso(row["created_at"])}  # fmt: skip


def _assemble(trials: Iterable[dict], metrics: Iterable[dict]) -> list[dict]:
    by_trial: dict[str, dict] = {}
    for m in metrics:
        split = by_trial.setdefault(m["trial_id"], {}).setdefault(m["split"], {})
        split[m["name"]] = {"value": m["value"], "low": m["low"], "high": m["high"], "n": m["n"]}
    out = []
    for t in trials:
        t.update(
            params=_loads(t["params"]),
            details=_loads(t["details"]),
            started_at=_iso(t["started_at"]),
            finished_at=_iso(t["finished_at"]),
            metrics=by_trial.get(t["id"], {}),
        )
        out.append(t)
    return out
