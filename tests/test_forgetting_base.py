"""The forgetting check's base score is measured only when a trial of the run may train: a prompting-only sweep
leaves the weights as they are, so it spends no time on lm-eval for the base model."""

from __future__ import annotations

from conftest import swept


def test_a_prompting_only_sweep_never_measures_the_base_model(tmp_path, tiny_model_dir, toy_suite, capsys):
    store = swept(tmp_path / "exp.yaml", f"""
name: toy
model: {tiny_model_dir}
suite: {toy_suite}
results_dir: {tmp_path / 'results'}
regression: {{enabled: true, limit: 4}}
budget: {{trials: 1}}
data: {{dev_limit: 6, test_limit: 6}}
space: {{prompt: {{shots: 0}}}}
""")
    out = capsys.readouterr().out
    assert "through lm-eval" not in out and "measuring" not in out
    [trial] = store.trials("toy")
    assert trial.status == "complete" and not trial.metric("test", "regression_delta").measured
    assert not list((tmp_path / "results").glob("cache/regression-base-*"))
