"""`space.<method>: null` removes a method (the README's `--set space.full=null`), and what that does to `enqueue`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.config import load_experiment
from harness.core.errors import ConfigError
from harness.sweep.plan import plan_sweep
from harness.sweep.space import build_space

THREE_METHODS = ("name: x\nspace:\n  prompt: {shots: [0, 3]}\n  lora: {r: 8}\n"
                 "  full: {learning_rate: 1.0e-5}\n")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, overrides, removed", [
    (THREE_METHODS, ["space.full=null"], "full"),
    (THREE_METHODS, ["space.lora=null"], "lora"),
    (THREE_METHODS.replace("full: {learning_rate: 1.0e-5}", "full: null"), [], "full"),
], ids=["set-full-null", "set-lora-null", "yaml-full-null"])
def test_a_null_method_is_removed_not_reset_to_its_defaults(tmp_path, text, overrides, removed):
    plan = plan_sweep(write(tmp_path, text), overrides)
    kept = tuple(m for m in ("prompt", "lora", "full") if m != removed)
    assert plan.space.methods == kept
    assert "is null, which removes it" in plan.space.skipped[removed]
    lines = plan.space.describe()
    assert not any(line.startswith(f"{removed}: ") and "skipped" not in line for line in lines)
    assert f"{removed}: skipped - `space.{removed}` is null" in "\n".join(lines)
    assert set(plan.planned_methods()) == set(kept)
    if removed != "lora":  # what the file says still holds for the methods that stay
        assert "lora: r=8," in "\n".join(lines)


def test_an_empty_mapping_still_means_the_defaults(tmp_path):
    space = build_space(load_experiment(write(tmp_path, "name: x\nspace: {prompt: {}, full: {}}\n")).space, "cpu", "x")
    assert space.methods == ("prompt", "full") and not space.skipped


def test_enqueued_trials_of_a_removed_method_are_dropped_with_a_note(tmp_path):
    text = THREE_METHODS + "enqueue:\n  - {method: prompt, shots: 0}\n  - {method: full, learning_rate: 1.0e-5}\n"
    plan = plan_sweep(write(tmp_path, text), ["space.full=null"])
    assert plan.enqueued == ({"method": "prompt", "prompt.shots": 0},)
    assert "its enqueued trial enqueue[1] is dropped too" in plan.space.skipped["full"]
    assert "enqueue[1] is dropped too" in "\n".join(plan.space.describe())  # what --dry-run and the sweep print


def test_a_method_left_out_of_the_space_is_not_run_and_enqueueing_it_is_still_refused(tmp_path):
    plan = plan_sweep(write(tmp_path, "name: x\nspace: {prompt: {shots: [0, 3]}}\n"), [])
    assert plan.space.methods == ("prompt",) and not plan.space.skipped
    with pytest.raises(ConfigError, match=r"`enqueue\[0\]` needs `method:` one of the methods in `space`"):
        plan_sweep(write(tmp_path, "name: x\nspace: {prompt: {}}\nenqueue: [{method: full}]\n"), [])


def test_removing_every_method_is_refused(tmp_path):
    path = write(tmp_path, "name: x\nspace: {prompt: {shots: [0, 3]}, lora: {}}\n")
    with pytest.raises(ConfigError) as err:
        plan_sweep(path, ["space.prompt=null", "space.lora=null"])
    message = str(err.value)
    assert str(path) in message and "every method in `space` is null" in message
    assert "`space.prompt`" in message and "`space.lora`" in message and "keep at least one" in message


def test_an_enqueued_value_is_read_as_the_space_reads_it(tmp_path):
    """YAML 1.1 reads `1e-3` (no dot) as a string: `space:` has always taken it as the number, so `enqueue` does."""
    text = "name: x\nspace: {lora: {learning_rate: {low: 5e-4, high: 5e-3, log: true}}}\n" \
           "enqueue:\n  - {method: lora, learning_rate: 1e-3}\n"
    (entry,) = plan_sweep(write(tmp_path, text), []).enqueued
    assert entry["lora.learning_rate"] == pytest.approx(1e-3) and isinstance(entry["lora.learning_rate"], float)
    with pytest.raises(ConfigError, match=r"enqueue\[0\]\.learning_rate"):
        plan_sweep(write(tmp_path, text.replace("learning_rate: 1e-3", "learning_rate: fast")), [])


def test_every_constrained_option_a_free_text_suite_cannot_have_is_named_at_once(tmp_path):
    """A scaffolded experiment constrains several arms; on a free-text suite one error per run was a slow loop."""
    text = ("name: x\nsuite: math-word-problems\nspace:\n  prompt: {constrained: true}\n  lora: {constrained: [true, "
            "false]}\n  full: {constrained: false}\n")
    with pytest.raises(ConfigError) as err:
        plan_sweep(write(tmp_path, text), [])
    said = str(err.value)
    assert "`space.prompt.constrained`, `space.lora.constrained` ask for decoding within" in said
    assert "space.full" not in said and "free text" in said and "`enqueue`" in said


def test_an_enqueue_entry_repeated_or_naming_several_methods_is_refused_by_name(tmp_path):
    """A repeated entry was planned and estimated twice, and ran once; a list of methods ended in a TypeError."""
    text = "name: x\nspace: {prompt: {shots: [0, 1]}, lora: {}}\nenqueue:\n"
    with pytest.raises(ConfigError, match=r"`enqueue\[2\]` repeats `enqueue\[0\]`; a study runs each configuration "
                                          r"once"):
        plan_sweep(write(tmp_path, text + "  - {method: prompt, shots: 1}\n  - {method: lora}\n"
                                          "  - {method: prompt, shots: 1}\n"), [])
    with pytest.raises(ConfigError, match=r"`enqueue\[0\]` needs `method:` one of the methods in `space` \(prompt, "
                                          r"lora\); got \['lora', 'prompt'\]. An entry is one trial"):
        plan_sweep(write(tmp_path, text + "  - {method: [lora, prompt]}\n"), [])
    assert len(plan_sweep(write(tmp_path, text + "  - {method: prompt, shots: 0}\n"
                                                 "  - {method: prompt, shots: 1}\n"), []).enqueued) == 2


def test_target_modules_as_a_list_of_single_modules_is_warned_as_a_choice(tmp_path):
    """PEFT takes `target_modules=[q_proj, v_proj]` as one adapter on both; in `space:` a list is a choice, and a
    helper's sweep trained one adapter on q_proj alone and one on v_proj alone without a word."""
    text = "name: x\nspace: {lora: {target_modules: [q_proj, v_proj]}}\n"
    assert plan_sweep(write(tmp_path, text), []).single_modules_warning() == (
        "`space.lora.target_modules` lists q_proj, v_proj: a list in `space:` is a choice, so each trial adapts one of "
        "them alone. For one adapter on all of them, write them as one string, `target_modules: \"q_proj,v_proj\"`; "
        "to choose between sets, list such strings.")
    for fine in ('["q_proj,v_proj", all-linear]', '"q_proj,v_proj"', "[q_proj, all-linear]"):
        assert plan_sweep(write(tmp_path, text.replace("[q_proj, v_proj]", fine)), []).single_modules_warning() is None


