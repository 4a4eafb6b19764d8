"""A suite whose split files change under the same version (a new user rotated every test label of theirs and swept
again into the same study): the sweep refuses to add trials, and a verdict between trials scored on different test
data is no verdict. Before, the second sweep ran, and its verdict read "NO, -60.0 points" while compare and payback
refused the same pair."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from views import trial_view

from harness.analysis.verdict import verdict
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import TrialRecord
from harness.models.sources import resolve
from harness.store.database import Store
from harness.sweep.plan import SweepPlan, plan_sweep
from harness.sweep.run import _check_same_setup, _study_record, check_store_matches_storage


@pytest.fixture
def suite(tmp_path, toy_suite) -> Path:
    return Path(shutil.copytree(toy_suite, tmp_path / "toy-colours"))


def recorded_study(tmp_path: Path, model: Path, suite: Path) -> tuple[Path, SweepPlan, Store]:
    """(experiment, plan, store): a one-arm study of `model` on `suite`, recorded as a sweep records it."""
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"name: toy\nmodel: {model}\nsuite: {suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nspace:\n  prompt: {shots: 0}\n")
    plan = plan_sweep(experiment, [])
    store = Store(tmp_path / "r" / "harness.duckdb")
    source = resolve(str(model))
    store.record_study(_study_record(plan, source.reference, source.sha256, None))
    return experiment, plan, store


def scored_study(tmp_path: Path, model: Path, suite: Path) -> tuple[SweepPlan, Store]:
    """`recorded_study`, with one trial toy/0 that recorded the suite's files and set-up, as a sweep records it."""
    _, plan, store = recorded_study(tmp_path, model, suite)
    store.record_trial_result(TrialRecord(id="toy/0", study="toy", number=0, run_id="r", method="prompt",
                                          status="complete", provenance={"data": {
                                              "split_sha256": dict(plan.suite.split_sha256),
                                              "suite_setup_sha256": plan.suite.setup_sha256}}))
    return plan, store


def test_a_sweep_refuses_a_study_whose_suite_files_changed_under_one_version(tmp_path, tiny_model_dir, suite):
    experiment, plan, store = recorded_study(tmp_path, tiny_model_dir, suite)
    scored_on = {"data": {"split_sha256": dict(plan.suite.split_sha256)}}
    store.record_trial_result(TrialRecord(id="toy/0", study="toy", number=0, run_id="r", method="prompt",
                                          status="complete", provenance=scored_on))
    _check_same_setup(plan, store)  # the same files: nothing to refuse here

    test = suite / "test.jsonl"
    test.write_text(test.read_text().replace('"red"', '"blue"', 1))  # one reference changed, version kept
    with pytest.raises(HarnessError) as refused:
        check_store_matches_storage(plan_sweep(experiment, []), store)
    message = str(refused.value)
    assert "test.jsonl changed since toy/0 was scored" in message and "under the same version" in message
    assert "new `version:`" in message and "--study NEW_NAME" in message


def test_no_verdict_between_trials_scored_on_different_test_files():
    accuracy = {"test": {"task_accuracy": Metric(0.9, 0.8, 0.95, 20)}, "dev": {"task_accuracy": Metric(0.9, 0.8, 0.95,
                                                                                                        20)}}
    tuned = trial_view(1, method="lora", trained=True, objective=0.9, metrics=accuracy,
                       provenance={"data": {"split_sha256": {"test": "a" * 64}}})
    prompt = trial_view(0, method="prompt", trained=False, objective=0.5, metrics=accuracy,
                        provenance={"data": {"split_sha256": {"test": "b" * 64}}})
    scores = {tuned.id: {f"t{i}": 1.0 for i in range(20)}, prompt.id: {f"t{i}": 0.0 for i in range(20)}}
    read = verdict([tuned, prompt], lambda trial, metric: scores[trial])
    assert read.text.startswith("No verdict: s/1 and the best prompting arm s/0 were scored on different test data "
                                "(the suite's test.jsonl differs: sha256 aaaaaaaaaaaa for s/1, bbbbbbbbbbbb for s/0)")
    assert read.decision is None and not read.ready
    same = verdict([tuned, prompt.__class__(**{**prompt.__dict__, "provenance": tuned.provenance})],
                   lambda trial, metric: scores[trial])
    assert same.head == "YES"


