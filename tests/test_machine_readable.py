"""`harness show` and `harness registry` for a pipeline: `--format json` writes what the tables show, read from the
same typed views, as strict JSON on standard output (a CI step gates on `jq`, a notebook loads it), and refuses the
combinations it cannot mean.

One tiny real sweep: a prompting arm and a LoRA arm, the LoRA arm then promoted to staging through the gate."""

from __future__ import annotations

import json

import pytest
from conftest import swept
from test_bad_input import refused

from harness.cli import main
from harness.store.database import Store

EXPERIMENT = """
name: pipe
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 12, test_limit: 12}}
budget: {{trials: 2, max_steps: 20, epochs: 50}}
training: {{batch_size: 16, eval_every_steps: 0}}
generation: {{batch_size: 12}}
gate: {{require_regression: false}}
space:
  prompt: {{shots: 0}}
  lora: {{r: 8, lora_alpha: 16, learning_rate: 1.0e-2}}
enqueue:
  - {{method: prompt}}
  - {{method: lora}}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model_dir, toy_suite) -> Store:
    root = tmp_path_factory.mktemp("pipe")
    store = swept(root / "pipe.yaml", EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite,
                                                        results=root / "results"))
    assert [t.status for t in store.trials()] == ["complete", "complete"]
    return store


def strict(text: str):
    """JSON as a strict reader takes it: NaN or Infinity would be refused by jq and most parsers."""
    def refuse(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_show_json_carries_the_trial_as_show_prints_it(sweep, capsys):
    trial = sweep.trial("pipe/1")
    assert main(["show", "pipe/1", "--format", "json", "--examples", "2", "--db", str(sweep.path)]) == 0
    shown = strict(capsys.readouterr().out)
    assert (shown["id"], shown["method"], shown["status"]) == ("pipe/1", "lora", "complete")
    accuracy = trial.metric("test", "task_accuracy")
    # laid out as `trials --format json` lays a trial: one jq path (.metrics.task_accuracy) reads both
    assert shown["metrics"]["task_accuracy"] == accuracy.to_dict()
    assert shown["dev_metrics"]["task_accuracy"] == trial.metric("dev", "task_accuracy").to_dict()
    assert main(["trials", "--format", "json", "--db", str(sweep.path)]) == 0
    listed = next(row for row in strict(capsys.readouterr().out) if row["id"] == "pipe/1")
    assert listed["metrics"]["task_accuracy"] == shown["metrics"]["task_accuracy"]
    assert shown["training"]["steps"] == trial.training.steps and shown["training"]["planned_steps"] == 20
    wrong = [e for e in sweep.examples("pipe/1") if e.split == "test" and not e.scores.get("task_accuracy")]
    assert shown["wrong_test_answers"] == len(wrong) == round((1 - accuracy.value) * accuracy.n)
    assert len(shown["wrong_test_examples"]) == min(2, len(wrong))
    assert all(e["split"] == "test" and e["scores"]["task_accuracy"] in (0, 0.0, None)
               for e in shown["wrong_test_examples"])
    assert shown["started_at"].startswith(f"{trial.started_at:%Y-%m-%d}")  # ISO 8601, not Python's repr


def test_an_export_of_an_adapter_no_gate_passed_says_so_and_records_its_standing(sweep, tmp_path, capsys):
    """A CI job exported the adapter the gate had just refused, with no word, and nothing in the folder said so."""
    assert main(["export", "pipe/1", "--out", str(tmp_path / "serve"), "--db", str(sweep.path)]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "warning: pipe/1 was exported as it is, but it is a candidate in the registry: no gate has passed it" in said
    registry = strict((tmp_path / "serve" / "serving.json").read_text())["registry"]
    trial = sweep.trial("pipe/1")
    assert (registry["status"], registry["feasible"], registry["under_trained"]) == \
        ("candidate", trial.feasible, trial.under_trained)


def test_registry_json_lists_each_adapter_with_its_status_metrics_and_history(sweep, capsys):
    db = ["--db", str(sweep.path)]
    assert main(["promote", "pipe/1", "--to", "staging", "--approver", "ana", "--force", "--reason", "pilot", *db]) \
        in (0, 1)
    capsys.readouterr()
    status = sweep.adapter_events()[-1].status  # promoting it there again is done, not an error a nightly job fails on
    assert main(["promote", "pipe/1", "--to", status, "--approver", "ana", "--force", "--reason", "pilot", *db]) == 0
    assert f"pipe/1 is already in {status}; nothing changed" in " ".join(capsys.readouterr().err.split())
    assert main(["registry", "--format", "json", *db]) == 0
    listed = strict(capsys.readouterr().out)
    assert set(listed) == {"adapters"}  # history only when asked for
    [adapter] = listed["adapters"]
    assert (adapter["trial"], adapter["suite"], adapter["method"]) == ("pipe/1", "toy-colours", "lora")
    status = sweep.adapter_events()[-1].status
    assert adapter["status"] == status and adapter["since"]["actor"] == "ana"
    assert adapter["metrics"]["task_accuracy"] == sweep.trial("pipe/1").metric("test", "task_accuracy").to_dict()
    assert set(sweep.trial("pipe/1").metrics["test"]) <= set(adapter["metrics"])  # macro_f1 too, as show has it

    assert main(["registry", "--format", "json", "--history", *db]) == 0
    history = strict(capsys.readouterr().out)
    assert [e["action"] for e in history["history"]] == [e.action for e in sweep.adapter_events()]
    assert history["history"][-1]["actor"] == "ana" and history["history"][-1]["at"][:4].isdigit()
    assert [look["kind"] for look in history["looks_at_test"]] == [look.kind for look in sweep.looks()]
    assert history["audit_packs"] == []


def test_promote_json_says_what_changed_and_every_gate_rule_with_the_exit_status_unchanged(sweep, capsys):
    """A pipeline that wanted to post which gate rule failed had prose only, on standard error when refused."""
    db = ["--db", str(sweep.path)]
    code = main(["promote", "pipe/1", "--to", "production", "--approver", "ci", "--format", "json", *db])
    out = strict(capsys.readouterr().out)  # standard output holds the JSON alone, refused or not
    gate = out["gate"]
    assert code == (0 if gate["passed"] else 1) and out["changed"] is gate["passed"]
    assert gate["rules"] and all({"name", "passed", "detail"} <= set(rule) for rule in gate["rules"])
    assert gate["passed"] == all(rule["passed"] for rule in gate["rules"])
    if code == 0:
        assert (out["previous"], out["status"]) == ("staging", "production") and len(out["registry_head"]) >= 12


def test_registry_json_refuses_what_it_cannot_mean(sweep, tmp_path, capsys):
    assert "drop --format json" in refused(["registry", "--verify", "--format", "json", "--db", str(sweep.path)],
                                          capsys)
    assert "no results database" in refused(["registry", "--format", "json", "--db", str(tmp_path / "none.duckdb")],
                                            capsys)
    assert "toy-colour" in refused(["registry", "--format", "json", "--suite", "toy-colour", "--db", str(sweep.path)],
                                   capsys)


def test_show_says_the_precision_a_trial_trained_in(sweep, capsys):
    """Only the JSON held it; the text's "answers generated by hf (float32)" read as the training precision."""
    trained = sweep.trial("pipe/1")
    assert trained.precision in ("fp32", "bf16")
    assert main(["show", "pipe/1", "--db", str(sweep.path)]) == 0
    assert f"trained in {trained.precision}" in capsys.readouterr().out
    assert main(["show", "pipe/0", "--db", str(sweep.path)]) == 0
    assert "trained in" not in capsys.readouterr().out  # prompting trains nothing


def test_an_exports_standing_reads_the_adapters_registry_history():
    """Rolled back out of production, an adapter two gates had passed read "no gate has passed it"; one promoted over
    a failed gate with --force exported with no word."""
    import dataclasses

    from views import trial_view

    from harness.core.records import AdapterEvent
    from harness.lifecycle.export import standing

    trial = dataclasses.replace(trial_view(1, method="lora", trained=True), feasible=True)
    passed = AdapterEvent("s/1", "toy", "production", "staging", "promote", "ana", gate={"passed": True})
    retired = AdapterEvent("s/1", "toy", "retired", "production", "rollback", "ana")
    forced = AdapterEvent("s/1", "toy", "production", "candidate", "promote", "ana", note="pilot", forced=True,
                          gate={"passed": False})
    assert standing(trial, "production", [passed]) is None
    assert "a gate passed it, and it has left staging and production since" in standing(trial, "retired",
                                                                                         [passed, retired])
    assert "it is in production without a gate's pass: an approver promoted it over a failed gate" in \
        standing(trial, "production", [forced])
    assert "it is a candidate in the registry: no gate has passed it" in standing(trial, "candidate", [])
