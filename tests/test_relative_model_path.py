"""A study swept with `model: models/mine`, a path relative to the folder the sweep ran in, records the folder's
absolute path: `predict` and `export` run from another folder resolved the relative path there, found nothing, and
refused the study's own trials."""

from __future__ import annotations

import shutil

from harness.cli import main
from harness.store.database import Store


def test_a_relative_model_path_is_recorded_absolute_and_found_from_another_folder(tmp_path, tiny_model_dir, toy_suite,
                                                                                   monkeypatch, capsys):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    shutil.copytree(tiny_model_dir, project / "models" / "mine")
    elsewhere.mkdir()
    (project / "exp.yaml").write_text(f"name: toy\nmodel: models/mine\nsuite: {toy_suite}\nresults_dir: results\n"
                                      "device: cpu\nregression: {enabled: false}\nbudget: {trials: 1}\n"
                                      "data: {dev_limit: 4, test_limit: 4}\nspace:\n  prompt: {shots: 0}\n")
    monkeypatch.chdir(project)
    assert main(["sweep", "exp.yaml"]) == 0
    db = project / "results"
    assert Store(db / "harness.duckdb").study("toy").model_name == str((project / "models" / "mine").resolve())

    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["predict", "toy/0", "--input", "I like red", "--db", str(db)]) == 0
    assert "models/mine" not in capsys.readouterr().err
