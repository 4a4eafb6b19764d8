"""A reproducibility auditor's questions: does a resumed sweep run the trials an uninterrupted one would, is the same
adapter the same bytes, does the audit pack say what the sweep decided on its machine (and refuse data edited under
an unchanged version), and does `recheck` say what changed since the scores were recorded? One tiny real sweep."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import duckdb
import optuna
import pytest
from conftest import swept, write_toy_suite
from optuna.trial import TrialState

from harness.cli import main
from harness.lifecycle.promote import promote
from harness.lifecycle.recheck import recheck
from harness.store.database import Store
from harness.sweep.resume import PlacedSampler, mark_interrupted, retry_stopped_trials
from harness.sweep.run import RETRY, _sampler, make_sampler

EXPERIMENT = """
name: repro
model: {model}
suite: {suite}
results_dir: {results}
seed: 7
regression: {{enabled: false}}
data: {{train_limit: 32, dev_limit: 8, test_limit: 8}}
budget: {{trials: 2, max_steps: 4, trial_train_seconds: 300}}
training: {{batch_size: 8, eval_every_steps: 0}}
generation: {{batch_size: 8}}
space:
  prompt: {{shots: 0}}
  lora: {{r: 4, learning_rate: 1.0e-2}}
enqueue: [{{method: prompt}}, {{method: lora}}]
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model_dir) -> Store:
    root = tmp_path_factory.mktemp("repro")
    suite = write_toy_suite(root / "toy-colours")  # its own copy: tests edit it and put it back
    store = swept(root / "repro.yaml", EXPERIMENT.format(model=tiny_model_dir, suite=suite, results=root / "results"))
    assert [t.status for t in store.trials("repro")] == ["complete"] * 2
    return store


def _lora(store: Store):
    return next(t for t in store.trials("repro") if t.method == "lora")


@pytest.fixture
def edited(sweep):
    """Edit a split of the study's suite in place (version unchanged); put it back afterwards."""
    folder = Path(sweep.study("repro").suite_path)
    saved = {name: (folder / name).read_bytes() for name in ("train.jsonl", "test.jsonl")}

    def edit(name: str) -> None:
        text = (folder / name).read_text()
        (folder / name).write_text(text.replace(" is ", " is  ", 1))

    yield edit
    for name, content in saved.items():
        (folder / name).write_bytes(content)


def test_the_same_experiment_run_again_gives_the_same_trials_scores_and_verdict(sweep, tmp_path, tiny_model_dir,
                                                                                 capsys):
    """A second run into another results folder: every stored parameter, loss, answer and metric, and the verdict,
    equal the first run's (on a CPU; timings differ, and so may a GPU's kernels)."""
    from harness.analysis.verdict import study_verdict

    experiment = EXPERIMENT.format(model=tiny_model_dir, suite=sweep.study("repro").suite_path,
                                   results=tmp_path / "results")
    again = swept(tmp_path / "again.yaml", experiment)

    def stored(store: Store) -> list:
        return [(t.method, dict(t.params), t.training.loss_curve if t.training else None,
                 {split: {name: m.to_dict() for name, m in metrics.items()} for split, metrics in t.metrics.items()},
                 [(e.example_id, e.output, dict(e.scores)) for e in store.examples(t.id)])
                for t in store.trials("repro")]

    assert stored(again) == stored(sweep)
    assert study_verdict(again, "repro").text == study_verdict(sweep, "repro").text


def test_the_adapter_config_lists_its_modules_in_one_order_so_the_same_adapter_is_the_same_bytes(sweep, tmp_path):
    """PEFT writes target_modules from a set, in an order Python's string hashing changes per process."""
    lora = _lora(sweep)
    saved = json.loads((lora.artifact_path / "adapter_config.json").read_text())["target_modules"]
    assert len(saved) > 2 and saved == sorted(saved)
    assert main(["audit", lora.id, "--db", str(sweep.path), "--out", str(tmp_path / "pack")]) == 0
    exported = json.loads((tmp_path / "pack/export/adapter_config.json").read_text())["target_modules"]
    assert exported == saved


