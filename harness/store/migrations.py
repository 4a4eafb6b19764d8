"""Named, append-only schema migrations for the results database.

Why named and append-only: a results file outlives the code that wrote it, so each schema change is a new
entry at the end of MIGRATIONS (never edit or reorder a released one). Each applied name is recorded in
`_migrations`, so applying again is a no-op and an old file is brought up to date on its next write.
An entry is `(name, sql)` or `(name, function(conn))` for changes SQL alone cannot express.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import duckdb

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

MIGRATIONS: list[Migration] = [
    ("m001_initial", M001_INITIAL),
]


def applied(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Names already applied to this database, in the order they were applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()]


def apply_migrations(conn: duckdb.DuckDBPyConnection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the pending migrations in order, each in its own transaction; return the names applied now."""
    done = set(applied(conn))
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
