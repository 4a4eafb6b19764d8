"""Results store: studies, runs, trials, metrics, throughput and per-example outputs in one DuckDB file.

Concurrency is the design constraint. DuckDB lets one process at a time open a file for writing and then
refuses every other process, read-only ones included. A sweep writes while `report` or a second sweep reads,
so this module never holds a connection: each write opens the file, runs one short transaction, commits and
closes; each read opens it read-only, queries, closes. Both retry with jittered backoff while another
process holds the lock, for up to `lock_timeout_s`, then raise a HarnessError that names the holder.
A trial's row, metrics, throughput and examples are replaced in one transaction, so a reader sees all of it or
none.

Both sides are typed (harness.core.records): writes take records, reads return frozen views. Values always
travel as SQL parameters; identifiers are fixed. JSON columns hold `json.dumps` text and are decoded on read.
Timestamps are stored as naive UTC and read back as aware UTC datetimes. Artifact paths are stored relative to
the database's folder when they lie inside it, so a results folder can be moved or read from anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np

from harness import __version__
from harness.core.errors import HarnessError
from harness.core.identity import os_account
from harness.core.label_report import LabelReport
from harness.core.metric import Metric
from harness.core.paths import results_folder
from harness.core.records import (
    ADAPTER_STATUSES,
    LOOK_KINDS,
    STATUSES,
    AdapterEvent,
    EngineInfo,
    ExampleView,
    HostedUsage,
    LookAtTest,
    PromptSearch,
    RunRecord,
    RunView,
    ServingLoad,
    StudyRecord,
    StudyView,
    Throughput,
    TrainingSummary,
    TrialRecord,
    TrialView,
    duplicate_of,
    setup_changes,
    split_trial_id,
    study_setup,
    trial_id,
)
from harness.store.canonical import rows as _rows
from harness.store.chain import GENESIS, ChainCheck, check_chain, link
from harness.store.migrations import MIGRATIONS, UnknownMigrations, applied, apply_migrations, check_known
from harness.store.seal import SealCheck, check_seals, reseal_one, write_seal

DEFAULT_DB = Path("results/harness.duckdb")

T = TypeVar("T")

# DuckDB shares one database instance per file inside a process and refuses a read-only and a read-write
# connection to it at once, so calls from threads of one process take turns.
_PROCESS_LOCK = threading.RLock()
WRITER_FRESH_S = 2.0
"""A writer's waiting marker older than this was left by a writer that stopped: readers pass it over."""


def _touch(path: Path) -> bool:
    """Create or refresh a marker file; False where the folder refuses it (the writer then just retries)."""
    try:
        path.touch()
    except OSError:
        return False
    return True


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _naive_utc(moment: datetime) -> datetime:
    """`moment` as the database keeps times: UTC, without a zone."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _ts(value: datetime | None) -> datetime | None:
    """Normalise to naive UTC, so values from different machines compare correctly."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _check_look(look: LookAtTest) -> None:
    if look.kind not in LOOK_KINDS:
        raise ValueError(f"look kind {look.kind!r} is not one of {', '.join(LOOK_KINDS)}")


def _insert_look(c: duckdb.DuckDBPyConnection, look: LookAtTest) -> None:
    c.execute("INSERT INTO looks_at_test (kind, suite, subset, candidate, reference, metric, rule, outcome, actor,"
              " detail, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              [look.kind, look.suite, look.subset, look.candidate, look.reference, look.metric, _dumps(look.rule),
               look.outcome, look.actor, None if look.detail is None else _dumps(look.detail), _now()])


def _dumps(value: Any) -> str:
    # numpy scalars and Paths show up in configs and scores; store them as plain values.
    return json.dumps(value, ensure_ascii=False, default=lambda o: o.item() if hasattr(o, "item") else str(o))


def _loads(text: str | None, empty: Any = None) -> Any:
    return empty if text is None else json.loads(text)


def _is_lock_error(exc: BaseException) -> bool:
    msg = str(exc)
    return isinstance(exc, duckdb.IOException) and ("Could not set lock" in msg or "Conflicting lock" in msg)


def _is_unwritable(exc: BaseException) -> bool:
    """The file or its folder refuses this user (a read-only mount, an archive's permissions, an immutable file):
    DuckDB says so in an IOException that would otherwise read as a damaged file, and the advice for one (restore
    it, move it aside) would lose a sound database."""
    text = str(exc).casefold()
    return any(said in text for said in ("read-only file system", "permission denied", "operation not permitted"))


def _is_damaged(exc: BaseException) -> bool:
    """Not a DuckDB file, cut short, or with a block whose checksum fails (a plain duckdb.Error that says so). A
    path DuckDB reads as a data file rather than a database (`results.csv`) fails read-only as an in-memory one."""
    text = str(exc).casefold()
    return (isinstance(exc, duckdb.IOException) or "corrupt database file" in text
            or "cannot launch in-memory database in read-only mode" in text)


def _record(value: Any) -> str | None:
    """A small typed record (a dataclass) as a JSON column."""
    return None if value is None else _dumps(dataclasses.asdict(value))


def _typed(cls: type[T], text: str | None) -> T | None:
    return None if text is None else cls(**_loads(text))


def _label_reports(text: str | None) -> dict[str, LabelReport]:
    """The per-split label reports of a `label_reports` column, typed; reports of every release read."""
    return {split: LabelReport.from_json(raw) for split, raw in _loads(text, {}).items()}


def _pairs(text: str | None) -> tuple[tuple[int, float], ...]:
    return tuple((int(step), float(value)) for step, value in _loads(text, []))


_TRIAL_COLUMNS = (
    "id", "study", "number", "run_id", "method", "params", "status", "failure_reason", "trained",
    "started_at", "finished_at", "device", "peak_memory_mb", "train_seconds", "eval_seconds", "objective",
    "feasible", "artifact_path", "details", "train_steps", "stopped_by", "train_examples", "examples_per_step",
    "loss_curve", "dev_curve", "shots", "include_contract", "constraints", "label_reports", "hosted",
    "phase_seconds", "planned_steps", "engine", "serving", "stats_rules", "step_seconds", "prompt_search",
    "weights_sha256",
)  # fmt: skip
_INSERT_TRIAL = f"INSERT INTO trials ({', '.join(_TRIAL_COLUMNS)}) VALUES ({', '.join('?' * len(_TRIAL_COLUMNS))})"
_INSERT_METRIC = "INSERT INTO metrics (trial_id, split, name, value, low, high, n) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_THROUGHPUT = (
    "INSERT INTO throughput (trial_id, split, examples, seconds, batch_size, prompt_tokens, completion_tokens,"
    " batches, others_cpu_share) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_EXAMPLE_COLUMNS = ("trial_id", "split", "example_id", "input", "target", "output", "prompt_tokens",
                    "completion_tokens", "latency_s", "scores", "error")
