"""Every outcome of the verdict and of the gate, each on a small hand-built case whose answer is worked out here.

The tables are 2x2 counts of paired test outcomes (both right, only the fine-tuned trial right, only the opponent
right, both wrong); McNemar's exact p is 2 x the smaller binomial tail of the discordant pairs at 1/2.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from views import trial_view

from harness.analysis.decision import Outcome
from harness.analysis.gate import gate
from harness.analysis.verdict import verdict
from harness.core.config import GateConfig
from harness.core.label_report import INVALID, LabelReport, LabelRow
from harness.core.metric import Metric
from harness.core.records import HostedUsage, TrainingSummary


def table(both: int, a_only: int, b_only: int, neither: int) -> tuple[dict, dict]:
    a, b = [], []
    for count, (x, y) in ((both, (1, 1)), (a_only, (1, 0)), (b_only, (0, 1)), (neither, (0, 0))):
        a += [float(x)] * count
        b += [float(y)] * count
    return {f"e{i}": v for i, v in enumerate(a)}, {f"e{i}": v for i, v in enumerate(b)}


def two_sided(k: int, n: int) -> float:
    tail = sum(math.comb(n, j) for j in range(max(k, n - k), n + 1)) / 2**n
    return min(1.0, 2 * tail)


def tuned(number=1, objective=0.8, constraints=None, training=None, **fields):
    test = {"task_accuracy": Metric(0.8, 0.7, 0.9, 200), "format_compliance": Metric(1.0, 0.98, 1.0, 200),
            "hallucination_rate": Metric(0.01, 0.0, 0.03, 200), "regression_delta": Metric(-0.02, -0.05, 0.01, 100)}
    return trial_view(number, method="lora", objective=objective, constraints=constraints or {},
                      feasible=not any((v or 0) > 0 for v in (constraints or {}).values()),
                      training=training or TrainingSummary(250, "max_steps", 2000, 8, planned_steps=250),
                      metrics={"test": fields.pop("test", test)}, **fields)


def prompt(number=0, objective=0.6, hosted=False):
    usage = HostedUsage("mini", "https://x", "gpt", None, False, 10, 0, 0, 1, 1, None) if hosted else None
    return trial_view(number, method="api" if hosted else "prompt", trained=False, objective=objective,
                      device="hosted" if hosted else "cpu", hosted=usage,
                      metrics={"test": {"task_accuracy": Metric(0.6, 0.5, 0.7, 200)}})


def scores_for(by_trial: dict[str, dict]):
    return lambda trial, metric: by_trial[trial]


# -- the verdict ---------------------------------------------------------------------------------------------


def test_yes_when_better_beyond_noise_and_feasible():
    a, b = table(100, 14, 2, 84)  # p = 2 * P(X >= 14 | 16) = 0.0042
    result = verdict([prompt(), tuned()], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "YES" and result.ready
    assert result.decision.p_value == pytest.approx(two_sided(14, 16)) and result.decision.difference.low > 0
    assert "McNemar exact p = 0.00418" in result.text and "14 pairs only A right, 2 only B" in result.text


def test_one_discordant_pair_reads_in_the_singular():
    a, b = table(150, 1, 0, 49)
    result = verdict([prompt(), tuned()], scores_for({"s/1": a, "s/0": b}))
    assert "(1 pair only A right, 0 only B), 200 pairs" in result.text and "1 pairs" not in result.text


def test_not_shown_on_200_examples_with_4_discordant_pairs():
    a, b = table(150, 4, 0, 46)  # p = 2 / 16 = 0.125, interval includes 0
    result = verdict([prompt(), tuned()], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "NOT SHOWN" and not result.ready
    assert result.decision.p_value == pytest.approx(0.125)


def unbalanced(right: dict[str, int], wrong_as_routine: dict[str, int]) -> LabelReport:
    """A test label report of 40 tickets, 38 `routine`, 1 `urgent`, 1 `legal`: `right` of each answered with its own
    label, the rest answered `routine`."""
    support = {"routine": 38, "urgent": 1, "legal": 1}
    confusion = {true: {**({true: right[true]} if right[true] else {}),
                        **({"routine": wrong_as_routine[true]} if wrong_as_routine.get(true) else {})}
                 for true in support}
    rows = {name: LabelRow(None, None, None, count, 0) for name, count in support.items()}
    return LabelReport(40, 0, None, 3, rows, confusion)


def test_an_adapter_that_only_matches_always_answering_the_majority_label_is_not_shown_to_beat_prompting():
    """The adapter answered `routine` on every ticket: 95.0%, exactly the floor. It was announced as YES, +92.5 points,
    because the prompting arm scored 2.5%, below a constant answer."""
    collapsed = unbalanced({"routine": 38, "urgent": 0, "legal": 0}, {"urgent": 1, "legal": 1})
    a, b = table(1, 37, 0, 2)  # the adapter against a prompting arm right on 1 of 40
    straw = dataclasses.replace(prompt(), metrics={"test": {"task_accuracy": Metric(0.025, 0.004, 0.129, 40)}})
    result = verdict([straw, tuned(label_reports={"test": collapsed})], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "NOT SHOWN" and not result.ready
    assert "s/1 beat local prompting, but is not shown to beat always answering `routine`" in result.text
    assert "Against always answering `routine`, the commonest test label (38 of 40 test examples): +0.0 points" in \
        result.text
    assert "s/0 scored no better than always answering `routine` (95.0%), so it is a weak measure" in result.text
    # one that also learned the rare labels beats the floor on 16 tickets more it gets right: YES, floor stated
    learned = LabelReport(200, 0, None, 2, {"no": LabelRow(None, None, None, 180, 0),
                                            "yes": LabelRow(None, None, None, 20, 0)},
                          {"no": {"no": 180}, "yes": {"yes": 16, "no": 4}})
    a, b = table(100, 14, 2, 84)
    result = verdict([prompt(), tuned(label_reports={"test": learned})], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "YES" and "Against always answering `no`" in result.text and "16 pairs only A right" in \
        result.text


def test_the_floor_is_checked_below_a_majority_too_and_named_only_where_it_matters():
    """3 labels at 48/26/26 of 100: an adapter answering `gamma` on every input read YES, +22.0 points, against a
    prompting arm at 26%, since the floor was only checked above half."""
    support = {"gamma": 48, "alpha": 26, "beta": 26}
    rows = {name: LabelRow(None, None, None, count, 0) for name, count in support.items()}
    collapsed = LabelReport(100, 0, None, 3, rows, {true: {"gamma": count} for true, count in support.items()})
    a, b = table(26, 22, 0, 52)  # 48 right against 26: 22 pairs only the adapter right
    result = verdict([prompt(), tuned(label_reports={"test": collapsed})], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "NOT SHOWN" and not result.ready
    assert "Against always answering `gamma`, the commonest test label (48 of 100 test examples): +0.0 points" in \
        result.text
    # one that learned every label beats the floor far beyond noise, and below a majority the floor goes unsaid
    learned = LabelReport(100, 0, None, 3, rows, {true: {true: count} for true, count in support.items()})
    result = verdict([prompt(), tuned(label_reports={"test": learned})], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "YES" and "always answering" not in result.text


def test_an_opponent_prompted_below_a_teams_best_is_said_to_be_the_best_of_weaker_prompting():
    """Only a 0-shot arm ran, though the space offered similar shots: it was called "the real opponent", +66.7 points,
    with no caution."""
    a, b = table(100, 14, 2, 84)
    zero_shot = dataclasses.replace(prompt(), params={"method": "prompt", "shots": 0})
    result = verdict([zero_shot, tuned()], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "YES"  # against the arm that ran; the evidence says what it leaves unmeasured
    assert ("No local prompting trial retrieved shots for each input or searched its prompt, so s/0 (shots=0) is the "
            "best of weaker prompting, not the strongest a team would try") in result.text
    retrieved = dataclasses.replace(prompt(2, objective=0.5), params={"method": "prompt", "shots": 3,
                                                                     "shot_selection": "similar"})
    result = verdict([zero_shot, retrieved, tuned()], scores_for({"s/1": a, "s/0": b}))
    assert "weaker prompting" not in result.text  # similar shots were tried, and lost to 0 shots on dev
    searched = dataclasses.replace(prompt(2, objective=0.5), method="dspy", params={"method": "dspy"})
    assert "weaker prompting" not in verdict([zero_shot, searched, tuned()], scores_for({"s/1": a, "s/0": b})).text


def test_a_no_after_less_than_one_pass_over_the_train_examples_says_it_is_about_that_budget():
    """"NO - local prompting beat fine-tuning", -55 points, for an adapter that saw 10 steps of 8 of 300 e-mails: a
    boss reads "fine-tuning loses"."""
    a, b = table(9, 2, 120, 69)
    short = tuned(training=TrainingSummary(10, "max_steps", 300, 8, planned_steps=10))
    result = verdict([prompt(), short], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "NO"
    assert ("s/1 trained 10 steps of 8 examples, 0.3 passes over its 300 train examples: this says fine-tuning did "
            "not win at this budget, not that it cannot") in result.text
    full = tuned(training=TrainingSummary(250, "max_steps", 300, 8, planned_steps=250))
    assert "passes over" not in verdict([prompt(), full], scores_for({"s/1": a, "s/0": b})).text


def test_the_gates_constraint_rule_names_what_the_sweep_did_not_measure():
    """It read "[pass] ... format, hallucination and forgetting within the experiment's limits" two lines above
    "[FAIL] forgetting: not measured"."""
    from harness.analysis.gate import _feasible_rule

    unmeasured = tuned(constraints={"format_compliance": -0.1, "hallucination_rate": -0.05, "regression_delta": None})
    assert _feasible_rule(unmeasured).detail == ("feasible on dev (format and hallucination within the experiment's "
                                                 "limits; forgetting not measured)")
    measured = tuned(constraints={"format_compliance": -0.1, "hallucination_rate": -0.05, "regression_delta": -0.01})
    assert _feasible_rule(measured).detail == ("feasible on dev (format, hallucination and forgetting within the "
                                               "experiment's limits)")


def test_not_ready_when_better_but_a_constraint_breaks():
    a, b = table(100, 14, 2, 84)
    result = verdict([prompt(), tuned(constraints={"hallucination_rate": 0.04})], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "NOT READY" and "breaks hallucination_rate" in result.text and not result.ready


def test_a_hallucination_constraint_with_no_compliant_output_says_why_it_broke():
    a, b = table(100, 14, 2, 84)
    dev = {"hallucination_rate": Metric(None, None, None, 0)}  # counted over compliant outputs: none complied
    broken = dataclasses.replace(tuned(constraints={"hallucination_rate": 1.0}),
                                 metrics={"test": tuned().metrics["test"], "dev": dev})
    result = verdict([prompt(), broken], scores_for({"s/1": a, "s/0": b}))
    assert "hallucination_rate on dev (no compliant output to check, counted as broken)" in result.text


def test_no_when_the_opponent_is_better_beyond_noise():
    a, b = table(100, 2, 14, 84)
    result = verdict([prompt(), tuned()], scores_for({"s/1": a, "s/0": b}))
    assert result.head == "NO" and "local prompting beat fine-tuning" in result.text


def test_no_verdict_without_both_sides_or_with_a_cut_short_trial():
    assert verdict([prompt()], scores_for({})).head == "No verdict"
    assert "no completed fine-tuned trial" in verdict([prompt()], scores_for({})).text
    assert "no completed prompting trial" in verdict([tuned()], scores_for({})).text
    cut = tuned(training=TrainingSummary(13, "time budget", 2000, 8, planned_steps=250))
    result = verdict([prompt(), cut], scores_for({}))
    assert result.head == "No verdict" and result.decision is None
    assert "stopped short" in result.text and "13 of 250 steps" in result.text
    a, b = table(100, 14, 2, 84)
    fallback = verdict([prompt(), cut, tuned(number=2, objective=0.5)], scores_for({"s/2": a, "s/0": b}))
    assert fallback.finetuned == "s/2"  # the under-trained trial never stands for fine-tuning, however it ranks


def test_the_verdict_decides_on_the_objective_metric_in_its_direction():
    """A study that minimises hallucination: fine-tuning wins when it hallucinates less, whatever accuracy says."""
    less, more = table(0, 0, 20, 180)  # per-example hallucination flags: the tuned trial never, prompting 20 times
    result = verdict([prompt(objective=0.1), tuned(objective=0.0)], scores_for({"s/1": less, "s/0": more}),
                     metric="hallucination_rate", higher_is_better=False)
    assert result.head == "YES" and result.decision.metric == "hallucination_rate"
    assert result.decision.difference.value == pytest.approx(-0.1)


def test_the_real_opponent_is_the_stronger_arm_on_dev():
    a, b_local = table(100, 14, 2, 84)
    b_hosted = {**a, "e0": 0.0, "e1": 0.0, "e2": 0.0, "e199": 1.0, "e198": 1.0}  # 3 pairs only A, 2 only hosted
    trials = [prompt(0, objective=0.6), prompt(2, objective=0.8, hosted=True), tuned()]
    result = verdict(trials, scores_for({"s/1": a, "s/0": b_local, "s/2": b_hosted}))
    assert result.prompting == "s/2" and result.opponent_kind == "hosted" and result.head == "NOT SHOWN"
    assert "Against the best local prompting arm" in result.text


def test_between_prompting_arms_tied_on_dev_the_opponent_is_the_one_that_spends_fewer_tokens():
    """Two prompting arms equal on dev: a team serves the cheaper, and payback prices against the opponent. The first
    listed had been taken, a 3-shot arm, so payback read a saving that was only its longer prompt."""
    from harness.core.records import Throughput

    def arm(number: int, prompt_tokens: int):
        dev = Throughput(40, 2.0, 8, prompt_tokens * 40, 7 * 40)
        return dataclasses.replace(prompt(number, objective=0.6), throughput={"dev": dev})

    a, b = table(100, 14, 2, 84)
    for order in ([arm(0, 213), arm(2, 32)], [arm(2, 32), arm(0, 213)]):
        result = verdict([*order, tuned()], scores_for({"s/1": a, "s/0": b, "s/2": b}))
        assert result.prompting == "s/2"
    better = dataclasses.replace(arm(0, 213), objective=0.61)  # the cost breaks ties only
    assert verdict([better, arm(2, 32), tuned()], scores_for({"s/1": a, "s/0": b, "s/2": b})).prompting == "s/0"


def test_the_verdict_says_when_its_opponent_breaks_the_format_or_a_hosted_arm_failed():
    """A hosted server that ignored the JSON format scored 0% format and stood as the real opponent; another study's
    hosted arm failed, and the verdict read "NO - local prompting beat fine-tuning" without a word of it."""
    a, b = table(100, 14, 2, 84)
    broken = dataclasses.replace(prompt(2, objective=0.8, hosted=True), constraints={"format_compliance": 0.95},
                                 metrics={"dev": {"format_compliance": Metric(0.0, 0.0, 0.16, 20)}})
    result = verdict([broken, tuned()], scores_for({"s/1": a, "s/2": b}))
    assert result.prompting == "s/2" and result.head == "YES"
    assert "s/2 itself breaks format_compliance on dev (0.0% [0.0, 16.0] n=20), so it is a weak measure of what " \
           "hosted prompting can do here." in result.text
    failed = dataclasses.replace(prompt(2, hosted=True), status="failed")
    result = verdict([prompt(), failed, tuned()], scores_for({"s/1": a, "s/0": b}))
    assert result.prompting == "s/0" and "The hosted arm (s/2) failed, so hosted prompting was not measured" in \
        result.text
    assert "weak measure" not in verdict([prompt(), tuned()], scores_for({"s/1": a, "s/0": b})).text


# -- the gate ------------------------------------------------------------------------------------------------


CONFIG = GateConfig(margin=0.0, min_format_compliance=0.95, max_hallucination_rate=0.05, max_regression_drop=0.05)


def run(candidate, a, b, config=CONFIG, earlier=0):
    return gate(candidate, prompt(), "prompting", config, a, b, "task_accuracy", True, "sha", earlier)


def rules(result) -> dict[str, bool]:
    return {r.name: r.passed for r in result.rules}


def test_gate_passes_a_better_feasible_fully_trained_adapter():
    result = run(tuned(), *table(100, 14, 2, 84))
    assert result.passed and all(rules(result).values())
    assert "earlier looks: no other candidate was gated on this test subset" in result.text()


def test_gate_refuses_noise_and_accepts_it_only_within_a_margin():
    a, b = table(180, 3, 3, 14)  # equal accuracy on 200: not better; interval about [-4.6, +4.6] points
    assert rules(run(tuned(), a, b))["task_accuracy"] is False
    assert rules(run(tuned(), a, b, GateConfig(margin=0.05)))["task_accuracy"] is True
    assert rules(run(tuned(), a, b, GateConfig(margin=0.02)))["task_accuracy"] is False


def test_gate_reads_forgetting_as_the_sweep_does():
    """-10 points [-16, -4] against a 5-point limit: the old rule (whole interval beyond) passed it; now it fails."""
    test = {"task_accuracy": Metric(0.8, 0.7, 0.9, 200), "format_compliance": Metric(1.0, 0.98, 1.0, 200),
            "hallucination_rate": Metric(0.01, 0.0, 0.03, 200), "regression_delta": Metric(-0.10, -0.16, -0.04, 100)}
    result = run(tuned(test=test), *table(100, 14, 2, 84))
    assert rules(result)["forgetting"] is False and "beyond the limit of -5.0" in result.text()
    within = dict(test, regression_delta=Metric(-0.04, -0.10, 0.02, 100))  # point within, interval beyond
    passed = run(tuned(test=within), *table(100, 14, 2, 84))
    assert rules(passed)["forgetting"] is True  # and said to rest on its estimate, as a break is
    assert "its interval reaches past the limit, so it is met at its estimate only" in passed.text()
    clear = dict(test, regression_delta=Metric(0.01, -0.02, 0.04, 400))
    assert "estimate only" not in run(tuned(test=clear), *table(100, 14, 2, 84)).text()


def test_gate_refuses_what_the_sweep_called_infeasible_and_what_was_cut_short():
    infeasible = run(tuned(constraints={"regression_delta": 0.03}), *table(100, 14, 2, 84))
    assert rules(infeasible)["sweep constraints"] is False and "regression_delta" in infeasible.text()
    cut = run(tuned(training=TrainingSummary(13, "time budget", 2000, 8, planned_steps=250)), *table(100, 14, 2, 84))
    assert rules(cut)["trained in full"] is False and "13 of 250 steps" in cut.text()


def test_gate_fails_format_and_hallucination_thresholds_and_counts_earlier_looks():
    test = {"task_accuracy": Metric(0.8, 0.7, 0.9, 200), "format_compliance": Metric(0.90, 0.85, 0.94, 200),
            "hallucination_rate": Metric(0.08, 0.05, 0.12, 200), "regression_delta": Metric(0.0, -0.03, 0.03, 100)}
    result = run(tuned(test=test), *table(100, 14, 2, 84), earlier=3)
    assert rules(result)["format compliance"] is False and rules(result)["hallucination"] is False
    assert "3 other candidate(s) were gated on this test subset before (against any reference" in result.text()


def test_gate_counts_the_candidates_own_earlier_gates_as_looks():
    result = gate(tuned(), prompt(), "prompting", CONFIG, *table(100, 14, 2, 84), "task_accuracy", True, "sha",
                  repeated=2)
    assert "no other candidate was gated" in result.text() and "itself was gated on it 2 time(s) before" in \
        result.text()
    assert "itself" not in run(tuned(), *table(100, 14, 2, 84)).text()


def test_an_adapter_events_gate_reads_passed_failed_or_overridden_in_the_cli_and_the_dashboard():
    from datetime import datetime, timezone

    from harness.analysis.report import history_table
    from harness.core.records import AdapterEvent

    rules = [{"name": "better than production", "passed": False, "detail": "+1.0 points, not shown"}]
    at = datetime(2026, 12, 6, tzinfo=timezone.utc)
    events = [AdapterEvent("s/1", "t", "staging", "candidate", "promote", "ana", gate={"passed": True, "rules": []},
                           at=at),
              AdapterEvent("s/2", "t", "staging", "candidate", "promote", "ana", gate={"passed": False, "rules": []},
                           at=at),
              AdapterEvent("s/3", "t", "production", "staging", "promote", "ana", note="pilot", forced=True,
                           gate={"passed": False, "rules": rules}, at=at),
              AdapterEvent("s/3", "t", "retired", "production", "withdraw", "ana", at=at)]
    assert [e.gate_outcome for e in events] == ["passed", "failed", "failed, overridden", None]
    assert events[2].gate_rules == rules and events[3].gate_rules == []
    assert list(history_table(events).columns[-1].cells) == ["passed", "failed", "FAILED, overridden", "-"]


def test_macro_f1_as_the_objective_is_compared_on_labels_resampled_together():
    """macro_f1 has no per-example value: the verdict read "No verdict ... no shared example has a macro_f1 value",
    though the sweep chose on it. Both arms' answers are resampled together, within each true label."""
    from harness.analysis.decision import compare_macro_f1

    truth = ["routine"] * 60 + ["urgent"] * 12 + ["legal"] * 8
    learned = {f"e{i}": (t, t if i % 10 else "routine") for i, t in enumerate(truth)}  # 1 in 10 missed
    collapsed = {f"e{i}": (t, "routine") for i, t in enumerate(truth)}
    decision = compare_macro_f1(learned, collapsed)
    assert decision.test == "paired-label-bootstrap" and decision.outcome is Outcome.BETTER
    assert decision.b == pytest.approx((2 * 60 / 140 + 0 + 0) / 3) and decision.difference.low > 0
    assert compare_macro_f1(learned, learned).test == "none"  # no answer differs: no test can show a difference

    def labels(trial: str) -> dict:
        return {"s/1": learned, "s/0": collapsed}[trial]

    def no_values(trial: str, metric: str) -> dict:
        raise AssertionError("macro_f1 is not read example by example")

    tuned_f1 = tuned(test={"macro_f1": Metric(decision.a, None, None, 80)})
    opponent = dataclasses.replace(prompt(), metrics={"test": {"macro_f1": Metric(decision.b, None, None, 80)}})
    result = verdict([opponent, tuned_f1], no_values, "macro_f1", True, labels)
    assert result.head == "YES" and "paired bootstrap of macro-F1, within each true label" in result.text
    assert "80 pairs" in result.text
    gone = verdict([opponent, tuned_f1], no_values, "macro_f1", True, None)  # the suite folder moved away
    assert gone.head == "No verdict" and "the study's suite folder is not at hand" in gone.text


