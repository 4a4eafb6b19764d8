"""End to end through the real CLI path: sweep -> store -> trials/show, on a tiny model, offline."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import printed, write_toy_suite

from harness.cli import main
from harness.evaluation.rules import STATS_RULES
from harness.store.database import Store

REPO = Path(__file__).resolve().parents[1]


def toy_experiment(tmp_path: Path, model: Path, suite: Path, body: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: toy\nmodel: {model}\nsuite: {suite}\nresults_dir: {tmp_path / 'results'}\n{body}")
    return path


@pytest.mark.slow
def test_training_learns_and_beats_the_prompt_baseline(tmp_path, tiny_model_dir, toy_suite, capsys):
    experiment = toy_experiment(tmp_path, tiny_model_dir, toy_suite, """
regression: {enabled: false}
budget: {trials: 2, max_steps: 100, epochs: 20, trial_train_seconds: 1800}  # steps end it, on any machine
training: {batch_size: 16, eval_every_steps: 0, padding_free: true}  # joined rows, as on a GPU
generation: {batch_size: 32}
space:
  prompt: {shots: 0}
  full: {learning_rate: 3.0e-3}
enqueue: [{method: prompt}, {method: full}]
""")
    assert main(["sweep", str(experiment)]) == 0
    trials = {t.method: t for t in Store(tmp_path / "results/harness.duckdb").trials("toy")}
    full, prompt = trials["full"], trials["prompt"]
    loss = full.training.loss_curve
    assert loss[-1][1] < loss[0][1] * 0.5, loss
    tuned_acc = full.metric("test", "task_accuracy").value
    prompt_acc = prompt.metric("test", "task_accuracy").value
    assert tuned_acc >= prompt_acc + 0.3
    assert full.metric("test", "format_compliance").value >= 0.9
    # the forgetting check was off: not measured (null), never "no forgetting"
    assert full.metric("test", "regression_delta").value is None and full.constraints["regression_delta"] is None
    out = capsys.readouterr().out
    assert "YES - fine-tuning beat local prompting" in out and "not measured" in out


@pytest.mark.slow
def test_demo_experiment_runs_on_a_tiny_model(tmp_path, tiny_model_dir, capsys):
    """experiments/demo.yaml itself, through the same code path, shrunk only by --set."""
    results = tmp_path / "results"
    overrides = [f"model={tiny_model_dir}", f"results_dir={results}", "data.train_limit=32", "data.dev_limit=8",
                 "data.test_limit=8", "budget.max_steps=2", "budget.trials=4", "regression.limit=6",
                 "training.eval_every_steps=1", "training.eval_examples=4"]
    argv = ["sweep", str(REPO / "experiments/demo.yaml")] + [a for o in overrides for a in ("--set", o)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "qlora: skipped - QLoRA needs a CUDA GPU" in out
    suggested = re.search(r"next: `harness (report [^`]+)` writes this answer", out).group(1)
    assert main(shlex.split(suggested)) == 0 and (results / "report-demo.md").is_file()  # the command it names works
    capsys.readouterr()
    assert main(["trials", "--db", str(results / "harness.duckdb"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and {r["method"] for r in rows} >= {"prompt", "lora"}
    for row in rows:
        assert set(row) >= {"id", "study", "method", "params", "status", "metrics"}
        if row["status"] != "complete":
            continue
        for name in ("task_accuracy", "format_compliance", "hallucination_rate", "regression_delta"):
            assert set(row["metrics"][name]) == {"value", "low", "high", "n"}
        accuracy = row["metrics"]["task_accuracy"]
        assert accuracy["n"] == 8 and accuracy["low"] <= accuracy["value"] <= accuracy["high"]
        if row["method"] == "prompt":
            assert row["metrics"]["regression_delta"] == {"value": None, "low": None, "high": None, "n": 0}
            assert row["params"]["shots"] in (0, 3)
    baseline = next(r for r in rows if r["params"].get("constrained"))  # the demo's strongest local prompting arm
    assert baseline["params"]["shot_selection"] == "similar"
    assert baseline["metrics"]["format_compliance"]["value"] == 1.0  # constrained: every answer has the format
    assert baseline["metrics"]["hallucination_rate"]["value"] == 0.0  # and names a label of the set
    store = Store(results / "harness.duckdb")
    lora = next(t for t in store.trials() if t.method == "lora" and t.complete)
    assert (lora.artifact_path / "adapter_model.safetensors").is_file()
    assert lora.metric("test", "regression_delta").n == 6
    examples = store.examples(lora.id)
    assert {e.split for e in examples} == {"dev", "test"}
    labels = lora.label_reports["test"]
    assert labels.n == 8 and sum(sum(row.values()) for row in labels.confusion.values()) == 8
    assert lora.metric("test", "macro_f1").n == 8
    speed = lora.throughput["test"]
    assert speed.examples == 8 and speed.completion_tokens > 0
    assert len(speed.batches) == -(-8 // speed.batch_size)  # each generate call timed once
    assert sum(tokens for tokens, _ in speed.batches) == speed.completion_tokens
    assert 0 < sum(seconds for _, seconds in speed.batches) <= speed.seconds
    assert speed.others_cpu_share is not None and 0.0 <= speed.others_cpu_share <= 1.0
    assert all(e.prompt_tokens > 0 and e.latency_s > 0 for e in examples)
    assert set(lora.phase_seconds) == {"load", "train", "dev", "test", "regression", "save"}
    assert 0 <= lora.overhead_seconds < lora.wall_seconds
    assert main(["show", lora.id, "--db", str(results / "harness.duckdb")]) == 0
    shown = capsys.readouterr().out
    assert "regression_delta" in shown and "overhead" in shown
    assert re.search(r"per label \(test, macro-F1 \d+\.\d \[\d+\.\d, \d+\.\d\] over", shown)
    assert re.search(r"F1 \d+\.\d \[\d+\.\d, \d+\.\d\] +support \d", shown)  # each label's F1 with its interval
    assert main(["predict", lora.id, "--db", str(results / "harness.duckdb"), "--input", "lost card"]) == 0
    assert "format_compliant" in json.loads(capsys.readouterr().out.splitlines()[-1])
    prompt = next(t for t in store.trials() if t.method == "prompt" and t.complete)
    db = ["--db", str(results / "harness.duckdb")]
    assert main(["compare", lora.id, prompt.id, *db, "--format", "json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    accuracy = next(s for s in compared["scores"] if s["metric"] == "task_accuracy")
    assert accuracy["test"] == "mcnemar-exact" and 0 <= accuracy["p_value"] <= 1 and compared["n_shared"] == 8
    assert main(["compare", lora.id, prompt.id, *db]) == 0
    assert "task_accuracy" in capsys.readouterr().out
    assert main(["payback", lora.id, "--baseline", prompt.id, "--volume", "100000", *db]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Payback of {lora.id} against {prompt.id}") and "assumptions:" in text
    assert "e-0" not in text.split("assumptions:")[0]  # dollars at a readable precision
    assert main(["payback", lora.id, "--baseline", "api:gpt-4o-mini", "--volume", "1e6", "--baseline-accuracy",
                 "0.5", "--format", "json", *db]) == 0
    estimate = json.loads(capsys.readouterr().out)
    assert estimate["pays_back"] is False and estimate["months_to_payback"] is None  # tiny model: below the bar
    assert "assumed, not measured" in json.dumps(estimate["assumptions"])


@pytest.mark.slow
def test_killed_sweep_resumes_and_marks_the_stale_trial_failed(tmp_path, tiny_model_dir, toy_suite):
    experiment = toy_experiment(tmp_path, tiny_model_dir, toy_suite, """
