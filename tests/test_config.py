"""Experiment files: every bundled one loads; each kind of mistake gets an error naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.config import load_experiment
from harness.core.errors import ConfigError, DeviceError
from harness.models.device import resolve_device
from harness.sweep.run import plan_sweep
from harness.sweep.space import build_space, optuna_params

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_bundled_experiment_loads_and_plans(path):
    config = load_experiment(path)
    space = build_space(config.space, "cpu", str(path))
    assert "qlora" not in space.methods or not config.space.get("qlora")
    for entry in config.enqueue:
        optuna_params(entry, str(path))
    if config.device != "cuda":
        plan = plan_sweep(str(path), [])
        assert plan.subsets["train"] and plan.subsets["dev"] and plan.subsets["test"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


MINIMAL = "name: x\nspace:\n  prompt: {shots: [0, 2]}\n"


@pytest.mark.parametrize("text, message", [
    (MINIMAL + "budget: {trails: 3}\n", "unknown key `budget.trails`. Did you mean `budget.trials`?"),
    (MINIMAL + "seed: zero\n", "`seed` must be int"),
    ("space: {prompt: {}}\n", "missing required key `name`"),
    ("name: x\nspace: {sft: {}}\n", "unknown method `space.sft`"),
    ("name: x\nspace: {lora: {rank: [8]}}\n", "`space.lora.rank` is not a parameter of lora"),
    ("name: x\nspace: {lora: {r: []}}\n", "`space.lora.r` is an empty list"),
    ("name: x\nspace: {lora: {learning_rate: {low: 1}}}\n", "{low, high, log?, step?}"),
    ("- just\n- a list\n", "the top level must be a mapping"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_config_mistakes_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=None) as err:
        config = load_experiment(path)
        build_space(config.space, "cpu", str(path))
    assert message in str(err.value) and str(path) in str(err.value)


def test_overrides_apply_dotted_keys_and_parse_values(tmp_path):
    path = write(tmp_path, MINIMAL)
    config = load_experiment(path, ["budget.trials=7", "data.train_limit=null", "space.prompt.shots=[1, 4]"])
    assert config.budget.trials == 7 and config.data.train_limit is None
    assert config.space["prompt"]["shots"] == [1, 4]
    with pytest.raises(ConfigError, match="write it as key=value"):
        load_experiment(path, ["budget.trials"])
    with pytest.raises(ConfigError, match="unknown key `budget.trial`"):
        load_experiment(path, ["budget.trial=3"])


def test_qlora_alone_on_a_cpu_says_what_is_missing(tmp_path):
    path = write(tmp_path, "name: x\nspace: {qlora: {}}\n")
    config = load_experiment(path)
    with pytest.raises(ConfigError, match="QLoRA needs a CUDA GPU"):
        build_space(config.space, "cpu", str(path))


def test_qlora_is_skipped_with_its_reason_beside_other_methods(tmp_path):
    config = load_experiment(write(tmp_path, "name: x\nspace: {prompt: {}, qlora: {}}\n"))
    space = build_space(config.space, "cpu", "x")
    assert space.methods == ("prompt",) and "CUDA" in space.skipped["qlora"]
    assert any(line.startswith("qlora: skipped") for line in space.describe())


def test_asking_for_cuda_without_a_gpu_fails_with_the_fix():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match="--set device=auto"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="not one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_conditional_space_samples_only_the_chosen_methods_parameters(tmp_path):
    import optuna

    lora = "  lora: {r: [8, 16], learning_rate: {low: 1.0e-4, high: 1.0e-3, log: true}}\n"
    config = load_experiment(write(tmp_path, "name: x\nspace:\n  prompt: {shots: [0, 2]}\n" + lora))
    space = build_space(config.space, "cpu", "x")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        params = space.suggest(trial)
        seen.add(params["method"])
        names = {k for k in trial.params if k != "method"}
        assert all(k.startswith(params["method"] + ".") for k in names)
        if params["method"] == "prompt":
            assert set(params) == {"method", "shots"}
        else:
            assert {"r", "lora_alpha", "learning_rate"} <= set(params)
        study.tell(trial, 0.0)
    assert seen == {"prompt", "lora"}


def test_a_regression_check_that_overlaps_the_suite_is_refused(tmp_path):
    path = write(tmp_path, "name: x\nsuite: math-word-problems\nregression: {suite: gsm8k}\nspace: {prompt: {}}\n")
    with pytest.raises(ConfigError, match="measure memorisation, not forgetting"):
        plan_sweep(str(path), [])
    plan_sweep(str(path), ["regression.suite=piqa"])  # PIQA shares nothing with GSM8K
    with pytest.raises(ConfigError, match="not a bundled check"):
        plan_sweep(str(path), ["regression.suite=mmlu"])
