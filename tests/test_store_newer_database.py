"""A results database a newer harness wrote (a migration this one does not have) is neither read nor written: this
harness would misread what the newer one changed, or undo it by writing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from conftest import printed
from test_store import make_record, study_record

from harness.cli import main
from harness.core.errors import HarnessError
from harness.store.database import Store
from harness.store.migrations import MIGRATIONS, UnknownMigrations, applied, apply_migrations

FUTURE = "m099_from_the_future"


def future_database(path: Path, drop_latest: bool = False) -> Path:
    """A database this harness wrote, then a newer one migrated (a name and a column this one does not know).
    `drop_latest`: written by another branch, which lacks this harness's latest migration."""
    store = Store(path)
    store.record_study(study_record())
    store.record_trial_result(make_record())
    with duckdb.connect(str(path)) as conn:
        conn.execute("INSERT INTO _migrations VALUES (?, now())", [FUTURE])
        conn.execute("ALTER TABLE trials ADD COLUMN future_col VARCHAR")
        if drop_latest:
            conn.execute("DELETE FROM _migrations WHERE name = ?", [MIGRATIONS[-1][0]])
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_a_newer_database_is_refused_naming_it_the_migration_and_the_fix(tmp_path):
    path = future_database(tmp_path / "h.duckdb")
    before = digest(path)
    with pytest.raises(HarnessError) as err:
        Store(path).trials()
    message = str(err.value)
    assert str(path) in message and FUTURE in message and "newer harness" in message
    assert "pip install -U finetune-harness" in message and "the version that wrote it" in message
    assert "nothing was read or written" in message
    assert digest(path) == before


def test_writing_to_a_newer_database_is_refused_and_writes_nothing(tmp_path):
    path = future_database(tmp_path / "h.duckdb")
    before = digest(path)
    with pytest.raises(HarnessError, match=FUTURE):
        Store(path).record_trial_result(make_record(number=1))
    assert digest(path) == before


def test_another_branchs_database_is_not_upgraded_by_a_read(tmp_path):
    """Without the check, reading it applied this harness's latest migration beside the unknown one."""
    path = future_database(tmp_path / "h.duckdb", drop_latest=True)
    with pytest.raises(HarnessError, match=FUTURE):
        Store(path).studies()
    with duckdb.connect(str(path), read_only=True) as conn:
        names = applied(conn, create=False)
    assert FUTURE in names and MIGRATIONS[-1][0] not in names


def test_apply_migrations_refuses_unknown_names_and_changes_nothing():
    conn = duckdb.connect(":memory:")
    apply_migrations(conn)
    conn.execute("INSERT INTO _migrations VALUES (?, now())", [FUTURE])
    with pytest.raises(UnknownMigrations) as err:
        apply_migrations(conn)
    assert err.value.names == [FUTURE]
    assert apply_migrations(conn, MIGRATIONS + [(FUTURE, "SELECT 1")]) == []  # a harness that has it goes on


def test_the_trials_command_refuses_a_newer_database_without_a_traceback(tmp_path, capsys):
    path = future_database(tmp_path / "h.duckdb")
    assert main(["trials", "--db", str(path)]) == 2
    out = printed(capsys)
    assert FUTURE in out and "pip install -U" in out and "Traceback" not in out