regression: {enabled: false}
budget: {trials: 3, max_steps: 100000, epochs: 1000, trial_train_seconds: 8}
training: {batch_size: 4, eval_every_steps: 0}
data: {dev_limit: 8, test_limit: 8}
space:
  prompt: {shots: [0, 1]}
  full: {learning_rate: 1.0e-3}
enqueue: [{method: prompt, shots: 0}, {method: prompt, shots: 1}, {method: full}]
""")
    db = tmp_path / "results/harness.duckdb"
    # the time cap stops training on purpose, to give the kill something to interrupt
    command = [sys.executable, "-m", "harness", "sweep", str(experiment), "--allow-under-trained"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        trials = Store(db).trials() if db.exists() else []
        if any(t.method == "full" and t.status == "running" for t in trials):
            break
        time.sleep(0.3)
    else:
        first.kill()
        pytest.fail("the sweep never reached its training trial")
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished_before = {t.id for t in Store(db).trials() if t.complete}
    assert len(finished_before) == 2

    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "marked failed - interrupted: process" in second.stdout
    trials = Store(db).trials()
    stale = next(t for t in trials if t.method == "full" and t.number == 2)
    assert stale.status == "failed" and "interrupted" in stale.failure_reason
    assert finished_before <= {t.id for t in trials if t.complete}
    assert sum(t.complete for t in trials) == 3


@pytest.mark.slow
def test_json_suite_on_a_model_without_chat_template(tmp_path):
    """slot-extraction (a JSON contract) through the sweep, on a base model that has no chat template."""
    from tiny import build_tiny_model_dir

    texts = (REPO / "suites/slot-extraction/train.jsonl").read_text().splitlines()[:200]
    model = build_tiny_model_dir(tmp_path / "base", texts=texts, chat_template=False)
    results = tmp_path / "results"
    overrides = [f"model={model}", f"results_dir={results}", "data.train_limit=16", "data.dev_limit=6",
                 "data.test_limit=6", "budget.max_steps=2", "budget.trials=2", "regression.enabled=false",
                 "space.prompt.shots=2", "enqueue=[{method: prompt}, {method: lora}]",
                 "training.max_length=1024"]  # the tiny byte-level tokenizer needs more tokens than the real one
    argv = ["sweep", str(REPO / "experiments/slot-extraction.yaml")] + [a for o in overrides for a in ("--set", o)]
    assert main(argv) == 0
    trials = Store(results / "harness.duckdb").trials()
    assert [t.status for t in trials] == ["complete", "complete"]
    for trial in trials:
        assert {"field_f1", "field_precision", "field_recall", "task_accuracy"} <= set(trial.metrics["test"])
    assert len(trials[0].shots) == 2


def test_plain_prompt_layout_for_models_without_a_chat_template():
    from tiny import build_tiny_tokenizer

    from harness.data.contract import OutputContract
    from harness.data.prompting import Prompter
    from harness.data.shots import FixedShots
    from harness.data.suites import Example

    contract = OutputContract(kind="label", key="colour", labels=("red", "blue"))
    shot = Example("train:1", "the car is red", '{"colour": "red"}')
    prompter = Prompter(build_tiny_tokenizer(chat_template=False), "Name the colour.", contract, FixedShots((shot,)))
    text = prompter.prompt(Example("dev:1", "the sky is blue", '{"colour": "blue"}'))
    assert text.startswith("Name the colour.\n\n") and "red, blue" in text
    assert 'Input: the car is red\nOutput: {"colour": "red"}' in text
    assert text.endswith("Input: the sky is blue\nOutput:")
    assert prompter.completion(shot) == ' {"colour": "red"}'


@pytest.mark.slow
def test_repeated_seeds_and_learning_curve_follow_the_sweep(tmp_path, tiny_model_dir, toy_suite, capsys):
    experiment = toy_experiment(tmp_path, tiny_model_dir, toy_suite, """
