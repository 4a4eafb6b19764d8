"""A configuration the study already ran is recorded as a pruned duplicate, not run, and takes no slot of --trials;
a space with fewer configurations than --trials, or a sampler that keeps proposing ones that ran, stops the sweep,
which says why. On prompting-only experiments over the tiny model, and on Optuna studies built by hand."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from conftest import swept
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from harness.cli import main
from harness.core.records import is_duplicate
from harness.store.database import Store
from harness.sweep import twins
from harness.sweep.resume import DUPLICATE, counted_trials, duplicates_in_a_row
from harness.sweep.space import build_space
from harness.sweep.storage import open_storage
from harness.sweep.workers import _finished

FOUR = "prompt: {shots: [1, 2], shot_selection: [random, similar]}"
"""Four configurations: fewer than the eight trials asked for."""
SIX = "prompt: {shots: [1, 2, 3], shot_selection: [random, similar]}"


def experiment(folder: Path, model: Path, suite: Path, space: str, trials: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    return (f"name: toy\nmodel: {model}\nsuite: {suite}\nresults_dir: {folder / 'results'}\n"
            f"regression: {{enabled: false}}\nbudget: {{trials: {trials}}}\ndata: {{dev_limit: 6, test_limit: 6}}\n"
            f"space:\n  {space}\n")


def said(capsys) -> str:
    """What the sweep printed, its result and its notices (on standard error), with the console's wrapping undone."""
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


def study_of(folder: Path) -> optuna.Study:
    storage = open_storage(f"journal:{folder / 'results/optuna-journal.log'}").storage
    return optuna.load_study(study_name="toy", storage=storage)


def history(store: Store) -> list[tuple]:
    return [(t.number, json.dumps(t.params, sort_keys=True), t.status, t.failure_reason) for t in store.trials("toy")]


@pytest.mark.slow
def test_a_space_smaller_than_trials_runs_each_configuration_once_then_stops_and_says_why(tmp_path, tiny_model_dir,
                                                                                           toy_suite, capsys):
    whole = swept(tmp_path / "whole/exp.yaml", experiment(tmp_path / "whole", tiny_model_dir, toy_suite, FOUR, 8))
    out = said(capsys)
    trials = whole.trials("toy")
    complete = [t for t in trials if t.complete]
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == len(complete) == 4
    duplicates = [t for t in trials if t.status == "pruned"]
    assert duplicates and len(trials) == 4 + len(duplicates)
    for dup in duplicates:  # shown as pruned, with the trial it repeats, by `trials` and `show` as before
        twin = next(t for t in complete if t.params == dup.params)
        assert dup.failure_reason == f"duplicate of {twin.id}: same configuration, not re-run"
    assert "note: the space holds only 4 distinct configurations, fewer than the study's 8 trials" in out
    assert ("study toy stops at 4 of 8 trials: its space holds 4 distinct configurations and every one has run, so "
            "raising --trials cannot add more; widen `space:` (more choices, or a range) to try others, or run the "
            "same ones with other settings (budget, training) as a new study (--study NEW_NAME).") in out
    assert counted_trials(study_of(tmp_path / "whole")) == 4
    assert _finished(whole, "toy") == 4  # the bar of `sweep --workers N` counts as the study does
    assert main(["show", duplicates[0].id, "--db", str(whole.path)]) == 0
    assert "status pruned (duplicate of toy/" in said(capsys)

    # raising --trials adds nothing: the sweep says so at once, without sampling
    assert main(["sweep", str(tmp_path / "whole/exp.yaml"), "--trials", "12"]) == 0
    assert "study toy stops at 4 of 12 trials: its space holds 4 distinct configurations" in said(capsys)
    assert history(whole) == history(Store(whole.path))
    assert len(whole.trials("toy")) == len(trials)

    # a sweep stopped at 3 and resumed to 8 draws what the uninterrupted one drew, duplicates included
    split = experiment(tmp_path / "split", tiny_model_dir, toy_suite, FOUR, 8)
    swept(tmp_path / "split/exp.yaml", split, "--trials", "3")
    assert "stops at" not in said(capsys)
    resumed = swept(tmp_path / "split/exp.yaml", split)
    assert "study toy stops at 4 of 8 trials" in said(capsys)
    assert history(resumed) == history(whole)


