"""The CLI's own behaviour: help, errors as one clear line with exit code 2, the suite commands."""

from __future__ import annotations

import json
import os

import pytest
from conftest import printed

from harness.cli import main


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "harness sweep experiments/demo.yaml" in capsys.readouterr().out


def test_errors_are_one_message_and_exit_2(capsys, tmp_path):
    assert main(["suite", "validate", str(tmp_path / "missing")]) == 2
    out = printed(capsys)
    assert out.startswith("error:") and "harness suite init" in out and "Traceback" not in out
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert "no such experiment file" in printed(capsys)


def test_suite_init_validate_stats(tmp_path, capsys):
    rows = [("hello there", "greet"), ("Hello  there", "greet"), ("bye now", "leave"), ("see you", "leave"),
            ("hi", "greet"), ("good night", "leave"), ("hey", "greet"), ("later", "leave"), ("ciao", "leave"),
            ("morning", "greet")]
    source = tmp_path / "data.csv"
    source.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    suites = tmp_path / "suites"
    assert main(["suite", "init", "mini", "--from", str(source), "--suites-dir", str(suites)]) == 0
    assert "rows dropped: duplicates 1)" in capsys.readouterr().out
    assert main(["suite", "validate", str(suites / "mini")]) == 0
    assert "valid (train" in (out := capsys.readouterr().out) and "warning" not in out
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"name: x\nsuite: {suites / 'mini-copy'}\nspace: {{prompt: {{shots: 0}}}}\n")
    import shutil

    shutil.copytree(suites / "mini", suites / "mini-copy")  # a copy keeps the name it was copied from
    assert main(["suite", "validate", str(suites / "mini-copy")]) == 0
    named = "warning: the folder is named mini-copy but its suite.yaml names the suite mini"
    assert named in " ".join(capsys.readouterr().err.split())  # on stderr, as every warning
    assert main(["sweep", str(experiment), "--check"]) == 0  # what a CI step runs says it too
    assert named in " ".join(capsys.readouterr().err.split())
    test = suites / "mini-copy" / "test.jsonl"  # a label only test has: never learned, never shown as a shot
    first, *rest = test.read_text().splitlines()
    test.write_text("\n".join([json.dumps({**json.loads(first), "output": {"label": "wave"}}), *rest]) + "\n")
    meta = suites / "mini-copy" / "suite.yaml"
    meta.write_text(meta.read_text().replace("  - leave\n", "  - leave\n  - wave\n", 1))
    assert main(["suite", "validate", str(suites / "mini-copy")]) == 0
    unlearnable = "warning: label(s) scored in dev or test with no train example: `wave` (1)."
    assert unlearnable in " ".join(capsys.readouterr().err.split())
    assert main(["sweep", str(experiment), "--check"]) == 0  # which a CI step runs instead
    assert unlearnable in " ".join(capsys.readouterr().err.split())
    assert main(["suite", "stats", str(suites / "mini"), "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert sum(stats[s]["n"] for s in ("train", "dev", "test")) == 9
    assert main(["suite", "stats", str(suites / "mini")]) == 0  # its last line is a command that runs as printed
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"every count: harness suite stats {suites / 'mini'} --format json"
    assert main(["suite", "init", "mini", "--from", str(source), "--suites-dir", str(suites)]) == 2


@pytest.mark.parametrize("command", [["trials", "--format", "json"], ["registry"], ["registry", "--history"]])
def test_reading_a_database_that_is_not_there(tmp_path, capsys, monkeypatch, command):
    """A --db that names nothing is a mistake to point out, not an empty list: a typo would read as "no trials", or
    as no adapter in production, to whatever a script feeds."""
    assert main([*command, "--db", str(tmp_path / "none.duckdb")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no results database there" in captured.err
    assert not (tmp_path / "none.duckdb").exists()
    monkeypatch.chdir(tmp_path)  # no results/ here: a script run in the wrong folder gets no [] to pass on
    if command[0] == "trials":
        for format in ("json", "csv"):
            assert main(["trials", "--format", format]) == 2
            captured = capsys.readouterr()
            assert captured.out == "" and "no results database at results/harness.duckdb" in captured.err
        assert main(["trials"]) == 0 and "no trials: there is no results database" in capsys.readouterr().out


def small_store(tmp_path):
    """Study s: s/0 prompting, s/1 LoRA whose run logged a single loss value."""
    from harness.core.records import ExampleRow, MetricRow, StudyRecord, TrainingSummary, TrialRecord
    from harness.store.database import Store

    store = Store(tmp_path / "h.duckdb")
    store.record_study(StudyRecord("s", "s", {"name": "s"}, "toy", "1.0.0", None, "m", "0" * 64, "task_accuracy",
                                   True))
    for number, trained in ((0, False), (1, True)):
        store.record_trial_result(TrialRecord(
            id=f"s/{number}", study="s", number=number, run_id="r", method="lora" if trained else "prompt",
            params={}, status="complete", trained=trained, feasible=True,
            training=TrainingSummary(6, "max_steps", 40, 8, loss_curve=((5, 2.0884),), planned_steps=6)
            if trained else None,
            metrics=[MetricRow("test", "task_accuracy", 1.0, 0.5, 1.0, 1)],
            examples=[ExampleRow("test", "test:1", "in", "a", "b", scores={"task_accuracy": 0.0})],
        ))  # fmt: skip
    return store


def test_trials_says_when_there_are_none(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a new folder: no results database
    assert main(["trials"]) == 0
    out = " ".join(printed(capsys).split())
    assert "no trials: there is no results database at results/harness.duckdb" in out and "harness sweep" in out
    db = ["--db", str(small_store(tmp_path).path)]
    assert main(["trials", "--study", "nosuch", *db]) == 2
    out = " ".join(printed(capsys).split())
    assert out.startswith("error:") and "no study 'nosuch'" in out and "its studies: s" in out
    from harness.core.records import StudyRecord
    from harness.store.database import Store

    # a study recorded with no trial yet (its first stopped before its row) is not "no study 'empty'; its studies:
    # empty"
    Store(db[1]).record_study(StudyRecord("empty", "empty", {"name": "empty"}, "toy", "1.0.0", None, "m", "0" * 64,
                                          "task_accuracy", True))
    assert main(["trials", "--study", "empty", *db]) == 0
    assert "no trials: study empty has none in" in " ".join(printed(capsys).split())


def test_show_says_when_a_single_loss_was_logged(tmp_path, capsys):
    db = ["--db", str(small_store(tmp_path).path)]
    assert main(["show", "s/1", *db]) == 0
    out = capsys.readouterr().out
    assert "loss 2.088 (one logged value, at step 5)" in out and "->" not in out


def test_sweep_help_lists_every_bundled_experiment(capsys):
    from harness.core.paths import bundled

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    names = sorted(p.stem for p in bundled("experiments").glob("*.yaml"))
    assert "hosted" in names and f"bundled ones ({', '.join(names)})" in out


def test_db_may_name_the_results_folder(tmp_path, capsys):
    """`--db results` is the folder a sweep wrote (as `harness merge` takes it), not a database to refuse."""
    import shutil

    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(small_store(tmp_path).path, folder / "harness.duckdb")
    assert main(["trials", "--db", str(folder), "--format", "json"]) == 0
    assert sorted(row["id"] for row in json.loads(capsys.readouterr().out)) == ["s/0", "s/1"]


def test_registry_history_with_no_change_says_so(tmp_path, capsys):
    store = small_store(tmp_path)
    assert main(["registry", "--history", "--db", str(store.path)]) == 0
    assert "no changes yet" in capsys.readouterr().out  # not an empty table



def test_who_ran_a_recheck_or_a_compare_defaults_to_the_system_account(monkeypatch):
    """The account of the process's user id, not $LOGNAME: `LOGNAME=ceo-alice harness audit` signed a pack as
    someone else."""
    import pwd

    from harness.cli import build_parser

    monkeypatch.setenv("LOGNAME", "ceo-alice")
    account = f"{pwd.getpwuid(os.getuid()).pw_name} (uid {os.getuid()})"
    for command in (["recheck", "ticket-triage"], ["compare", "demo/1", "demo/0"], ["audit", "demo/1"]):
        assert build_parser().parse_args(command).actor == account
    assert build_parser().parse_args(["recheck", "ticket-triage", "--actor", "nightly"]).actor == "nightly"


def test_ctrl_c_outside_a_sweep_says_nothing_of_trials_to_resume(tmp_path, capsys, monkeypatch):
    """Only sweeps and workers keep finished trials to resume from; `suite init` has none."""
    from harness.data import suite_init

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(suite_init, "init_suite", interrupted)
    source = tmp_path / "data.csv"
    source.write_text("text,label\nhi,greet\n")
    assert main(["suite", "init", "mini", "--from", str(source), "--suites-dir", str(tmp_path / "s")]) == 130
    assert capsys.readouterr().err.strip() == "interrupted."  # not a result: on standard error


def test_trials_of_several_studies_are_ranked_study_by_study(tmp_path, capsys):
    """Dev scores of two studies (two suites, or two subsets) do not rank together: one table per study, named."""
    from test_report_lead_findings import add_trial, lead_results

    for study, best in (("first", 0.6), ("second", 0.95)):
        store = lead_results(tmp_path, study)
        add_trial(store, 0, "prompt", 50, best - 0.1, study=study)
        add_trial(store, 1, "lora", 90, best, study=study)
    assert main(["trials", "--db", str(tmp_path)]) == 0
    out = printed(capsys)
    first, second = out.index("study first, suite "), out.index("study second, suite ")
    assert first < second
    ranks = [line.split("│")[1:3] for line in out.splitlines() if line.count("│") > 3 and "/" in line]
    assert [(r.strip(), t.strip()) for r, t in ranks] == [("1", "first/1"), ("2", "first/0"), ("1", "second/1"),
                                                          ("2", "second/0")]


def test_version_prints_the_version_and_the_commit_it_runs_from(capsys):
    """A new user's `harness --version` was refused, with `--verify` (a flag of `audit`) offered instead."""
    from importlib import metadata

    from harness.core.paths import git_commit

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"harness {metadata.version('finetune-harness')}")
    assert (git_commit() or "") in out


def test_table_is_a_format_wherever_a_reader_gets_text():
    """`payback --format table`, as `trials` and `compare` name their reader's format, was refused."""
    from harness.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["payback", "s/1", "--volume", "10", "--format", "table"]).format == "table"
    assert parser.parse_args(["recheck", "s/1", "--format", "table"]).format == "table"


def test_sweep_check_leaves_the_training_libraries_unloaded(tmp_path):
    """`sweep --check` is what a CI step runs on every push: it reads the experiment, suite and plan without the
    trainer, so TRL, PEFT and datasets (seconds of imports, more than half its run) stay unloaded."""
    import subprocess
    import sys

    probe = ("import sys; from harness.cli import main; code = main(['sweep', sys.argv[1], '--check']); "
             "print(sorted(m for m in ('trl', 'peft', 'datasets') if m in sys.modules)); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, "experiments/demo.yaml"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