def test_answered_labels_parse_stored_answers_as_scoring_does():
    from harness.data.contract import OutputContract
    from harness.evaluation.labels import answered_labels

    contract = OutputContract(kind="label", key="intent", labels=("card_lost", "refund"))
    got = answered_labels([("test:1", '{"intent": "refund"}', '{"intent": " REFUND "}'),
                           ("test:2", '{"intent": "card_lost"}', "no idea")], contract)
    assert got == {"test:1": ("refund", "refund"), "test:2": ("card_lost", INVALID)}


def test_the_gate_refuses_an_adapter_not_shown_to_beat_the_constant_answer():
    """The verdict read NOT SHOWN for an adapter answering `gamma` on every input of a 48/26/26 test set; the gate
    passed it into production against a prompting arm at 26%."""
    support = {"gamma": 48, "alpha": 26, "beta": 26}
    rows = {name: LabelRow(None, None, None, count, 0) for name, count in support.items()}
    collapsed = LabelReport(100, 0, None, 3, rows, {true: {"gamma": count} for true, count in support.items()})
    a, b = table(26, 22, 0, 52)
    result = gate(tuned(label_reports={"test": collapsed}), prompt(), "prompting", CONFIG, a, b, "task_accuracy", True,
                  "sha")
    assert rules(result)["task_accuracy"] and not rules(result)["beats the constant answer"] and not result.passed
    learned = LabelReport(100, 0, None, 3, rows, {true: {true: count} for true, count in support.items()})
    assert rules(gate(tuned(label_reports={"test": learned}), prompt(), "prompting", CONFIG, a, b, "task_accuracy",
                      True, "sha"))["beats the constant answer"]


