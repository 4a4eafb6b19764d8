"""A new user's own experiment file, written from `--help` and the README: every mistake is named with its key (or
line), the fix, and where the value came from, several at once, before any model loads."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import printed

from harness.cli import SWEEP_EPILOG, main
from harness.core.config import load_experiment
from harness.core.errors import ConfigError
from harness.sweep.plan import plan_sweep
from harness.sweep.space import build_space, enqueue_params
from harness.training.methods import METHODS


def experiment(tmp_path: Path, suite: Path, model: Path, body: str = "") -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(f"name: mine\nmodel: {model}\nsuite: {suite}\nresults_dir: {tmp_path / 'results'}\n"
                    "data: {train_limit: 40, dev_limit: 10, test_limit: 10}\nregression: {enabled: false}\n" + body
                    + ("" if "space:" in body else "space:\n  prompt: {shots: [0, 2]}\n  lora: {r: [4, 8]}\n"))
    return path


def refused(path: Path, overrides: list[str] = ()) -> str:
    with pytest.raises(ConfigError) as err:
        plan_sweep(str(path), list(overrides))
    return str(err.value)


def test_several_mistakes_in_the_file_are_reported_at_once(tmp_path, toy_suite, tiny_model_dir):
    path = experiment(tmp_path, toy_suite, tiny_model_dir, "budget: {trails: 3, max_steps: 0}\n"
                      "training: {batchsize: 4}\nseed: -1\n")
    message = refused(path)
    assert message.startswith(f"{path}: 4 problems; fix each, then run again:\n")
    for part in ("unknown key `budget.trails`. Did you mean `budget.trials`?", "`budget.max_steps` must be at least 1",
                 "unknown key `training.batchsize`. Did you mean `training.batch_size`?", "`seed` must be at least 0"):
        assert f"\n  - {part}" in message


def test_several_mistakes_in_the_space_are_reported_at_once(tmp_path, toy_suite, tiny_model_dir):
    path = experiment(tmp_path, toy_suite, tiny_model_dir,
                      "space:\n  lorra: {}\n  prompt: {shtos: 1, shots: -1}\n  lora: {r: 0}\n")
    message = refused(path)
    assert "4 problems" in message
    assert "unknown method `space.lorra`; did you mean `space.lora`?" in message
    assert "`space.prompt.shtos` is not a parameter of prompt" in message
    assert "Did you mean `space.prompt.shots`?" in message
    assert "`space.prompt.shots` must be at least 0; got -1" in message
    assert "`space.lora.r` must be at least 1" in message


@pytest.mark.parametrize("item, key", [
    ("budget.trials=abc", "`budget.trials` must be an integer, got 'abc'"),
    ("nope.deeper=3", "unknown key `nope`"),
    ("space.lora.r=0", "`space.lora.r` must be at least 1; got 0"),
    ("space.lora.r={low: 4, high: 15, step: 4}", "high 15 is not low 4 plus whole steps of 4"),
])
def test_a_bad_value_from_set_is_blamed_on_the_set_item(tmp_path, toy_suite, tiny_model_dir, item, key):
    message = refused(experiment(tmp_path, toy_suite, tiny_model_dir), [item])
    assert key in message
    dotted = item.partition("=")[0]
    assert message.count(f"(the value came from `--set {dotted}=...` on the command line, not from the file.)") == 1


@pytest.mark.parametrize("item", ["api_key_env=sk-INLINESECRET", "api_key=sk-INLINESECRET",
                                  "base_url=http://user:sk-INLINESECRET@127.0.0.1:18111/v1"])
def test_a_key_pasted_into_set_is_never_repeated_in_the_error(tmp_path, toy_suite, tiny_model_dir, item):
    """The line saying a value came from --set repeated it whole, under a message that had just promised not to
    repeat it in case it was a key: a PR check's log held the key."""
    endpoint = "endpoints:\n  fake: {base_url: 'http://127.0.0.1:18111/v1', model: m, api_key_env: FAKE_KEY}\n"
    message = refused(experiment(tmp_path, toy_suite, tiny_model_dir, endpoint), [f"endpoints.fake.{item}"])
    key = item.partition("=")[0]
    assert "INLINESECRET" not in message and f"`--set endpoints.fake.{key}=...`" in message


