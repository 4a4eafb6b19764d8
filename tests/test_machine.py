"""Measure the machine before planning: real timed steps on a tiny model (only the bf16 capability probe is mocked),
the precision chosen from them, the cache, the estimate, the refusal of a plan whose trials would be cut short, and
what happens to a trial the time cap does cut short."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import printed

from harness.analysis.gate import reference_for, run_gate
from harness.analysis.report import estimate_text
from harness.analysis.verdict import study_verdict
from harness.cli import main
from harness.core.config import GateConfig
from harness.core.errors import HarnessError
from harness.store.database import Store
from harness.sweep import calibrate as calibration_module
from harness.sweep.machine import plan_for_machine
from harness.sweep.plan import plan_sweep


def experiment(tmp_path: Path, model: Path, suite: Path, body: str = "") -> Path:
    path = tmp_path / "machine.yaml"
    path.write_text(f"""
name: machine
model: {model}
suite: {suite}
results_dir: {tmp_path / "results"}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 8, test_limit: 8}}
budget: {{trials: 2, max_steps: 4, trial_train_seconds: 600}}
training: {{batch_size: 4, eval_every_steps: 0}}
generation: {{batch_size: 4}}
space:
  prompt: {{shots: 0}}
  lora: {{r: 4}}
enqueue: [{{method: prompt}}, {{method: lora}}]
{body}""")
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_fp32_is_chosen_where_bf16_is_not_native_and_bf16_is_never_timed(tmp_path, tiny_model_dir, toy_suite,
                                                                       monkeypatch):
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: False)  # an AVX2-only CPU
    said: list[str] = []
    here = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), []), said.append)
    calibration = here.calibration
    assert calibration.precision == "fp32" and not calibration.cached
    assert {(t.method, t.precision) for t in calibration.timings} == {("prompt", "fp32"), ("lora", "fp32")}
    lora = calibration.timing("lora")
    assert lora.step_seconds > 0 and lora.generate_seconds > 0  # measured, on this machine
    text = "\n".join(said)
    assert "bf16: not native" in text and "lora: " in text and "s/step fp32: using fp32" in text
    assert here.data.config.training.precision == "fp32"
    assert here.data.provenance["calibration"]["precision"] == "fp32"


def test_with_native_bf16_both_are_timed_and_the_faster_is_used_then_cached(tmp_path, tiny_model_dir, toy_suite,
                                                                          monkeypatch):
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: True)  # the capability, not the timing
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    first = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    steps = {t.precision: t.step_seconds for t in first.timings if t.method == "lora"}
    assert set(steps) == {"fp32", "bf16"}
    assert first.precision == min(steps, key=steps.get)  # whichever this machine ran faster

    def never(*args, **kwargs):
        raise AssertionError("a cached calibration trained again")

    monkeypatch.setattr(calibration_module, "_time", never)
    again = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    assert again.cached and again.timings == first.timings and again.precision == first.precision
    said: list[str] = []
    for precision in ("fp32", "bf16"):  # as each worker of a sweep is told the precision the sweep chose
        named = plan_for_machine(plan_sweep(path, [f"training.precision={precision}"]), said.append).calibration
        assert named.precision == precision and named.cached  # a named precision is kept, and its timing reused
        # prompting, timed once in fp32, answers as fast whatever training's precision: nothing was measured
        assert named.timing("prompt").generate_seconds == first.timing("prompt").generate_seconds
    assert not [line for line in said if "calibrating on" in line], said
    # an arm left out of the space keeps the others' timings; the forgetting check's size times nothing again
    fewer = ["space.prompt=null", "enqueue=[{method: lora}]", "regression.limit=17"]
    kept = plan_for_machine(plan_sweep(path, fewer), lambda _: None).calibration
    assert kept.cached and kept.timings == tuple(t for t in first.timings if t.method == "lora")
    timed: list[str] = []

    def noted(plan, data, method, *args):
        timed.append(method)
        never()

    monkeypatch.setattr(calibration_module, "_time", noted)
    # another configuration of lora is timed anew (a failure there is told as the sweep's error, naming it)
    with pytest.raises(HarnessError, match="r=8.*trained again"):
        plan_for_machine(plan_sweep(path, ["space.lora.r=8"]), lambda _: None)
    assert timed == ["lora"]


def test_a_resumed_study_keeps_the_precision_its_trials_trained_in(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    """`auto` follows the fastest timing; timed again on a busier day, the same file trained a study's next trials in
    bf16 after fp32, and its trials no longer compared alike. Only the capability is mocked."""
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: True)
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    fresh = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    other = "bf16" if fresh.precision == "fp32" else "fp32"
    said: list[str] = []
    kept = plan_for_machine(plan_sweep(path, []), said.append, trained_in=other)
    assert kept.calibration.precision == other and kept.data.config.training.precision == other
    assert f"precision: {other}, as this study's trials trained (the fastest timed here now is {fresh.precision})" \
        in "\n".join(said)
    assert f"using {other} (as the study's trials trained; lora ran faster in {fresh.precision})" in "\n".join(said)
    assert "over all trained methods" not in "\n".join(said)
    named = plan_for_machine(plan_sweep(path, [f"training.precision={fresh.precision}"]), lambda _: None,
                             trained_in=other)
    assert named.calibration.precision == fresh.precision  # a precision the file names is the user's to change
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: False)  # resumed on an AVX2-only CPU
    said.clear()
    moved = plan_for_machine(plan_sweep(path, []), said.append, trained_in="bf16")
    assert moved.calibration.precision == "fp32"
    assert "this study's trials trained in bf16, which is not native here" in "\n".join(said)


def test_other_data_limits_keep_the_timed_rates_and_count_their_own_prompts(tmp_path, tiny_model_dir, toy_suite,
                                                                           monkeypatch):
    """Data limits are what a user changes most between dry runs: each re-timed the whole machine, for minutes. The
    rates stand for any subset of the suite; only each prompt's tokens are the subset's, counted without a model."""
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: False)
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    first = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    real = calibration_module._time

    def never(*args, **kwargs):
        raise AssertionError("other data limits timed the machine again")

    monkeypatch.setattr(calibration_module, "_time", never)
    limits = ["data.train_limit=40", "data.dev_limit=5", "data.test_limit=7"]
    said: list[str] = []
    other = plan_for_machine(plan_sweep(path, limits), said.append).calibration
    assert other.cached and not any("calibrating on" in line for line in said)
    rates = ("step_seconds", "generate_seconds", "token_seconds", "decode_seconds")
    assert [[getattr(t, r) for r in rates] for t in other.timings] == \
        [[getattr(t, r) for r in rates] for t in first.timings]
    assert all(len(t.prompt_tokens["dev"]) == 5 and len(t.prompt_tokens["test"]) == 7 for t in other.timings)
    monkeypatch.setattr(calibration_module, "_time", real)
    fresh = plan_for_machine(plan_sweep(path, limits), lambda _: None, recalibrate=True).calibration
    assert [(t.prompt_tokens, t.shared_tokens) for t in other.timings] == \
        [(t.prompt_tokens, t.shared_tokens) for t in fresh.timings]  # counted as a fresh calibration counts them
    back = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    assert [t.prompt_tokens for t in back.timings] == [t.prompt_tokens for t in first.timings]


def test_a_searching_arms_timing_stands_for_any_search_settings(tmp_path, toy_suite, tiny_model_dir):
    """What steers a search (its optimizer, slices, candidates) changes how many answers it asks for, which the
    estimate counts, not what one answer costs: it re-timed the arm, for minutes."""
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "")
    path.write_text(path.read_text().replace("lora: {r: 4}", "dspy: {val_size: 8, pool_size: 20}")
                    .replace("{method: lora}", "{method: dspy}"))
    timed = calibration_module._configuration(plan_sweep(path, []), "dspy")
    steered = ["space.dspy.val_size=12", "space.dspy.candidates=2", "space.dspy.optimizer=mipro"]
    assert calibration_module._configuration(plan_sweep(path, steered), "dspy") == timed
    for answered in ("space.dspy.max_demos=6", "space.dspy.constrained=true"):  # an answer's shots, its decoding
        assert calibration_module._configuration(plan_sweep(path, [answered]), "dspy") != timed


def test_a_trial_that_cannot_finish_inside_its_cap_is_refused_before_any_trial(tmp_path, tiny_model_dir, toy_suite,
                                                                             capsys):
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    overrides = ["--set", "budget.max_steps=100000", "--set", "budget.trial_train_seconds=1"]
    assert main(["sweep", str(path), *overrides]) == 2
    out = " ".join(printed(capsys).split())
    assert "cannot finish its step budget inside its time cap" in out and "lora: its 100000 steps take" in out
    assert "--set budget.max_steps=" in out and "--allow-under-trained" in out
    assert Store(tmp_path / "results/harness.duckdb").trials() == []
    # the dry run gives its plan and estimate first (a new user's scaffold had only the refusal), then refuses
    assert main(["sweep", str(path), *overrides, "--dry-run"]) == 2
    out = " ".join(printed(capsys).split())
    assert out.index("space:") < out.index("estimated duration") < out.index("error: the sweep would not start here")
    assert "cannot finish its step budget inside its time cap" in out


def test_fit_minutes_lowers_the_step_budget_to_what_this_machine_can_afford(tmp_path, tiny_model_dir, toy_suite):
    path = experiment(tmp_path, tiny_model_dir, toy_suite, "")
    roomy = plan_for_machine(plan_sweep(path, ["budget.max_steps=40", "budget.fit_minutes=60"]), lambda _: None)
    assert roomy.plan.config.budget.max_steps == 40 and "keeps its 40 steps" in roomy.fitted
    step = roomy.calibration.timing("lora").step_seconds
    tight = plan_for_machine(plan_sweep(path, ["budget.max_steps=100000", "budget.min_steps=3",
                                               f"budget.fit_minutes={(roomy.estimate.total_seconds + 20 * step) / 60}",
                                               "budget.trial_train_seconds=null"]), lambda _: None)
    fitted = tight.plan.config.budget.max_steps
    assert 3 <= fitted < 100000 and f"gets {fitted} steps" in tight.fitted
    assert tight.data.config.budget.max_steps == fitted and tight.data.provenance["budget"]["max_steps"] == fitted
    assert tight.decided()[-1] == f"budget.max_steps={fitted}"  # what other workers of the study are told
    assert tight.lowered == (fitted, 100000) and f"{fitted} of the 100000 steps" in tight.lowered_note()
    assert roomy.lowered is None and roomy.lowered_note() is None  # the experiment's own budget: nothing to say
    # a floor (the default min_steps, 50) above the written budget (4 steps) never raises it, however tight the fit
    short = plan_for_machine(plan_sweep(path, ["budget.fit_minutes=0.001"]), lambda _: None)
    assert short.plan.config.budget.max_steps == 4 and "gets 4 steps" in short.fitted


def test_the_estimate_counts_the_forgetting_check_timed_here(tmp_path, tiny_model_dir, toy_suite):
    check = ["regression.enabled=true", "regression.limit=20"]
    here = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), check), lambda _: None)
    lora, prompt = here.calibration.timing("lora"), here.calibration.timing("prompt")
    assert lora.regression_seconds > 0 and prompt.regression_seconds is None  # timed on the trained model only
    trained = here.estimate.of(trained=True)
    answers = lora.split_seconds("dev", 8, 4) + lora.split_seconds("test", 8, 4)  # at its prompts' padded tokens
    assert trained.eval_seconds == pytest.approx(answers + 20 * lora.regression_seconds)
    assert here.estimate.once_seconds == pytest.approx(20 * lora.regression_seconds)  # the base, not cached yet
    assert here.estimate.total_seconds == pytest.approx(sum(t.seconds for t in here.estimate.trials)
                                                        + here.estimate.once_seconds)
    assert "lora: 4 steps" in estimate_text(here.estimate) and "dev and test and forgetting" in \
        estimate_text(here.estimate)
    off = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), []), lambda _: None)
    assert off.estimate.once_seconds == 0 and off.calibration.timing("lora").regression_seconds is None
    assert off.estimate.of(trained=True).forgetting_seconds == 0
    assert "forgetting" not in estimate_text(off.estimate)  # the check is off: the estimate does not mention it
    assert not any(t.sampled for t in off.estimate.trials)  # both trials are enqueued
    more = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite),  # 3 configurations to run
                                       ["budget.trials=3", "space.lora.r=[4, 8]"]), lambda _: None)
    assert [t.sampled for t in more.estimate.trials] == [False, False, True]
    assert "3. prompt (sampled; method assumed):" in estimate_text(more.estimate)  # the sampler may draw lora


@pytest.mark.slow
def test_a_trial_cut_short_by_its_cap_is_under_trained_and_never_decides(tmp_path, tiny_model_dir, toy_suite,
                                                                        capsys):
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    args = ["sweep", str(path), "--set", "budget.max_steps=100000", "--set", "budget.trial_train_seconds=2",
            "--allow-under-trained"]
    assert main(args) == 0
    out = capsys.readouterr().out
    store = Store(tmp_path / "results/harness.duckdb")
    lora = next(t for t in store.trials("machine") if t.method == "lora")
    assert lora.complete and lora.training.stopped_by == "time budget" and lora.under_trained
    assert lora.training.planned_steps == 100000 and 0 < lora.training.steps < 100000
    assert "under-trained" in out and "Running anyway" in out
    verdict = study_verdict(store, "machine")
    assert verdict.head == "No verdict" and "stopped short" in verdict.text and lora.id in verdict.text
    reference, kind = reference_for(store, lora, "toy-colours")
    gate = run_gate(store, lora, reference, kind, GateConfig(margin=1.0, require_regression=False), "toy-colours")
    trained = next(r for r in gate.rules if r.name == "trained in full")
    assert not gate.passed and not trained.passed and "of 100000 steps" in trained.detail
    assert main(["trials", "--db", str(store.path)]) == 0
    assert "under-trained" in capsys.readouterr().out
    with pytest.raises(HarnessError, match="under-trained"):
        from harness.lifecycle.promote import promote
        promote(store, lora.id, "staging", approver="ada")


def test_recalibrate_measures_again_and_a_busy_cpu_is_named(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    """A calibration taken while other work shared the cores reads slow, and the cache would keep it: the plan
    says so, and `--recalibrate` measures again whatever is cached."""
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    loads = iter([0.5])  # idle when it starts, busy from the first timing on: load that builds up counts too
    monkeypatch.setattr(calibration_module.os, "getloadavg", lambda: (next(loads, 9.0),) * 3)
    monkeypatch.setattr(calibration_module.os, "cpu_count", lambda: 2)
    said: list[str] = []
    first = plan_for_machine(plan_sweep(path, []), said.append).calibration
    assert "the CPU was busy while these timings were measured (load up to 9.0 on 2 cores)" in "\n".join(said)
    said.clear()
    cached = plan_for_machine(plan_sweep(path, []), said.append).calibration  # still busy: the cache stands
    assert cached.cached and cached.busy == first.busy  # the cache remembers how it was measured
    assert "--recalibrate measures it again" in "\n".join(said)
    fresh = plan_for_machine(plan_sweep(path, []), lambda _: None, recalibrate=True).calibration
    assert not fresh.cached and fresh.measured_at >= first.measured_at
    monkeypatch.setattr(calibration_module.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    plan_for_machine(plan_sweep(path, []), lambda _: None, recalibrate=True)  # cached busy again
    monkeypatch.setattr(calibration_module.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    idle = plan_for_machine(plan_sweep(path, []), said.append).calibration  # idle now: a busy cache is not read
    assert not idle.cached and idle.busy is None and "measured on a busy CPU" in "\n".join(said)
    assert plan_for_machine(plan_sweep(path, []), lambda _: None).calibration.cached  # what is cached now stands


def test_a_calibration_interrupted_after_an_arm_keeps_that_arms_timing(tmp_path, tiny_model_dir, toy_suite,
                                                                        monkeypatch):
    """A Ctrl-C after minutes of timing threw every timing away: the next run measured them all again."""
    monkeypatch.setattr(calibration_module, "native_bf16", lambda device: False)
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    real, timed = calibration_module._time, []

    def interrupted_at_lora(plan, data, method, *args):
        timed.append(method)
        if method == "lora":
            raise KeyboardInterrupt
        return real(plan, data, method, *args)

    monkeypatch.setattr(calibration_module, "_time", interrupted_at_lora)
    with pytest.raises(KeyboardInterrupt):
        plan_for_machine(plan_sweep(path, []), lambda _: None)
    assert timed == ["prompt", "lora"]
    timed.clear()

    def counted(plan, data, method, *args):
        timed.append(method)
        return real(plan, data, method, *args)

    monkeypatch.setattr(calibration_module, "_time", counted)
    again = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    assert timed == ["lora"] and {t.method for t in again.timings} == {"prompt", "lora"}


def test_a_methods_line_says_when_the_precision_chosen_over_all_methods_is_not_its_own_fastest():
    """`lora: 0.22 s/step fp32, 0.38 s/step bf16 autocast: using bf16` read as LoRA's own choice: one precision trains
    every method, chosen over all of them."""
    from harness.sweep.calibrate import Calibration, Timing

    timings = (Timing("lora", "fp32", 0.22, 0.1), Timing("lora", "bf16", 0.38, 0.1),
               Timing("full", "fp32", 2.0, 0.1), Timing("full", "bf16", 1.0, 0.1))
    lines = Calibration("cpu", "bf16", timings).lines()
    assert lines[0].startswith("lora: 0.22 s/step fp32, 0.38 s/step bf16 autocast: using bf16 (over all trained "
                               "methods; lora alone ran faster in fp32);")
    assert lines[1].startswith("full: 2.00 s/step fp32, 1.00 s/step bf16 autocast: using bf16;")