regression: {enabled: false}
data: {train_limit: 200, dev_limit: 10, test_limit: 10}
budget: {trials: 2, max_steps: 3}
training: {batch_size: 8, eval_every_steps: 0}
space:
  prompt: {shots: 1}
  full: {learning_rate: 1.0e-3}
enqueue: [{method: prompt}, {method: full}]
repeats: {top_k: 2, seeds: [1]}
learning_curve: {sizes: [40, 0.5, 5000]}
""")
    assert main(["sweep", str(experiment)]) == 0
    out = capsys.readouterr().out
    assert "Repeated seeds" in out and "Learning curve of toy/" in out
    store = Store(tmp_path / "results/harness.duckdb")
    followups = store.followups("toy")
    assert {k: (s.kind, s.parent) for k, s in followups.items()} == {"seeds": ("seeds", "toy"),
                                                                      "curve": ("curve", "toy")}
    seeds = store.trials(followups["seeds"].name)
    assert len(seeds) == 2 and all(t.complete and t.params["seed"] == 1 for t in seeds)
    assert {t.params["source_trial"] for t in seeds} == {"toy/0", "toy/1"}
    curve = store.trials(followups["curve"].name)
    assert [t.params["train_examples"] for t in curve] == [40, 100, 200]
    assert [t.training.examples for t in curve] == [40, 100, 200]
    kept = [t for t in curve if t.artifact_path]  # follow-ups keep weights under the same retention rule
    assert kept and all((t.artifact_path / "config.json").is_file() for t in kept)
    db = ["--db", str(tmp_path / "results/harness.duckdb")]
    assert main(["predict", kept[0].id, *db, "--input", "the cup is red"]) == 0  # predict works on a follow-up
    assert "format_compliant" in capsys.readouterr().out
    prompt_repeat = next(t for t in seeds if t.method == "prompt")
    assert main(["predict", prompt_repeat.id, *db, "--input", "the cup is red"]) == 0
    assert main(["sweep", str(experiment)]) == 0  # idempotent: nothing new is run
    assert len(store.trials("toy+seeds")) == 2 and len(store.trials("toy+curve")) == 3
    # every trial the sweep and its follow-ups scored records the interval rules it was scored under
    assert {t.stats_rules for t in store.trials() if t.metrics} == {STATS_RULES}


@pytest.mark.slow
def test_free_text_suite_scores_final_answer_and_rouge(tmp_path, tiny_model_dir):
    """math-word-problems (text contract): accuracy on the final number, ROUGE-L on the reasoning."""
    results = tmp_path / "results"
    overrides = [f"model={tiny_model_dir}", f"results_dir={results}", "name=math", "suite=math-word-problems",
                 "data.train_limit=8", "data.dev_limit=4", "data.test_limit=4", "budget.trials=1",
                 "regression.enabled=false", "generation.max_new_tokens=12", "space={prompt: {shots: 1}}",
                 "enqueue=[]"]
    argv = ["sweep", str(REPO / "experiments/demo.yaml")] + [a for o in overrides for a in ("--set", o)]
    assert main(argv) == 0
    (trial,) = Store(results / "harness.duckdb").trials()
    assert trial.complete
    assert {"rouge_l", "task_accuracy", "format_compliance"} <= set(trial.metrics["test"])
    assert trial.constraints["hallucination_rate"] is None  # not defined for free text: not measured


def test_dry_run_warns_when_the_budget_cannot_reach_a_fine_tuned_trial(tmp_path, tiny_model_dir, toy_suite, capsys):
    # the estimate comes from this machine's timings of the tiny model: a thousandth of a minute ends before the
    # first fine-tuned trial if two prompting trials run first
    body = "budget: {trials: 3, sweep_minutes: 0.001}\nspace:\n  prompt: {shots: [0, 3]}\n  lora: {r: 8}\nenqueue: %s\n"
    late = toy_experiment(tmp_path, tiny_model_dir, toy_suite,
                          body % "[{method: prompt, shots: 0}, {method: prompt, shots: 3}, {method: lora}]")
    assert main(["sweep", str(late), "--dry-run"]) == 0
    said = capsys.readouterr()
    out = said.out + said.err  # the warning is on standard error
    assert "unlikely to reach a fine-tuned trial" in said.err and "budget.sweep_minutes" in out
    assert "estimated duration" in out and "3. lora: " in out and "calibrated on" in out
    early = toy_experiment(tmp_path, tiny_model_dir, toy_suite,
                           body % "[{method: lora}, {method: prompt, shots: 0}, {method: prompt, shots: 3}]")
    assert main(["sweep", str(early), "--dry-run"]) == 0
    assert "unlikely to reach" not in capsys.readouterr().out


def test_a_sweep_its_time_budget_stops_says_how_many_trials_it_left_and_how_to_run_them(tmp_path, tiny_model_dir,
                                                                                       toy_suite, capsys):
    """`budget.sweep_minutes` ended a resumed sweep after one trial without a word: exit 0, and the report counted
    "3 trials" while the planned straw baseline had never run."""
    body = "budget: {trials: 3, sweep_minutes: 0.001}\nspace:\n  prompt: {shots: [0, 3]}\nenqueue: %s\n"
    late = toy_experiment(tmp_path, tiny_model_dir, toy_suite, body % "[{method: prompt, shots: 0}]")
    assert main(["sweep", str(late)]) == 0  # a budget that runs out is the plan working, not an error
    out = " ".join(printed(capsys).split())
    assert "budget.sweep_minutes (0.001) ran out with 2 of 3 trials not run; re-run the same command to run them" \
        in out
    assert len(Store(tmp_path / "results" / "harness.duckdb").trials()) == 1


def test_train_examples_longer_than_max_length_are_refused_before_training(tmp_path, tiny_model_dir, toy_suite,
                                                                           capsys):
    experiment = toy_experiment(tmp_path, tiny_model_dir, toy_suite, "space:\n  lora: {r: 8}\n")
    assert main(["sweep", str(experiment), "--set", "training.max_length=8"]) == 2
    out = " ".join(printed(capsys).split())  # the console wraps long lines
    error = out[out.index("error: "):]  # after the warnings the suite gets (its dev inputs reword train's)
    assert error.startswith("error: training.max_length") and "train:" in error
    assert "--set training.max_length=" in error
    assert not list((tmp_path / "results").glob("artifacts/*/*"))


def test_test_examples_longer_than_the_models_context_are_refused_before_any_model_loads(tmp_path, tiny_model_dir,
                                                                                        capsys):
    """A 3,000-word message in test would fail its trial mid-run (or try to allocate memory for a sequence the model
    cannot hold): the plan names it, its line and file, and the fix, first."""
    suite = write_toy_suite(tmp_path / "toy-colours")
    lines = (suite / "test.jsonl").read_text().splitlines()
    (suite / "test.jsonl").write_text("\n".join(lines + [json.dumps(
        {"input": "the red car " * 3000, "output": {"colour": "red"}})]) + "\n")
    experiment = toy_experiment(tmp_path, tiny_model_dir, suite, "data: {test_limit: null}\nspace:\n  prompt: {}\n")
    assert main(["sweep", str(experiment), "--dry-run"]) == 2
    out = " ".join(printed(capsys).split())
    assert f"test:{len(lines) + 1} (line {len(lines) + 1} of" in out and "context window of" in out
    assert "(2048 tokens" in out and "Shorten or drop them" in out


@pytest.mark.slow
def test_a_study_rerun_against_another_storage_is_refused_before_it_overwrites_a_trial(tmp_path, tiny_model_dir,
                                                                                         toy_suite, capsys):
    """Another --storage (or a deleted journal) numbers trials from 0 again: the results database's toy/0 would be
    replaced, scores, adapter folder and all. The sweep refuses before any trial runs, and the dry run says so."""
    experiment = toy_experiment(tmp_path, tiny_model_dir, toy_suite, """