def test_the_gate_compares_a_macro_f1_objective_on_the_answers_labels():
    """A study chosen on macro_f1 was gated per example, where macro-F1 has no value: "not decided", always."""
    truth = ["routine"] * 60 + ["urgent"] * 12 + ["legal"] * 8
    learned = {f"e{i}": (t, t if i % 10 else "routine") for i, t in enumerate(truth)}
    collapsed = {f"e{i}": (t, "routine") for i, t in enumerate(truth)}
    result = gate(tuned(), prompt(), "prompting", CONFIG, {}, {}, "macro_f1", True, "sha", labels=(learned, collapsed))
    assert rules(result)["macro_f1"] and result.decision.test == "paired-label-bootstrap"
    assert not rules(gate(tuned(), prompt(), "prompting", CONFIG, {}, {}, "macro_f1", True, "sha",
                          labels=(collapsed, learned)))["macro_f1"]
    unread = gate(tuned(), prompt(), "prompting", CONFIG, {}, {}, "macro_f1", True, "sha")  # no suite at hand
    assert not rules(unread)["macro_f1"] and "suite folder" in unread.decision.why


def test_payback_weighs_a_macro_f1_bar_on_both_sides_labels():
    """Payback's quality bar always failed a macro_f1 study ("macro_f1 cannot be weighed: no shared example has a
    macro_f1 value"), beside a verdict of YES by +78 points."""
    from harness.analysis.payback import Baseline, QualityBar, check_quality

    truth = ["routine"] * 60 + ["urgent"] * 12 + ["legal"] * 8
    learned = {f"e{i}": (t, t if i % 10 else "routine") for i, t in enumerate(truth)}
    collapsed = {f"e{i}": (t, "routine") for i, t in enumerate(truth)}
    baseline = Baseline("s/0", "trial", 0.001, {}, "measured in trial s/0", scores={"e0": None})
    bar = QualityBar(metric="macro_f1", margin=0.02)
    passed = check_quality(tuned(), {}, baseline, bar, True, labels=(learned, collapsed))
    assert passed.passes and passed.decision.test == "paired-label-bootstrap"
    assert not check_quality(tuned(), {}, baseline, bar, True, labels=(collapsed, learned)).passes
    assert "cannot be weighed" in check_quality(tuned(), {}, baseline, bar, True).reason  # no labels at hand