def test_a_model_folder_whose_chat_template_changed_is_refused_and_gives_no_verdict(tmp_path, tiny_model_dir, suite):
    """A new user added a chat template to their model folder partway through a study: its prompting trial had been
    prompted in plain text and its LoRA trial in chat turns, and the verdict weighed one against the other."""
    import json

    from harness.models.sources import setup_sha256
    from harness.sweep.run import _check_same_model_setup

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    before = setup_sha256(folder)
    assert before == setup_sha256(folder) and setup_sha256(tmp_path / "not-a-folder") is None
    config = folder / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "chat_template": "{{ messages }}"}))
    after = setup_sha256(folder)
    assert after != before

    _, plan, store = recorded_study(tmp_path, folder, suite)
    store.record_trial_result(TrialRecord(id="toy/0", study="toy", number=0, run_id="r", method="prompt",
                                          status="complete", provenance={"model": {"setup_sha256": before}}))
    _check_same_model_setup(plan, store, before)
    with pytest.raises(HarnessError, match=r"its config, tokenizer or chat template changed since toy/0"):
        check_store_matches_storage(plan, store)  # before calibration, and in the dry run

    accuracy = {"test": {"task_accuracy": Metric(0.9, 0.8, 0.95, 20)}, "dev": {"task_accuracy": Metric(0.9, 0.8, 0.95,
                                                                                                        20)}}
    tuned = trial_view(1, method="lora", trained=True, objective=0.9, metrics=accuracy,
                       provenance={"model": {"setup_sha256": after}})
    prompt = trial_view(0, method="prompt", trained=False, objective=0.5, metrics=accuracy,
                        provenance={"model": {"setup_sha256": before}})
    scores = {tuned.id: {f"t{i}": 1.0 for i in range(20)}, prompt.id: {f"t{i}": 0.0 for i in range(20)}}
    read = verdict([tuned, prompt], lambda trial, metric: scores[trial])
    assert read.text.startswith("No verdict: s/1 and the best prompting arm s/0 ran on a model folder whose config, "
                                "tokenizer or chat template differed")


def test_a_model_folder_whose_weights_changed_is_refused_before_calibration(tmp_path, tiny_model_dir, suite):
    """Found only when the sweep recorded the study, after it had calibrated (minutes), and never by --dry-run."""
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    experiment, plan, store = recorded_study(tmp_path, folder, suite)
    check_store_matches_storage(plan, store)  # the same weights: nothing to refuse

    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x40")  # one float changed to 2.0, same size
    with pytest.raises(HarnessError) as refused:
        check_store_matches_storage(plan_sweep(experiment, []), store)
    assert "study toy in" in str(refused.value) and "model sha256: stored" in str(refused.value)


def test_a_worker_of_another_setup_is_refused_by_the_shared_storage_before_calibration(tmp_path, tiny_model_dir, suite):
    """A worker with its own results folder and other data limits calibrated for minutes before the storage refused
    it: only the storage knew the study, and it was read after calibration."""
    import json

    import optuna

    from harness.core.records import study_setup
    from harness.sweep.storage import open_storage

    storage = f"journal:{tmp_path / 'shared' / 'optuna-journal.log'}"
    experiment, plan, _ = recorded_study(tmp_path, tiny_model_dir, suite)
    created = plan_sweep(experiment, [], storage=storage)
    model = resolve(str(tiny_model_dir))
    study = optuna.create_study(study_name="toy", storage=open_storage(storage).storage)
    study.set_user_attr("setup", json.loads(json.dumps(study_setup(_study_record(created, model.reference,
                                                                                 model.sha256, None)))))
    elsewhere = Store(tmp_path / "elsewhere" / "harness.duckdb")  # the worker's own results database: empty
    check_store_matches_storage(created, elsewhere)  # the same setup: nothing to refuse
    other = plan_sweep(experiment, ["data.test_limit=7"], storage=storage)
    with pytest.raises(HarnessError, match=r"was created by a sweep with another setup.*data: created with"):
        check_store_matches_storage(other, elsewhere)


def test_a_sweep_refuses_a_study_whose_suite_instruction_changed_under_one_version(tmp_path, tiny_model_dir, suite):
    """A new user reworded their suite's instruction and resumed the same study: the new trials were prompted
    otherwise than the old ones (the split files were the same), and all were ranked together."""
    experiment, plan, store = recorded_study(tmp_path, tiny_model_dir, suite)
    scored_on = {"data": {"split_sha256": dict(plan.suite.split_sha256),
                          "suite_setup_sha256": plan.suite.setup_sha256}}
    store.record_trial_result(TrialRecord(id="toy/0", study="toy", number=0, run_id="r", method="prompt",
                                          status="complete", provenance=scored_on))
    _check_same_setup(plan, store)

    meta = suite / "suite.yaml"
    text = meta.read_text()
    meta.write_text(text.replace("instruction:", "instruction: Be brief.", 1) if "instruction: |" not in text
                    else text.replace("instruction: |\n", "instruction: |\n  Be brief.\n", 1))
    changed = plan_sweep(experiment, [])
    assert changed.suite.setup_sha256 != plan.suite.setup_sha256
    assert changed.suite.split_sha256 == plan.suite.split_sha256
    with pytest.raises(HarnessError) as refused:
        check_store_matches_storage(changed, store)
    message = str(refused.value)
    assert "its instruction, `output:` or `scorers:` changed since toy/0 was scored" in message
    assert "new `version:`" in message and "--study NEW_NAME" in message