def test_a_bad_value_in_the_file_is_not_blamed_on_an_unrelated_set_item(tmp_path, toy_suite, tiny_model_dir):
    path = experiment(tmp_path, toy_suite, tiny_model_dir, "budget: {trials: 0}\n")
    message = refused(path, ["budget.max_steps=3"])
    assert "`budget.trials` must be at least 1" in message and "came from" not in message


@pytest.mark.parametrize("item, message", [
    ("budget..trials=3", "the key `budget..trials` has an empty part"),
    (".seed=3", "has an empty part"),
])
def test_set_keys_with_empty_parts_are_refused(tmp_path, toy_suite, tiny_model_dir, item, message):
    text = refused(experiment(tmp_path, toy_suite, tiny_model_dir), [item])
    assert message in text and "came from" not in text  # the message already names the --set item


def test_set_key_with_spaces_around_it_is_the_key(tmp_path, toy_suite, tiny_model_dir):
    config = load_experiment(experiment(tmp_path, toy_suite, tiny_model_dir), [" budget.trials =4"])
    assert config.budget.trials == 4


@pytest.mark.parametrize("spec, message", [
    ("{low: 4, high: 16, step: 0}", "`space.lora.r.step` must be a number above 0, got 0"),
    ("{low: 4, high: 16, step: 2.5}", "`space.lora.r.step` must be a whole number for this integer parameter"),
    ("{low: 4, high: 16, step: abc}", "`space.lora.r.step` must be a number above 0, got 'abc'"),
    ("{low: 4, high: 15, step: 4}", "Optuna would quietly lower it to 12; set high to 12 or 16"),
    ("{low: 4, high: 16, log: 'no'}", "`space.lora.r.log` must be true or false, got 'no'"),
    ("{low: 4, high: 16, log: true, step: 4}", "has both `log: true` and `step`"),
    ("[8, 16, 8]", "`space.lora.r` lists 8 more than once"),
    ("{low: 4}", "a range needs both low and high"),
    ("{lo: 4, high: 16}", "`lo` is not one of low, high, log, step"),
])
def test_range_syntax_mistakes_are_refused_not_repaired(tmp_path, spec, message):
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: x\nspace:\n  lora: {{r: {spec}}}\n")
    with pytest.raises(ConfigError) as err:
        build_space(load_experiment(path).space, "cpu", str(path))
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_log_range_from_0_is_refused_in_the_files_words(tmp_path):
    """Optuna's own message named its arguments: "`low > 0` must hold for `log=True`"."""
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nspace: {lora: {lora_dropout: {low: 0.0, high: 0.2, log: true}}}\n")
    with pytest.raises(ConfigError, match=r"`space.lora.lora_dropout` has `log: true`, so `low` must be above 0"):
        build_space(load_experiment(path).space, "cpu", str(path))


