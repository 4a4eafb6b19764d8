"""What the gate weighs a candidate against: production, else the adapter last taken out of production (on the same
test subset), else the best prompting arm. A skeptic's trial: a candidate refused against production passed against
its own study's prompting arm once production was retired by hand, a minute later."""

from __future__ import annotations

from harness.analysis.gate import reference_for
from harness.core.records import AdapterEvent, StudyRecord, TrialRecord
from harness.store.database import Store


def _trial(store: Store, number: int, method: str, dev: float, subset: str = "same") -> None:
    store.record_trial_result(TrialRecord(
        id=f"s/{number}", study="s", number=number, run_id="r", method=method, trained=method != "prompt",
        status="complete", objective=dev, feasible=True,
        provenance={"data": {"suite": "colours", "suite_version": "1.0.0", "subset_sha256": {"test": subset}}}))


def _store(tmp_path) -> Store:
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(StudyRecord(name="s", experiment_name="s", experiment={}, suite="colours",
                                   suite_version="1.0.0", suite_path="", model_name="tiny", model_sha256="abc",
                                   objective_metric="task_accuracy", maximize=True))
    _trial(store, 0, "prompt", 0.3)
    _trial(store, 1, "lora", 0.97)  # the production adapter, later retired by hand
    _trial(store, 2, "lora", 0.67)  # the candidate
    return store


def test_with_production_retired_by_hand_the_gate_weighs_the_candidate_against_it(tmp_path):
    store = _store(tmp_path)
    candidate = store.trial("s/2")
    assert reference_for(store, candidate, "colours")[1] == "prompting"  # no adapter was ever in production
    store.record_adapter_events([AdapterEvent("s/1", "colours", "production", "candidate", "promote", "ada")])
    assert [(r.id, kind) for r, kind in [reference_for(store, candidate, "colours")]] == [("s/1", "production")]
    store.record_adapter_events([AdapterEvent("s/1", "colours", "retired", "production", "withdraw", "mallory",
                                              "cleanup")])
    assert [(r.id, kind) for r, kind in [reference_for(store, candidate, "colours")]] == [("s/1", "last production")]


def test_a_last_production_adapter_on_another_test_subset_is_still_the_reference(tmp_path):
    """Falling back to prompting there let a candidate scored with another data.test_limit (30 of the retired
    adapter's 36 test examples) pass: the gate weighs it against the adapter last in production, and refuses as it
    refuses against live production scored on another subset (not compared like for like)."""
    store = _store(tmp_path)
    _trial(store, 3, "lora", 0.99, subset="other")
    store.record_adapter_events([AdapterEvent("s/3", "colours", "production", "candidate", "promote", "ada")])
    store.record_adapter_events([AdapterEvent("s/3", "colours", "retired", "production", "withdraw", "ada", "why")])
    reference, kind = reference_for(store, store.trial("s/2"), "colours")
    assert (reference.id, kind) == ("s/3", "last production")