def test_no_verdict_between_trials_scored_under_other_suite_instructions():
    accuracy = {"test": {"task_accuracy": Metric(0.9, 0.8, 0.95, 20)}, "dev": {"task_accuracy": Metric(0.9, 0.8, 0.95,
                                                                                                        20)}}
    tuned = trial_view(1, method="lora", trained=True, objective=0.9, metrics=accuracy,
                       provenance={"data": {"suite_setup_sha256": "a" * 64}})
    prompt = trial_view(0, method="prompt", trained=False, objective=0.5, metrics=accuracy,
                        provenance={"data": {"suite_setup_sha256": "b" * 64}})
    scores = {tuned.id: {f"t{i}": 1.0 for i in range(20)}, prompt.id: {f"t{i}": 0.0 for i in range(20)}}
    read = verdict([tuned, prompt], lambda trial, metric: scores[trial])
    assert read.text.startswith("No verdict: s/1 and the best prompting arm s/0 were scored under a suite whose "
                                "instruction")
    assert read.decision is None
    recorded_before = trial_view(0, method="prompt", trained=False, objective=0.5, metrics=accuracy, provenance={})
    assert verdict([tuned, recorded_before], lambda trial, metric: scores[trial]).head == "YES"


def test_a_recheck_names_a_suite_instruction_edited_since_the_scores(tmp_path):
    """A re-check prompts and scores with suite.yaml as it is now: an instruction edited under one version moves its
    score as a library upgrade would, and the re-check must say so beside its answer."""
    from harness.core.records import RunRecord
    from harness.lifecycle.recheck import setting_changes

    store = Store(tmp_path / "harness.duckdb")
    store.record_run(RunRecord("r1", "s", 1, "host", "cpu", "cpu", 2, {}))
    store.record_trial_result(TrialRecord(id="s/0", study="s", number=0, run_id="r1", method="lora",
                                          status="complete", provenance={"data": {"suite_setup_sha256": "a" * 64}}))
    trial = store.trial("s/0")
    edited = [c for c in setting_changes(store, trial, None, "b" * 64) if "suite.yaml" in c]
    assert edited == ["suite.yaml's instruction, `output:` or `scorers:` sha256 aaaaaaaaaaaa... -> bbbbbbbbbbbb... "
                      "(edited; its version was not: the re-check prompts and scores as it says now)"]
    assert not [c for c in setting_changes(store, trial, None, "a" * 64) if "suite.yaml" in c]


def test_another_suite_of_the_same_name_and_version_is_refused_and_another_version_is_a_note(tmp_path,
                                                                                           tiny_model_dir, suite):
    """Two teams sharing one results database both named their suite `toy-colours` 1.0.0: the registry knows a suite
    by its name, so they shared one production adapter, and one team's promote retired the other's."""
    plan, store = scored_study(tmp_path, tiny_model_dir, suite)
    ours = Path(shutil.copytree(suite, tmp_path / "team-b" / "toy-colours"))
    experiment = tmp_path / "team-b.yaml"
    experiment.write_text(f"name: team-b\nmodel: {tiny_model_dir}\nsuite: {ours}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nspace:\n  prompt: {shots: 0}\n")
    assert check_store_matches_storage(plan_sweep(experiment, []), store) == []  # the same suite, copied

    test = ours / "test.jsonl"
    test.write_text(test.read_text().replace('"red"', '"blue"', 1))
    shutil.rmtree(suite)  # the first team's folder moved away: what the database recorded still tells them apart
    with pytest.raises(HarnessError) as refused:
        check_store_matches_storage(plan_sweep(experiment, []), store)
    message = " ".join(str(refused.value).split())
    assert "is not the suite toy-colours 1.0.0 that study toy in" in message and "its test.jsonl differ" in message
    assert "give it its own `name:` in" in message and "give it a new `version:`" in message

    meta = ours / "suite.yaml"
    meta.write_text(meta.read_text().replace("version: 1.0.0", "version: 1.1.0").replace("version: '1.0.0'",
                                                                                         "version: '1.1.0'"))
    notes = check_store_matches_storage(plan_sweep(experiment, []), store)  # a new version: its own, with a note
    assert len(notes) == 1 and "also in this database as version 1.0.0" in notes[0]
    assert "the registry keeps one production adapter for both" in notes[0]