_INSERT_EXAMPLES = (f"INSERT INTO examples ({', '.join(_EXAMPLE_COLUMNS)})"
                    f" SELECT {', '.join(_EXAMPLE_COLUMNS)} FROM incoming_examples")
_PER_TRIAL_TABLES = (("metrics", "trial_id"), ("throughput", "trial_id"), ("examples", "trial_id"), ("trials", "id"))


class TrialIdTaken(HarnessError):
    """A new trial would overwrite one that another run recorded under the same id."""


class ProductionMoved(HarnessError):
    """A suite's production adapter changed between a promote or rollback reading it and recording its move."""

    def __init__(self, suite: str, seen: str | None, now: str | None):
        super().__init__(f"suite {suite}'s production adapter changed while this ran: it was {seen or 'none'}, and "
                         f"another promote or rollback made it {now or 'none'}. Nothing was recorded; run the command "
                         "again, so that it weighs what is in production now.")


@dataclasses.dataclass
class MergeReport:
    trials: list[str]
    """The trials copied in."""
    artifacts: list[str]
    """Their adapter folders, relative to the source database's folder."""
    events_left: int = 0
    """Registry events (promotions, retirements, re-checks) of the merged trials that stay in the source: a suite's
    registry lives in one database, the one its leads promote in."""
    looks_left: int = 0
    """Looks at test (gates, compares, re-checks) of the merged trials that stay in the source."""
    running: list[str] = dataclasses.field(default_factory=list)
    """Trials the source holds as running that this database lacks, left out: still running there, or their worker
    died (the study storage then failed them, and a later trial runs their configuration again)."""


@dataclasses.dataclass(frozen=True)
class AuditPackRecord:
    """An audit pack as written (`harness audit`): the sha256 of its MANIFEST.json, which covers every other file."""

    trial_id: str
    suite: str
    folder: str
    """Where it was written (absolute); a pack may be moved or archived since."""
    manifest_sha256: str
    actor: str | None = None
    at: datetime | None = None
    """When (UTC); set by the store."""


PATHS_RELATIVE_TO_THE_FILE = frozenset({"m005_artifact_paths_relative_to_database",
                                        "m017_suite_paths_in_the_project_relative"})
"""Migrations that rewrite paths relative to the file's own folder: they must run where the file is."""


