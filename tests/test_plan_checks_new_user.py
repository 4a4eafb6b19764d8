"""A new user's trial of the plan: adapter targets and ranks checked against the model's own layers before any
model loads, calibration failures told as errors, learning-curve sizes and repeat seeds meaning what they say, the
follow-ups and a small space's real trial count in the dry run, and empty paths refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import printed

from harness.cli import main
from harness.core.config import load_experiment
from harness.core.errors import ConfigError, HarnessError
from harness.sweep import calibrate
from harness.sweep.calibrate import Calibration, Timing
from harness.sweep.estimate import estimate
from harness.sweep.followups import curve_sizes
from harness.sweep.plan import plan_sweep

LINEAR = "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head"
"""The tiny model's linear modules (tests/tiny.py: a 2-layer Llama, hidden 32; k_proj and v_proj are 32 -> 16)."""


def experiment(tmp_path: Path, model: Path, suite: Path, body: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(f"name: mine\nmodel: {model}\nsuite: {suite}\nresults_dir: {tmp_path / 'results'}\ndevice: cpu\n"
                    "data: {train_limit: 60, dev_limit: 10, test_limit: 10}\nbudget: {trials: 2, max_steps: 5}\n"
                    "regression: {enabled: false}\n" + body)
    return path


def refused(path: Path, overrides: list[str] = (), storage: str | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        plan_sweep(path, list(overrides), storage=storage)
    return str(err.value)


# --- 1. target_modules, checked against the model's layers (no weight loaded) ---

def test_an_unknown_target_module_is_refused_with_the_models_linear_modules(tmp_path, tiny_model_dir, toy_suite,
                                                                          no_model_loads):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {target_modules: nonsense_module}}\n")
    message = refused(path)
    assert message.startswith(f"{path}: `space.lora.target_modules`: `nonsense_module` matches no module of ")
    assert f"the linear modules of {tiny_model_dir} are {LINEAR}" in message and "all-linear" in message


def test_each_name_of_a_comma_list_and_each_choice_is_checked(tmp_path, tiny_model_dir, toy_suite, no_model_loads):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space:\n  lora: {target_modules: 'q_proj,v_prj'}\n"
                      "  qlora: {target_modules: [q_proj, qproj_typo]}\n")
    message = refused(path)
    assert "2 problems" in message
    assert "`space.lora.target_modules`: `v_prj` matches no module" in message and "did you mean `v_proj`?" in message
    # qlora is skipped on a CPU, but its entry is still wrong; a choice is named by its place in the list
    assert "`space.qlora.target_modules[1]`: `qproj_typo` matches no module" in message


@pytest.mark.parametrize("targets, problem", [
    ("'q_proj,all-linear'", "`all-linear` stands alone, never in a comma list"),
    ("'q_proj,,v_proj'", "has an empty name"),
    ("mlp", "`mlp` names LlamaMLP modules (such as model.layers.0.mlp), which LoRA cannot adapt"),
])
def test_targets_peft_would_reject_are_refused(tmp_path, tiny_model_dir, toy_suite, targets, problem):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, f"space: {{lora: {{target_modules: {targets}}}}}\n")
    assert problem in refused(path)


@pytest.mark.parametrize("targets", ["all-linear", "'q_proj, v_proj'", "self_attn.q_proj", "lm_head", "embed_tokens",
                                     "[all-linear, 'q_proj,v_proj']"])
def test_targets_that_name_real_layers_are_accepted(tmp_path, tiny_model_dir, toy_suite, targets):
    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite,
                                 f"space: {{lora: {{target_modules: {targets}, r: 8}}}}\n"), [])
    assert plan.space.methods == ("lora",)


# --- 2. the rank, bounded by the narrowest adapted layer ---

@pytest.mark.parametrize("space, bound", [
    ("{r: 100000}", 16),                              # all-linear: k_proj and v_proj are 32 -> 16
    ("{r: {low: 4, high: 17}}", 16),                  # a range's top counts
    ("{r: 33, target_modules: q_proj}", 32),          # q_proj alone is 32 -> 32
])
def test_a_rank_above_the_narrowest_adapted_layer_is_refused(tmp_path, tiny_model_dir, toy_suite, no_model_loads,
                                                            space, bound):
    message = refused(experiment(tmp_path, tiny_model_dir, toy_suite, f"space: {{lora: {space}}}\n"))
    assert message.startswith(f"{tmp_path / 'mine.yaml'}: `space.lora.r` reaches ")
    assert f"a rank above {bound} is no longer low-rank" in message and f"Set r to at most {bound}" in message


