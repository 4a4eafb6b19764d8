"""The interval rules' versions: the history is complete and numbered, and a trial is said to be behind only on the
numbers of its that a later change touches (an interval it shows, or one it lacks that a change added)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from views import trial_view

import harness.evaluation.rules as rules
from harness.core.label_report import LabelReport, LabelRow
from harness.core.metric import Metric
from harness.evaluation.rules import LABEL_F1, STATS_RULES, VERSIONS, changes_behind, rules_version

ROUGE = {"test": {"rouge_l": Metric(0.41, 0.35, 0.47, 40)}}
BOTH = {"test": {**ROUGE["test"], "regression_delta": Metric(-0.015, -0.095, 0.058, 200)}}


def test_the_history_is_numbered_from_one_to_the_current_version_and_each_entry_is_in_the_docstring():
    assert [v.version for v in VERSIONS] == list(range(1, STATS_RULES + 1))
    assert STATS_RULES == 8
    for entry in VERSIONS:
        assert re.search(rf"^{entry.version}\. {entry.date} \({entry.commit}\)", rules.__doc__, re.MULTILINE), entry
    assert "at least one of each" in rules.__doc__.split(f"\n{STATS_RULES}. ")[1]
    assert all(a.date <= b.date for a, b in zip(VERSIONS, VERSIONS[1:]))


def test_a_version_this_release_does_not_know_is_named():
    with pytest.raises(ValueError, match="version 9 is not one this release knows"):
        rules_version(STATS_RULES + 1)


def test_a_trial_scored_by_this_release_or_a_newer_one_is_not_behind():
    assert changes_behind(trial_view(stats_rules=STATS_RULES, metrics=ROUGE)) == []
    assert changes_behind(trial_view(stats_rules=STATS_RULES + 1, metrics=ROUGE)) == []


def test_a_trial_is_behind_only_on_the_changes_since_its_version():
    words = [c.words for c in changes_behind(trial_view(stats_rules=5, metrics=BOTH))]
    assert len(words) == 1 and "expanded percentile" in words[0]  # McNemar came with version 5: not behind on it
    older = [c.words for c in changes_behind(trial_view(stats_rules=4, metrics=BOTH))]
    assert len(older) == 2 and "McNemar" in older[0]


def test_an_unrecorded_trial_is_behind_where_its_upgrade_could_not_recompute():
    behind = changes_behind(trial_view(stats_rules=None, metrics=BOTH))
    assert [c for c in behind if c.upgraded] == []  # the Wilson ends and [v, v] were recomputed by m015
    assert {"McNemar" in c.words or "expanded" in c.words for c in behind} == {True} and len(behind) == 2
    # task accuracy has had a Wilson interval under every version: nothing to say about a trial that shows only it
    accuracy_only = {"test": {"task_accuracy": Metric(0.6, 0.5, 0.7, 100)}}
    assert changes_behind(trial_view(stats_rules=None, metrics=accuracy_only)) == []


def test_only_the_metrics_asked_about_count():
    trial = trial_view(stats_rules=None, metrics=BOTH)
    assert [c.metrics for c in changes_behind(trial, ("regression_delta",))] == [frozenset({"regression_delta"})]
    assert changes_behind(trial, ("task_accuracy",)) == []


def test_an_added_interval_is_behind_only_where_the_trial_lacks_it():
    without = LabelReport(n=30, invalid=0, macro_f1=0.5, macro_labels=1, confusion={"a": {"a": 15}},
                          labels={"a": LabelRow(precision=0.5, recall=0.5, f1=0.5, support=30, predicted=30)})
    with_interval = dataclasses.replace(without, labels={"a": dataclasses.replace(
        without.labels["a"], f1_low=0.3, f1_high=0.7)})
    assert [c.metrics for c in changes_behind(trial_view(stats_rules=None, label_reports={"test": without}))] == [
        frozenset({LABEL_F1})]
    # an interval it has is behind only on how it is now computed (v7: drawn within each label; v8: each label's
    # count drawn), not as missing
    assert [c.metrics for c in changes_behind(trial_view(stats_rules=None, label_reports={"test": with_interval}))] \
        == [frozenset({"macro_f1", LABEL_F1})] * 2
    no_macro_interval = {"test": {"macro_f1": Metric(0.5, None, None, 30)}}
    behind = changes_behind(trial_view(stats_rules=None, metrics=no_macro_interval))
    assert [c.words for c in behind] == ["macro-F1 got an interval"]
    # one ROUGE-L value has no interval under this release's rules: no interval is not behind
    assert changes_behind(trial_view(stats_rules=None, metrics={"test": {"rouge_l": Metric(0.4, None, None, 1)}})) == []