def test_the_audit_pack_says_what_the_sweep_decided_on_its_machine(sweep, tmp_path):
    lora = _lora(sweep)
    assert main(["audit", lora.id, "--db", str(sweep.path), "--out", str(tmp_path / "pack")]) == 0
    record = json.loads((tmp_path / "pack/record.json").read_text())
    decided = record["scored_with"]["provenance"]
    assert decided["data"]["sizes"] == {"train": 32, "dev": 8, "test": 8}
    assert decided["data"]["subset_sha256"] == dict(lora.data.subset_sha256)
    assert decided["calibration"]["precision"] == decided["training"]["precision"] in ("fp32", "bf16")
    assert decided["budget"]["max_steps"] == 4 and decided["budget"]["steps_written"] == 4
    assert record["scored_with"]["engine"]["name"] == "hf" and record["scored_with"]["engine"]["dtype"]
    environment = record["environment"]
    assert environment["determinism"]["torch_deterministic_algorithms"] in (True, False)
    assert {"numpy", "scipy", "tokenizers", "lm-eval", "finetune-harness"} <= set(environment["versions"])


def test_an_audit_of_a_suite_edited_under_the_same_version_is_refused_before_anything_is_written(sweep, edited,
                                                                                                tmp_path, capsys):
    lora = _lora(sweep)
    recorded = lora.provenance["data"]["split_sha256"]["train"]
    edited("train.jsonl")
    out = tmp_path / "pack"
    assert main(["audit", lora.id, "--db", str(sweep.path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    message = " ".join(captured.err.split())  # the console wraps long lines
    assert message.startswith("error:") and "Traceback" not in captured.out + captured.err
    assert f"train.jsonl: sha256 {recorded[:16]}... when {lora.id} was scored" in message
    assert "Restore those files" in message and "new `version:`" in message
    assert not out.exists() and not list(tmp_path.glob(".*audit-tmp"))


def test_recheck_says_what_changed_since_the_scores_were_recorded(sweep, edited):
    lora = _lora(sweep)
    if sweep.production("toy-colours") is None:
        promote(sweep, lora.id, "production", approver="ada", force=True, reason="a re-check test")
    same = recheck(sweep, "toy-colours", actor="auditor")
    # a checkout with local edits is named even when the commit matches: the code may still differ
    assert same.paired and all("uncommitted changes" in c for c in same.changed)
    assert "Same library versions" in same.text()
    # the same commit, dirty then and now, is not known to be a change, and never reads as one
    assert "Changed since" not in same.text()
    assert ("Not known to be the same: the harness code" in same.text()) == bool(same.changed)
    assert same.now.value == same.before.value  # same adapter, same examples, same setting: the same answers

    environment = dict(sweep.run(lora.run_id).environment)
    environment["versions"] = {**environment["versions"], "transformers": "0.0.1"}
    with duckdb.connect(str(sweep.path)) as conn:  # a record written on another machine
        conn.execute("UPDATE runs SET environment = ? WHERE run_id = ?", [json.dumps(environment), lora.run_id])
    edited("test.jsonl")
    moved = recheck(sweep, "toy-colours", actor="auditor")
    assert any(c.startswith("transformers 0.0.1 -> ") for c in moved.changed)
    assert any(c.startswith("test.jsonl sha256 ") for c in moved.changed)
    assert "Changed since it was recorded: transformers 0.0.1 -> " in moved.text()
    last = [e for e in sweep.adapter_events(trial_id=lora.id) if e.action == "recheck"][-1]
    assert last.detail["changed_since_recorded"] == list(moved.changed)


def _space(trial: optuna.Trial) -> dict:
    """A conditional space like the sweep's: a method, then that method's parameters."""
    method = trial.suggest_categorical("method", ["prompt", "lora"])
    if method == "prompt":
        return {"method": method, "shots": trial.suggest_categorical("shots", [0, 2, 4])}
    return {"method": method, "r": trial.suggest_categorical("r", [4, 8, 16]),
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)}


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    return make_sampler("tpe", seed)  # the sweep's own


def _study(sampler) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"method": "prompt", "shots": 2})
    study.enqueue_trial({"method": "lora"})  # r and the learning rate are sampled
    return study