def test_a_float_range_off_its_step_grid_is_refused(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nspace: {lora: {learning_rate: {low: 1.0e-4, high: 1.0e-2, step: 3.0e-3}}}\n")
    with pytest.raises(ConfigError, match=r"lower it to 0\.0091; set high to 0\.0091 or 0\.0121"):
        build_space(load_experiment(path).space, "cpu", str(path))


def test_booleans_and_strings_are_not_ranges(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nspace: {prompt: {constrained: {low: false, high: true}}}\n")
    with pytest.raises(ConfigError, match=r"cannot be a range; list the choices instead, e\.g\. \[false, true\]"):
        build_space(load_experiment(path).space, "cpu", str(path))


def test_enqueued_value_off_the_step_grid_is_refused_and_the_step_is_shown(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nspace: {lora: {r: {low: 4, high: 16, step: 4}}}\nenqueue:\n  - {method: lora, r: 5}\n"
                    "  - {method: lora, r: 8}\n")
    config = load_experiment(path)
    space = build_space(config.space, "cpu", str(path))
    assert "r={low: 4, high: 16, step: 4}" in space.describe()[0]
    assert enqueue_params(config.enqueue[1], space, str(path), 1) == {"method": "lora", "lora.r": 8}
    with pytest.raises(ConfigError, match=r"`enqueue\[0\]`: `r: 5` is outside the space .*4 plus a whole number of "
                                          r"steps of 4"):
        enqueue_params(config.enqueue[0], space, str(path), 0)


@pytest.mark.parametrize("body, message", [
    ("seed: -1\n", "`seed` must be at least 0 and at most 2147483647; got -1"),
    ("seed: 4294967296\n", "`seed` must be at most 2147483647; got 4294967296"),
    ("repeats: {top_k: 1, seeds: [1, -2]}\n", "`repeats.seeds[1]` must be at least 0"),
    ("learning_curve: {sizes: [250, -5]}\n", "`learning_curve.sizes[1]` must be greater than 0; got -5"),
    ("learning_curve: {sizes: [1.5]}\n", "`learning_curve.sizes[0]: 1.5` is neither a fraction"),
    ("prices: {devices: {H100: {usd_per_hour: -1}}}\n", "`prices` (overrides of the bundled price table)"),
    ("prices: {devics: {}}\n", "unknown key `devics`"),
    ("redaction: {enabled: true, regexes: ['(']}\n", "`redaction.regexes[0]` '(' is not a valid regular expression"),
])
def test_values_that_would_fail_after_calibration_are_refused_in_the_plan(tmp_path, toy_suite, tiny_model_dir,
                                                                          body, message):
    path = experiment(tmp_path, toy_suite, tiny_model_dir, body)
    text = refused(path)
    assert message in text and text.startswith(str(path))
    assert not (tmp_path / "results").exists()  # nothing half-written


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty; an experiment needs at least `name:` and `space:`"),
    ("# just a comment\n", "the file is empty"),
    ("name: x\nspace:\n\tprompt: {}\n", ":3: not valid YAML (found character '\\t' that cannot start any token, "
                                        "column 1); YAML indents with spaces, never tabs"),
    ("name: x\nspace: {prompt: {}}\n---\nname: y\n", ":3: not valid YAML (but found another document, column 1); "
                                                     "the file must hold one YAML document"),
    ("name: x\nspace: {prompt: {}}\n\x00", ":3: not valid YAML (the control character U+0000 is not allowed in it)"),
])
def test_file_level_mistakes_say_what_to_do(tmp_path, text, message):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert f"{path}{message}" in str(err.value) or (str(path) in str(err.value) and message in str(err.value))


def test_a_folder_is_named_as_a_folder(tmp_path):
    folder = tmp_path / "mine.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder, not an experiment file.*harness init"):
        plan_sweep(str(folder), [])
    (folder / "experiments").mkdir()
    (folder / "experiments" / "first-sweep.yaml").write_text("name: x\n")
    with pytest.raises(ConfigError, match="experiment files in it: .*experiments/first-sweep.yaml"):
        plan_sweep(str(folder), [])  # what is there, not a file name that may not exist