@pytest.mark.slow
def test_a_duplicate_takes_no_slot_of_the_trials(tmp_path, tiny_model_dir, toy_suite, capsys):
    """Six configurations, six trials: all six run, however many duplicates the sampler drew on the way (one slot
    went to a duplicate before, and five ran)."""
    store = swept(tmp_path / "exp.yaml", experiment(tmp_path, tiny_model_dir, toy_suite, SIX, 6))
    trials = store.trials("toy")
    complete = {json.dumps(t.params, sort_keys=True) for t in trials if t.complete}
    assert len(complete) == 6 and sum(t.complete for t in trials) == 6
    assert any(is_duplicate(t.failure_reason) for t in trials), "the sampler drew no duplicate: nothing was tested"
    assert all(t.status == "complete" or is_duplicate(t.failure_reason) for t in trials)
    study = study_of(tmp_path)
    assert counted_trials(study) == 6
    assert {t.number for t in study.trials if DUPLICATE in t.user_attrs} == {
        t.number for t in trials if t.status == "pruned"}
    assert "stops at" not in said(capsys)


@pytest.mark.slow
def test_a_sampler_that_keeps_proposing_what_ran_stops_the_sweep(tmp_path, tiny_model_dir, toy_suite, monkeypatch,
                                                                 capsys):
    """The bound on duplicates in a row, lowered to 2 so that it comes before the space is exhausted (the seed's
    third and fourth draws repeat the first two)."""
    monkeypatch.setattr(twins, "duplicate_limit", lambda size: 2)
    store = swept(tmp_path / "exp.yaml", experiment(tmp_path, tiny_model_dir, toy_suite, FOUR, 8))
    assert [t.status for t in store.trials("toy")] == ["complete", "complete", "pruned", "pruned"]
    assert ("study toy stops at 2 of 8 trials: the sampler proposed 2 configurations in a row that had already run "
            "(found 2 distinct configurations, of the 4 its space holds), so raising --trials cannot add more; widen "
            "`space:`, or start a new study (--study NEW_NAME) with --set sampler=random.") in said(capsys)
    assert main(["sweep", str(tmp_path / "exp.yaml"), "--trials", "20"]) == 0  # resumed: stops again, at once
    assert "study toy stops at 2 of 20 trials: the sampler proposed 2 configurations in a row" in said(capsys)
    assert len(store.trials("toy")) == 4


