"""`harness.api`, as a notebook user met the harness: a sweep from Python is the command's sweep (calibrated, its
precision decided by this machine, its warnings said), its results read as typed views and as rows for a table, a
compare on test recorded as the command records it, and every wrong name or type refused with what is known.

One tiny real sweep on the toy suite: a prompting arm and a LoRA arm."""

from __future__ import annotations

import signal

import pytest

import harness.api as harness
from harness.cli import main
from harness.core.errors import HarnessError

EXPERIMENT = """
name: nb
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 12, test_limit: 12}}
budget: {{trials: 1, max_steps: 8, epochs: 50}}
training: {{batch_size: 16, eval_every_steps: 0}}
generation: {{batch_size: 12}}
space:
  prompt: {{shots: 0}}
  lora: {{r: 4, lora_alpha: 8, learning_rate: 1.0e-2}}
enqueue:
  - {{method: prompt}}
  - {{method: lora}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, toy_suite):
    root = tmp_path_factory.mktemp("nb")
    path = root / "nb.yaml"
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=root / "results"))
    said: list[str] = []
    # a nested mapping merges into the file's `budget:` (its max_steps stays 8): 2 trials, not the file's 1
    result = harness.sweep(path, {"budget": {"trials": 2}}, echo=said.append)
    return result, said, root


def test_a_sweep_from_python_is_the_commands_sweep(run):
    result, said, root = run
    assert result.study == "nb" and result.outcome.ran == 2 and result.outcome.failed == 0
    assert [t.id for t in result.trials] == ["nb/0", "nb/1"] and result.database == root / "results/harness.duckdb"
    lora = result.trials[1]
    # calibrated first, as the command is: `auto` decided by this machine, not stored as "auto"
    assert lora.precision in ("fp32", "bf16")
    assert any(line.startswith("calibrat") or "s/step" in line for line in said)
    assert result.verdict.head in ("YES", "NO", "NOT SHOWN", "NOT READY") and result.verdict.text
    assert lora.training.planned_steps == 8 and result.failure is None
    # what the command says before its trials, said here too: the estimate of every trial
    assert any("estimate" in line.lower() for line in said)


def test_results_read_as_typed_views_and_as_rows(run):
    result, _, root = run
    results = harness.open_results(root / "results")  # the folder, as --db takes it
    assert results.path == result.database and [s.name for s in results.studies()] == ["nb"]
    assert results.trial("nb/1").method == "lora" and results.verdict("nb").head == result.verdict.head
    assert {e.split for e in results.examples("nb/1")} == {"dev", "test"}
    assert len(results.examples("nb/1", "test")) == 12
    rows = results.metric_rows("nb")
    accuracy = [r for r in rows if r["trial"] == "nb/1" and r["split"] == "test" and r["metric"] == "task_accuracy"]
    assert len(accuracy) == 1 and accuracy[0]["n"] == 12 and accuracy[0]["param.r"] == 4
    assert accuracy[0]["value"] == results.trial("nb/1").metric("test", "task_accuracy").value
    assert {"low", "high", "status", "under_trained", "feasible", "method"} <= set(accuracy[0])


def test_a_compare_on_test_is_recorded_as_the_command_records_it(run):
    _, _, root = run
    results = harness.open_results(root / "results" / "harness.duckdb")
    before = len(results.store.looks())
    comparison = results.compare(results.trial("nb/1"), "nb/0", actor="nb-user")  # a view or an id
    assert comparison.primary == "task_accuracy" and comparison.decision.difference.n == 12
    looks = results.store.looks()
    assert len(looks) == before + 1 and looks[-1].kind == "compare" and looks[-1].actor == "nb-user"
    results.compare("nb/1", "nb/0", split="dev")
    assert len(results.store.looks()) == before + 1  # dev is no look at test


def test_wrong_names_and_types_are_refused_with_what_is_known(run, tmp_path):
    _, _, root = run
    results = harness.open_results(root / "results")
    with pytest.raises(HarnessError, match="no study 'nbb' .* its studies: nb"):
        results.trials("nbb")
    with pytest.raises(HarnessError, match="no study 'nbb'"):
        results.verdict("nbb")  # had read "No verdict yet: the study has no completed fine-tuned trial"
    with pytest.raises(HarnessError, match="split 'tset'"):
        results.examples("nb/1", "tset")
    with pytest.raises(HarnessError, match="metric 'task_acc': .* task_accuracy"):
        results.compare("nb/1", "nb/0", metric="task_acc")
    with pytest.raises(HarnessError, match="trial 1: give its id"):
        results.compare(1, "nb/0")
    looks = len(results.store.looks())
    with pytest.raises(HarnessError, match="'regression_delta': not scored example by example"):
        results.compare("nb/1", "nb/0", metric="regression_delta")  # had returned decision=None, then a traceback
    assert len(results.store.looks()) == looks  # refused: no look at test recorded
    with pytest.raises(HarnessError, match="margin='0.02': give a number"):
        results.compare("nb/1", "nb/0", margin="0.02")
    with pytest.raises(HarnessError, match="echo=None: give a function"):
        harness.sweep(root / "nb.yaml", echo=None)
    with pytest.raises(HarnessError, match=f"no results database at {tmp_path}"):
        harness.open_results(tmp_path)
    with pytest.raises(HarnessError, match="not one string"):
        harness.sweep(root / "nb.yaml", "budget.trials=2")  # read one character at a time before
    with pytest.raises(HarnessError, match="trials='3': give a whole number"):
        harness.sweep(root / "nb.yaml", trials="3")
    with pytest.raises(HarnessError, match="experiment: give a path"):
        harness.sweep({"name": "x"})


def test_a_command_run_from_python_leaves_the_callers_signal_handlers_as_they_were():
    """`harness.cli.main` in a notebook left its SIGTERM handler installed in the kernel."""
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    assert main(["trials", "--study", "none-here", "--db", "/nonexistent/harness.duckdb"]) == 2
    assert {number: signal.getsignal(number) for number in before} == before


def test_the_readmes_python_block_runs_as_written(tmp_path, tiny_model_dir, toy_suite, monkeypatch, capsys):
    """README's From Python section, executed as written in a project whose first-sweep.yaml is a tiny one."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments/first-sweep.yaml").write_text(EXPERIMENT.replace("name: nb", "name: first-sweep").format(
        model=tiny_model_dir, suite=toy_suite, results="results"))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md (From Python)", "exec"), scope)
    assert scope["run"].outcome.ran == 2 and scope["trial"].id == "first-sweep/1"  # its space holds 2 of the 4
    assert set(scope["table"]["metric"]) >= {"task_accuracy", "format_compliance"}
    assert scope["comparison"].decision.difference.n == 12
    assert scope["run"].verdict.head in capsys.readouterr().out
