"""A new user's machine, as a helper found it: a disk that fills during a sweep, output piped to `head`, a Latin-1 or
ASCII locale, a narrow terminal. Each gets one clear line and a way on, never a traceback, and a sweep the disk
stopped resumes with the same command."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import optuna
import pytest
from conftest import printed
from test_store import make_record

from harness.cli import main
from harness.store.database import Store

EXPERIMENT = """
name: full
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 32, dev_limit: 6, test_limit: 6}}
budget: {{trials: 2}}
space:
  prompt: {{shots: [0, 1]}}
enqueue: [{{method: prompt, shots: 0}}, {{method: prompt, shots: 1}}]
"""


def test_a_disk_that_fills_mid_sweep_is_said_in_one_line_and_the_same_command_resumes(
        tmp_path, tiny_model_dir, toy_suite, monkeypatch, capsys):
    """The journal's write failed half-way on a full disk: a raw Optuna traceback, then a resume appended its record
    to the half-written line, and every later command (even --check) failed on the journal."""
    path = tmp_path / "full.yaml"
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=tmp_path / "results"))
    backend = optuna.storages.journal.JournalFileBackend
    real = backend.append_logs

    def disk_fills(self, logs):  # the first trial's result is half written when the disk fills
        if any(log.get("op_code") == 6 and log.get("state") == 1 for log in logs):
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with open(self._file_path, "ab") as f:
                f.write(text.encode()[: len(text) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", self._file_path)
        return real(self, logs)

    monkeypatch.setattr(backend, "append_logs", disk_fills)
    assert main(["sweep", str(path)]) == 2
    said = " ".join(printed(capsys).split())
    journal = tmp_path / "results" / "optuna-journal.log"
    assert f"error: could not write to {journal}: No space left on device" in said
    assert "finished trials are saved, and it resumes" in said and "Traceback" not in said
    assert not journal.read_bytes().endswith(b"\n")  # the record cut short, as the disk left it

    monkeypatch.setattr(backend, "append_logs", real)  # space freed
    assert main(["sweep", str(path), "--check"]) == 0  # reads it as it is, and writes nothing
    assert not journal.read_bytes().endswith(b"\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["sweep", str(path)]) == 0
    # the retry measures its own constraints: it had inherited the failed run's, which Optuna kept over the new ones
    assert not [w for w in caught if "constraint value is ignored" in str(w.message)]
    said = " ".join(printed(capsys).split())
    assert f"note: {journal} held a record cut short by a write that failed" in said
    assert (tmp_path / "results" / "optuna-journal.log.before-repair").is_file()
    assert all(json.loads(line) for line in journal.read_text().splitlines())  # every line a whole record
    trials = Store(tmp_path / "results" / "harness.duckdb").trials("full")
    assert [t.status for t in trials if t.status == "complete"] == ["complete", "complete"]


def test_a_line_an_older_release_joined_to_a_cut_record_keeps_its_whole_record(tmp_path):
    from harness.sweep.storage import repair_journal

    journal = tmp_path / "optuna-journal.log"
    whole = b'{"op_code":0,"worker_id":"w","study_name":"s","directions":[2]}\n'
    joined = b'{"op_code":6,"worker_id":"w","trial_id":0,"st' + b'{"op_code":4,"worker_id":"w","study_id":0}\n'
    journal.write_bytes(whole + joined)
    assert "removed it" in repair_journal(journal)
    assert journal.read_bytes() == whole + b'{"op_code":4,"worker_id":"w","study_id":0}\n'
    assert repair_journal(journal) is None  # whole now: nothing to mend, nothing written
    journal.write_bytes(whole + b"not a record\n" + whole)
    with pytest.raises(Exception, match=r"optuna-journal.log:2: not a record of an Optuna journal"):
        repair_journal(journal)


@pytest.fixture
def database(tmp_path) -> Path:
    store = Store(tmp_path / "harness.duckdb")
    for number in range(3):  # trained trials: the table's "regression Δ" column, which Latin-1 cannot write
        store.record_trial_result(make_record(number=number, accuracy=0.5 + number / 10, n_examples=4))
    return store.path


def _harness(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


@pytest.mark.parametrize("output", ["json", "csv", "table"])
def test_output_for_a_pipeline_stops_quietly_when_the_reader_closes(database, output):
    """`harness trials --format json | head` ended in a BrokenPipeError traceback; the table exited 1 without a
    word (rich's own handling)."""
    run = _harness("trials", "--format", output, "--db", str(database))
    run.stdout.close()  # the reader has what it wanted
    assert run.wait(timeout=120) == 141
    assert b"Traceback" not in run.stderr.read() and b"BrokenPipe" not in run.stderr.read()


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"}])
def test_a_locale_that_cannot_write_the_tables_characters_prints_them_as_question_marks(database, env):
    """A sweep under a Latin-1 locale finished every trial, then failed printing its ranking's "regression Δ"."""
    run = _harness("trials", "--db", str(database), env=env)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err.decode(errors="replace")
    assert b"regression ?" in out and b"s1/0" in out


def test_a_narrow_terminal_keeps_the_trial_ids(database):
    """At COLUMNS=40 the rank, trial and method columns came out empty."""
    from rich.console import Console

    from harness.analysis.report import ranking_table

    console = Console(width=40, record=True, force_terminal=True)
    console.print(ranking_table(Store(database).trials()))
    text = console.export_text()
    assert all(f"s1/{n}" in text for n in range(3)) and "lora" in text


def test_a_ctrl_c_as_a_finished_trial_is_recorded_keeps_it_finished_in_both_records(
        tmp_path, tiny_model_dir, toy_suite, monkeypatch, capsys):
    """A Ctrl-C at a prompting trial's "score test" landed between the results database and Optuna: the trial was
    complete in one and failed in the other, and the resume called it a dead worker's, "found stale by another
    worker". Now the Ctrl-C waits until both hold the trial, then stops the sweep."""
    import signal

    from harness.sweep import retention

    path = tmp_path / "full.yaml"
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=tmp_path / "results"))
    real = retention.apply

    def ctrl_c_lands(*args, **kwargs):  # just after the trial's row is written, before Optuna hears of it
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(retention, "apply", ctrl_c_lands)
    assert main(["sweep", str(path)]) == 130
    assert "interrupted. Finished trials are saved" in printed(capsys)
    store = Store(tmp_path / "results" / "harness.duckdb")
    (first,) = store.trials("full")
    assert first.status == "complete"
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(tmp_path / "results" / "optuna-journal.log")))
    states = [t.state.name for t in optuna.load_study(study_name="full", storage=journal).trials]
    assert states == ["COMPLETE", "WAITING"]  # Optuna agrees; the second enqueued trial waits for the resume
    monkeypatch.setattr(retention, "apply", real)
    assert main(["sweep", str(path)]) == 0  # the resume runs the second trial only
    assert [t.status for t in store.trials("full")] == ["complete", "complete"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are the process's again


def test_the_cache_follows_xdg_cache_home_where_home_is_read_only(tmp_path, monkeypatch):
    """Containers and clusters set XDG_CACHE_HOME where HOME is read-only; the cache went to ~/.cache regardless."""
    from harness.models.sources import cache_dir, check_cache

    home, xdg = tmp_path / "home", tmp_path / "xdg"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("HARNESS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    assert cache_dir() == xdg / "harness"
    home.chmod(0o500)  # read-only, but to root, which writes anywhere
    try:
        check_cache()  # the cache is under XDG_CACHE_HOME, which can be written
    finally:
        home.chmod(0o700)
    (home / ".cache" / "harness").mkdir(parents=True)  # a cache from before the variable was set is kept
    assert cache_dir() == home / ".cache" / "harness"
    (xdg / "harness").mkdir(parents=True)
    assert cache_dir() == xdg / "harness"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the spec ignores a relative one
    assert cache_dir() == home / ".cache" / "harness"
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_a_journal_joined_mid_file_by_an_older_release_is_mended_by_the_sweep_where_it_points(
        tmp_path, tiny_model_dir, toy_suite, capsys):
    """A line an older release's resume joined to a cut record, with records after it: --check and the sweep each
    sent the user to the other, and the journal was never mended (the sweep read the study before it mended). A
    journal reached through a symbolic link is mended where the link points, keeping its mode."""
    path = tmp_path / "full.yaml"
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=tmp_path / "results")
                    .replace("budget: {trials: 2}", "budget: {trials: 1}"))
    assert main(["sweep", str(path)]) == 0
    real = tmp_path / "elsewhere" / "journal.log"
    real.parent.mkdir()
    link = tmp_path / "results" / "optuna-journal.log"
    link.rename(real)
    link.symlink_to(real)
    lines = real.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"op_code":5,"worker_id":"w","trial_id":0,"par' + lines[2]  # a cut record, joined mid-file
    real.write_bytes(b"".join(lines))
    real.chmod(0o640)
    capsys.readouterr()
    assert main(["sweep", str(path), "--check"]) == 2
    assert "Run the sweep itself (without --check or --dry-run), which mends the file" in " ".join(
        printed(capsys).split())
    assert main(["sweep", str(path), "--trials", "2"]) == 0
    assert f"note: {link} held a record cut short" in " ".join(printed(capsys).split())
    assert link.is_symlink() and link.resolve() == real and oct(real.stat().st_mode & 0o777) == "0o640"
    assert all(line.startswith(b'{"op_code":') for line in real.read_bytes().splitlines())
    assert (tmp_path / "elsewhere" / "journal.log.before-repair").is_file()
    assert [t.status for t in Store(tmp_path / "results" / "harness.duckdb").trials("full")] == ["complete"] * 2


