"""Faults injected into real sweeps on a tiny model: out of memory in one trial, a diverging loss, a full disk,
and a sweep whose every trial fails. Each costs at most its own trial, and says why."""

from __future__ import annotations

import gc
import shutil
import weakref
from collections import namedtuple

import pytest
import torch
from conftest import printed

from harness.cli import main
from harness.store.database import Store
from harness.training import sft

EXPERIMENT = """
regression: {enabled: false}
budget: {trials: TOTAL, max_steps: 20, epochs: 100, trial_train_seconds: 30}
training: {batch_size: 4, eval_every_steps: 0}
pruning: {enabled: false}
data: {dev_limit: 6, test_limit: 6}
space:
  full: {learning_rate: [1.0e-3, 2.0e-3, 3.0e-3]}
"""


def experiment(tmp_path, model, suite, total: int = 2):
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: toy\nmodel: {model}\nsuite: {suite}\nresults_dir: {tmp_path / 'results'}\n"
                    + EXPERIMENT.replace("TOTAL", str(total)))
    return path


def calibrated(path) -> str:
    """The machine measured and cached first (`--dry-run`), so that a fault injected afterwards hits a trial."""
    assert main(["sweep", str(path), "--dry-run"]) == 0
    return str(path)


def trials(tmp_path):
    return sorted(Store(tmp_path / "results/harness.duckdb").trials("toy"), key=lambda t: t.number)


@pytest.mark.slow
def test_out_of_memory_fails_one_trial_frees_its_model_and_the_next_runs(tmp_path, tiny_model_dir, toy_suite,
                                                                          monkeypatch):
    real_train, models = sft.train, []

    def train(model, *args, **kwargs):
        models.append(weakref.ref(model))
        if len(models) == 1:  # as torch raises it when an allocation does not fit
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        assert models[0]() is None, "the failed trial's model was still alive when the next trial trained"
        return real_train(model, *args, **kwargs)

    path = calibrated(experiment(tmp_path, tiny_model_dir, toy_suite))
    monkeypatch.setattr(sft, "train", train)
    assert main(["sweep", path]) == 0
    first, second = trials(tmp_path)
    assert first.status == "failed" and first.failure_reason.startswith("out of memory on cpu")
    assert "Tried to allocate 2.00 GiB" in first.failure_reason and "batch_size" in first.failure_reason
    assert second.status == "complete" and second.metric("test", "task_accuracy").n == 6


@pytest.mark.slow
def test_a_non_finite_loss_fails_the_trial_and_never_counts_as_a_score(tmp_path, tiny_model_dir, toy_suite,
                                                                        monkeypatch, capsys):
    from transformers import Trainer

    real_step = Trainer.training_step

    def diverging(self, *args, **kwargs):
        loss = real_step(self, *args, **kwargs)
        return loss * float("nan") if self.state.global_step >= 6 else loss

    path = calibrated(experiment(tmp_path, tiny_model_dir, toy_suite, total=1))
    monkeypatch.setattr(Trainer, "training_step", diverging)
    assert main(["sweep", path]) == 1  # all failed
    (trial,) = trials(tmp_path)
    assert trial.status == "failed" and trial.objective is None
    assert "TrainingError: the training loss became nan by step 10" in trial.failure_reason
    assert "Lower `learning_rate`" in trial.failure_reason
    assert trial.metric("test", "task_accuracy") is None and trial.metric("dev", "task_accuracy") is None
    assert "every trial this run started failed (1)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_fault_before_the_trials_own_handling_fails_it_once_and_never_loops(tmp_path, tiny_model_dir, toy_suite,
                                                                              monkeypatch, capsys):
    """A trial that fails without the harness's mark is taken for a dead worker's and retried: a fault outside the
    trial's own handling (here, the duplicate check) must be recorded as its failure, so that it counts."""
    from harness.sweep import run

    path = calibrated(experiment(tmp_path, tiny_model_dir, toy_suite, total=2))
    monkeypatch.setattr(run, "finished_twin", lambda *args: (_ for _ in ()).throw(RuntimeError("a bug")))
    assert main(["sweep", path]) == 1  # all failed, and it ended
    failed = trials(tmp_path)
    assert [t.status for t in failed] == ["failed", "failed"]
    assert all("RuntimeError: a bug" in t.failure_reason for t in failed)
    assert "every trial this run started failed (2)" in capsys.readouterr().err


def test_out_of_memory_while_calibrating_says_what_to_lower(tmp_path, tiny_model_dir, toy_suite, monkeypatch,
                                                            capsys):
    def train(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))  # nothing calibrated yet on this machine
    monkeypatch.setattr(sft, "train", train)
    assert main(["sweep", str(experiment(tmp_path, tiny_model_dir, toy_suite))]) == 2
    out = " ".join(printed(capsys).split())
    assert "calibration: full ran out of memory on cpu (CUDA out of memory. Tried to allocate 2.00 GiB)" in out
    assert "training.batch_size=4" in out and "Traceback" not in out
    assert trials(tmp_path) == []  # no trial was recorded


def test_a_full_disk_is_refused_before_any_model_loads(tmp_path, tiny_model_dir, toy_suite, monkeypatch, capsys):
    from harness.models import loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    assert main(["sweep", str(experiment(tmp_path, tiny_model_dir, toy_suite))]) == 2
    out = printed(capsys)
    assert "cannot write results to" in out and "only 1 MB free" in out and "results_dir" in out
    assert not (tmp_path / "results").exists()  # nothing half-written


def test_a_failed_trial_leaves_nothing_alive_for_gc_to_find(tiny_model_dir):
    """The premise of freeing memory after a failure: the model dies with the exception's frames."""
    from harness.models import sources
    from harness.models.device import free_memory
    from harness.models.loading import load_model

    def fail():
        model = load_model(sources.resolve(str(tiny_model_dir)), "cpu", torch.float32)
        ref.append(weakref.ref(model))
        raise torch.OutOfMemoryError("simulated")

    ref: list = []
    try:
        fail()
    except torch.OutOfMemoryError as exc:
        kept = exc  # Optuna keeps the exception like this until the trial is recorded
    del kept
    free_memory("cpu")
    gc.collect()
    assert ref[0]() is None


@pytest.mark.slow
def test_a_sweep_whose_every_fine_tuned_trial_failed_exits_non_zero(tmp_path, tiny_model_dir, toy_suite,
                                                                      monkeypatch, capsys):
    """The prompting arm completed and the adapter failed (a vLLM server without --enable-lora did it): the study has
    no answer, and a scheduler must see it, where the sweep exited 0."""
    path = experiment(tmp_path, tiny_model_dir, toy_suite, total=2)
    path.write_text(path.read_text().replace("space:\n", "space:\n  prompt: {shots: 0}\n")
                    + "enqueue: [{method: prompt}, {method: full}]\n")
    calibrated(path)

    def train(*args, **kwargs):
        raise RuntimeError("the adapter could not be loaded")

    monkeypatch.setattr(sft, "train", train)
    assert main(["sweep", str(path)]) == 1
    assert [t.status for t in trials(tmp_path)] == ["complete", "failed"]
    assert "every fine-tuned trial this run started failed (1), so the study has no answer" in " ".join(
        printed(capsys).split())