def test_a_study_scored_on_another_version_is_not_said_to_be_under_the_same_version(tmp_path, tiny_model_dir, suite):
    experiment, plan, store = recorded_study(tmp_path, tiny_model_dir, suite)
    scored_on = {"data": {"suite_version": "0.9.0", "split_sha256": {"test": "a" * 64}}}
    store.record_trial_result(TrialRecord(id="toy/0", study="toy", number=0, run_id="r", method="prompt",
                                          status="complete", provenance=scored_on))
    with pytest.raises(HarnessError) as refused:
        check_store_matches_storage(plan, store)
    message = " ".join(str(refused.value).split())
    assert "test.jsonl changed since toy/0 was scored" in message and "(on version 0.9.0)" in message
    assert "under the same version" not in message and f"Run version {plan.suite.version} as a new study" in message


def test_trials_scored_before_set_ups_were_recorded_are_said_so_not_read_as_the_same(tmp_path, tiny_model_dir, suite):
    """An upgraded team reworded its instruction and resumed: the old trials recorded no set-up, every check read
    "unknown" as "the same", and the new trial was ranked with them without a word."""
    from harness.core.records import RunRecord
    from harness.lifecycle.recheck import setting_changes

    _, plan, store = recorded_study(tmp_path, tiny_model_dir, suite)
    store.record_run(RunRecord("r", "toy", 1, "host", "cpu", "cpu", 2, {}))
    store.record_trial_result(TrialRecord(id="toy/0", study="toy", number=0, run_id="r", method="prompt",
                                          status="complete", provenance={"data": {
                                              "split_sha256": dict(plan.suite.split_sha256)}}))
    from harness.sweep.run import _check_same_setup

    notes = _check_same_setup(plan, store)[1]  # as the sweep's check reads it (this test's storage is empty)
    assert len(notes) == 1 and "study toy's trials toy/0 were scored before the suite's instruction" in notes[0]
    assert "an edit to suite.yaml since cannot be told" in notes[0]
    unknown = [c for c in setting_changes(store, store.trial("toy/0"), None, plan.suite.setup_sha256)
               if "suite.yaml" in c]
    assert unknown and unknown[0].startswith("unknown: suite.yaml's instruction")


def test_a_suite_found_by_name_that_is_not_the_one_scored_is_refused(tmp_path, suite, monkeypatch):
    """The study's suite folder had moved; recheck, run from another team's project, found its ./suites/toy-colours
    by name and scored the first team's adapter on the second team's test data: "no change beyond noise"."""
    from harness.core.records import DataProvenance, StudyView
    from harness.sweep.predict import study_suite

    here = tmp_path / "project"
    ours = Path(shutil.copytree(suite, here / "suites" / "toy-colours"))
    monkeypatch.chdir(here)
    study = StudyView("toy", "toy", {}, "toy-colours", "1.0.0", str(tmp_path / "moved" / "toy-colours"), "tiny",
                      "abc", None, "task_accuracy", True, "sweep", None, None, {})
    from harness.data.suites import load_suite

    loaded = load_suite(str(ours))
    scored = DataProvenance("toy-colours", "1.0.0", {}, {}, dict(loaded.split_sha256), (), loaded.setup_sha256)
    assert study_suite(study, "trial toy/1", scored).split_sha256 == loaded.split_sha256  # the same suite: read
    test = ours / "test.jsonl"
    test.write_text(test.read_text().replace('"red"', '"blue"', 1))
    with pytest.raises(HarnessError) as refused:
        study_suite(study, "trial toy/1", scored)
    message = " ".join(str(refused.value).split())
    assert "which is not there any more; the suite of that name found here (suites/toy-colours) is not it: its " \
           "test.jsonl differ" in message


def test_another_projects_study_of_the_same_name_is_named_not_blamed_on_an_edit(tmp_path, tiny_model_dir, suite):
    """Billing ran its sweep under the default study name, which support's study had: the refusal said billing had
    edited suite.yaml under one version, and to put it back (support's contract)."""
    plan, store = scored_study(tmp_path, tiny_model_dir, suite)
    theirs = Path(shutil.copytree(suite, tmp_path / "billing" / "toy-colours"))
    (theirs / "test.jsonl").write_text((theirs / "test.jsonl").read_text().replace('"red"', '"blue"', 1))
    experiment = tmp_path / "billing.yaml"
    experiment.write_text(f"name: toy\nmodel: {tiny_model_dir}\nsuite: {theirs}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nspace:\n  prompt: {shots: 0}\n")
    with pytest.raises(HarnessError) as refused:
        check_store_matches_storage(plan_sweep(experiment, []), store)
    message = " ".join(str(refused.value).split())
    assert "it is another project's study of the same name" in message and "--study NAME" in message
    assert "put suite.yaml back" not in message and "under the same version" not in message