def test_predict_and_export_answer_with_the_cap_the_trial_was_scored_with(tmp_path, tiny_model_dir, toy_suite,
                                                                          monkeypatch):
    """The cap derived from train's answers moved with an edit of train: a zero-shot trial was exported (and
    predicted) with another cap than the one its scores were measured with."""
    import harness.sweep.predict as predict

    path = tmp_path / "full.yaml"
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=tmp_path / "results")
                    .replace("budget: {trials: 2}", "budget: {trials: 1}"))
    assert main(["sweep", str(path)]) == 0
    store = Store(tmp_path / "results" / "harness.duckdb")
    scored_with = store.trial("full/0").max_new_tokens
    monkeypatch.setattr(predict, "max_answer_tokens", lambda *args: scored_with + 50)  # train's answers now longer
    assert predict.rebuild(store, "full/0", device="cpu").ctx.max_new_tokens == scored_with


def test_a_file_named_with_a_leading_dash_is_named_with_the_way_to_give_it(tmp_path, monkeypatch, capsys):
    """`harness sweep -exp.yaml` said only "the following arguments are required: experiment"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-exp.yaml").write_text("name: x\n")
    with pytest.raises(SystemExit) as stopped:
        main(["sweep", "-exp.yaml"])
    assert stopped.value.code == 2
    assert "'-exp.yaml' is a file whose name begins with '-', so it was read as an option: write it as ./-exp.yaml" \
        in " ".join(capsys.readouterr().err.split())


def test_a_journal_lock_left_pointing_at_no_file_is_removed_and_the_sweep_goes_on(
        tmp_path, tiny_model_dir, toy_suite, monkeypatch, capsys):
    """A results folder copied from a machine where a worker died mid-append keeps Optuna's lock, a link to that
    machine's journal: Optuna's grace period judges a lock by the file it points at, and waited on this one forever,
    at full CPU, at the sweep's first write."""
    import _thread
    import threading

    from harness.sweep import storage

    monkeypatch.setattr(storage, "LEFT_LOCK_S", 1.0)
    path = tmp_path / "full.yaml"
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=tmp_path / "results")
                    .replace("budget: {trials: 2}", "budget: {trials: 1}"))
    lock = tmp_path / "results" / "optuna-journal.log.lock"
    lock.parent.mkdir()
    lock.symlink_to("/home/someone-else/results/optuna-journal.log")
    watchdog = threading.Timer(600, _thread.interrupt_main)  # a hang is a Ctrl-C, and fails, not a held test run
    watchdog.start()
    try:
        assert main(["sweep", str(path)]) == 0
    finally:
        watchdog.cancel()
    err = " ".join(capsys.readouterr().err.split())
    assert "waiting up to 1 s on the lock" in err  # said before the wait, not after it
    assert f"note: removed {lock}, a lock of the study's journal left behind" in err
    assert not lock.is_symlink()
    assert [t.status for t in Store(tmp_path / "results" / "harness.duckdb").trials("full")] == ["complete"]


def test_optunas_lock_points_at_the_journal_when_the_results_folder_is_given_relative(tmp_path, monkeypatch):
    """Optuna links its lock to the journal's path as given: `results/optuna-journal.log`, relative, read from the
    lock's own folder, pointed at no file, so a lock a killed writer left could never be judged stale."""
    from harness.sweep.storage import open_storage

    monkeypatch.chdir(tmp_path)
    made: list[tuple[str, str]] = []
    real = os.symlink
    monkeypatch.setattr(os, "symlink", lambda src, dst, *args: (made.append((str(src), str(dst))),
                                                                 real(src, dst, *args))[1])
    storage = open_storage("journal:results/optuna-journal.log").storage
    optuna.create_study(study_name="s", storage=storage)
    locks = [(src, dst) for src, dst in made if dst.endswith(".lock")]
    assert locks and all(Path(src) == tmp_path / "results" / "optuna-journal.log" for src, _ in locks), locks
