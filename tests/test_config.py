"""Experiment files: every bundled one loads; each kind of mistake gets an error naming the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import printed

from harness.core.config import load_experiment
from harness.core.errors import ConfigError, DeviceError
from harness.models.device import resolve_device
from harness.sweep.plan import plan_sweep
from harness.sweep.space import build_space, enqueue_params

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_bundled_experiment_loads_and_plans(path, request, monkeypatch):
    config = load_experiment(path)
    space = build_space(config.space, "cpu", str(path))
    assert "qlora" not in space.methods or not config.space.get("qlora")
    for i, entry in enumerate(config.enqueue):
        enqueue_params(entry, space, str(path), i)
    overrides = []
    for name, endpoint in config.endpoints.items():  # offline: a real local server stands in for the hosted one
        server = request.getfixturevalue("openai_server")
        monkeypatch.setenv(endpoint.api_key_env, "test-key")
        overrides += [f"endpoints.{name}.base_url={server.url}", f"endpoints.{name}.model={server.model}"]
    if config.device != "cuda":
        plan = plan_sweep(str(path), overrides)
        assert plan.subsets["train"] and plan.subsets["dev"] and plan.subsets["test"]
        assert set(plan.endpoints) == set(config.endpoints)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


MINIMAL = "name: x\nspace:\n  prompt: {shots: [0, 2]}\n"


@pytest.mark.parametrize("text, message", [
    (MINIMAL + "budget: {trails: 3}\n", "unknown key `budget.trails`. Did you mean `budget.trials`?"),
    (MINIMAL + "learning_rate: 0.1\n", "unknown key `learning_rate`. Did you mean `learning_curve`? A method's "
                                       "parameters (learning_rate, r, shots, ...) go under its entry in `space:`"),
    (MINIMAL + "seed: zero\n", "`seed` must be an integer, got 'zero'"),
    (MINIMAL + "training: {batch_size: 0}\n", "`training.batch_size` must be at least 1; got 0"),
    (MINIMAL + "objective: {min_format_compliance: 1.5}\n", "`objective.min_format_compliance` must be at most 1"),
    (MINIMAL + "device: tpu\n", "`device` must be one of auto, cpu, cuda; got 'tpu'"),
    ("name: x\nspace: {lora: {r: 0}}\n", "`space.lora.r` must be at least 1; got 0"),
    ("name: x\nspace: {lora: {r: [8, 0]}}\n", "`space.lora.r[1]` must be at least 1; got 0"),
    ("name: x\nspace: {lora: {learning_rate: -1.0e-3}}\n", "`space.lora.learning_rate` must be greater than 0"),
    ("name: x\nspace: {lora: {learning_rate: fast}}\n", "`space.lora.learning_rate` must be a number, got 'fast'"),
    ("name: x\nspace: {full: {learning_rate: 1.0e+6}}\n", "`space.full.learning_rate` must be at most 1; got"),
    ("name: x\nspace: {lora: {learning_rate: {low: -1, high: 1}}}\n", "`space.lora.learning_rate.low` must be"),
    ("name: x\nspace: {lora: {lora_dropout: 1.0}}\n", "`space.lora.lora_dropout` must be below 1"),
    ("name: x\nspace: {lora: {r: {low: 16, high: 8}}}\n", "low 16 above high 8"),
    ("name: x\nspace: {prompt: {shots: -1}}\n", "`space.prompt.shots` must be at least 0"),
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
    # null is the default, as `sweep --help` says: for a list it was refused ("must be a list")
    enqueued = write(tmp_path, MINIMAL + "enqueue: [{method: prompt}]\nrepeats: {seeds: [3]}\n")
    config = load_experiment(enqueued, ["enqueue=null", "repeats.seeds=null"])
    assert config.enqueue == () and config.repeats.seeds == (1, 2)
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
            assert set(params) == {"method", "shots", "shot_selection", "constrained"}
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


def test_enqueue_outside_the_space_is_refused_not_replaced(tmp_path):
    space_text = ("name: x\nspace:\n  prompt: {shots: [0, 3]}\n"
                  "  lora: {r: [8, 16], learning_rate: {low: 1.0e-4, high: 1.0e-3}}\n")
    cases = [
        ("enqueue: [{method: prompt, shots: 5}]", "`shots: 5` is outside the space"),
        ("enqueue: [{method: lora, learning_rate: 0.01}]", "it must lie in [0.0001, 0.001]"),
        ("enqueue: [{method: lora, rank: 8}]", "names `rank`, which is not a parameter of lora"),
        ("enqueue: [{method: full}]", "needs `method:` one of the methods in `space`"),
        ("enqueue: [{shots: 1}]", "needs `method:`"),
    ]
    for body, message in cases:
        path = write(tmp_path, space_text + body + "\n")
        with pytest.raises(ConfigError) as err:
            plan_sweep(path, [])
        assert message in str(err.value) and "enqueue[0]" in str(err.value)
    plan = plan_sweep(write(tmp_path, space_text + "enqueue: [{method: lora, r: 16, learning_rate: 5.0e-4}]\n"), [])
    assert plan.enqueued == ({"method": "lora", "lora.r": 16, "lora.learning_rate": 5.0e-4},)


def test_objective_must_be_a_metric_the_suite_produces_and_sets_the_direction(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean `task_accuracy`") as err:
        plan_sweep(write(tmp_path, MINIMAL + "objective: {metric: task_acuracy}\n"), [])
    assert "format_compliance" in str(err.value)  # it lists what the suite produces
    assert plan_sweep(write(tmp_path, MINIMAL), []).maximize is True
    assert plan_sweep(write(tmp_path, MINIMAL + "objective: {metric: hallucination_rate}\n"), []).maximize is False
    assert plan_sweep(write(tmp_path, MINIMAL + "objective: {metric: macro_f1}\n"), []).maximize is True
    with pytest.raises(ConfigError, match="rouge_l"):  # a label suite runs no rouge_l scorer
        plan_sweep(write(tmp_path, MINIMAL + "objective: {metric: rouge_l}\n"), [])


def test_plan_refuses_what_would_fail_later(tmp_path):
    with pytest.raises(ConfigError, match="train subset holds only 2 examples"):
        plan_sweep(write(tmp_path, MINIMAL + "data: {train_limit: 2}\n"), ["space.prompt.shots=[0, 3]"])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write results to"):
        plan_sweep(write(tmp_path, MINIMAL + f"results_dir: {blocker / 'results'}\n"), [])
    with pytest.raises(ConfigError, match="study name 'a/b'"):
        plan_sweep(write(tmp_path, MINIMAL), [], study="a/b")
    with pytest.raises(ConfigError, match="--study '': a study needs a name"):
        plan_sweep(write(tmp_path, MINIMAL), [], study=" ")
    with pytest.raises(Exception, match="not a HF model dir|unknown model"):
        plan_sweep(write(tmp_path, MINIMAL + f"model: {tmp_path}\n"), [])


def test_config_mistakes_exit_non_zero_before_any_model_loads(tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.models import loading

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was validated")

    monkeypatch.setattr(loading, "load_model", loaded)
    monkeypatch.setattr(loading, "load_tokenizer", loaded)
    for body in ("objective: {metric: task_acuracy}", "space: {lora: {r: 0}}",
                 "space: {lora: {learning_rate: -0.001}}", "enqueue: [{method: prompt, shots: 9}]"):
        text = "name: x\nresults_dir: " + str(tmp_path / "r") + "\nspace: {prompt: {shots: [0, 2]}}\n" + body + "\n"
        path = write(tmp_path, text.replace("space: {prompt: {shots: [0, 2]}}\nspace:", "space:"))
        assert main(["sweep", str(path)]) == 2
        out = printed(capsys)
        assert "error:" in out and "Traceback" not in out and str(path) in out


@pytest.mark.parametrize("text, line, key, first", [
    ("name: bad25\nsuite: ticket-triage\nname: dup\nspace:\n  prompt: {shots: [0]}\n", 3, "name", 1),
    ("name: x\nspace:\n  prompt: {shots: [0]}\n  lora: {r: 8}\n  prompt: {shots: [3]}\n", 5, "prompt", 3),
    ("name: x\nspace: {lora: {r: 8, r: 16}}\n", 2, "r", 2),
], ids=["top-level", "nested-block", "flow-mapping"])
def test_a_key_given_twice_is_refused_at_its_second_line(tmp_path, text, line, key, first):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: key `{key}` is given twice")
    assert f"first on line {first}" in message and "delete the other" in message


def test_yaml_merge_keys_may_still_override_what_they_merge():
    from harness.core.yamlfile import parse_yaml

    text = "base: &b {r: 8, lora_alpha: 16}\nspace:\n  lora:\n    <<: *b\n    r: 16\n"
    assert parse_yaml(text)["space"]["lora"] == {"r": 16, "lora_alpha": 16}


def test_a_set_value_is_parsed_as_strictly_as_a_file(tmp_path):
    with pytest.raises(ConfigError, match="key `r` is given twice in the value"):
        load_experiment(write(tmp_path, MINIMAL), ["space.lora={r: 8, r: 16}"])
    with pytest.raises(ConfigError, match="the value is not valid YAML"):
        load_experiment(write(tmp_path, MINIMAL), ["space.prompt.shots=[0, 3"])


def test_a_suite_yaml_with_a_key_given_twice_is_refused(tmp_path):
    from harness.core.errors import SuiteError
    from harness.core.yamlfile import read_yaml

    path = tmp_path / "suite.yaml"
    path.write_text("name: s\nversion: 1.0.0\nversion: 1.1.0\n")
    with pytest.raises(SuiteError, match=rf"{path}:3: key `version` is given twice"):
        read_yaml(path, SuiteError)


@pytest.mark.parametrize("body, overrides, message", [
    ("training: {warmup_steps: 10}\n", ["budget.max_steps=10"], "`training.warmup_steps: 10` is not below "
                                                                "`budget.max_steps: 10`"),
    ("repeats: {top_k: 2, seeds: []}\n", [], "`repeats.top_k: 2` re-runs the best configurations with each of "
                                             "`repeats.seeds`, which is empty"),
], ids=["warmup-not-below-max", "top-k-without-seeds"])
def test_settings_that_contradict_each_other_are_refused(tmp_path, body, overrides, message):
    path = write(tmp_path, MINIMAL + body)
    with pytest.raises(ConfigError) as err:
        load_experiment(path, overrides)
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_step_floor_above_a_short_step_budget_is_not_a_contradiction(tmp_path):
    """min_steps only bounds how far fit_minutes lowers the budget: a shorter written budget (a quick look at an
    experiment whose file sets the floor, `--set budget.max_steps=2`) is never raised to it, so nothing conflicts."""
    for body, overrides in [("budget: {max_steps: 6}\n", []), ("budget: {min_steps: 150, fit_minutes: 10}\n",
                                                                 ["budget.max_steps=2"])]:
        config = load_experiment(write(tmp_path, MINIMAL + body), overrides)
        assert config.budget.max_steps in (6, 2) and config.budget.min_steps in (50, 150)


def test_a_bad_results_folder_from_workers_results_flag_names_that_flag(tmp_path, capsys):
    """`harness worker --results DIR` sets results_dir for the user: its refusal names --results, which they typed,
    not a `--set results_dir=` they never wrote."""
    from harness.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["worker", str(write(tmp_path, MINIMAL)), "--results", str(blocker / "results")]) == 2
    out = " ".join("".join(capsys.readouterr()).split())
    assert "cannot write results to" in out and f"the value came from `--results {blocker / 'results'}` on the" in out
    assert "--set results_dir" not in out


@pytest.mark.parametrize("item, said", [
    ("suite=null", "`suite` cannot be unset from the command line: null would quietly fall back to its default"),
    ("model=", "the value is empty; give one (--set model=VALUE)"),
    ("data.train_limit=", "the value is empty"),
])
def test_a_set_item_that_would_quietly_fall_back_to_a_default_is_refused(item, said):
    from harness.core.config import apply_override

    with pytest.raises(ConfigError, match=re.escape(said)):
        apply_override({"name": "x"}, item, "exp.yaml")
    raw = {"name": "x"}
    apply_override(raw, "data.train_limit=null", "exp.yaml")  # null where null means "no limit" stays allowed
    assert raw["data"] == {"train_limit": None}