def test_bom_and_non_ascii_values_load(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes("\ufeffname: x\nspace: {prompt: {}}\nresults_dir: résultats\n".encode())
    assert load_experiment(path).results_dir == "résultats"


def test_dry_run_plan_says_what_will_run(tmp_path, toy_suite, tiny_model_dir, capsys):
    path = experiment(tmp_path, toy_suite, tiny_model_dir, "budget: {max_steps: 2, trial_train_seconds: 60}\n"
                      "training: {batch_size: 4, max_length: 64, eval_every_steps: 0, precision: fp32}\n"
                      "space:\n  prompt: {shots: [0, 2]}\n  lora: {r: {low: 4, high: 8, step: 4}}\n"
                      "enqueue:\n  - {method: prompt, shots: 0}\n  - {method: lora}\n")
    plan = plan_sweep(str(path), [], trials=4)
    lines = plan.describe()
    assert lines[0] == ("objective: maximise dev task_accuracy, subject to format_compliance >= 0.9, "
                        "hallucination_rate <= 0.1, regression not checked (regression.enabled: false)")
    assert "  1. prompt shots=0 (enqueued)" in lines
    assert "  2. lora (enqueued; r drawn from the space)" in lines
    from harness.core.paths import bundled  # a free-text suite: what its constraints mean there is said

    (tmp_path / "text").mkdir()
    text = experiment(tmp_path / "text", bundled("suites") / "math-word-problems", tiny_model_dir,
                      "space:\n  prompt: {}\n")
    assert plan_sweep(str(text), []).describe()[0] == (
        "objective: maximise dev task_accuracy, subject to format_compliance >= 0.9, hallucination_rate not "
        "measured (free text has no closed set or span to check), regression not checked (regression.enabled: "
        "false)")
    assert "  3-4. chosen by the tpe sampler from: prompt, lora (the estimate below takes them in turn)" in lines
    assert lines[-1].startswith("budget: 2 steps (0.2 passes over 40 train examples; max_steps overrides epochs) per "
                              "trained trial; trial_train_seconds 60;")
    by_epochs = plan_sweep(str(path), ["budget.max_steps=null", "budget.epochs=2"], trials=4).describe()
    assert by_epochs[-1].startswith("budget: epochs 2 (20 steps of 40 train examples) per trained trial;")
    from harness.cli import main

    assert main(["sweep", str(path), "--trials", "4", "--dry-run"]) == 0
    out = capsys.readouterr().out  # as the file writes them; brackets are not eaten as console markup
    assert "prompt: shots=[0, 2], shot_selection=random" in out and "r={low: 4, high: 8, step: 4}" in out


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv, hint", [
    (("swep", "x.yaml"), "did you mean `sweep`?"),
    (("models", "lst"), "did you mean `list`?"),
    (("sweep", "x.yaml", "--dry-runn"), "did you mean `--dry-run`?"),
])
def test_a_typo_in_a_command_or_flag_gets_a_suggestion(argv, hint):
    done = run_cli(*argv)
    assert done.returncode == 2 and hint in done.stderr


@pytest.mark.parametrize("argv, said", [
    (("payback", "s/1", "--volume", "100", "--bogus"), "harness payback: error: unrecognized arguments: --bogus\n"),
    (("payback", "s/1", "--volume", "100", "--eng-hour", "3"),
     "harness payback: error: unrecognized arguments: --eng-hour 3; did you mean `--eng-hours`?"),
    (("payback", "s/1", "--volume", "100", "--hosted", "5"),
     "harness payback: error: unrecognized arguments: --hosted 5; did you mean `--hosted-price`?"),
    (("show", "s/1", "--bogus"), "harness show: error: unrecognized arguments: --bogus\n"),
])
def test_an_unknown_flag_is_refused_by_its_command_and_never_taken_from_its_first_letters(argv, said):
    """`--hosted 5`, meant as 5 dollars of hosting, was read as `--hosted-price 5`, and `--eng-hour` as `--eng-hours`;
    an unknown flag of `payback` or `show` was offered `--out`, a flag of another command, under the top-level usage."""
    done = run_cli(*argv)
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "--out" not in done.stderr and "usage: harness " + argv[0] in done.stderr


def test_set_from_the_command_line_is_blamed_without_a_traceback(tmp_path, toy_suite, tiny_model_dir, capsys):
    path = experiment(tmp_path, toy_suite, tiny_model_dir)
    assert main(["sweep", str(path), "--dry-run", "--set", "space.lora.r=[4, 4]"]) == 2
    out = printed(capsys)
    assert "`space.lora.r` lists 4 more than once" in out and "`--set space.lora.r=...`" in out
    assert "Traceback" not in out


def test_sweep_help_teaches_the_syntax_and_names_every_methods_parameters():
    assert "--set KEY=VALUE: KEY is dotted" in SWEEP_EPILOG and "examples:" in SWEEP_EPILOG
    text = " ".join(SWEEP_EPILOG.split())
    for name in METHODS.names():
        fields = ", ".join(f.name for f in dataclasses.fields(METHODS.get(name).Params))
        assert re.search(rf"\b{name}(?: and \w+)?: {re.escape(fields)}[;.]", text), (name, fields)