def test_the_gate_reads_the_suite_gate_the_study_was_scored_under_not_the_file_edited_since(tmp_path):
    """`margin: 1.0` added to suite.yaml after the sweep, with no new version, let a candidate 33 points worse than
    production replace it: "not worse by more than the 100.0-point margin"."""
    import yaml
    from conftest import write_toy_suite

    from harness.core.config import GateConfig
    from harness.core.records import StudyView
    from harness.lifecycle.promote import gate_config

    suite = write_toy_suite(tmp_path / "toy")
    meta = yaml.safe_load((suite / "suite.yaml").read_text())
    (suite / "suite.yaml").write_text(yaml.safe_dump({**meta, "gate": {"margin": 1.0, "require_regression": False}}))

    def study(notes: dict) -> StudyView:
        return StudyView("s", "s", {}, "toy-colours", "1.0.0", str(suite), "tiny", "abc", None, "task_accuracy",
                         True, "sweep", None, None, notes)

    config, source = gate_config(study({"suite_gate": None}))  # swept when the suite had no gate: the defaults
    assert config == GateConfig()
    assert "the defaults" in source and "suite.yaml's `gate:` has changed since (now margin: 1.0, " \
        "require_regression: False), and is not read" in source
    recorded = {**GateConfig().__dict__, "margin": 0.02}
    config, source = gate_config(study({"suite_gate": recorded}))
    assert config.margin == 0.02 and "as study s was scored under it; suite.yaml's `gate:` has changed" in source
    config, source = gate_config(study({}))  # a study swept before the block was recorded: the file as it reads now
    assert config.margin == 1.0 and "as it reads now: studies swept before 2026-12-07 did not record it" in source
    unchanged = {**GateConfig().__dict__, "margin": 1.0, "require_regression": False}
    assert "changed" not in gate_config(study({"suite_gate": unchanged}))[1]
    import shutil

    shutil.rmtree(suite)  # the folder gone since: the recorded block, and nothing said of a change
    config, source = gate_config(study({"suite_gate": recorded}))
    assert config.margin == 0.02 and "changed" not in source


def test_a_prompting_winner_is_refused_promotion_with_how_to_serve_it(tmp_path):
    """A small team's verdict was NO: prompting won, and promote, export and the registry all spoke of adapters."""
    import pytest

    from harness.core.errors import HarnessError
    from harness.lifecycle.promote import promote

    store = _store(tmp_path)
    with pytest.raises(HarnessError) as refused:
        promote(store, "s/0", "staging", "petra")
    assert "only adapters (trained trials) are promoted" in str(refused.value)
    assert "`harness predict s/0 --input FILE` answers new inputs that way" in str(refused.value)
    assert "`harness export s/0 --out prompt/` writes its prompt" in str(refused.value)


def test_a_resume_after_loosening_a_gate_does_not_move_the_bar_of_trials_scored_before(tmp_path):
    """Resuming with `--trials N+1` after adding `margin: 1.0` to suite.yaml re-recorded the study's gate, and an
    adapter scored before the edit passed; the experiment file's `gate:` likewise replaced the study's."""
    import dataclasses

    from harness.lifecycle.promote import gate_config

    store = _store(tmp_path)
    strict = {"margin": 0.0, "min_format_compliance": 0.95, "max_hallucination_rate": 0.05,
              "max_regression_drop": 0.05, "require_regression": True}
    first = StudyRecord(name="s", experiment_name="s", experiment={"gate": strict}, suite="colours",
                        suite_version="1.0.0", suite_path="", model_name="tiny", model_sha256="abc",
                        objective_metric="task_accuracy", maximize=True, notes={"suite_gate": strict})
    store.record_study(first)
    store.record_trial_result(dataclasses.replace(
        TrialRecord(id="s/2", study="s", number=2, run_id="r", method="lora", trained=True, status="complete",
                    objective=0.67, feasible=True),
        provenance={"data": {"subset_sha256": {"test": "same"}}, "experiment": {"gate": strict}}))
    loose = {**strict, "margin": 1.0}
    store.record_study(dataclasses.replace(first, experiment={"gate": loose}, notes={"suite_gate": loose}))
    study = store.study("s")
    assert study.suite_gate == (True, strict)  # the bar the study was first scored under stays
    config, source = gate_config(study, store.trial("s/2"))
    assert config.margin == 0.0 and "as s/2 ran with it" in source  # the trial's own experiment, not the resumed one