regression: {enabled: false}
budget: {trials: 1}
data: {dev_limit: 4, test_limit: 4}
space:
  prompt: {shots: 0}
""")
    assert main(["sweep", str(experiment)]) == 0
    db = Store(tmp_path / "results/harness.duckdb")
    before = db.trial("toy/0")
    capsys.readouterr()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    for extra in (["--dry-run"], []):
        assert main(["sweep", str(experiment), "--storage", other, *extra]) == 2
        out = " ".join(printed(capsys).split())  # the console wraps long lines
        assert "already holds trials of study toy (toy/0) that the study storage" in out
    assert not (tmp_path / "other.db").exists()  # nothing created where the refused run pointed
    after = db.trial("toy/0")
    assert (after.run_id, after.finished_at, after.objective) == (before.run_id, before.finished_at, before.objective)
    # the storage the trial came from still resumes
    assert main(["sweep", str(experiment), "--trials", "1"]) == 0


HOLDER = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_trial_the_results_database_cannot_record_is_not_counted_and_runs_again(tmp_path, tiny_model_dir,
                                                                                   toy_suite, monkeypatch, capsys):
    """Another process holds the results database when a trial's scores are to be written (a dashboard reading too
    eagerly, a stuck script): the trial is neither counted nor left unseen, the run stops saying why, and the same
    command afterwards runs it again to the study's total."""
    experiment = toy_experiment(tmp_path, tiny_model_dir, toy_suite, """
regression: {enabled: false}
data: {dev_limit: 6, test_limit: 6}
budget: {trials: 1}
space:
  prompt: {shots: 0}
""")
    db = tmp_path / "results" / "harness.duckdb"
    record = Store.record_trial_result
    holders = []

    def held_by_another_process(self, trial_record):
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        holders.append(holder)
        assert holder.stdout.readline().strip() == "locked"
        self.lock_timeout_s = 0.5
        return record(self, trial_record)

    monkeypatch.setattr(Store, "record_trial_result", held_by_another_process)
    try:
        assert main(["sweep", str(experiment)]) == 2
    finally:
        for holder in holders:
            holder.communicate("\n", timeout=30)
    said = printed(capsys)
    assert "trial toy/0 failed" in said and "the results database could not record that" in said
    assert "the trial is not counted" in said and "Re-run the same command" in said
    monkeypatch.setattr(Store, "record_trial_result", record)
    assert main(["sweep", str(experiment)]) == 0
    trials = Store(db).trials("toy")
    assert [t.status for t in trials] == ["failed", "complete"], [(t.id, t.status, t.failure_reason) for t in trials]