def test_a_rank_up_to_the_narrowest_layer_is_accepted(tmp_path, tiny_model_dir, toy_suite):
    for space in ("{r: 16}", "{r: 32, target_modules: 'q_proj,o_proj'}", "{r: [8, 16]}"):
        plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite, f"space: {{lora: {space}}}\n"), [])


def test_a_model_not_pulled_yet_is_checked_after_the_pull_and_the_dry_run_says_so(tmp_path, toy_suite, monkeypatch,
                                                                                  capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))  # smollm2-135m is not in it
    path = experiment(tmp_path, Path("smollm2-135m"), toy_suite, "space: {lora: {target_modules: nonsense_module}}\n")
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert "not checked yet: the adapters' `target_modules` and `r` against the model's layers" in printed(capsys)


# --- 1. a calibration that fails is an error naming the configuration, not a traceback ---

def test_a_calibration_failure_names_the_configuration_it_ran(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {r: 8}}\n"), [])

    def fails(*args, **kwargs):
        raise ValueError("Target modules {'x'} not found in the base model.\nmore detail")

    monkeypatch.setattr(calibrate, "_time", fails)
    with pytest.raises(HarnessError) as err:
        calibrate._timed(plan, None, "lora", "fp32", None)
    message = str(err.value)
    assert message.startswith("calibration: lora (fp32) failed before any trial ran, on the configuration it times "
                              "first (r=8, lora_alpha=32.0")
    assert "ValueError: Target modules {'x'} not found in the base model." in message and "more detail" not in message
    assert "change it in `space.lora`" in message


def test_a_target_the_plan_could_not_check_fails_in_calibration_as_an_error(tmp_path, tiny_model_dir, toy_suite,
                                                                           monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("harness.sweep.plan.model_layers", lambda model: None)  # as for a hub id not downloaded
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {target_modules: nonsense_module}}\n")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    out = printed(capsys)
    assert "error: calibration: lora" in out and "target_modules=nonsense_module" in out
    assert "NoMatchingPeftModuleError" in out and "Traceback" not in out


# --- 3. learning-curve sizes and repeat seeds ---

def test_curve_sizes_read_floats_as_fractions_and_ints_as_counts():
    assert curve_sizes((0.25, 0.5, 1.0), 60) == [15, 30, 60]  # 1.0 is the whole train subset, not one example
    assert curve_sizes((1,), 60) == [1]
    assert curve_sizes((100000, 250.0), 60) == [60]           # counts are capped at the subset
    assert curve_sizes((40, 0.5, 5000), 200) == [40, 100, 200]


@pytest.mark.parametrize("sizes, problem", [
    ("[1.5]", "`learning_curve.sizes[0]: 1.5` is neither a fraction of the train subset (0 to 1.0) nor a whole"),
    ("[0.5, true]", "`learning_curve.sizes[1]` must be a number above 0"),
    ("[0.5, abc]", "`learning_curve.sizes[1]` must be a number above 0"),
    ("[250, -5]", "`learning_curve.sizes[1]` must be greater than 0; got -5"),
])
def test_curve_sizes_that_are_neither_fraction_nor_count_are_refused(tmp_path, tiny_model_dir, toy_suite, sizes,
                                                                     problem):
    body = f"space: {{lora: {{}}}}\nlearning_curve: {{sizes: {sizes}}}\n"
    path = experiment(tmp_path, tiny_model_dir, toy_suite, body)
    with pytest.raises(ConfigError, match="learning_curve.sizes") as err:
        load_experiment(path)
    assert problem in str(err.value)


def test_a_curve_size_yaml_reads_as_a_string_is_the_number_it_is(tmp_path, tiny_model_dir, toy_suite):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {}}\nlearning_curve: {sizes: [1e3, 0.5]}\n")
    assert load_experiment(path).learning_curve.sizes == (1000, 0.5)


@pytest.mark.parametrize("body, problem", [
    ("repeats: {top_k: 2, seeds: [1, 1]}\n", "`repeats.seeds` lists 1 more than once"),
    ("repeats: {top_k: 2, seeds: [0, 3]}\n", "`repeats.seeds` (0, 3) holds 0, the study's own `seed: 0`, so that "
                                             "repeat would only run the original trial again"),
    ("seed: 1\nrepeats: {top_k: 1}\n", "holds 1, the study's own `seed: 1`"),  # the default seeds, 1 and 2
])
def test_repeat_seeds_that_add_nothing_are_refused(tmp_path, tiny_model_dir, toy_suite, body, problem):
    with pytest.raises(ConfigError) as err:
        load_experiment(experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {}}\n" + body))
    assert problem in str(err.value)


