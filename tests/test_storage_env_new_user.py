"""A study storage from $HARNESS_STORAGE: its problems name the variable, not a --storage never given; a file
storage's folder is checked before any model loads; and a sweep says when the variable chose its storage."""

from __future__ import annotations

import pytest
from conftest import printed

from harness.cli import main
from harness.core.errors import ConfigError
from harness.sweep.storage import (
    EnvironmentStorage,
    check_reachable,
    from_environment,
    normalise,
    origin_note,
    storage_from_environment,
)


def test_a_bad_value_from_the_environment_names_the_variable_and_how_to_unset_it():
    with pytest.raises(ConfigError) as err:
        normalise(EnvironmentStorage("garbage"))
    message = str(err.value)
    assert message.startswith("$HARNESS_STORAGE='garbage' is not a storage") and "--storage '" not in message
    assert "unset HARNESS_STORAGE" in message
    with pytest.raises(ConfigError, match=r"^--storage 'garbage' is not a storage") as err:
        normalise("garbage")
    assert "HARNESS_STORAGE" not in str(err.value)


def test_the_mark_survives_normalising_and_is_read_from_the_environment(monkeypatch):
    url = normalise(EnvironmentStorage("postgres://u@db/h"))
    assert url == "postgresql+psycopg://u@db/h" and from_environment(url)
    assert not from_environment(normalise("postgres://u@db/h"))
    monkeypatch.setenv("HARNESS_STORAGE", "journal:j.log")
    assert from_environment(storage_from_environment())
    monkeypatch.delenv("HARNESS_STORAGE")
    assert storage_from_environment() is None


def test_a_file_storage_in_a_folder_that_cannot_be_made_is_refused_creating_nothing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for url in (f"sqlite:///{blocker}/x.db", f"journal:{blocker}/j.log"):
        with pytest.raises(ConfigError, match="cannot write the study's file") as err:
            check_reachable(normalise(EnvironmentStorage(url)))
        assert "$HARNESS_STORAGE=" in str(err.value) and "is a file, not a folder" in str(err.value)
    with pytest.raises(ConfigError, match="a folder, not a file"):
        check_reachable(f"journal:{tmp_path}")
    check_reachable(f"sqlite:///{tmp_path}/new/deeper/x.db")  # a folder still to make is fine, and not made yet
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_only_a_storage_from_the_environment_gets_a_note():
    note = origin_note(EnvironmentStorage("postgresql+psycopg://u:secret@db/h"))
    assert "comes from $HARNESS_STORAGE" in note and "unset HARNESS_STORAGE" in note and "secret" not in note
    assert origin_note("journal:results/optuna-journal.log") is None


def test_the_sweep_names_the_variable_before_any_model_loads(tmp_path, tiny_model_dir, toy_suite, monkeypatch,
                                                              no_model_loads, capsys):
    experiment = tmp_path / "e.yaml"
    experiment.write_text(f"name: e\nmodel: {tiny_model_dir}\nsuite: {toy_suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nspace: {prompt: {shots: [0]}}\n")
    monkeypatch.setenv("HARNESS_STORAGE", "garbage")
    assert main(["sweep", str(experiment), "--dry-run"]) == 2
    out = printed(capsys)
    assert "$HARNESS_STORAGE='garbage'" in out and "--storage 'garbage'" not in out and "Traceback" not in out
    monkeypatch.setenv("HARNESS_STORAGE", f"sqlite:///{experiment}/x.db")
    assert main(["sweep", str(experiment), "--dry-run"]) == 2
    assert "cannot write the study's file" in printed(capsys)
    assert main(["sweep", str(experiment), "--dry-run", "--storage", "garbage"]) == 2  # the flag wins, and is named
    assert "--storage 'garbage'" in printed(capsys)


def test_a_sweep_says_its_storage_came_from_the_environment(tmp_path, tiny_model_dir, toy_suite, monkeypatch,
                                                            no_model_loads, capsys):
    """A variable left set moves a plain sweep's study; the sweep says so first (here a later check stops it before
    calibration, which a dry run would otherwise do)."""
    experiment = tmp_path / "e.yaml"
    experiment.write_text(f"name: e\nmodel: {tiny_model_dir}\nsuite: {toy_suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nbudget: {trials: 1}\nspace: {prompt: {shots: [0]}}\n")
    monkeypatch.setenv("HARNESS_STORAGE", f"journal:{tmp_path / 'elsewhere' / 'j.log'}")
    assert main(["sweep", str(experiment), "--dry-run", "--workers", "3"]) == 2
    out = printed(capsys)
    assert f"note: storage journal:{tmp_path / 'elsewhere' / 'j.log'} comes from $HARNESS_STORAGE" in out
