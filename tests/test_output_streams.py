"""A sweep's standard output carries its result (the plan, the tables, the verdict) and its standard error every
warning, note and error, as README promises: a CI job that read the sweep's standard output found the calibration's
and the drift check's notes among its verdict."""

from __future__ import annotations

from harness.cli import main

EXPERIMENT = """
name: streams
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 32, dev_limit: 6, test_limit: 6}}
budget: {{trials: 3}}
space:
  prompt: {{shots: [0, 1]}}
"""


def test_a_sweeps_notices_go_to_standard_error_and_its_result_to_standard_output(tmp_path, tiny_model_dir,
                                                                                 toy_suite, capsys):
    path = tmp_path / "streams.yaml"  # 3 trials asked of a space of 2: the sweep says it stops short, as a note
    path.write_text(EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=tmp_path / "results"))
    assert main(["sweep", str(path)]) == 0
    out, err = capsys.readouterr()
    flagged = [line for line in out.splitlines() if line.startswith(("warning:", "note:", "error:"))]
    assert flagged == [], flagged
    assert "Trials ranked on dev" in out and "holds only 2 distinct configurations" in " ".join(err.split())
