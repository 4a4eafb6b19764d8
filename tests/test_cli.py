"""The CLI's own behaviour: help, errors as one clear line with exit code 2, the suite commands."""

from __future__ import annotations

import json

from harness.cli import main


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "harness sweep experiments/demo.yaml" in capsys.readouterr().out


def test_errors_are_one_message_and_exit_2(capsys, tmp_path):
    assert main(["suite", "validate", str(tmp_path / "missing")]) == 2
    out = capsys.readouterr().out
    assert out.startswith("error:") and "harness suite init" in out and "Traceback" not in out
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert "no such experiment file" in capsys.readouterr().out


def test_suite_init_validate_stats(tmp_path, capsys):
    rows = [("hello there", "greet"), ("Hello  there", "greet"), ("bye now", "leave"), ("see you", "leave"),
            ("hi", "greet"), ("good night", "leave"), ("hey", "greet"), ("later", "leave"), ("ciao", "leave"),
            ("morning", "greet")]
    source = tmp_path / "data.csv"
    source.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    suites = tmp_path / "suites"
    assert main(["suite", "init", "mini", "--from", str(source), "--suites-dir", str(suites)]) == 0
    assert "dropped {'duplicates': 1}" in capsys.readouterr().out
    assert main(["suite", "validate", str(suites / "mini")]) == 0
    assert "valid (train" in capsys.readouterr().out
    assert main(["suite", "stats", str(suites / "mini")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert sum(stats[s]["n"] for s in ("train", "dev", "test")) == 9
    assert main(["suite", "init", "mini", "--from", str(source), "--suites-dir", str(suites)]) == 2


def test_trials_on_an_empty_database(tmp_path, capsys):
    assert main(["trials", "--db", str(tmp_path / "none.duckdb"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not (tmp_path / "none.duckdb").exists()