def test_the_studys_seed_among_repeat_seeds_is_fine_while_repeats_are_off(tmp_path, tiny_model_dir, toy_suite):
    load_experiment(experiment(tmp_path, tiny_model_dir, toy_suite, "seed: 1\nspace: {lora: {}}\n"))


def timed(plan) -> Calibration:
    timings = tuple(Timing(method, "fp32", step, 0.5) for method, step in (("prompt", None), ("lora", 1.0)))
    return Calibration("Some CPU", "fp32", timings)


def test_the_plan_and_estimate_list_the_follow_up_trials(tmp_path, tiny_model_dir, toy_suite):
    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite,
                                 "space: {prompt: {shots: [0, 1]}, lora: {r: [4, 8]}}\n"
                                 "repeats: {top_k: 2, seeds: [1, 2]}\n"
                                 "learning_curve: {sizes: [0.25, 30, 0.5, 1.0, 100000]}\n"), [])
    assert plan.followup_trials() == (4, 3)
    text = "\n".join(plan.describe())
    assert "after the sweep: up to 7 follow-up trials" in text
    assert "repeats: the 2 best configurations on dev, each again with seeds 1, 2 (up to 4 trials, study mine+seeds)" \
        in text
    assert ("learning curve: the best trained configuration again on 15 (0.25 of them), 30 (0.5 of them), 60 (all; "
            "100000 asked, more than the subset holds) of the 60 train examples (3 trials, study mine+curve)") in text
    note = next(n for n in estimate(plan, timed(plan)).notes if n.startswith("after the sweep"))
    assert note.startswith("after the sweep: up to 7 follow-up trials (4 repeated seeds and 3 learning-curve points), "
                           "up to about ")


def test_a_curve_without_a_trained_method_says_it_will_not_run(tmp_path, tiny_model_dir, toy_suite):
    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite,
                                 "space: {prompt: {shots: [0, 1]}}\nlearning_curve: {sizes: [0.5]}\n"), [])
    assert plan.followup_trials() == (0, 0)
    assert "after the sweep: no follow-up trials" in plan.describe()
    assert any("learning curve: none" in line and "no method in the space trains" in line for line in plan.describe())


# --- 4. a space smaller than --trials ---

def test_the_plan_says_the_sweep_stops_when_the_space_holds_fewer_configurations(tmp_path, tiny_model_dir,
                                                                                  toy_suite, capsys):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {r: 8}, qlora: {}}\n")
    plan = plan_sweep(path, [])
    assert (plan.trials, plan.runnable_trials, plan.planned_methods()) == (2, 1, ["lora"])
    text = "\n".join(plan.describe())
    assert "  1. chosen by the tpe sampler from: lora" in text and "1-2." not in text
    assert "the space holds only 1 distinct configuration, so the sweep stops after 1 of the 2 trials asked" in text
    assert plan.trials_in_words() == ("1 trial in total: the space holds only 1 distinct configuration, of the 2 "
                                      "trials asked")
    assert estimate(plan, timed(plan)).trials[0].method == "lora" and len(estimate(plan, timed(plan)).trials) == 1


# --- 5. empty paths ---

@pytest.mark.parametrize("item, key", [("results_dir=''", "results_dir"), ("suite=''", "suite"),
                                       ("model='  '", "model")])
def test_an_empty_path_is_refused_naming_the_key(tmp_path, tiny_model_dir, toy_suite, item, key):
    message = refused(experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {}}\n"), [item])
    assert f"`{key}` is empty, which would quietly mean the current folder" in message
    assert f"`--set {key}=...` on the command line" in message  # the key, never the value (it may be a secret)


def test_an_empty_storage_is_refused(tmp_path, tiny_model_dir, toy_suite, capsys):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {}}\n")
    assert "--storage '' (or $HARNESS_STORAGE) is empty" in refused(path, storage="")
    assert main(["sweep", str(path), "--dry-run", "--storage", " "]) == 2
    assert "--storage ' ' (or $HARNESS_STORAGE) is empty" in printed(capsys)


# --- a forgetting check too small to decide feasibility ---


def test_a_forgetting_check_too_small_to_read_its_limit_is_warned_about(tmp_path, tiny_model_dir, toy_suite):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {r: 4}}\n")
    small = plan_sweep(path, ["regression.enabled=true", "regression.limit=20"]).forgetting_warning()
    assert small is not None and "20 piqa items read a change only to about ±17 points (95%)" in small
    assert "against the 5-point drop (objective.max_regression_drop)" in small
    assert "Give regression.limit 223 or more" in small
    assert plan_sweep(path, ["regression.enabled=true"]).forgetting_warning() is None  # 200 items: about ±5 points
    assert plan_sweep(path, ["regression.enabled=true", "regression.limit=20",
                             "objective.max_regression_drop=0.1"]).forgetting_warning() is None  # ±17 < 2 x 10
    assert plan_sweep(path, ["regression.limit=20"]).forgetting_warning() is None  # the check is off