def test_the_gate_says_when_the_two_were_scored_under_other_suite_set_ups():
    """A new study after suite.yaml's instruction and scorers were edited, still 1.0.0, was promoted over production
    with no word of it; compare warned about the same pair."""
    other = tuned(provenance={"data": {"suite_setup_sha256": "a" * 64}})
    reference = prompt()
    reference = reference.__class__(**{**reference.__dict__, "provenance": {"data": {"suite_setup_sha256": "b" * 64}}})
    result = gate(other, reference, "prompting", CONFIG, *table(100, 14, 2, 84), "task_accuracy", True, "sha")
    assert "note: s/1 and s/0 were scored under suite set-ups that differ" in result.text()
    assert "note:" not in run(tuned(), *table(100, 14, 2, 84)).text()  # unrecorded or the same: nothing to say


def test_payback_bar_requires_beating_the_constant_answer_as_the_verdict_and_gate_do():
    """An adapter at 25% on a test set of 40% `green` was "not worse" than a prompting arm that gave the same answers,
    so payback said PAYS BACK one line under the verdict's NOT SHOWN; the gate had refused it below the floor."""
    from harness.analysis.payback import Baseline, QualityBar, check_quality

    support = {"green": 24, "red": 18, "blue": 18}
    rows = {name: LabelRow(None, None, None, count, 0) for name, count in support.items()}
    right = {"green": 5, "red": 5, "blue": 5}  # 15 of 60 right, each miss answered with the next colour
    confusion = {true: {true: right[true], {"green": "red", "red": "blue", "blue": "green"}[true]:
                        count - right[true]} for true, count in support.items()}
    weak = tuned(label_reports={"test": LabelReport(60, 0, None, 3, rows, confusion)},
                 test={"task_accuracy": Metric(0.25, 0.158, 0.372, 60)})
    same, _ = table(15, 0, 0, 45)
    baseline = Baseline("s/0", "trial", 0.001, {}, "measured in trial s/0", scores=dict(same))
    check = check_quality(weak, same, baseline, QualityBar(margin=0.07), True)
    assert check.decision.outcome is Outcome.NOT_WORSE  # against the baseline alone it would pass
    assert not check.passes and check.floor is not None and not check.floor.beaten
    assert "it is not shown to beat always answering `green` (24 of 60 test examples), -15.0 points" in check.reason
    assert "not worth serving at any price" in check.reason
    assert "also better than always answering its commonest test label" in check.rule
    # one that learned every label beats the floor, and the bar reads the baseline as before
    learned = tuned(label_reports={"test": LabelReport(60, 0, None, 3, rows, {t: {t: n} for t, n in support.items()})})
    good, worse = table(15, 45, 0, 0)
    passed = check_quality(learned, good, Baseline("s/0", "trial", 0.001, {}, "measured", scores=dict(worse)),
                           QualityBar(margin=0.02), True)
    assert passed.passes and passed.floor is not None and passed.floor.beaten


def test_every_decision_says_its_margin_and_what_its_p_value_tests():
    """The gate never printed its margin, and `compare --margin 0.07` printed "p = 1 ... not worse by more than the
    7.0-point margin", which read as a contradiction: McNemar's p tests no difference; the margin reads the interval."""
    a, b = table(150, 0, 0, 50)
    assert "thresholds: margin 0 (better than the reference, beyond noise)" in run(tuned(), a, b).text()
    wide = run(tuned(), a, b, dataclasses.replace(CONFIG, margin=0.03)).text()
    assert "thresholds: margin 3.0 points (not worse by more than it)" in wide
    assert "McNemar exact p = 1 of no difference" in wide and "not worse by more than the 3.0-point margin" in wide
    assert "of no difference" not in run(tuned(), a, b).text()  # without a margin, p tests what the outcome reads

