"""Named, append-only schema migrations for the results database.

Why named and append-only: a results file outlives the code that wrote it, so each schema change is a new
entry at the end of MIGRATIONS (never edit or reorder a released one). Each applied name is recorded in
`_migrations`, so applying again is a no-op and an old file is brought up to date on its next write.
An entry is `(name, sql)` or `(name, function(conn))` for changes SQL alone cannot express.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from statistics import NormalDist

import duckdb

from harness.core.errors import HarnessError
from harness.store.chain import relink
from harness.store.seal import reseal

Migration = tuple[str, "str | Callable[[duckdb.DuckDBPyConnection], None]"]

M001_INITIAL = """
CREATE TABLE studies (
    study VARCHAR PRIMARY KEY,
    experiment_name VARCHAR,
    experiment JSON,            -- the resolved experiment config
    suite VARCHAR,
    suite_version VARCHAR,
    model_name VARCHAR,
    model_sha256 VARCHAR,
    model_note VARCHAR,
    created_at TIMESTAMP,       -- UTC
    notes JSON                  -- e.g. {"skipped_methods": {"qlora": "needs CUDA ..."}}
);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    study VARCHAR,
    started_at TIMESTAMP,
    pid INTEGER,
    host VARCHAR,
    environment JSON            -- library versions, git commit, device, model and data hashes
);
CREATE TABLE trials (
    id VARCHAR PRIMARY KEY,     -- "<study>/<number>"
    study VARCHAR,
    number INTEGER,
    run_id VARCHAR,
    method VARCHAR,
    params JSON,
    status VARCHAR,             -- running | complete | pruned | failed
    failure_reason VARCHAR,
    trained BOOLEAN,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    device VARCHAR,
    peak_memory_mb DOUBLE,
    train_seconds DOUBLE,
    eval_seconds DOUBLE,
    objective DOUBLE,
    feasible BOOLEAN,
    artifact_path VARCHAR,
    details JSON
);
CREATE TABLE metrics (
    trial_id VARCHAR,
    split VARCHAR,              -- dev | test | regression
    name VARCHAR,
    value DOUBLE,
    low DOUBLE,
    high DOUBLE,
    n INTEGER,
    PRIMARY KEY (trial_id, split, name)
);
CREATE TABLE examples (
    trial_id VARCHAR,
    split VARCHAR,
    example_id VARCHAR,
    input VARCHAR,
    target VARCHAR,
    output VARCHAR,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s DOUBLE,
    scores JSON,
    PRIMARY KEY (trial_id, split, example_id)
);
"""


def m002_trial_facts_as_columns(conn: duckdb.DuckDBPyConnection) -> None:
    """Facts that readers query move out of `trials.details` into columns and a `throughput` table.

    Moved: training steps, what stopped it, examples and examples per step, the loss and dev-probe curves, the
    few-shot ids, whether the prompt stated the contract, the constraints, the label reports (per split) and the
    measured throughput (per split). `details` keeps the rest (provenance). Runs get their device as columns.
    Constraints follow the rule that an unmeasured one is null: the regression constraint of a trial whose
    regression_delta has n=0, and the hallucination constraint v1 wrote as exactly 0.0 for free-text suites.
    """
    for column, kind in (("train_steps", "INTEGER"), ("stopped_by", "VARCHAR"), ("train_examples", "INTEGER"),
                         ("examples_per_step", "INTEGER"), ("loss_curve", "JSON"), ("dev_curve", "JSON"),
                         ("shots", "JSON"), ("include_contract", "BOOLEAN"), ("constraints", "JSON"),
                         ("label_reports", "JSON")):
        conn.execute(f"ALTER TABLE trials ADD COLUMN {column} {kind}")  # fixed identifiers only
    conn.execute("""
        CREATE TABLE throughput (
            trial_id VARCHAR,
            split VARCHAR,              -- dev | test
            examples INTEGER,
            seconds DOUBLE,             -- wall seconds generating the split
            batch_size INTEGER,
            prompt_tokens BIGINT,
            completion_tokens BIGINT,
            PRIMARY KEY (trial_id, split)
        )""")
    for column, kind in (("device", "VARCHAR"), ("device_name", "VARCHAR"), ("cpu_count", "INTEGER")):
        conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
    unmeasured = {(t, s) for t, s in conn.execute(
        "SELECT trial_id, name FROM metrics WHERE split = 'dev' AND n = 0").fetchall()}
    for trial, details in conn.execute("SELECT id, details FROM trials").fetchall():
        d = json.loads(details) if details else {}
        training = d.pop("training", None) or {}
        setup = d.get("experiment_training") or {}
        constraints = d.pop("constraints", None) or {}
        if (trial, "regression_delta") in unmeasured and "regression_delta" in constraints:
            constraints["regression_delta"] = None
        if (trial, "hallucination_rate") in unmeasured and constraints.get("hallucination_rate") == 0.0:
            constraints["hallucination_rate"] = None
        labels = d.pop("labels", None) or {}
        for split, ev in (d.pop("evaluation", None) or {}).items():
            conn.execute("INSERT INTO throughput VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [trial, split, ev.get("examples"), ev.get("seconds"), ev.get("batch_size"),
                          ev.get("prompt_tokens"), ev.get("completion_tokens")])
        conn.execute(
            "UPDATE trials SET train_steps = ?, stopped_by = ?, train_examples = ?, examples_per_step = ?,"
            " loss_curve = ?, dev_curve = ?, shots = ?, include_contract = ?, constraints = ?, label_reports = ?,"
            " details = ? WHERE id = ?",
            [training.get("steps"), training.get("stopped_by"), training.get("examples"),
             setup.get("batch_size", 8) * setup.get("gradient_accumulation", 1) if training else None,
             json.dumps(training["loss_curve"]) if training else None,
             json.dumps(training.get("dev_curve") or []) if training else None,
             json.dumps(d.pop("shots", None) or []), d.pop("include_contract", None),
             json.dumps(constraints), json.dumps({k: v for k, v in labels.items() if v}), json.dumps(d), trial])
    for run, environment in conn.execute("SELECT run_id, environment FROM runs").fetchall():
        env = json.loads(environment) if environment else {}
        conn.execute("UPDATE runs SET device = ?, device_name = ?, cpu_count = ? WHERE run_id = ?",
                     [env.get("device"), env.get("device_name"), env.get("cpu_count"), run])


def m003_study_links_and_direction(conn: duckdb.DuckDBPyConnection) -> None:
    """Studies know their objective and its direction, where their suite lives, and (follow-ups) their parent.

    v1 named follow-up studies `<study>+seeds` and `<study>+curve` without a studies row; each gets one now,
    copied from its parent, with `kind` and `parent_study` set. v1 maximised every objective; the direction is
    now the metric's own (of v1's metrics only hallucination_rate is lower-is-better).
    """
    for column, kind in (("kind", "VARCHAR"), ("parent_study", "VARCHAR"), ("objective_metric", "VARCHAR"),
                         ("maximize", "BOOLEAN"), ("suite_path", "VARCHAR")):
        conn.execute(f"ALTER TABLE studies ADD COLUMN {column} {kind}")
    conn.execute("UPDATE studies SET kind = 'sweep', objective_metric = coalesce("
                 "json_extract_string(experiment, '$.objective.metric'), 'task_accuracy')")
    conn.execute("UPDATE studies SET maximize = objective_metric <> 'hallucination_rate'")
    known = {row[0] for row in conn.execute("SELECT study FROM studies").fetchall()}
    orphans = [row[0] for row in conn.execute("SELECT DISTINCT study FROM trials").fetchall() if row[0] not in known]
    for study in orphans:
        parent, _, kind = study.rpartition("+")
        if kind in ("seeds", "curve") and parent in known:
            conn.execute(
                "INSERT INTO studies SELECT ?, experiment_name, experiment, suite, suite_version, model_name,"
                " model_sha256, model_note, created_at, notes, ?, ?, objective_metric, maximize, suite_path"
                " FROM studies WHERE study = ?", [study, kind, parent, parent])


M004_UNMEASURED_IS_NULL = """
-- v1 stored a regression_delta it did not measure (prompting, or the check turned off) as value 0.0 with n=0,
-- which reads as "no forgetting". n=0 means not measured: the value and interval are null.
UPDATE metrics SET value = NULL, low = NULL, high = NULL WHERE n = 0 AND value IS NOT NULL;
"""


def m005_artifact_paths_relative_to_database(conn: duckdb.DuckDBPyConnection) -> None:
    """Saved adapters are found from the database's own folder, so results stay usable from any working folder.

    v1 stored `<results_dir>/artifacts/...` relative to the folder the sweep ran in; with the database in
    results_dir (the default), that prefix is dropped. Absolute paths inside the database's folder become relative;
    anything else is kept as it was.
    """
    database = Path(conn.execute("SELECT file FROM pragma_database_list WHERE name = current_database()")
                    .fetchone()[0] or "")
    home = database.parent.resolve() if database.name else None
    rows = conn.execute(
        "SELECT t.id, t.artifact_path, json_extract_string(s.experiment, '$.results_dir') FROM trials t"
        " LEFT JOIN studies s ON s.study = t.study WHERE t.artifact_path IS NOT NULL").fetchall()
    for trial, stored, results_dir in rows:
        path = Path(stored)
        if path.is_absolute():
            if home is None or not path.resolve().is_relative_to(home):
                continue
            relative = path.resolve().relative_to(home)
        elif results_dir and not Path(results_dir).is_absolute() and path.is_relative_to(results_dir):
            relative = path.relative_to(results_dir)
        else:
            continue
        conn.execute("UPDATE trials SET artifact_path = ? WHERE id = ?", [relative.as_posix(), trial])


M006_PARAMETER_IMPORTANCE = """
-- fANOVA importance per method and parameter, computed by the sweep from its Optuna study, so that readers
-- (the dashboard) need neither Optuna nor the sweep's storage.
CREATE TABLE parameter_importance (
    study VARCHAR,
    method VARCHAR,
    parameter VARCHAR,
    importance DOUBLE,
    computed_at TIMESTAMP,
    PRIMARY KEY (study, method, parameter)
);
"""

M007_HOSTED_ARMS = """
-- Hosted arms (the `api` method): per example, why an endpoint gave no answer; per trial, what it asked and spent.
ALTER TABLE examples ADD COLUMN error VARCHAR;
ALTER TABLE trials ADD COLUMN hosted JSON;
"""

M008_ADAPTER_REGISTRY = """
-- The adapter registry: every status change (and re-check) of an adapter, append-only. An adapter's status is its
-- latest event's; a trained trial with no event is a candidate.
CREATE SEQUENCE adapter_event_ids;
CREATE TABLE adapter_events (
    id BIGINT PRIMARY KEY DEFAULT nextval('adapter_event_ids'),
    trial_id VARCHAR,
    suite VARCHAR,
    status VARCHAR,             -- candidate | staging | production | retired
    previous VARCHAR,
    action VARCHAR,             -- promote | retire | rollback | recheck
    actor VARCHAR,
    note VARCHAR,
    forced BOOLEAN,
    gate JSON,
    detail JSON,
    recorded_at TIMESTAMP       -- UTC
);
"""

M009_PHASE_SECONDS = """
-- Where each trial's time went: {phase: wall seconds} for load, train, dev, test, regression and save.
ALTER TABLE trials ADD COLUMN phase_seconds JSON;
"""

M010_LOOKS_AT_TEST = """
-- Every look at test that could change what gets shipped (gate evaluations, compares on test, re-checks).
CREATE SEQUENCE look_at_test_ids;
CREATE TABLE looks_at_test (
    id BIGINT PRIMARY KEY DEFAULT nextval('look_at_test_ids'),
    kind VARCHAR,               -- gate | compare | recheck
    suite VARCHAR,
    subset VARCHAR,             -- sha256 of the test subset's example ids
    candidate VARCHAR,
    reference VARCHAR,
    metric VARCHAR,
    rule JSON,
    outcome VARCHAR,
    actor VARCHAR,
    detail JSON,
    recorded_at TIMESTAMP       -- UTC
);
"""

M011_PLANNED_STEPS = """
-- The step budget each trained trial had, so one its time cap cut short reads as under-trained.
ALTER TABLE trials ADD COLUMN planned_steps INTEGER;
"""

M012_ENGINE_AND_SERVING = """
-- Which engine generated each trial's answers (name, version, dtype), and the serving engine's load test that
-- prices its queries.
ALTER TABLE trials ADD COLUMN engine JSON;
ALTER TABLE trials ADD COLUMN serving JSON;
"""

def m013_padding_free_as_it_ran(conn: duckdb.DuckDBPyConnection) -> None:
    """A stored experiment whose `training.padding_free` is null gets the value its release resolved null to.

    Releases before 2026-12 allowed null, meaning on with CUDA and off on a CPU; today the key is true or false, so
    every command that rebuilds a study's config (recheck, export, audit, predict) refused such a study. The study
    is marked true only where every one of its runs was on CUDA, as it trained; the trials' provenance keeps the
    null they recorded. Padding-free batches change speed, not losses, so no score reads differently.
    """
    rows = conn.execute(
        "SELECT s.study, s.experiment, list(r.device) FILTER (WHERE r.device IS NOT NULL) FROM studies s"
        " LEFT JOIN runs r ON r.study = s.study"
        " WHERE json_type(s.experiment, '$.training.padding_free') = 'NULL' GROUP BY s.study, s.experiment"
    ).fetchall()
    for study, experiment, devices in rows:
        config = json.loads(experiment)
        config["training"]["padding_free"] = bool(devices) and all(d.startswith("cuda") for d in devices)
        conn.execute("UPDATE studies SET experiment = ? WHERE study = ?", [json.dumps(config), study])


def m014_earlier_gates_are_looks_at_test(conn: duckdb.DuckDBPyConnection) -> None:
    """Gate evaluations and re-checks recorded before `looks_at_test` existed become looks, from the registry's events.

    The gate counts the candidates gated before against the same reference on the same test subset; without this,
    an upgraded database read "no other candidate was gated" while its registry held gate evaluations. Only what the
    registry kept can be recovered: passed and forced gates (a refused gate recorded no event), and re-checks (their
    subset is the trial's own test subset, as a paired re-check reads). The look keeps its event's id.
    """
    since = conn.execute("SELECT applied_at FROM _migrations WHERE name = 'm010_looks_at_test'").fetchone()
    if since is None:
        return
    rows = conn.execute(
        "SELECT e.id, e.trial_id, e.suite, e.status, e.action, e.actor, e.forced, e.gate, e.detail, e.recorded_at,"
        " json_extract_string(t.details, '$.data.subset_sha256.test'), s.objective_metric"
        " FROM adapter_events e LEFT JOIN trials t ON t.id = e.trial_id LEFT JOIN studies s ON s.study = t.study"
        " WHERE e.recorded_at < ? AND ((e.action = 'promote' AND e.gate IS NOT NULL) OR e.action = 'recheck')"
        " ORDER BY e.id", [since[0]]).fetchall()
    for event, trial, suite, status, action, actor, forced, gate, detail, at, subset, metric in rows:
        look = _gate_look(json.loads(gate), status, forced) if action == "promote" else _recheck_look(
            json.loads(detail or "{}"), trial)
        if look is None:
            continue
        reference, rule, outcome, what = look
        conn.execute(
            "INSERT INTO looks_at_test (kind, suite, subset, candidate, reference, metric, rule, outcome, actor,"
            " detail, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ["gate" if action == "promote" else "recheck", suite, subset, trial, reference,
             metric or "task_accuracy", json.dumps(rule), outcome, actor,
             json.dumps({**what, "recovered_from_adapter_event": event}), at])


def _gate_look(gate: dict, target: str, forced: bool | None) -> tuple[str | None, dict, str, dict]:
    rule = {"margin": (gate.get("config") or {}).get("margin"), "target": target, "thresholds": gate.get("config")}
    outcome = "passed" if gate.get("passed") else "overridden" if forced else "refused"
    return gate.get("reference"), rule, outcome, {"rules": gate.get("rules") or []}


def _recheck_look(detail: dict, trial: str) -> tuple[str | None, dict, str, dict] | None:
    if detail.get("paired") is False:  # a re-check on new data is not a look at the test subset
        return None
    change = detail.get("change") or {}
    low, high = change.get("low"), change.get("high")
    # That release's rule: a change is beyond noise when its interval excludes 0.
    outcome = "not shown" if low is None or high is None or low <= 0.0 <= high else (
        "better" if low > 0.0 else "worse")
    return trial, {"margin": 0.0}, outcome, {"change": change}


def m015_stats_rules(conn: duckdb.DuckDBPyConnection) -> None:
    """Trials record the version of the interval rules they were scored under (`harness.evaluation.rules`); those
    scored before read null, "not recorded". Where the stored value, interval and n determine the interval today's
    rules give, it is recomputed; the rest is kept as scored, and readers say which rules may be behind it.

    Exact, from the row alone: a share (field precision, recall or F1, macro-F1, ROUGE-L) stored at 0 or 1 with a
    zero-width interval had every example at that bound, and gets the Wilson interval of n of n (rules 3); one ROUGE-L
    value stored as [v, v] gets no interval (rules 4); a forgetting delta stored as [0, 0] had no item that changed,
    and its items score 0 or 1 (PIQA's acc, GSM8K's exact match), so it gets McNemar's exact interval with no
    discordant pair, +-(1 - 0.025^(1/n)) (rules 5). Nothing else can be: the bootstrap needs the examples in the
    order they were scored, and McNemar the forgetting check's per-item answers, which were never stored.
    The formulas are written here as that release computed them, so this migration never changes with later code.
    """
    conn.execute("ALTER TABLE trials ADD COLUMN IF NOT EXISTS stats_rules INTEGER")
    shares = ["field_precision", "field_recall", "field_f1", "macro_f1", "rouge_l"]
    at_a_bound = conn.execute(
        "SELECT trial_id, split, name, value, n FROM metrics WHERE list_contains(?, name) AND n > 0"
        " AND value IN (0, 1) AND low = value AND high = value", [shares]).fetchall()
    for trial, split, name, value, n in at_a_bound:
        low, high = _wilson(value * n, n)
        conn.execute("UPDATE metrics SET low = ?, high = ? WHERE trial_id = ? AND split = ? AND name = ?",
                     [low, high, trial, split, name])
    conn.execute("UPDATE metrics SET low = NULL, high = NULL WHERE name = 'rouge_l' AND n = 1"
                 " AND value NOT IN (0, 1) AND low = value AND high = value")
    for trial, split, n in conn.execute(
            "SELECT trial_id, split, n FROM metrics WHERE name = 'regression_delta' AND n > 0"
            " AND value = 0 AND low = 0 AND high = 0").fetchall():
        half = 1 - 0.025 ** (1 / n)  # the Clopper-Pearson upper end of 0 discordant pairs in n
        conn.execute("UPDATE metrics SET low = ?, high = ? WHERE trial_id = ? AND split = ? AND name = ?",
                     [-half, half, trial, split, "regression_delta"])


def _wilson(successes: float, n: int) -> tuple[float, float]:
    """The 95% Wilson interval as `harness.evaluation.stats.wilson_interval` gives it (exact ends at 0 and n)."""
    z = NormalDist().inv_cdf(0.975)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


M016_STEP_SECONDS = """
-- The mean seconds of each trained trial's optimizer steps, without its dev probes: what the calibration predicted
-- it to be, measured over the whole trial.
ALTER TABLE trials ADD COLUMN step_seconds DOUBLE;
"""


def m017_suite_paths_in_the_project_relative(conn: duckdb.DuckDBPyConnection) -> None:
    """A study's suite inside the project folder (the folder above the database's) is recorded relative to the
    database's folder, as `Store` records it from this release: a project copied or moved with its suites then reads
    its own copy. Recorded absolute, a copy read and checked the original's files while they existed. A suite
    elsewhere (bundled, shared) stays absolute. Written here as this release does it, so it never changes with
    later code."""
    found = conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if not found or not found[0]:  # an in-memory database has no folder to be relative to
        return
    home = Path(found[0]).resolve().parent
    project = home.parent
    if project == Path(project.anchor):
        return
    for study, path in conn.execute("SELECT study, suite_path FROM studies WHERE suite_path IS NOT NULL").fetchall():
        suite = Path(path)
        if suite.is_absolute() and suite.resolve().is_relative_to(project):
            conn.execute("UPDATE studies SET suite_path = ? WHERE study = ?",
                         [os.path.relpath(suite.resolve(), home), study])


M018_PROMPT_SEARCH = """
-- How a searched prompt was chosen (`dspy`, `api_dspy`): the optimizer, its validation slice of train, every
-- candidate's score on it, and what the search cost. NULL for every other arm.
ALTER TABLE trials ADD COLUMN prompt_search JSON;
"""

M019_AUDIT_PACKS = """
-- Every audit pack written: the sha256 of its MANIFEST.json, kept here as well as printed, so `audit --verify` can
-- tell the pack the harness wrote from one edited with its manifest recomputed. A table of its own, not an adapter
-- event: every reader of the registry takes an adapter's latest event for where its status came from.
CREATE SEQUENCE audit_pack_ids;
CREATE TABLE audit_packs (
    id BIGINT PRIMARY KEY DEFAULT nextval('audit_pack_ids'),
    trial_id VARCHAR,
    suite VARCHAR,
    folder VARCHAR,             -- where it was written, absolute
    manifest_sha256 VARCHAR,
    actor VARCHAR,
    recorded_at TIMESTAMP       -- UTC
);
"""


M020_THROUGHPUT_SPREAD = """
-- Each generate call's completion tokens and seconds ([[tokens, seconds], ...]), the spread behind an interval on a
-- local model's speed, and the share of the machine's CPU other processes used while the split was generated. Rows
-- recorded before stay without either: their speed was one figure, and payback says so.
ALTER TABLE throughput ADD COLUMN batches JSON;
ALTER TABLE throughput ADD COLUMN others_cpu_share DOUBLE;
"""

M021_WEIGHTS_SHA256 = """
-- {file: sha256} of a trained trial's saved weights folder when it was saved and scored: promote, export, audit,
-- recheck and predict refuse weights that are no longer those. Trials saved before stay null, "not recorded".
ALTER TABLE trials ADD COLUMN weights_sha256 JSON;
"""

def m022_registry_hash_chain(conn: duckdb.DuckDBPyConnection) -> None:
    """Every registry event carries the hash of its fields chained to the event before it (`store/chain.py`), so an
    edited, deleted or reordered event shows. Events written before are chained now, as they stand: an edit made
    before this upgrade cannot be told apart, and `registry --verify` says from when the chain holds."""
    conn.execute("ALTER TABLE adapter_events ADD COLUMN chain_sha256 VARCHAR")
    relink(conn)


def m023_trial_seals(conn: duckdb.DuckDBPyConnection) -> None:
    """Every finished trial carries a seal over its outcome, metrics and per-example outputs and scores
    (`store/seal.py`), so an edited score shows. Trials recorded before are sealed now, as they stand: an edit made
    before this upgrade cannot be told apart."""
    conn.execute("ALTER TABLE trials ADD COLUMN scores_sha256 VARCHAR")
    conn.execute("ALTER TABLE trials ADD COLUMN sealed_on_upgrade BOOLEAN DEFAULT false")
    reseal(conn)


MIGRATIONS: list[Migration] = [
    ("m001_initial", M001_INITIAL),
    ("m002_trial_facts_as_columns", m002_trial_facts_as_columns),
    ("m003_study_links_and_direction", m003_study_links_and_direction),
    ("m004_unmeasured_is_null", M004_UNMEASURED_IS_NULL),
    ("m005_artifact_paths_relative_to_database", m005_artifact_paths_relative_to_database),
    ("m006_parameter_importance", M006_PARAMETER_IMPORTANCE),
    ("m007_hosted_arms", M007_HOSTED_ARMS),
    ("m008_adapter_registry", M008_ADAPTER_REGISTRY),
    ("m009_phase_seconds", M009_PHASE_SECONDS),
    ("m010_looks_at_test", M010_LOOKS_AT_TEST),
    ("m011_planned_steps", M011_PLANNED_STEPS),
    ("m012_engine_and_serving", M012_ENGINE_AND_SERVING),
    ("m013_padding_free_as_it_ran", m013_padding_free_as_it_ran),
    ("m014_earlier_gates_are_looks_at_test", m014_earlier_gates_are_looks_at_test),
    ("m015_stats_rules", m015_stats_rules),
    ("m016_step_seconds", M016_STEP_SECONDS),
    ("m017_suite_paths_in_the_project_relative", m017_suite_paths_in_the_project_relative),
    ("m018_prompt_search", M018_PROMPT_SEARCH),
    ("m019_audit_packs", M019_AUDIT_PACKS),
    ("m020_throughput_spread", M020_THROUGHPUT_SPREAD),
    ("m021_weights_sha256", M021_WEIGHTS_SHA256),
    ("m022_registry_hash_chain", m022_registry_hash_chain),
    ("m023_trial_seals", m023_trial_seals),
]


def applied(conn: duckdb.DuckDBPyConnection, create: bool = True) -> list[str]:
    """Names already applied to this database, in the order they were applied (`create=False` on a read-only
    connection, where `_migrations` must already exist)."""
    if create:
        conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()]


class UnknownMigrations(HarnessError):
    """The database records migrations this harness does not have: a newer harness (or another branch of it) wrote
    it. Its schema may hold changes this code would misread or undo, so it is neither read nor written; the Store
    names the file and the fix."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"the database records migration(s) this harness does not know: {', '.join(names)}")
        self.names = names


def check_known(done: Iterable[str], migrations: list[Migration] | None = None) -> None:
    """Raise UnknownMigrations when `done` (the names applied to a database) holds a name not in `migrations`."""
    known = {name for name, _ in (MIGRATIONS if migrations is None else migrations)}
    unknown = [name for name in done if name not in known]
    if unknown:
        raise UnknownMigrations(unknown)


def apply_migrations(conn: duckdb.DuckDBPyConnection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the pending migrations in order, each in its own transaction; return the names applied now. A
    database that records a migration this harness does not have is refused (UnknownMigrations), changing nothing."""
    done = applied(conn)
    check_known(done, migrations)
    done = set(done)
    ran = []
    for name, step in MIGRATIONS if migrations is None else migrations:
        if name in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            if callable(step):
                step(conn)
            else:
                conn.execute(step)
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, now])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(name)
    return ran