@pytest.mark.slow
def test_workers_share_a_small_space_and_stop_when_it_is_exhausted(tmp_path, tiny_model_dir, toy_suite, capsys):
    store = swept(tmp_path / "exp.yaml", experiment(tmp_path, tiny_model_dir, toy_suite, FOUR, 8), "--workers", "2")
    trials = store.trials("toy")
    complete = {json.dumps(t.params, sort_keys=True) for t in trials if t.complete}
    assert len(complete) == 4 and sum(t.complete for t in trials) == 4, [(t.id, t.status) for t in trials]
    assert all(t.status == "complete" or is_duplicate(t.failure_reason) for t in trials)
    study = study_of(tmp_path)
    assert counted_trials(study) == 4 and not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert "study toy stops at 4 of 8 trials: its space holds 4 distinct configurations" in said(capsys)
    for log in (tmp_path / "results/logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), log


def test_duplicates_are_passed_over_by_the_count_and_counted_in_a_row():
    """Over trials built by hand: duplicates never count; a run of them is broken by a trial that counts, and not by
    ones an interruption cut short nor by one still running."""
    study = optuna.create_study()
    choice = {"x": CategoricalDistribution([0, 1])}

    def add(state, value=None, **attrs):
        study.add_trial(create_trial(state=state, value=value, params={"x": 0}, distributions=choice,
                                     user_attrs=attrs))

    add(TrialState.COMPLETE, 1.0)
    add(TrialState.PRUNED, **{DUPLICATE: 0})
    assert (counted_trials(study), duplicates_in_a_row(study)) == (1, 1)
    add(TrialState.FAIL, interrupted=True)  # killed, or not needed: neither counts nor breaks the run
    add(TrialState.PRUNED, **{DUPLICATE: 0})
    add(TrialState.RUNNING)
    assert (counted_trials(study), duplicates_in_a_row(study)) == (1, 2)
    add(TrialState.PRUNED)  # the median pruner's: it ran, so it counts
    assert (counted_trials(study), duplicates_in_a_row(study)) == (2, 0)
    add(TrialState.PRUNED, **{DUPLICATE: 0})
    add(TrialState.FAIL, interrupted=False)  # an error in the trial counts, and breaks the run
    assert (counted_trials(study), duplicates_in_a_row(study)) == (3, 0)


def test_the_space_knows_how_many_configurations_it_holds():
    finite = build_space({"prompt": {"shots": [0, 1, 2], "shot_selection": ["random", "similar"]},
                          "lora": {"r": {"low": 4, "high": 16, "step": 4}, "learning_rate": {"low": 1.0e-3,
                                   "high": 2.0e-3, "step": 5.0e-4}},
                          "full": {"learning_rate": 1.0e-4}}, "cpu", "x")
    assert finite.size() == (1 + 2 * 2) + 4 * 3 + 1  # with no shots, nothing is selected: shots 0 counts once
    assert "18 distinct configurations in all" in finite.describe()
    key = finite.configuration
    assert key({"method": "prompt", "prompt.shots": 2, "prompt.shot_selection": "similar"}) == ("prompt", 2, 1)
    assert key({"method": "prompt", "prompt.shots": 0, "prompt.shot_selection": "similar"}) == \
        key({"method": "prompt", "prompt.shots": 0, "prompt.shot_selection": "random"}) == ("prompt", 0, None)
    fixed = build_space({"prompt": {"shots": 0, "shot_selection": ["random", "similar"], "constrained": [False, True]}},
                        "cpu", "x")
    assert fixed.size() == 2 and fixed.configuration(
        {"method": "prompt", "prompt.shot_selection": "similar", "prompt.constrained": True}) == ("prompt", None, 1)
    assert key({"method": "full"}) == ("full",)
    # an enqueued grid value and the sampler's float for the same place are one configuration
    assert key({"method": "lora", "lora.r": 8, "lora.learning_rate": 1.5e-3}) == ("lora", 1, 1)
    assert key({"method": "lora", "lora.r": 8, "lora.learning_rate": 0.0015000000000000002}) == ("lora", 1, 1)
    assert key({"method": "prompt", "prompt.shots": 3, "prompt.shot_selection": "similar"}) is None
    assert key({"method": "prompt", "prompt.shots": 2}) is None  # a narrower space made it
    assert key({"method": "lora", "lora.r": 6, "lora.learning_rate": 1.0e-3}) is None  # off the grid
    assert key({"method": "api"}) is None
    ranged = build_space({"prompt": {"shots": [0, 1]}, "lora": {"learning_rate": {"low": 1.0e-4, "high": 1.0e-3}}},
                         "cpu", "x")
    assert ranged.size() is None and not any("in all" in line for line in ranged.describe())
    assert ranged.configuration({"method": "lora", "lora.learning_rate": 5.0e-4}) == ("lora", 5.0e-4)

def test_a_sampled_grid_value_is_the_twin_of_the_same_value_enqueued():
    """Optuna keeps an enqueued value as written and rounds a sampled one to its grid: one configuration."""
    space = build_space({"lora": {"r": 8, "learning_rate": {"low": 1.0e-3, "high": 2.0e-3, "step": 5.0e-4}}},
                        "cpu", "x")
    study = optuna.create_study()
    for value in (1.5e-3, 0.0015000000000000002, 2.0e-3):
        study.enqueue_trial({"method": "lora", "lora.learning_rate": value})
    first = study.ask()
    space.suggest(first)
    study.tell(first, 0.5)
    second, third = study.ask(), study.ask()
    space.suggest(second), space.suggest(third)
    assert second.params["lora.learning_rate"] != first.params["lora.learning_rate"]
    assert twins.finished_twin(study, second, space, {}) == first.number
    assert twins.finished_twin(study, third, space, {}) is None


def test_the_bound_on_duplicates_in_a_row_grows_with_a_finite_space_and_is_capped():
    assert twins.duplicate_limit(None) == twins.DUPLICATES_IN_A_ROW == 50
    assert twins.duplicate_limit(1) == 50 and twins.duplicate_limit(6) == 60 and twins.duplicate_limit(24) == 240
    assert twins.duplicate_limit(10_000) == twins.MOST_DUPLICATES_IN_A_ROW == 500


def test_a_resumed_study_whose_choices_changed_is_refused_before_any_trial(tmp_path, tiny_model_dir, toy_suite,
                                                                            capsys):
    """Optuna cannot change a parameter's choices within a study: each new trial failed on it and took a slot,
    recorded in the journal only."""
    path = tmp_path / "exp.yaml"
    store = swept(path, experiment(tmp_path, tiny_model_dir, toy_suite, "prompt: {shots: [0, 1]}", 1))
    path.write_text(experiment(tmp_path, tiny_model_dir, toy_suite, "prompt: {shots: [0, 1, 2]}", 2))
    assert main(["sweep", str(path), "--dry-run"]) == 2  # before the calibration, and in a dry run
    out = " ".join(capsys.readouterr().err.split())
    assert ("study toy's trials drew `prompt.shots` from the choices [0, 1], but the space now gives the choices "
            "[0, 1, 2]") in out and "Keep `space.prompt.shots` as it was" in out and "--study NEW_NAME" in out
    assert len(store.trials("toy")) == 1 and len(study_of(tmp_path).trials) == 1


@pytest.mark.slow
def test_a_fixed_value_changed_on_resume_is_a_new_configuration_and_trials_outside_the_space_are_named(
        tmp_path, tiny_model_dir, toy_suite, capsys):
    """A file that fixes a value otherwise asks for configurations the study has not run: they were taken for twins of
    the old ones (Optuna never sees fixed values), never run, and the space called used up ("widen `space:`"). A
    study's trials the space no longer holds stay in its ranking, which the user is told."""
    path = tmp_path / "exp.yaml"
    store = swept(path, experiment(tmp_path, tiny_model_dir, toy_suite, "prompt: {shots: [0, 1]}", 2))
    assert [t.params["constrained"] for t in store.trials("toy")] == [False, False]
    capsys.readouterr()
    path.write_text(experiment(tmp_path, tiny_model_dir, toy_suite, "prompt: {shots: [0, 1], constrained: true}", 4))
    assert main(["sweep", str(path)]) == 0
    out = said(capsys)
    complete = [t for t in store.trials("toy") if t.complete]
    assert sorted((t.params["shots"], t.params["constrained"]) for t in complete) == [
        (0, False), (0, True), (1, False), (1, True)]  # the new fixed value ran with each choice
    assert ("note: 2 of study toy's finished trials (toy/0, toy/1) ran configurations the space no longer holds (a "
            "range narrowed, a value fixed otherwise, a method left out); they stay in its ranking and verdict.") in out
    assert "stops at" not in out
    assert all(isinstance(t.user_attrs.get(twins.FIXED), dict) for t in study_of(tmp_path).trials)


def test_a_duplicate_asked_for_by_a_command_points_to_the_trial_it_repeats(tmp_path):
    """compare, predict and payback told a user to re-train a duplicate "with pruning off", which changes nothing:
    its configuration ran, as the trial it names."""
    import dataclasses

    from test_store import make_record

    from harness.core.errors import HarnessError
    from harness.core.records import duplicate_reason

    store = Store(tmp_path / "harness.duckdb")
    record = make_record(number=2)
    store.record_trial_result(dataclasses.replace(record, status="pruned", failure_reason=duplicate_reason("s1/0")))
    with pytest.raises(HarnessError, match=r"is pruned \(duplicate of s1/0: same configuration, not re-run\); this "
                                           r"needs a complete trial\. Pick one from `harness trials`, or use s1/0, "
                                           r"which ran its configuration\."):
        store.require_trial(record.id, complete=True)


def test_a_configuration_is_read_from_searched_and_fixed_values_wherever_the_space_now_puts_them():
    """A skeptic's resumes: a fixed shot_selection changed at shots 0 ran a second trial of the one configuration, and
    a parameter fixed before and searched now (`shots: 0` to `shots: [0, 2]`) read the old trial as outside the space
    and could run it again."""
    searched = build_space({"prompt": {"shots": [0, 2], "shot_selection": "similar"}}, "cpu", "x")
    then = {"shots": 0, "shot_selection": "random", "constrained": False}
    old = searched.configuration({"method": "prompt"}, then)  # fixed then, searched now
    assert old == searched.configuration({"method": "prompt", "prompt.shots": 0}, None) == ("prompt", 0)
    fixed = build_space({"prompt": {"shots": 0, "shot_selection": "similar"}}, "cpu", "x")
    assert fixed.configuration({"method": "prompt"}, then) == ("prompt",)  # random at no shots: the same
    assert fixed.configuration({"method": "prompt"}, {**then, "constrained": True}) is None  # another value
    assert fixed.configuration({"method": "prompt", "prompt.shots": 0}, then) == ("prompt",)  # searched then
    assert searched.configuration({"method": "prompt"}, None) is None  # searched now, recorded nowhere


def test_a_resume_under_another_step_budget_names_the_trials_that_trained_under_the_old_one(
        tmp_path, tiny_model_dir, toy_suite, capsys):
    """`--set budget.max_steps=8` on a study of 4-step adapters ranked both side by side without a word."""
    path = tmp_path / "exp.yaml"
    text = experiment(tmp_path, tiny_model_dir, toy_suite, "lora: {r: 4, lora_alpha: 8, learning_rate: 1.0e-3}", 1)
    text = text.replace("budget: {trials: 1}", "budget: {trials: 1, max_steps: 2}")
    text += "training: {batch_size: 4, eval_every_steps: 0}\ndata: {train_limit: 16, dev_limit: 6, test_limit: 6}\n"
    store = swept(path, text.replace("data: {dev_limit: 6, test_limit: 6}\n", ""))
    assert [t.status for t in store.trials("toy")] == ["complete"]
    capsys.readouterr()
    assert main(["sweep", str(path), "--trials", "2", "--set", "budget.max_steps=3",
                 "--set", "space.lora.learning_rate=2.0e-3"]) == 0
    assert ("note: 1 of study toy's finished trained trials trained under another step budget than this run's "
            "(max_steps 3, epochs 1.0): toy/0 (max_steps 2, epochs 1.0). They stay in its ranking and verdict as "
            "they trained") in said(capsys)


def test_leaving_a_method_out_of_a_study_with_trials_is_refused_in_words(tmp_path, tiny_model_dir, toy_suite,
                                                                         capsys):
    """The message quoted a phrase in backticks as if it were a key, and said a skipped method "counts"."""
    path = tmp_path / "exp.yaml"
    space = "prompt: {shots: 0}\n  lora: {r: 4, lora_alpha: 8, learning_rate: 1.0e-3}\nenqueue: [{method: prompt}]"
    swept(path, experiment(tmp_path, tiny_model_dir, toy_suite, space, 1))
    capsys.readouterr()
    assert main(["sweep", str(path), "--dry-run", "--set", "space.lora=null"]) == 2
    out = said(capsys)
    assert ("study toy's trials drew `method` from the choices ['prompt', 'lora'], but the space now gives the "
            "choices ['prompt']; Optuna cannot change that within a study. Keep the space's methods as they were "
            "(a method left out with `--set space.METHOD=null` counts) to add trials to this study, or pass "
            "--study NEW_NAME") in out