def test_the_estimates_total_is_never_rounded_to_nothing_and_says_when_sweep_minutes_cuts_the_plan():
    """`estimated duration: about 0 min` stood above rows adding up to 1.2 min, which budget.sweep_minutes had cut
    without a word."""
    from harness.analysis.report import estimate_text
    from harness.sweep.estimate import Estimate, TrialEstimate

    rows = tuple(TrialEstimate("prompt", 0, 0.0, 9.0) for _ in range(8))
    assert estimate_text(Estimate(rows, 72.0, None, None, (), "calibrated")).startswith(
        "estimated duration: about 1.2 min (calibrated):")
    assert estimate_text(Estimate(rows[:2], 18.0, None, None, (), "calibrated")).startswith(
        "estimated duration: about 18 s (calibrated):")
    assert estimate_text(Estimate(rows, 15.0, None, 6.0, (), "calibrated")).startswith(
        "estimated duration: about 15 s (calibrated, budget.sweep_minutes (0.1) stopping the trials planned below, "
        "1.2 min in all):")


def test_a_range_written_without_spaces_after_its_colons_says_what_yaml_needs(tmp_path):
    with pytest.raises(ConfigError, match=r"YAML needs a space after each colon: `\{low: 1e-4, high: 1e-3\}`"):
        plan_sweep(write(tmp_path, "name: x\nspace: {lora: {}}\n"), ["space.lora.learning_rate={low:1e-4, high:1e-3}"])


def test_a_method_this_machine_cannot_run_is_named_by_check_and_recorded_apart_from_one_set_to_null(tmp_path,
                                                                                                     capsys):
    """`--check`, the CI step, passed a space whose QLoRA arm would not run on the CPU without a word; and what the
    study records as skipped on its machine (for the report) must not include a method the user removed."""
    from harness.cli import main

    suite = Path(__file__).resolve().parents[1] / "suites" / "ticket-triage"
    text = (f"name: x\ndevice: cpu\nsuite: {suite}\nresults_dir: {tmp_path / 'results'}\n"
            "space:\n  prompt: {shots: 0}\n  qlora: {}\n  full: null\n")
    plan = plan_sweep(write(tmp_path, text), [])
    assert set(plan.space.skipped) == {"qlora", "full"} and set(plan.space.unavailable) == {"qlora"}
    assert main(["sweep", str(tmp_path / "exp.yaml"), "--check"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: qlora is skipped on this machine: QLoRA needs a CUDA GPU" in err and "full is skipped" not in err