def _finish(study: optuna.Study, total: int) -> list[dict]:
    """Run the study up to `total` finished trials; the parameters of the finished ones, in order."""
    while sum(t.state == TrialState.COMPLETE for t in study.get_trials()) < total:
        trial = study.ask()
        params = _space(trial)
        study.tell(trial, params.get("learning_rate", 0.0) * 100 + params.get("shots", 0) / 10)
    return [_space(optuna.trial.FixedTrial(t.params)) for t in study.get_trials() if t.state == TrialState.COMPLETE]


def _interrupted(make_sampler) -> list[dict]:
    """A sweep killed during its third trial, then resumed by a new process (a new sampler) that fails the dead
    trial and retries it once with the sweep's own callback, as `fail_stale_trials` does."""
    study = _study(make_sampler())
    _finish(study, 2)
    killed = study.ask()
    _space(killed)
    resumed = optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=make_sampler())
    resumed.tell(killed.number, state=TrialState.FAIL)
    RETRY(resumed, resumed.get_trials()[killed.number])
    return _finish(resumed, 8)


def test_a_resumed_sweep_draws_the_trials_an_uninterrupted_one_would():
    placed = _finish(_study(PlacedSampler(_tpe, 7)), 8)
    assert _interrupted(lambda: PlacedSampler(_tpe, 7)) == placed
    sweeps = SimpleNamespace(sampler="tpe", seed=7)
    assert _interrupted(lambda: _sampler(sweeps, 0)) == placed  # the sampler the sweep uses is the placed one
    # Optuna's own sampler starts its random stream again in the new process, so the trials after a resume differ:
    # the reason for the placed sampler.
    assert _interrupted(lambda: _tpe(7)) != _finish(_study(_tpe(7)), 8)


def _stopped(study: optuna.Study, by_user: bool) -> optuna.Trial:
    """The study's next trial, stopped as the sweep stops one: by Ctrl-C, or sampled and not needed."""
    trial = study.ask()
    _space(trial)
    mark_interrupted(trial, "interrupted by the user (Ctrl-C) during the trial" if by_user else "not needed",
                     interrupted=True, by_user=by_user)
    study.tell(trial, state=TrialState.FAIL)
    return trial


def test_a_trial_ctrl_c_stopped_runs_again_on_resume_with_its_parameters_and_place():
    """Optuna's `enqueue_trial(skip_if_exists=True)` sees the stopped baseline and queues nothing: it is the retry
    that brings the LoRA baseline back. Retried once however often resumed; a trial not needed is not retried."""
    placed = _finish(_study(PlacedSampler(_tpe, 7)), 8)
    study = _study(PlacedSampler(_tpe, 7))
    _finish(study, 1)  # the prompting baseline
    stopped = _stopped(study, by_user=True)  # the LoRA baseline, Ctrl-C'd mid-training
    assert study.trials[stopped.number].params["method"] == "lora"
    resumed = optuna.load_study(study_name=study.study_name, storage=study._storage,
                                sampler=PlacedSampler(_tpe, 7))
    assert retry_stopped_trials(resumed) == [stopped.number] and retry_stopped_trials(resumed) == []
    resumed.enqueue_trial({"method": "lora"}, skip_if_exists=True)  # what the sweep's start does next: nothing
    (waiting,) = resumed.get_trials(states=(TrialState.WAITING,))
    assert waiting.params == study.trials[stopped.number].params
    assert _finish(resumed, 8) == placed  # and every trial after it as an uninterrupted sweep drew them
    _stopped(resumed, by_user=False)
    _stopped(resumed, by_user=True)
    assert len(retry_stopped_trials(resumed)) == 1  # the one Ctrl-C stopped, not the one not needed