class Store:
    """The results database at `path`; cheap to construct, opens the file only for each call."""

    def __init__(self, path: str | os.PathLike = DEFAULT_DB, lock_timeout_s: float = 30.0):
        self.path = Path(path)
        self.origin = self.path
        """The database this store stands for: its own file, or, for an upgraded copy (`read_as_upgraded`), the file
        it copies, which a check reads through the copy (`sweep --check` on an older release's file)."""
        self.lock_timeout_s = lock_timeout_s
        self._migrated = False

    # -- connection handling -------------------------------------------------------------------------

    def _with_connection(self, read_only: bool, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Open, run `fn`, close; retry while another process holds the file, up to lock_timeout_s. A writer kept out
        says so in a marker file beside the database, and readers hold back while it is fresh: DuckDB gives the file
        to whoever asks first, so readers that poll back to back (a dashboard per lead) could keep a sweep's write
        out past its timeout."""
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.005
        waiting = False
        try:
            while True:
                if read_only:
                    self._let_a_waiting_writer_in(deadline)
                try:
                    with _PROCESS_LOCK:
                        conn = duckdb.connect(str(self.path), read_only=read_only)
                        try:
                            return fn(conn)
                        finally:
                            conn.close()
                except UnknownMigrations as exc:
                    raise self._newer_error(exc.names) from None
                except duckdb.Error as exc:
                    if not _is_lock_error(exc):
                        if _is_unwritable(exc):
                            raise (self._unopenable_error(exc) if read_only else self._unwritable_error(exc)) from None
                        if _is_damaged(exc):
                            raise self._unreadable_error(exc) from None
                        raise
                    if time.monotonic() >= deadline:
                        raise self._locked_error(exc) from exc
                    if not read_only:
                        waiting = _touch(self._writer_waiting) or waiting
                    time.sleep(min(delay * random.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 0.05)  # a short cap: a polling reader must not starve a writer
        finally:
            if waiting:
                self._writer_waiting.unlink(missing_ok=True)

    @property
    def _writer_waiting(self) -> Path:
        return self.path.with_name(self.path.name + ".writer-waiting")

    def _let_a_waiting_writer_in(self, deadline: float) -> None:
        """Hold a read back while a writer's marker is fresh (it touches it at every retry), up to `deadline`. A
        marker a crashed writer left goes stale within WRITER_FRESH_S and is passed over."""
        while time.monotonic() < deadline:
            try:
                age = time.time() - self._writer_waiting.stat().st_mtime
            except OSError:  # no marker (the usual case), or one that cannot be read: nothing to wait for
                return
            if age > WRITER_FRESH_S:
                return
            time.sleep(0.01)

    def _unreadable_error(self, exc: BaseException) -> HarnessError:
        """A file that is not a DuckDB database, a truncated or damaged copy of one: name it and what to do."""
        return HarnessError(
            f"results database {self.path} cannot be read: it is not a DuckDB database, or it was cut short or "
            f"damaged (a copy that did not finish, a full or failing disk). Restore it from a backup, point at the "
            f"right one (--db for reading commands, `results_dir` for a sweep), or move it aside and start afresh "
            f"in another results folder (its study's finished trials are in the one moved aside, and a sweep "
            f"refuses to go on without them); nothing was written. DuckDB said: {exc}")

    def _unwritable_error(self, exc: BaseException) -> HarnessError:
        """A sound database this command cannot write to: what writes, and how to go on."""
        return HarnessError(
            f"results database {self.path} cannot be written here (a read-only folder or file), and this command "
            "records what it does: `compare` and `recheck` on test record a look at test, `promote`, `rollback` and "
            "`audit` their events. Copy the results folder somewhere writable and give --db there; commands that "
            "record nothing (`trials`, `show`, `report`, `payback`, `compare --split dev`) read it where it is. "
            f"Nothing was written. DuckDB said: {exc}")

    def _unopenable_error(self, exc: BaseException) -> HarnessError:
        """A database this user may not even read: its permissions, not its contents, are the problem."""
        return HarnessError(
            f"results database {self.path} cannot be opened by this user: the file or its folder refuses it (its "
            "permissions, or an immutable or read-only file). The database itself may be sound: ask its owner for "
            f"read access, or read a copy they make (--db COPY). Nothing was written. DuckDB said: {exc}")

    def _newer_error(self, unknown: list[str]) -> HarnessError:
        """A database a newer harness wrote: this one would misread what it changed, or undo it by writing."""
        return HarnessError(
            f"results database {self.path} was written by a newer harness: it records migration(s) "
            f"{', '.join(unknown)}, which this harness ({__version__}) does not have. Reading it could misread its "
            f"results and writing could damage them, so nothing was read or written. Upgrade the harness (`pip "
            f"install -U finetune-harness`, or update your checkout and reinstall it) or run the version that wrote "
            f"it; or point --db (or `results_dir` for a sweep) at another database.")

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
        """One short transaction; pending migrations run first, once per Store."""

        if not self._migrated and self.path.exists():  # an older release's file: kept as it was, then upgraded
            self._upgrade_older_file()

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

        results_folder(self.path.parent)
        self._with_connection(False, run)

    def _read(self, fn: Callable[[duckdb.DuckDBPyConnection], T], empty: T) -> T:
        """Read-only; a missing or empty file reads as `empty` and is never created. A file written by an older
        release is upgraded in place first (its pending migrations), so every reader sees the current schema."""
        if not self.path.exists():
            return empty
        if not self._migrated:
            if self._upgrade_older_file() is None:
                return empty
            self._migrated = True
        return self._with_connection(True, fn)

    def pending(self) -> list[str]:
        """The migrations this file still lacks (none for a missing file), read without applying them."""
        if not self.path.is_file():
            return []
        return self._with_connection(True, _pending_migrations) or []

    def read_as_upgraded(self, folder: Path) -> Store:
        """This store, or, for a file an older release wrote, a copy of it in `folder`, upgraded there: for a command
        that must read it without writing it (`sweep --check`, `merge` of another worker's database, which that worker
        still runs). A file whose upgrade rewrites paths relative to its own folder (releases before 2026-12-03) is
        upgraded in place, as any command would, with a copy as it was kept beside it."""
        pending = self.pending()
        if not pending or set(pending) & PATHS_RELATIVE_TO_THE_FILE:
            self.studies()  # brings it up to this release's schema, in place, if it needs it
            return self
        copy = Path(folder) / self.path.name
        shutil.copy2(self.path, copy)
        copied = Store(copy, self.lock_timeout_s)
        copied._with_connection(False, apply_migrations)
        copied._migrated = True
        copied.origin = self.origin
        return copied

    def _upgrade_older_file(self) -> list[str] | None:
        """The migrations the file lacked, applied now (`_upgrade`); None for a file that holds no results database."""
        pending = self._with_connection(True, _pending_migrations)
        if pending:
            self._upgrade(pending)
        return pending

    def _upgrade(self, pending: list[str]) -> None:
        """Apply an older release's pending migrations, after a copy of the file as it was: an upgrade cannot be
        undone, and an older release reads the upgraded file without a word (those before 2026-12-06 cannot tell).
        A copy an upgrade kept is the older release's, and is not upgraded in turn."""
        if re.search(r"\.before-m\d{3}$", self.path.name):
            raise HarnessError(f"{self.path} is the copy an upgrade kept for the older release, which alone should "
                               f"read it; this release would upgrade it too. Read the upgraded "
                               f"{self.path.name.rsplit('.before-', 1)[0]} beside it, or copy this one to a name of "
                               "its own first if it is to be upgraded.")
        if not os.access(self.path, os.W_OK):
            raise HarnessError(f"results database {self.path} was written by an older release and needs its "
                               f"migrations ({', '.join(pending)}), but the file is read-only. Make it writable "
                               "once (or copy it somewhere writable) and run the command again.")
        kept = self.path.with_name(f"{self.path.name}.before-{pending[0].split('_')[0]}")
        if not kept.exists():
            shutil.copy2(self.path, kept)
        self._with_connection(False, apply_migrations)
        self._migrated = True
        print(f"note: upgraded results database {self.path} for this release (migrations {', '.join(pending)}); "
              f"the file as it was is kept at {kept} (an older release, and only it, should read that one).",
              file=sys.stderr)

    # -- writes ----------------------------------------------------------------------------------------

    def record_study(self, study: StudyRecord) -> None:
        """Create or update a study; created_at keeps the first value. Raises HarnessError, writing nothing, when the
        study exists with another suite, model, data subsets or objective (`study_conflict`)."""
        stored = self.study(study.name)
        conflict = self._conflict(stored, study)
        if conflict is not None:
            raise HarnessError(conflict)
        self._keep_what_trials_ran_with(stored, study)
        if stored is not None and stored.suite_gate[0]:  # the gate's bar is the one the study was first scored
            # under: a resume after loosening suite.yaml's `gate:` had re-recorded it for trials scored before
            study = dataclasses.replace(study, notes={**study.notes, "suite_gate": stored.suite_gate[1]})
        values = [study.name, study.experiment_name, _dumps(study.experiment), study.suite, study.suite_version,
                  study.model_name, study.model_sha256, study.model_note, _now(), _dumps(study.notes), study.kind,
                  study.parent, study.objective_metric, study.maximize,
                  self._stored_suite_path(study.suite_path)]  # fmt: skip
        self._write(lambda c: c.execute(
            "INSERT INTO studies (study, experiment_name, experiment, suite, suite_version, model_name,"
            " model_sha256, model_note, created_at, notes, kind, parent_study, objective_metric, maximize,"
            " suite_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (study) DO UPDATE SET experiment_name = excluded.experiment_name,"
            " experiment = excluded.experiment, suite = excluded.suite, suite_version = excluded.suite_version,"
            " model_name = excluded.model_name, model_sha256 = excluded.model_sha256,"
            " model_note = excluded.model_note, notes = excluded.notes, kind = excluded.kind,"
            " parent_study = excluded.parent_study, objective_metric = excluded.objective_metric,"
            " maximize = excluded.maximize, suite_path = excluded.suite_path",
            values,
        ))  # fmt: skip

    def _keep_what_trials_ran_with(self, stored: StudyView | None, study: StudyRecord) -> None:
        """Before a resume with another experiment file replaces the study's config (`stored`), write the config it
        held into its trials that keep none of their own (those recorded before 2026-12-07): each then still reads
        what it ran with (`records.ran_with`)."""
        if stored is None or dict(stored.experiment) == json.loads(_dumps(study.experiment)):
            return
        held = _dumps({"experiment": dict(stored.experiment)})

        def write(c: duckdb.DuckDBPyConnection) -> None:
            ids = [r[0] for r in c.execute("SELECT id FROM trials WHERE study = ?", [study.name]).fetchall()]
            intact = [check.trial_id for check in check_seals(c, ids) if check.intact and not check.running]
            c.execute("UPDATE trials SET details = json_merge_patch(COALESCE(details, '{}'), ?) WHERE study = ?"
                      " AND json_extract(COALESCE(details, '{}'), '$.experiment') IS NULL", [held, study.name])
            for kept in intact:  # what they ran with, written in: a change the seal holds; a broken one stays so
                reseal_one(c, kept)

        self._write(write)

    def study_conflict(self, study: StudyRecord) -> str | None:
        """Why `study` cannot join the stored study of its name, if it cannot: trials scored on another suite (or
        version), model, data subsets or objective would be ranked, counted and compared with its own. Two
        experiments with the same `name` in one results folder meet here, and so do a study's workers whose
        experiment files differ."""
        return self._conflict(self.study(study.name), study)

    def _conflict(self, stored: StudyView | None, study: StudyRecord) -> str | None:
        if stored is None:
            return None
        changed = [f"{_FACTS.get(fact, fact)}: stored {old!r}, now {new!r}"
                   for fact, old, new in setup_changes(study_setup(stored), study_setup(study))]
        if not changed:
            return None
        was = stored.config_path or stored.experiment_name
        return (f"study {study.name} in {self.path} was run with another setup (from {was}); its trials cannot be "
                f"compared with this one's, since {'; '.join(changed)}. Pass --study NEW_NAME (or give the experiment "
                f"another `name`) to start a separate study, or use another results folder (--set results_dir=...).")

    def record_run(self, run: RunRecord) -> None:
        values = [run.run_id, run.study, _now(), run.pid, run.host, _dumps(run.environment), run.device,
                  run.device_name, run.cpu_count]
        self._write(lambda c: c.execute(
            "INSERT OR REPLACE INTO runs (run_id, study, started_at, pid, host, environment, device, device_name,"
            " cpu_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        ))  # fmt: skip

    def record_trial_start(self, record: TrialRecord) -> None:
        """Write the trial as running. An id is never reused: a trial another run recorded under it is refused
        (`TrialIdTaken`), and its results, and the adapter folder named after it, stay as they are."""
        started = record.started_at or _now()
        self._replace_trial(record, status="running", started_at=started, with_results=False)

    def record_trial_result(self, record: TrialRecord) -> None:
        """Replace the trial row, metrics, throughput and examples in one transaction: readers never see half a
        trial."""
        self._replace_trial(record, status=record.status, started_at=record.started_at, with_results=True)

    def _replace_trial(self, r: TrialRecord, status: str, started_at: datetime | None, with_results: bool):
        if status not in STATUSES:
            raise ValueError(f"trial status {status!r} is not one of {', '.join(STATUSES)}")
        training = r.training
        row = [r.id, r.study, r.number, r.run_id, r.method, _dumps(r.params), status, r.failure_reason,
               r.trained, _ts(started_at), _ts(r.finished_at), r.device, r.peak_memory_mb, r.train_seconds,
               r.eval_seconds, r.objective, r.feasible, self._stored_path(r.artifact_path), _dumps(r.provenance),
               training and training.steps, training and training.stopped_by, training and training.examples,
               training and training.examples_per_step, training and _dumps(training.loss_curve),
               training and _dumps(training.dev_curve), _dumps(list(r.shots)), r.include_contract,
               _dumps(r.constraints), _dumps({split: report.to_json() for split, report in r.label_reports.items()}),
               None if r.hosted is None else _dumps(dataclasses.asdict(r.hosted)), _dumps(r.phase_seconds),
               training and training.planned_steps, _record(r.engine), _record(r.serving), r.stats_rules,
               training and training.step_seconds, _record(r.prompt_search),
               None if r.weights_sha256 is None else _dumps(r.weights_sha256)]  # fmt: skip
        metrics = [[r.id, m.split, m.name, m.value, m.low, m.high, m.n] for m in r.metrics] if with_results else []
        throughput = [[r.id, split, t.examples, t.seconds, t.batch_size, t.prompt_tokens, t.completion_tokens,
                       _dumps([list(b) for b in t.batches]) if t.batches else None, t.others_cpu_share]
                      for split, t in r.throughput.items()] if with_results else []
        examples = [
            [r.id, e.split, e.example_id, e.input, e.target, e.output, e.prompt_tokens, e.completion_tokens,
             e.latency_s, _dumps(e.scores), e.error]
            for e in (r.examples if with_results else [])
        ]  # fmt: skip

        def write(c: duckdb.DuckDBPyConnection) -> None:
            if not with_results:
                taken = c.execute("SELECT run_id, status FROM trials WHERE id = ?", [r.id]).fetchone()
                if taken is not None and taken[0] != r.run_id:
                    raise TrialIdTaken(f"trial {r.id} is already in {self.path} ({taken[1]}, run {taken[0]}); a new "
                                       "trial may not take its id. Pass --study NEW_NAME for a separate study.")
            if started_at is None:  # keep the start time recorded by record_trial_start
                prev = c.execute("SELECT started_at FROM trials WHERE id = ?", [r.id]).fetchone()
                row[_TRIAL_COLUMNS.index("started_at")] = prev[0] if prev else None
            for table, key in _PER_TRIAL_TABLES:
                c.execute(f"DELETE FROM {table} WHERE {key} = ?", [r.id])  # fixed identifiers only
            c.execute(_INSERT_TRIAL, row)
            for statement, rows in ((_INSERT_METRIC, metrics), (_INSERT_THROUGHPUT, throughput)):
                if rows:
                    c.executemany(statement, rows)
            _insert_examples(c, examples)
            if with_results:
                write_seal(c, r.id)

        self._write(write)

    def mark_trial_failed(self, trial_id: str, reason: str, status: str = "failed",
                          hosted: HostedUsage | None = None, ended_at: datetime | None = None) -> None:
        """Record why a trial did not complete (status failed or pruned); its finished_at is `ended_at` (a dead
        worker's last sign of life), else now. A hosted arm that stopped passes what it had spent, so the sweep's
        cost still counts it."""
        if status not in ("failed", "pruned"):
            raise ValueError(f"mark_trial_failed status must be 'failed' or 'pruned', not {status!r}")
        spent = None if hosted is None else _dumps(dataclasses.asdict(hosted))

        def write(c: duckdb.DuckDBPyConnection) -> None:
            c.execute("UPDATE trials SET status = ?, failure_reason = ?, finished_at = ?, hosted = coalesce(?, hosted)"
                      " WHERE id = ?", [status, reason, _now() if ended_at is None else _naive_utc(ended_at),
                                        spent, trial_id])
            write_seal(c, trial_id)

        self._write(write)

    def note_rerun(self, trial_id: str, rerun_id: str) -> None:
        """Say, in the reason of a trial an interruption stopped, which trial runs its configuration again; its
        status and times stay as they were."""
        self._write(lambda c: c.execute(
            "UPDATE trials SET failure_reason = coalesce(failure_reason, 'interrupted') || ? WHERE id = ?",
            [f"; re-run as {rerun_id}", trial_id],
        ))  # fmt: skip

    def merge(self, source: Store) -> MergeReport:
        """Copy into this database the studies, runs and finished trials of `source` (another worker's database)
        that it lacks, each trial with its metrics, throughput and examples, in one transaction. A trial this
        database holds as running but `source` finished is replaced; trials still running in `source` are left
        out. Adapter weights stay where they are; the caller copies the folders of the trials reported. A study's
        suite recorded relative to the worker's database (`_stored_suite_path`) then reads from this database's
        project: workers of one study run the same project layout, and the suite's version and files are checked
        wherever it is read."""
        if source.path.resolve() == self.path.resolve():
            raise HarnessError(f"{source.path} is this results database; give another worker's database.")
        if not source.path.is_file():
            raise HarnessError(f"no results database at {source.path}; give a worker's harness.duckdb (or its "
                               "results folder).")
        with open(source.path, "rb") as fh:
            if fh.read(12)[8:] != b"DUCK":  # DuckDB's magic bytes; anything else is the wrong file, not a damaged one
                raise HarnessError(f"{source.path} is not a results database (not a DuckDB file); nothing was merged. "
                                   "Give a worker's results folder, or the harness.duckdb in it.")
        with tempfile.TemporaryDirectory(prefix="harness-merge-") as scratch:
            # an older worker's file is read from a copy upgraded here: merge writes nothing in the worker's folder,
            # whose own release would refuse a file upgraded under it
            return self._merge_from(source.read_as_upgraded(Path(scratch)), source)

    def _merge_from(self, source: Store, named: Store) -> MergeReport:
        """`merge`, from `source` (current schema); `named` is the file as the user gave it, for messages."""
        report = MergeReport([], [])

        def write(c: duckdb.DuckDBPyConnection) -> None:
            c.execute("ATTACH ? AS src (READ_ONLY)", [str(source.path.resolve())])
            try:
                _refuse_other_studies(c, named.path, self.path)
                c.execute("INSERT INTO studies BY NAME SELECT * FROM src.studies"
                          " WHERE study NOT IN (SELECT study FROM studies)")
                c.execute("INSERT INTO runs BY NAME SELECT * FROM src.runs"
                          " WHERE run_id NOT IN (SELECT run_id FROM runs)")
                c.execute("CREATE TEMP TABLE merging AS SELECT s.id, s.artifact_path FROM src.trials s"
                          " LEFT JOIN trials t ON t.id = s.id"
                          " WHERE s.status <> 'running' AND (t.id IS NULL OR t.status = 'running')")
                rows = c.execute("SELECT id, artifact_path FROM merging ORDER BY id").fetchall()
                report.running.extend(row[0] for row in c.execute(
                    "SELECT s.id FROM src.trials s LEFT JOIN trials t ON t.id = s.id"
                    " WHERE s.status = 'running' AND t.id IS NULL ORDER BY s.id").fetchall())
                report.trials.extend(row[0] for row in rows)
                report.artifacts.extend(row[1] for row in rows if row[1] and not Path(row[1]).is_absolute())
                report.events_left, report.looks_left = c.execute(
                    "SELECT (SELECT count(*) FROM src.adapter_events WHERE trial_id IN (SELECT id FROM merging)),"
                    " (SELECT count(*) FROM src.looks_at_test WHERE candidate IN (SELECT id FROM merging))"
                ).fetchone()
                for table, key in _PER_TRIAL_TABLES:
                    c.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT id FROM merging)")
                for table, key in _PER_TRIAL_TABLES:  # no foreign keys: any order
                    c.execute(f"INSERT INTO {table} BY NAME SELECT * FROM src.{table}"
                              f" WHERE {key} IN (SELECT id FROM merging)")
                c.execute("DROP TABLE merging")
            finally:
                c.execute("DETACH src")

        self._write(write)
        return report

    def set_artifact_path(self, trial_id: str, path: str | os.PathLike | None) -> None:
        value = self._stored_path(path)
        self._write(lambda c: c.execute("UPDATE trials SET artifact_path = ? WHERE id = ?", [value, trial_id]))

    def record_importance(self, study: str, importance: dict[str, dict[str, float]]) -> None:
        """Replace the study's parameter importance: {method: {parameter: share of variance}}."""
        now = _now()
        rows = [[study, method, name, float(value), now] for method, values in importance.items()
                for name, value in values.items()]

        def write(c: duckdb.DuckDBPyConnection) -> None:
            c.execute("DELETE FROM parameter_importance WHERE study = ?", [study])
            if rows:
                c.executemany("INSERT INTO parameter_importance VALUES (?, ?, ?, ?, ?)", rows)

        self._write(write)

    def record_adapter_events(self, events: Iterable[AdapterEvent], look: LookAtTest | None = None,
                              production_was: tuple[str, str | None] | None = None) -> None:
        """Append registry events in one transaction (a promotion and the retirement it causes land together), with
        the gate's `look` at test that let them through, so a promotion is never recorded without its look or a look
        as "overridden" for a promotion that never happened. Refuses, writing nothing, when they would leave a suite
        with two production adapters, or when `production_was` (suite, its production adapter as the caller read it
        before deciding) is no longer so: another promote or rollback changed it meanwhile."""
        events = list(events)
        if look is not None:
            _check_look(look)

        def write(c: duckdb.DuckDBPyConnection) -> None:
            if production_was is not None:
                suite, seen = production_was
                now = next(iter(_in_production(c, suite)), None)
                if now != seen:
                    raise ProductionMoved(suite, seen, now)
            if look is not None:
                _insert_look(c, look)
            now, account = _now(), os_account()  # who wrote it, beside the actor named (see core/identity.py)
            head = c.execute("SELECT chain_sha256 FROM adapter_events ORDER BY id DESC LIMIT 1").fetchone()
            previous = GENESIS if head is None else head[0]
            for e in events:
                if e.status not in ADAPTER_STATUSES:
                    raise ValueError(f"adapter status {e.status!r} is not one of {', '.join(ADAPTER_STATUSES)}")
                written = _rows(c.execute(
                    "INSERT INTO adapter_events (trial_id, suite, status, previous, action, actor, note, forced, gate,"
                    " detail, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                    [e.trial_id, e.suite, e.status, e.previous, e.action, e.actor, e.note, e.forced,
                     None if e.gate is None else _dumps(e.gate), _dumps({**(e.detail or {}), "os_account": account}),
                     now]))[0]
                # chained on the row as stored, so the hash reads what every later reader reads
                previous = link(previous or GENESIS, written)
                c.execute("UPDATE adapter_events SET chain_sha256 = ? WHERE id = ?", [previous, written["id"]])
            for suite in {e.suite for e in events}:
                live = _in_production(c, suite)
                if len(live) > 1:
                    raise HarnessError(f"suite {suite} would have {len(live)} production adapters ({', '.join(live)}); "
                                       "a suite has at most one. Nothing was recorded.")

        self._write(write)

    def record_look(self, look: LookAtTest) -> None:
        """Append one look at test (a gate evaluation, a compare on test, a re-check)."""
        _check_look(look)
        self._write(lambda c: _insert_look(c, look))

    def record_audit_pack(self, pack: AuditPackRecord) -> None:
        """Keep the manifest hash of a pack just written, for `audit --verify` to check the pack against later."""
        self._write(lambda c: c.execute(
            "INSERT INTO audit_packs (trial_id, suite, folder, manifest_sha256, actor, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [pack.trial_id, pack.suite, pack.folder, pack.manifest_sha256, pack.actor, _now()]))

    def _stored_path(self, path: str | os.PathLike | None) -> str | None:
        """Relative to the database's folder when inside it (the results folder can move), else absolute."""
        if path is None:
            return None
        absolute = Path(path).resolve()
        home = self.path.parent.resolve()
        return absolute.relative_to(home).as_posix() if absolute.is_relative_to(home) else str(absolute)

    def _stored_suite_path(self, path: str | None) -> str | None:
        """Relative to the database's folder when the suite lies in the project folder above it (`results/..`, where
        `harness init` puts suites/), else absolute. A project copied or moved with its suites then reads its own
        copy: an absolute path would keep reading, and checking, the original's files while they exist."""
        if not path:
            return path
        absolute, project = Path(path).resolve(), self.path.parent.resolve().parent
        if not absolute.is_relative_to(project) or project == Path(project.anchor):
            return str(absolute)
        return os.path.relpath(absolute, self.path.parent.resolve())

    def _study(self, row: dict) -> StudyView:
        suite_path = row["suite_path"]
        if suite_path and not Path(suite_path).is_absolute():
            suite_path = str((self.path.parent.resolve() / suite_path).resolve())
        return _study_view({**row, "suite_path": suite_path})

    # -- reads -----------------------------------------------------------------------------------------

    def studies(self) -> list[StudyView]:
        return self._read(lambda c: [self._study(r) for r in _rows(c.execute("SELECT * FROM studies ORDER BY study"))],
                          [])

    def study(self, name: str) -> StudyView | None:
        rows = self._read(lambda c: _rows(c.execute("SELECT * FROM studies WHERE study = ?", [name])), [])
        return self._study(rows[0]) if rows else None

    def followups(self, study: str) -> dict[str, StudyView]:
        """The follow-up studies of a sweep study, by kind (`seeds`, `curve`)."""
        rows = self._read(lambda c: _rows(c.execute("SELECT * FROM studies WHERE parent_study = ?", [study])), [])
        return {row["kind"]: self._study(row) for row in rows}

    def run(self, run_id: str) -> RunView | None:
        rows = self._read(lambda c: _rows(c.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])), [])
        return _run(rows[0]) if rows else None

    def runs(self, run_ids: Iterable[str]) -> dict[str, RunView]:
        wanted = sorted(set(run_ids))
        rows = self._read(lambda c: _rows(c.execute("SELECT * FROM runs WHERE list_contains(?, run_id)",
                                                    [wanted])), [])
        return {row["run_id"]: _run(row) for row in rows}

    def trials(self, study: str | None = None) -> list[TrialView]:
        """Trials ordered by study and number, with their metrics and throughput."""

        def read(c: duckdb.DuckDBPyConnection) -> list[TrialView]:
            # One connection, so trials, metrics and throughput come from the same committed snapshot.
            cond, args = ("", []) if study is None else ("WHERE t.study = ?", [study])
            trials = _rows(c.execute(
                f"SELECT t.*, coalesce(s.maximize, true) AS maximize FROM trials t LEFT JOIN studies s"
                f" ON s.study = t.study {cond} ORDER BY t.study, t.number", args))  # fmt: skip
            metrics = _rows(c.execute(
                f"SELECT m.* FROM metrics m JOIN trials t ON m.trial_id = t.id {cond} ORDER BY m.split, m.name", args))
            throughput = _rows(c.execute(
                f"SELECT p.* FROM throughput p JOIN trials t ON p.trial_id = t.id {cond}", args))
            return self._assemble(trials, metrics, throughput)

        return self._read(read, [])

    def trial(self, trial_id: str) -> TrialView | None:
        def read(c: duckdb.DuckDBPyConnection) -> list[TrialView]:
            trials = _rows(c.execute("SELECT t.*, coalesce(s.maximize, true) AS maximize FROM trials t LEFT JOIN "
                                     "studies s ON s.study = t.study WHERE t.id = ?", [trial_id]))
            metrics = _rows(c.execute("SELECT * FROM metrics WHERE trial_id = ? ORDER BY split, name", [trial_id]))
            throughput = _rows(c.execute("SELECT * FROM throughput WHERE trial_id = ?", [trial_id]))
            return self._assemble(trials, metrics, throughput)

        found = self._read(read, [])
        return found[0] if found else None

    def require_trial(self, given: str, complete: bool = False) -> TrialView:
        """The trial named STUDY/NUMBER (or NUMBER when the database holds one sweep study), or a HarnessError
        that says what exists; with `complete`, also refuse a trial that did not complete."""
        if "/" not in given:
            sweeps = [s.name for s in self.studies() if s.kind == "sweep"]
            if len(sweeps) != 1 or not given.isdigit():
                raise HarnessError(f"{given!r} is not a trial id: give STUDY/NUMBER (studies: "
                                   f"{', '.join(sweeps) or 'none'}).")
            given = trial_id(sweeps[0], int(given))
        try:
            split_trial_id(given)
        except ValueError:
            raise HarnessError(f"{given!r} is not a trial id: give STUDY/NUMBER, e.g. demo/2.") from None
        if not self.path.exists():  # run from another folder: "no trial" would hide that nothing was read
            raise HarnessError(f"no results database at {self.path}, so no trial {given!r}: run this in the project "
                               "folder whose results/ holds it, or pass --db (its harness.duckdb, or the results "
                               "folder holding it).")
        found = self.trial(given)
        if found is None:
            raise HarnessError(f"no trial {given!r} in {self.path}; list them with `harness trials`.")
        if complete and not found.complete:
            reason = f" ({found.failure_reason})" if found.failure_reason else ""
            raise HarnessError(f"trial {given} is {found.status}{reason}; this needs a complete trial. Pick one from "
                               f"`harness trials`, or {_finishing(found)}.")
        return found

    def examples(self, trial_id: str, split: str | None = None) -> list[ExampleView]:
        """A trial's per-example outputs and scores, ordered by split and example id."""
        cond, args = ("", [trial_id]) if split is None else (" AND split = ?", [trial_id, split])
        rows = self._read(lambda c: _rows(c.execute(
            f"SELECT * FROM examples WHERE trial_id = ?{cond} ORDER BY split, example_id", args)), [])
        return [ExampleView(r["split"], r["example_id"], r["input"], r["target"], r["output"], r["prompt_tokens"],
                            r["completion_tokens"], r["latency_s"], _loads(r["scores"], {}), r["error"]) for r in rows]

    def adapter_events(self, trial_id: str | None = None, suite: str | None = None) -> list[AdapterEvent]:
        """The registry's history, oldest first, for one adapter or one suite (or all)."""
        conds, args = [], []
        for column, value in (("trial_id", trial_id), ("suite", suite)):
            if value is not None:
                conds.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        rows = self._read(lambda c: _rows(c.execute(f"SELECT * FROM adapter_events {where} ORDER BY id", args)), [])
        return [AdapterEvent(r["trial_id"], r["suite"], r["status"], r["previous"], r["action"], r["actor"],
                             r["note"], bool(r["forced"]), _loads(r["gate"]), _loads(r["detail"]),
                             _aware(r["recorded_at"]))
                for r in rows]

    def looks(self, suite: str | None = None, kind: str | None = None, reference: str | None = None,
              subset: str | None = None) -> list[LookAtTest]:
        """Every recorded look at test, oldest first, optionally of one suite, kind, reference or test subset."""
        conds, args = [], []
        for column, value in (("suite", suite), ("kind", kind), ("reference", reference), ("subset", subset)):
            if value is not None:
                conds.append(f"{column} = ?")  # fixed identifiers only
                args.append(value)
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        rows = self._read(lambda c: _rows(c.execute(f"SELECT * FROM looks_at_test {where} ORDER BY id", args)), [])
        return [LookAtTest(r["kind"], r["suite"], r["subset"], r["candidate"], r["reference"], r["metric"],
                           _loads(r["rule"], {}), r["outcome"], r["actor"], _loads(r["detail"]),
                           _aware(r["recorded_at"])) for r in rows]

    def audit_packs(self, trial_id: str | None = None) -> list[AuditPackRecord]:
        """Every audit pack written from this database, oldest first, or those of one adapter."""
        where, args = ("WHERE trial_id = ?", [trial_id]) if trial_id is not None else ("", [])
        rows = self._read(lambda c: _rows(c.execute(f"SELECT * FROM audit_packs {where} ORDER BY id", args)), [])
        return [AuditPackRecord(r["trial_id"], r["suite"], r["folder"], r["manifest_sha256"], r["actor"],
                                _aware(r["recorded_at"])) for r in rows]

    def seals(self, trial_ids: Iterable[str] | None = None) -> list[SealCheck]:
        """Each trial's seal checked against its rows as they stand (`store/seal.py`): every trial, or those named."""
        return self._read(lambda c: check_seals(c, trial_ids), [])

    def registry_chain(self) -> ChainCheck:
        """The registry's hash chain, recomputed over every event (`store/chain.py`)."""
        return self._read(lambda c: check_chain(_rows(c.execute("SELECT * FROM adapter_events ORDER BY id"))),
                          check_chain([]))

    def adapter_statuses(self, suite: str | None = None) -> dict[str, str]:
        """Trial id -> its current registry status, for the adapters that have a history."""
        return self._read(lambda c: _latest_statuses(c, suite), {})

    def production(self, suite: str) -> str | None:
        """The suite's production adapter (trial id), if any."""
        return self._read(lambda c: next(iter(_in_production(c, suite)), None), None)

    def importance(self, study: str) -> dict[str, dict[str, float]]:
        rows = self._read(lambda c: c.execute(
            "SELECT method, parameter, importance FROM parameter_importance WHERE study = ?"
            " ORDER BY method, importance DESC", [study]).fetchall(), [])
        out: dict[str, dict[str, float]] = {}
        for method, name, value in rows:
            out.setdefault(method, {})[name] = value
        return out

    def _assemble(self, trials: Iterable[dict], metrics: Iterable[dict], throughput: Iterable[dict]) -> list[TrialView]:
        by_trial: dict[str, dict[str, dict[str, Metric]]] = {}
        for m in metrics:
            by_trial.setdefault(m["trial_id"], {}).setdefault(m["split"], {})[m["name"]] = Metric(
                m["value"], m["low"], m["high"], m["n"])
        speeds: dict[str, dict[str, Throughput]] = {}
        for p in throughput:
            speeds.setdefault(p["trial_id"], {})[p["split"]] = Throughput(
                p["examples"], p["seconds"], p["batch_size"], p["prompt_tokens"], p["completion_tokens"],
                tuple((int(tokens), float(seconds)) for tokens, seconds in _loads(p["batches"], [])),
                p["others_cpu_share"])
        return [self._trial(t, by_trial.get(t["id"], {}), speeds.get(t["id"], {})) for t in trials]

    def _trial(self, t: dict, metrics: dict, throughput: dict) -> TrialView:
        training = None if t["train_steps"] is None else TrainingSummary(
            t["train_steps"], t["stopped_by"], t["train_examples"], t["examples_per_step"], _pairs(t["loss_curve"]),
            _pairs(t["dev_curve"]), t["planned_steps"], t["step_seconds"])
        artifact = None if t["artifact_path"] is None else self.path.parent.resolve() / t["artifact_path"]
        return TrialView(
            id=t["id"], study=t["study"], number=t["number"], run_id=t["run_id"], method=t["method"],
            params=_loads(t["params"], {}), status=t["status"], failure_reason=t["failure_reason"],
            trained=bool(t["trained"]), started_at=_aware(t["started_at"]), finished_at=_aware(t["finished_at"]),
            device=t["device"], peak_memory_mb=t["peak_memory_mb"], train_seconds=t["train_seconds"],
            eval_seconds=t["eval_seconds"], objective=t["objective"], feasible=t["feasible"],
            maximize=bool(t["maximize"]), artifact_path=artifact, training=training,
            shots=tuple(_loads(t["shots"], [])), include_contract=t["include_contract"],
            constraints=_loads(t["constraints"], {}), label_reports=_label_reports(t["label_reports"]),
            throughput=throughput, hosted=None if t["hosted"] is None else HostedUsage(**_loads(t["hosted"])),
            phase_seconds=_loads(t["phase_seconds"], {}), metrics=metrics, provenance=_loads(t["details"], {}),
            engine=_typed(EngineInfo, t["engine"]), serving=_typed(ServingLoad, t["serving"]),
            prompt_search=_typed(PromptSearch, t["prompt_search"]), stats_rules=t["stats_rules"],
            weights_sha256=_loads(t["weights_sha256"]),
        )  # fmt: skip


def _insert_examples(c: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    """Insert a trial's example rows as one scan of column arrays: `executemany` binds them one row at a time,
    about 0.7 ms each, so a trial with 7,500 examples spent 5 s in its write transaction, holding the file lock.
    Object arrays keep each value as Python gave it, and the INSERT casts them to the columns' types as a
    parameter would be cast."""
    if not rows:
        return
    columns = {name: np.fromiter((row[i] for row in rows), dtype=object, count=len(rows))
               for i, name in enumerate(_EXAMPLE_COLUMNS)}
    c.register("incoming_examples", columns)
    try:
        c.execute(_INSERT_EXAMPLES)
    finally:
        c.unregister("incoming_examples")


def _in_production(conn: duckdb.DuckDBPyConnection, suite: str) -> list[str]:
    """The suite's adapters whose latest status is production: one, or none (two only inside a write it refuses)."""
    return [t for t, s in _latest_statuses(conn, suite).items() if s == "production"]


def _latest_statuses(conn: duckdb.DuckDBPyConnection, suite: str | None) -> dict[str, str]:
    cond, args = ("WHERE suite = ?", [suite]) if suite is not None else ("", [])
    rows = conn.execute(f"SELECT trial_id, status FROM adapter_events {cond} ORDER BY id", args).fetchall()
    return dict(rows)  # later events overwrite earlier ones


def _finishing(trial: TrialView) -> str:
    """How a trial that did not complete could: a sweep re-run resumes what an interruption stopped, but a trial
    that failed on its own error is counted, and the same configuration would fail the same way."""
    if trial.status == "running" or (trial.failure_reason or "").startswith("interrupted"):
        return "re-run the sweep to finish it"
    if (twin := duplicate_of(trial.failure_reason)) is not None:  # its configuration ran, as the trial it repeats
        return f"use {twin}, which ran its configuration"
    if trial.status == "pruned":
        return "train its configuration in a new study with pruning off (`--set pruning.enabled=false`)"
    return ("fix what its reason names, then train the configuration in a new study (`harness sweep EXPERIMENT "
            "--study NEW_NAME`): re-running this study does not run a failed trial again")


def _pending_migrations(conn: duckdb.DuckDBPyConnection) -> list[str] | None:
    """Names not yet applied to this file; None for a file that holds no results database at all. UnknownMigrations
    for a file a newer harness wrote, before any upgrade writes to it."""
    found = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = '_migrations'").fetchone()[0]
    if not found:
        return None
    done = applied(conn, create=False)
    check_known(done)
    return [name for name, _ in MIGRATIONS if name not in done]


_FACTS = {"model_sha256": "model sha256", "model_name": "model", "data": "`data`", "seed": "`seed`"}
"""How `study_conflict` names the facts of `study_setup`."""

def _study_view(row: dict) -> StudyView:
    return StudyView(
        name=row["study"], experiment_name=row["experiment_name"], experiment=_loads(row["experiment"], {}),
        suite=row["suite"], suite_version=row["suite_version"], suite_path=row["suite_path"],
        model_name=row["model_name"], model_sha256=row["model_sha256"], model_note=row["model_note"],
        objective_metric=row["objective_metric"], maximize=bool(row["maximize"]), kind=row["kind"],
        parent=row["parent_study"], created_at=_aware(row["created_at"]), notes=_loads(row["notes"], {}),
    )  # fmt: skip


def _run(row: dict) -> RunView:
    return RunView(row["run_id"], row["study"], _aware(row["started_at"]), row["pid"], row["host"], row["device"],
                   row["device_name"], row["cpu_count"], _loads(row["environment"], {}))


def _refuse_other_studies(c: duckdb.DuckDBPyConnection, source: Path, target: Path) -> None:
    """Workers of one study never finish the same trial twice, so a trial finished in both databases from another
    run (or at another time) means two different studies that share a name, e.g. a sweep run on its own in each
    folder: merging would keep this database's trial and silently drop the other's."""
    clash = c.execute("SELECT s.id, s.run_id, s.started_at, t.run_id, t.started_at FROM src.trials s"
                      " JOIN trials t ON t.id = s.id WHERE s.status <> 'running' AND t.status <> 'running'"
                      " AND (s.run_id IS DISTINCT FROM t.run_id OR s.started_at IS DISTINCT FROM t.started_at)"
                      " ORDER BY s.id LIMIT 1").fetchone()
    if clash:
        trial, their_run, their_start, our_run, our_start = clash
        study = trial.split("/", 1)[0]
        # the run and start tell them apart; the parameters of two such trials are often the same
        raise HarnessError(
            f"{source} holds another study named {study}: its trial {trial} (run {their_run}, started "
            f"{_when(their_start)}) is not the {trial} of {target} (run {our_run}, started {_when(our_start)}), so "
            f"merging would drop it; nothing was merged. `harness merge` joins the workers of "
            f"one study (each `harness worker` with the same --storage). Keep the two apart (`--db` another file), "
            f"or re-run one of them under its own name (`--study NAME`).")


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "at a time not recorded"
