"""What the calibration times of each arm's answers: a generation batch (the faster of two) and a few forgetting-check
items, once for all the precisions whose trained weights are the same (on a CPU, fp32 and bf16 autocast both train
fp32 weights), so a second precision costs its training steps only."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_machine import experiment

from harness.sweep import calibrate as calibration_module
from harness.sweep.machine import plan_for_machine
from harness.sweep.plan import plan_sweep

FORGETTING = ["regression.enabled=true", "regression.limit=8"]
"""test_machine's experiment, with the forgetting check on: its items are timed with the answers."""


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_on_a_cpu_the_answers_are_timed_once_for_both_precisions(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: True)  # both precisions are timed
    generated, checked = [], []
    real_generate, real_check = calibration_module._generate_seconds, calibration_module._time_regression
    monkeypatch.setattr(calibration_module, "_generate_seconds",
                        lambda candidate, data, desc: generated.append(desc) or real_generate(candidate, data, desc))
    monkeypatch.setattr(calibration_module, "_time_regression",
                        lambda config, candidate: checked.append(1) or real_check(config, candidate))
    said: list[str] = []
    here = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), FORGETTING), said.append)
    lora = {t.precision: t for t in here.calibration.timings if t.method == "lora"}
    assert set(lora) == {"fp32", "bf16"} and all(t.step_seconds > 0 for t in lora.values())  # both trained
    assert generated == ["calibrate prompt", "calibrate lora"] and len(checked) == 1
    assert lora["bf16"].generate_seconds == lora["fp32"].generate_seconds > 0
    assert lora["bf16"].regression_seconds == lora["fp32"].regression_seconds > 0
    text = "\n".join(said)
    assert "6 timed steps of lora (fp32), lora (bf16); a generation batch of prompt (fp32), lora (fp32); 8 " \
           "forgetting-check items of lora (fp32)" in text


def test_a_cached_timing_in_the_same_weights_spares_the_answers(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    """fp32 measured and cached first; asking for bf16 later trains bf16 and takes fp32's answer timings."""
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: True)
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    first = plan_for_machine(plan_sweep(path, [*FORGETTING, "training.precision=fp32"]), lambda _: None).calibration

    def never(*args, **kwargs):
        raise AssertionError("the answers were timed again")

    monkeypatch.setattr(calibration_module, "_generate_seconds", never)
    monkeypatch.setattr(calibration_module, "_time_regression", never)
    said: list[str] = []
    later = plan_for_machine(plan_sweep(path, [*FORGETTING, "training.precision=bf16"]), said.append).calibration
    assert later.timing("lora").precision == "bf16" and later.timing("lora").step_seconds > 0
    assert later.timing("lora").generate_seconds == first.timing("lora").generate_seconds
    assert "6 timed steps of lora (bf16) (cached" in "\n".join(said)  # and no generation batch


def test_on_a_gpu_each_precision_answers_in_its_own_weights():
    fp32 = calibration_module.Timing("lora", "fp32", 1.0, 0.5, 0.1)
    assert calibration_module._answers_alike([fp32], "lora", "bf16", "cpu") is fp32
    assert calibration_module._answers_alike([fp32], "lora", "bf16", "cuda") is None  # bf16 weights there
    assert calibration_module._answers_alike([fp32], "prompt", "fp32", "cpu") is None  # another method
    assert calibration_module._answering([], [("lora", "fp32"), ("lora", "bf16")], "cuda") == {("lora", "fp32"),
                                                                                               ("lora", "bf16")}
    assert calibration_module._answering([fp32], [("lora", "bf16")], "cpu") == set()


def test_the_answers_are_the_faster_of_two_whole_batches(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    """Two whole batches of the same dev examples per answering arm, the faster kept: a first batch pays one-time
    costs. Then the same prompts with a one-token answer (the faster of two), which splits the batch's time into its
    prompt tokens and its decoding. Nothing else is generated, and a precision that answers alike generates
    nothing."""
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: True)
    batches = []

    def timed(candidate, batch, max_new_tokens, batch_size, desc):
        batches.append((desc, [ex.id for ex in batch], max_new_tokens))
        return 3.0 if len(batches) % 2 else 2.0

    monkeypatch.setattr(calibration_module, "_batch_seconds", timed)
    here = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), FORGETTING), lambda _: None)
    prompt = here.calibration.timing("prompt")
    assert prompt.generate_seconds == 2.0
    assert [desc for desc, _, _ in batches] == (["calibrate prompt"] * 2 + ["calibrate prompt prompts"] * 2
                                                + ["calibrate lora"] * 2 + ["calibrate lora prompts"] * 2)
    assert len({tuple(ids) for _, ids, _ in batches}) == 1 and len(batches[0][1]) == 4
    assert [new for _, _, new in batches[2:4]] == [1, 1]
    tokens, shared = calibration_module._prompt_tokens(calibration_module.METHODS.get("prompt").prepare(
        calibration_module.trial_context(here.data), calibration_module.method_params(
            {"method": "prompt", "shots": 0}, "test")).prompter, calibration_module._calibration_batch(here.data))
    assert prompt.token_seconds == pytest.approx(2.0 * 4 / (4 * (max(tokens) - shared)))
    assert prompt.decode_seconds == 0.0  # the one-token batches took as long as the whole ones: all prompt