def test_the_sweep_and_its_dry_run_print_the_warning_before_anything_loads(tmp_path, tiny_model_dir, toy_suite,
                                                                          capsys, monkeypatch):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {r: 4}}\n")

    def stop(*args, **kwargs):
        raise HarnessError("stopped here: the warning comes before the machine's plan")

    monkeypatch.setattr("harness.sweep.machine.plan_for_machine", stop)
    assert main(["sweep", str(path), "--dry-run", "--set", "regression.enabled=true", "--set",
                 "regression.limit=20"]) == 2  # the error below: nothing past the plan ran
    assert "warning: the forgetting check's 20 piqa items" in " ".join(printed(capsys).split())


# --- a train subset without some of the labels that dev and test score ---


def test_a_train_subset_missing_labels_that_test_scores_is_warned_about():
    demo = Path(__file__).resolve().parents[1] / "experiments" / "demo.yaml"
    small = plan_sweep(demo, ["data.train_limit=200"]).labels_left_out_warning()
    assert small is not None and small.startswith("the 200-example train subset (data.train_limit) has no example of "
                                                   "7 of the labels its dev and test subsets score (")
    assert " dev and 20 of the 160 test examples carry a label no adapter can learn" in small
    assert plan_sweep(demo, []).labels_left_out_warning() is None  # the demo's 2,000 have every label


# --- a vLLM python without vLLM ---


def test_a_vllm_python_without_vllm_is_refused_before_any_trial_trains(tmp_path, tiny_model_dir, toy_suite):
    """Found at the first trial, it cost a LoRA its training first (minutes, on a real sweep)."""
    import sys

    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {lora: {r: 4}}\n")
    message = refused(path, ["generation.engine=vllm", f"serving.vllm_python={sys.executable}"])
    assert "`serving.vllm_python`: the vLLM python" in message and "has no usable vLLM" in message


# --- a test subset of mostly one label ---


def test_a_test_subset_of_mostly_one_label_is_warned_about_with_its_floor(tmp_path, tiny_model_dir, toy_suite):
    """A new user's test split held one label in 9 of 10 rows: every arm read 90%, and nothing said why."""
    import json
    import shutil

    suite = Path(shutil.copytree(toy_suite, tmp_path / "skewed"))
    rows = [json.loads(line) for line in (suite / "test.jsonl").read_text().splitlines()]
    key = next(iter(rows[0]["output"]))
    label = rows[0]["output"][key]
    path = experiment(tmp_path, tiny_model_dir, suite, "space: {prompt: {shots: 0}}\n")
    assert plan_sweep(path, []).unbalanced_test_warning() is None  # the toy suite's colours are balanced
    (suite / "test.jsonl").write_text("".join(json.dumps({**r, "output": {key: label}}) + "\n" for r in rows))
    every = plan_sweep(path, []).unbalanced_test_warning()
    assert every.startswith(f"every one of the 10 test examples is `{label}`: a model that always answers `{label}` "
                            "scores 100% task accuracy without reading its input")
    other = next(r["output"][key] for r in (json.loads(x) for x in (toy_suite / "test.jsonl").read_text().splitlines())
                 if r["output"][key] != label)
    mixed = [{**r, "output": {key: other if i % 5 == 0 else label}} for i, r in enumerate(rows)]
    (suite / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mixed))
    whole = plan_sweep(path, ["data.test_limit=null"])  # all 60: 48 of them the one label
    assert whole.unbalanced_test_warning() == (f"48 of the 60 test examples (80%) are `{label}`: always answering it "
                                               "scores 80% task accuracy, the floor every score reads against.")


