"""A calibration that read slow (other work shared the cores while it was measured) does not plan later runs: the
trials' own step times are set beside it after the sweep, and cached timings that read slow are dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from views import trial_view

from harness.cli import main
from harness.core.records import TrainingSummary
from harness.store.database import Store
from harness.sweep.calibrate import Calibration, Timing
from harness.sweep.drift import check_calibration, drift
from harness.sweep.machine import plan_for_machine
from harness.sweep.plan import plan_sweep


def calibration(step_seconds: float, path: Path | None = None) -> Calibration:
    return Calibration("Some CPU", "fp32", (Timing("prompt", "fp32", None, 0.5), Timing("lora", "fp32", step_seconds,
                                                                                       0.3)),
                       measured_at="2026-12-05T23:09:37+00:00", path=str(path) if path else None)


def trained(number: int, step_seconds: float | None, steps: int = 125):
    return trial_view(number, study="demo", method="lora", trained=True,
                      training=TrainingSummary(steps, "max_steps", 240, 8, planned_steps=steps,
                                               step_seconds=step_seconds))


def test_trials_at_the_calibrated_pace_say_nothing():
    assert drift(calibration(1.04), [trained(1, 1.10), trained(2, 0.80), trial_view(0)]) is None


def test_the_trial_that_strays_furthest_is_named_either_way():
    slow_calibration = drift(calibration(7.25), [trained(1, 1.03), trained(2, 5.0)])
    assert slow_calibration.trial == "demo/1" and slow_calibration.calibrated_slow
    assert slow_calibration.factor == pytest.approx(7.25 / 1.03)
    busy_now = drift(calibration(1.0), [trained(1, 1.2), trained(2, 3.0)])
    assert busy_now.trial == "demo/2" and not busy_now.calibrated_slow and busy_now.factor == pytest.approx(3.0)


def test_short_trials_and_trials_without_step_times_are_not_compared():
    assert drift(calibration(7.25), [trained(1, 1.0, steps=6), trained(2, None), trial_view(3, method="lora")]) is None


def test_timings_that_read_slow_are_dropped_and_slow_trials_keep_them(tmp_path):
    cached = tmp_path / "calibration.json"
    cached.write_text("{}")
    note = check_calibration(calibration(1.0), [trained(1, 3.0)])
    assert "3.0x slower" in note and "the cached timings are kept" in note
    note = check_calibration(calibration(7.25, cached), [trained(1, 1.03)], lowered=(150, 250))
    assert "lora's optimizer steps ran at 1.03 s in trial demo/1 (125 steps), against 7.25 s calibrated" in note
    assert "read 7.0x slow" in note and "gave trained trials 150 of 250 steps" in note and not cached.exists()
    assert check_calibration(None, [trained(1, 1.03)]) is None
    # 1.3x slow reads within DRIFT, but where fit_minutes cut the steps from it, the steps (and the answer) rest on it
    cached.write_text("{}")
    assert check_calibration(calibration(2.02, cached), [trained(1, 1.55)]) is None and cached.exists()
    note = check_calibration(calibration(2.02, cached), [trained(1, 1.55)], lowered=(150, 250))
    assert "read 1.3x slow" in note and "gave trained trials 150 of 250 steps" in note and not cached.exists()
    cached.write_text("{}")
    assert check_calibration(calibration(1.0, cached), [trained(1, 1.3)], lowered=(150, 250)) is None  # slower
    assert cached.exists()


def test_a_sweep_planned_from_slow_cached_timings_drops_them(tmp_path, tiny_model_dir, toy_suite, monkeypatch,
                                                             capsys):
    """Real steps of a tiny model, against a cached calibration made to read 1,000 times slow."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "drift.yaml"
    path.write_text(f"""
name: drift
model: {tiny_model_dir}
suite: {toy_suite}
results_dir: {tmp_path / "results"}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 8, test_limit: 8}}
budget: {{trials: 1, max_steps: 12, trial_train_seconds: null}}
training: {{batch_size: 4, eval_every_steps: 0, precision: fp32}}
generation: {{batch_size: 4}}
space: {{lora: {{r: 4}}}}
""")
    cached = Path(plan_for_machine(plan_sweep(path, []), lambda _: None).calibration.path)
    raw = json.loads(cached.read_text())
    for timing in raw["timings"]:
        timing["step_seconds"] *= 1000
    cached.write_text(json.dumps(raw))
    assert main(["sweep", str(path)]) == 0
    err = " ".join(capsys.readouterr().err.split())  # a note, on standard error with every notice
    assert "the calibration read" in err and "Its cached timings are dropped" in err and not cached.exists()
    lora = Store(tmp_path / "results/harness.duckdb").trials("drift")[0]
    assert lora.training.steps == 12 and 0 < lora.training.step_seconds < raw["timings"][0]["step_seconds"]
    assert main(["show", lora.id, "--db", str(tmp_path / "results")]) == 0
    assert f"12 of 12 steps at {lora.training.step_seconds:.2f} s a step" in capsys.readouterr().out
