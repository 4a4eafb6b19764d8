"""A writer kept out of the results database says so, and readers let it in: DuckDB gives the file to whoever asks
first, and readers polling back to back (a dashboard per lead) kept a sweep's writes waiting a second each, and could
keep one out past its lock timeout. Every wait here is on a condition (a line from a process, a file appearing), never
on a fixed sleep."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from test_store import make_record

from harness.store.database import WRITER_FRESH_S, Store

HOLDER = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
sys.stdin.readline()
"""


def _wait_for(condition, what: str, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit_s} s")
        time.sleep(0.01)


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "h.duckdb", lock_timeout_s=120)
    store.record_trial_result(make_record())
    return store


def _marker(store: Store):
    return store.path.with_name(store.path.name + ".writer-waiting")


def test_a_writer_kept_out_marks_that_it_waits_and_clears_the_mark_when_in(store):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"  # a reader has the file
        writer = threading.Thread(target=store.note_rerun, args=(make_record().id, "s1/9"))
        writer.start()
        _wait_for(_marker(store).exists, "the waiting writer's marker")
        holder.stdin.write("done\n")
        holder.stdin.flush()
        writer.join(timeout=120)
        assert not writer.is_alive()
    finally:
        holder.kill()
        holder.wait()
    assert not _marker(store).exists()
    assert "re-run as s1/9" in store.trial(make_record().id).failure_reason


def test_a_reader_holds_back_while_a_writer_waits_and_passes_a_stale_mark(store):
    marker = _marker(store)
    marker.touch()
    found = []
    reader = threading.Thread(target=lambda: found.append(store.trials()))
    reader.start()
    for _ in range(20):  # keep the mark fresh, as a writer retrying does: the read waits whatever the machine's speed
        marker.touch()
        reader.join(timeout=0.05)
        assert reader.is_alive() and not found
    marker.unlink()
    reader.join(timeout=120)
    assert not reader.is_alive() and len(found[0]) == 1

    marker.touch()
    stale = time.time() - WRITER_FRESH_S - 5  # a writer that stopped without clearing its mark
    os.utime(marker, (stale, stale))
    assert len(store.trials()) == 1