def test_a_dev_mix_unlike_tests_is_warned_about_where_dev_accuracy_chooses(tmp_path, tiny_model_dir, toy_suite):
    """A support team's agreed test set held 4 of each intent, dev 10% of an imbalanced train file: full fine-tuning
    chosen on dev scored dev's constant answer (8.8%) and 1.3% on test, with no word of the two mixes."""
    import json
    import shutil

    from harness.evaluation.inference import mix_differs_p

    suite = Path(shutil.copytree(toy_suite, tmp_path / "mixed"))
    path = experiment(tmp_path, tiny_model_dir, suite, "space: {prompt: {shots: 0}}\n")
    alike = plan_sweep(path, ["data.dev_limit=null", "data.test_limit=null"])  # one stratified split: no warning
    assert alike.dev_unlike_test_warning() is None
    rows = [json.loads(line) for line in (suite / "dev.jsonl").read_text().splitlines()]
    key = next(iter(rows[0]["output"]))
    label = rows[0]["output"][key]
    skewed = [{**r, "output": {key: label}} if i % 6 else r for i, r in enumerate(rows)]  # 50 of 60 one colour
    (suite / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in skewed))
    said = plan_sweep(path, ["data.dev_limit=null", "data.test_limit=null"]).dev_unlike_test_warning()
    assert said.startswith("dev and test hold the labels in different proportions") and f"`{label}` is " in said
    assert "objective.metric: macro_f1" in said and "--dev-from" in said
    # a balanced dev and a test set skewed to another label: the label that moved is named, not dev's commonest
    (suite / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from collections import Counter

    commonest = max(Counter(r["output"][key] for r in rows).items(), key=lambda item: (item[1], item[0]))[0]
    moved = next(c for c in sorted({r["output"][key] for r in rows}) if c != commonest)
    tests = [json.loads(line) for line in (suite / "test.jsonl").read_text().splitlines()]
    (suite / "test.jsonl").write_text("".join(json.dumps({**r, "output": {key: moved} if i % 6 else r["output"]})
                                              + "\n" for i, r in enumerate(tests)))
    said = plan_sweep(path, ["data.dev_limit=null", "data.test_limit=null"]).dev_unlike_test_warning()
    assert f"`{moved}` is " in said and "of test. Trials are chosen" in said, said
    assert plan_sweep(path, ["data.dev_limit=null", "data.test_limit=null", "objective.metric=macro_f1"]) \
        .dev_unlike_test_warning() is None  # macro_f1 weighs every label alike
    # 77 labels in 50 dev and 160 test examples read far apart from one mix by chance: the test reads them so
    import random

    many = [f"l{i % 77}" for i in range(2000)]
    random.Random(0).shuffle(many)
    assert mix_differs_p(many[:50], many[50:210]) > 0.01


# --- sweep --check: the checks that need no model, in seconds, for a CI step ---

def test_check_validates_the_experiment_without_loading_a_model_or_writing_anything(tmp_path, tiny_model_dir,
                                                                                   toy_suite, no_model_loads, capsys):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {prompt: {shots: 0}, lora: {r: 4}}\n")
    assert main(["sweep", str(path), "--check"]) == 0
    out = " ".join(printed(capsys).split())
    assert "mine: the experiment, its --set items, the suite toy-colours 1.0.0" in out
    assert "train 60 of 480, dev 10 of 60, test 10 of 60" in out and "Nothing was loaded or sent" in out
    assert not (tmp_path / "results").exists()  # a check writes nothing: no results folder, no database
    assert main(["sweep", str(path), "--check", "--set", "budget.max_steps=-3"]) == 2
    assert "budget.max_steps" in printed(capsys)


def test_check_reads_an_older_releases_database_from_an_upgraded_copy(tmp_path, tiny_model_dir, toy_suite,
                                                                      no_model_loads, capsys):
    """A CI step running --check upgraded the shared results database, and teammates still on the older release were
    locked out of it."""
    from test_migrations import _migrations_of, _release_before_seals

    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {prompt: {shots: 0}}\n")
    database = _release_before_seals(tmp_path / "results" / "harness.duckdb")
    before = database.read_bytes()
    assert main(["sweep", str(path), "--check"]) == 0
    out = " ".join(printed(capsys).split())
    assert "was written by an older release: checked against an upgraded copy of it" in out
    assert database.read_bytes() == before and "m023_trial_seals" not in _migrations_of(database)
    assert sorted(p.name for p in database.parent.iterdir()) == ["harness.duckdb"]


def test_check_of_an_older_database_names_the_users_file_not_its_upgraded_copy(tmp_path, tiny_model_dir, toy_suite,
                                                                              no_model_loads, capsys):
    """A refusal from the upgraded copy named a temporary file that was gone when the user read it."""
    from test_migrations import _release_before_seals

    path = experiment(tmp_path, tiny_model_dir, toy_suite, "space: {prompt: {shots: 0}}\n")
    database = _release_before_seals(tmp_path / "results" / "harness.duckdb")
    assert main(["sweep", str(path), "--check", "--study", "w"]) == 2  # study w: another suite, in the older file
    out = " ".join(printed(capsys).split())
    assert str(database) in out and "harness-check-" not in out