def test_no_rescore_is_offered_when_the_subsets_were_drawn_alike_and_differ_all_the_same(tmp_path):
    """A re-run with the reference's data.test_limit and seed, when the candidate's study had those already, drew the
    same other subset again, and the advice repeated itself (`...-like-triage-like-triage`)."""
    from types import SimpleNamespace

    from harness.lifecycle.promote import ways_to_compare

    store = Store(tmp_path / "harness.duckdb")
    experiment = {"name": "s", "space": {"prompt": {}}}
    store.record_study(StudyRecord(name="s", experiment_name="s", experiment=experiment, suite="colours",
                                   suite_version="2.0.0", suite_path="", model_name="tiny", model_sha256="abc",
                                   objective_metric="task_accuracy", maximize=True))
    _trial(store, 1, "lora", 0.9)
    store.record_trial_result(TrialRecord(
        id="s/2", study="s", number=2, run_id="r", method="lora", trained=True, status="complete", objective=0.8,
        feasible=True, provenance={"data": {"suite": "colours", "suite_version": "2.0.0",
                                            "subset_sha256": {"test": "other"}}}))
    text = ways_to_compare(store, store.trial("s/2"), SimpleNamespace(reference="s/1", reference_kind="production"))
    assert "`harness sweep" not in text and "--to retired" not in text
    assert "scored on other test data (suite colours 2.0.0 against colours 1.0.0" in text
    assert "--force --reason" in text


def test_rollback_with_no_production_names_the_adapter_last_in_it_and_the_way_back(tmp_path):
    import pytest

    from harness.core.errors import HarnessError
    from harness.lifecycle.promote import rollback

    store = _store(tmp_path)
    store.record_adapter_events([AdapterEvent("s/1", "colours", "production", "candidate", "promote", "ada")])
    store.record_adapter_events([AdapterEvent("s/1", "colours", "retired", "production", "withdraw", "mallory",
                                              "cleanup")])
    with pytest.raises(HarnessError) as refused:
        rollback(store, "colours", "ada")
    assert str(refused.value) == (
        "suite colours has no production adapter to roll back. s/1 was last in production, retired by mallory "
        "(withdraw); put an adapter back with `harness promote TRIAL --to production --approver NAME` (the gate "
        "weighs any other against s/1).")


def test_the_registry_and_a_rollback_say_when_an_adapter_reached_production_over_a_failed_gate(tmp_path, capsys):
    """Production was forced past a failing gate; the registry's table and JSON read as if gated, and a rollback put
    it back without a word."""
    import json

    from harness.cli import main

    store = _store(tmp_path)
    for trial in ("s/1", "s/2"):  # adapters keep their weights: the registry lists them
        (tmp_path / trial.replace("/", "-")).mkdir()
        store.record_trial_result(TrialRecord(
            id=trial, study="s", number=int(trial[-1]), run_id="r", method="lora", trained=True, status="complete",
            objective=0.9, feasible=True, artifact_path=str(tmp_path / trial.replace("/", "-"))))
    store.record_adapter_events([AdapterEvent("s/1", "colours", "production", "candidate", "promote", "ada",
                                              "pilot", forced=True, gate={"passed": False})])
    store.record_adapter_events([
        AdapterEvent("s/2", "colours", "production", "candidate", "promote", "ada", gate={"passed": True}),
        AdapterEvent("s/1", "colours", "retired", "production", "retire", "ada")])
    db = ["--db", str(store.path)]
    assert main(["registry", "--format", "json", *db]) == 0
    assert {a["trial"]: a["gate"] for a in json.loads(capsys.readouterr().out)["adapters"]} == \
        {"s/1": "overridden", "s/2": "passed"}
    from harness.analysis.report import ungated_warning

    assert ungated_warning(store, "colours", "s/2") is None
    store.record_adapter_events([  # a rollback's events, which `harness rollback` then warns of
        AdapterEvent("s/1", "colours", "production", "retired", "rollback", "ada"),
        AdapterEvent("s/2", "colours", "retired", "production", "rollback", "ada")])
    assert ungated_warning(store, "colours", "s/1").startswith(
        "s/1 never passed a gate: it reached production over a failed gate (--force)")
    assert main(["registry", *db]) == 0
    assert "production (gate overridden)" in " ".join(capsys.readouterr().out.split())