def test_similar_shots_past_the_models_window_are_fitted_said_and_recorded(tmp_path, tiny_model_dir, capsys):
    """Long train documents as similar shots: three of them and an input pass the tiny model's 2,048 tokens. The
    arm shows as many as fit, says so as the trial starts, and `show` tells how many prompts showed fewer."""
    suite = write_toy_suite(tmp_path / "toy-colours")
    rows = [json.loads(line) for line in (suite / "train.jsonl").read_text().splitlines()]
    for row in rows:
        row["input"] += ", as the long report says" + " and so it was written down" * 80
    (suite / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    experiment = toy_experiment(tmp_path, tiny_model_dir, suite, """
regression: {enabled: false}
data: {train_limit: 40, dev_limit: 4, test_limit: 4}
budget: {trials: 1}
space:
  prompt: {shots: 3, shot_selection: similar}
""")
    assert main(["sweep", str(experiment)]) == 0
    said = " ".join(printed(capsys).split())
    assert "4 of 4 dev and 4 of 4 test prompt(s) showed fewer shots than the arm chose" in said
    store = Store(tmp_path / "results/harness.duckdb")
    (trial,) = store.trials("toy")
    assert trial.complete and trial.shots_fitted.fewer == {"dev": 4, "test": 4}
    assert trial.shots_fitted.room == 2048 - trial.max_new_tokens
    assert all(e.prompt_tokens <= trial.shots_fitted.room for e in store.examples(trial.id))
    assert main(["show", trial.id, "--db", str(tmp_path / "results/harness.duckdb")]) == 0
    assert "shots fitted: 4 of 4 dev and 4 of 4 test prompt(s)" in " ".join(printed(capsys).split())


def test_a_study_resumed_with_another_file_keeps_what_each_earlier_trial_ran_with(tmp_path, tiny_model_dir,
                                                                                   toy_suite):
    """After an upgrade, a team resumed its demo study with the new demo.yaml: the study's record became the new
    file, and the audit pack, predict and recheck of the old adapter rebuilt it from settings it never ran with. Each
    trial keeps its own; one recorded before trials kept it gets the config its study held, before it is replaced."""
    import duckdb

    from harness.core.records import ran_with

    body = """
regression: {enabled: false}
data: {dev_limit: 2, test_limit: 2}
budget: {trials: 1}
generation: {batch_size: 4}
space:
  prompt: {shots: [0, 1]}
"""
    experiment = toy_experiment(tmp_path, tiny_model_dir, toy_suite, body)
    db = tmp_path / "results/harness.duckdb"
    assert main(["sweep", str(experiment)]) == 0
    assert Store(db).trial("toy/0").provenance["experiment"]["generation"]["batch_size"] == 4
    with duckdb.connect(str(db)) as conn:  # as an older release recorded it: no config of its own
        conn.execute("UPDATE trials SET details = json_remove(details, '$.experiment')")
    experiment.write_text(experiment.read_text().replace("batch_size: 4", "batch_size: 8"))
    assert main(["sweep", str(experiment), "--trials", "2"]) == 0
    store = Store(db)
    study = store.study("toy")
    assert study.experiment["generation"]["batch_size"] == 8  # the study's record is its latest run's
    old, new = store.trial("toy/0"), store.trial("toy/1")
    assert [ran_with(t, study)["generation"]["batch_size"] for t in (old, new)] == [4, 8]
