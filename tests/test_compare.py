"""`harness compare`: pairing on example_id, hand-checked McNemar counts and p, the decision rule's readings, errors
a lead can act on."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from harness.analysis.compare import (
    compare_trials,
    comparison_json,
    comparison_table,
    comparison_text,
    disagreement_table,
)
from harness.core.errors import HarnessError
from harness.core.records import ExampleRow, MetricRow, TrialRecord, trial_id
from harness.evaluation.inference import mcnemar_exact
from harness.store.database import Store

# 40 test examples: both right 0-19, only B right 20-27 (b01 = 8), only A right 28-29 (b10 = 2), both wrong 30-39.
N = 40
A_RIGHT = [1.0] * 20 + [0.0] * 8 + [1.0] * 2 + [0.0] * 10
B_RIGHT = [1.0] * 20 + [1.0] * 8 + [0.0] * 2 + [0.0] * 10
# hallucination_rate is None for non-compliant outputs: A has none on 0-3, B on 2-5, so 34 pairs remain.
A_HALLU = [None] * 4 + [0.0, 1.0] * 18
B_HALLU = [0.0, 0.0, None, None, None, None] + [0.0] * 34
F1_A = [0.5] * N
F1_B = [0.25] * N


def ex_id(i: int) -> str:
    return f"t{i:02d}"


def rows(split, right, hallu=None, f1=None, ids=None, tag="a", extra=None):
    out = []
    for k, i in enumerate(ids if ids is not None else range(len(right))):
        scores = {"format_compliance": 1.0, "task_accuracy": right[k]}
        if hallu is not None:
            scores["hallucination_rate"] = hallu[k]
        if f1 is not None:
            scores["field_f1"] = f1[k]
        scores.update(extra or {})
        out.append(ExampleRow(split, ex_id(i), f"input {i} [x]", '{"intent": "x"}', f"{tag} says [{i}]",
                              scores=scores))  # fmt: skip
    return out


def record(number, examples, status="complete", trained=True, regression=(-0.02, -0.09, 0.05, 100)):
    n_reg = regression[3] if trained else 0
    reg = regression if trained else (None, None, None, 0)
    return TrialRecord(
        id=trial_id("s", number), study="s", number=number, run_id="r", method="lora" if trained else "prompt",
        params={"r": 8} if trained else {"shots": 3}, status=status, trained=trained, feasible=True,
        provenance={"data": {"suite": "ticket-triage", "suite_version": "1.0.0"}},
        metrics=[MetricRow(split, "regression_delta", reg[0], reg[1], reg[2], n_reg) for split in ("dev", "test")],
        examples=examples,
    )  # fmt: skip


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "h.duckdb")
    dev_a = rows("dev", [1.0] * 5, ids=range(100, 105))
    dev_b = rows("dev", [0.0] * 5, ids=range(100, 105), tag="b")
    s.record_trial_result(record(0, rows("test", A_RIGHT, A_HALLU, F1_A, extra={"only_a": 1.0}) + dev_a))
    s.record_trial_result(record(1, rows("test", B_RIGHT, B_HALLU, F1_B, tag="b") + dev_b, trained=False))
    return s


def test_task_accuracy_is_paired_with_mcnemar_exact(store):
    c = compare_trials(store, "s/0", "s/1")
    acc = c.score("task_accuracy")
    assert (c.n_shared, c.only_a, c.only_b) == (N, 0, 0)
    assert [w for w in c.warnings if "micro average" not in w] == []
    assert acc.a == pytest.approx(22 / 40) and acc.b == pytest.approx(28 / 40)
    assert acc.difference.value == pytest.approx(-0.15) and acc.difference.n == N
    assert acc.test == "mcnemar-exact"
    assert (acc.a_only, acc.b_only) == (2, 8)
    assert acc.p_value == pytest.approx(0.109375)  # 2 * P(X <= 2), X ~ Bin(10, 0.5) = 2 * 56 / 1024
    exact = mcnemar_exact(2, 8, N)  # the interval inverts the same test, so it includes 0 as p >= 0.05 says
    assert (acc.difference.low, acc.difference.high) == (exact.low, exact.high) and exact.low < 0 < exact.high
    assert acc.higher_is_better is True and c.primary == "task_accuracy" and acc.adjusted_p is None


def test_missing_values_are_left_out_and_non_binary_scores_use_the_paired_bootstrap(store):
    c = compare_trials(store, "s/0", "s/1")
    assert [s.metric for s in c.scores] == ["task_accuracy", "format_compliance", "hallucination_rate", "field_f1"]
    hallu = c.score("hallucination_rate")
    # 0/1 once the pairs without a value are left out: the exact test, on the 34 pairs that remain
    assert hallu.test == "mcnemar-exact" and hallu.excluded == 6 and hallu.difference.n == 34
    assert (hallu.a_only, hallu.b_only) == (17, 0)
    assert hallu.a == pytest.approx(17 / 34) and hallu.b == 0.0  # over the 34 pairs where both have a value
    assert hallu.difference.value == pytest.approx(0.5) and hallu.difference.low > 0
    assert 0 < hallu.p_value < 0.01 and hallu.higher_is_better is False
    assert hallu.outcome == "worse" and hallu.adjusted_p <= 3 * hallu.p_value  # A hallucinates more: worse
    f1 = c.score("field_f1")
    assert f1.test == "paired-bootstrap" and f1.difference.value == pytest.approx(0.25)
    assert any(w.startswith("field_f1 is compared here as the mean of each example's value") and "micro average" in w
               for w in c.warnings)  # not show's pooled figure, and said so
    fmt = c.score("format_compliance")  # 0/1 and complete: exact test; identical, so no evidence at all
    assert (fmt.test, fmt.a_only, fmt.b_only, fmt.p_value) == ("mcnemar-exact", 0, 0, 1.0)
    assert c.score("only_a") is None  # scored for one trial only


def test_disagreements_list_both_outputs_in_example_order(store):
    c = compare_trials(store, "s/0", "s/1", max_disagreements=3)
    assert c.n_disagreements == 10
    assert [d.example_id for d in c.disagreements] == ["t20", "t21", "t22"]
    d = c.disagreements[0]
    assert (d.output_a, d.output_b, d.a_correct, d.b_correct) == ("a says [20]", "b says [20]", False, True)
    assert d.input == "input 20 [x]" and d.target == '{"intent": "x"}'
    assert len(compare_trials(store, "s/0", "s/1", max_disagreements=50).disagreements) == 10


def test_split_selects_examples(store):
    c = compare_trials(store, "s/0", "s/1", split="dev")
    acc = c.score("task_accuracy")
    assert c.n_shared == 5 and acc.difference.value == 1.0 and (acc.a_only, acc.b_only) == (5, 0)
    # 5 of 5 pairs one way is p = 0.0625 at best: too few for any test, which is said rather than run
    assert acc.test == "none" and "only 5 pairs: no test can show a difference" in acc.why


def test_json_shape(store):
    data = json.loads(comparison_json(compare_trials(store, "s/0", "s/1")))
    assert set(data) == {"a", "b", "split", "n_shared", "only_a", "only_b", "primary", "scores", "disagreements",
                         "n_disagreements", "warnings"}  # fmt: skip
    assert data["a"]["id"] == "s/0" and data["b"]["method"] == "prompt"
    assert data["a"]["regression_delta"] == {"value": -0.02, "low": -0.09, "high": 0.05, "n": 100}
    assert data["b"]["regression_delta"]["n"] == 0
    acc = data["scores"][0]
    assert acc["metric"] == "task_accuracy" and set(acc["difference"]) == {"value", "low", "high", "n"}
    assert acc["p_value"] == pytest.approx(0.109375) and acc["test"] == "mcnemar-exact"
    assert acc["outcome"] == "not shown"
    assert set(data["disagreements"][0]) == {"example_id", "input", "target", "output_a", "output_b",
                                             "a_correct", "b_correct"}  # fmt: skip


def test_text_and_tables(store):
    c = compare_trials(store, "s/0", "s/1")
    text = comparison_text(c)
    assert "55.0% and s/1 70.0%" in text and "-15.0 points" in text and "McNemar exact p = 0.109" in text
    assert "not distinguishable from noise" in text
    assert "hallucination_rate +50.0 points" in text and "Holm-adjusted over 3 scores" in text
    assert "s/1 not trained" in text
    console = Console(record=True, width=250)
    console.print(comparison_table(c))
    console.print(disagreement_table(c))  # outputs with [brackets] must print literally, not as markup
    out = console.export_text()
    assert "task_accuracy" in out and "mcnemar-exact: 2 A only, 8 B only" in out
    assert "a says [20]" in out and "-2.0 [-9.0, +5.0] points, n=100" in out


def test_clear_difference_reads_as_better(tmp_path):
    s = Store(tmp_path / "h.duckdb")
    s.record_trial_result(record(0, rows("test", [1.0] * 30 + [0.0] * 10)))
    s.record_trial_result(record(1, rows("test", [0.0] * 35 + [1.0] * 5, tag="b")))
    c = compare_trials(s, "s/0", "s/1")
    assert c.score("task_accuracy").p_value < 0.001
    assert "s/0 is better than s/1 on task_accuracy, beyond noise" in comparison_text(c)


def test_the_issues_case_reads_noise_not_borderline(tmp_path):
    """200 examples, 4 discordant pairs all for A: p = 0.125, and the interval agrees (no 'borderline')."""
    s = Store(tmp_path / "h.duckdb")
    s.record_trial_result(record(0, rows("test", [1.0] * 154 + [0.0] * 46)))
    s.record_trial_result(record(1, rows("test", [1.0] * 150 + [0.0] * 50, tag="b")))
    c = compare_trials(s, "s/0", "s/1")
    acc = c.decision
    assert acc.p_value == pytest.approx(0.125) and acc.difference.low < 0 < acc.difference.high
    assert "not distinguishable from noise" in comparison_text(c) and "borderline" not in comparison_text(c)


def test_different_example_sets_are_refused(tmp_path):
    s = Store(tmp_path / "h.duckdb")
    s.record_trial_result(record(0, rows("test", A_RIGHT)))
    s.record_trial_result(record(1, rows("test", B_RIGHT[:25], ids=range(25), tag="b")))  # a smaller test_limit
    with pytest.raises(HarnessError, match="different test subsets") as refused:
        compare_trials(s, "s/0", "s/1")
    assert "s/0 has 40 test examples and s/1 has 25, 25 shared" in str(refused.value)
    assert "data.test_limit" in str(refused.value)


def test_errors(store, tmp_path):
    with pytest.raises(HarnessError, match="no trial 's/9'"):
        compare_trials(store, "s/0", "s/9")
    with pytest.raises(HarnessError, match="two different trials"):
        compare_trials(store, "s/0", "s/0")
    store.record_trial_start(record(2, []))
    with pytest.raises(HarnessError, match="s/2 is running"):
        compare_trials(store, "s/0", "s/2")
    store.record_trial_result(record(3, rows("test", A_RIGHT), status="complete"))
    store.mark_trial_failed("s/3", "out of memory")
    with pytest.raises(HarnessError, match=r"s/3 is failed \(out of memory\)"):
        compare_trials(store, "s/3", "s/0")
    store.record_trial_result(record(4, rows("test", [1.0] * 5, ids=range(50, 55))))
    with pytest.raises(HarnessError, match="share no test examples"):
        compare_trials(store, "s/0", "s/4")
    with pytest.raises(HarnessError, match="share no regression examples"):
        compare_trials(store, "s/0", "s/1", split="regression")


def test_counts_of_one_read_in_the_singular(tmp_path):
    s = Store(tmp_path / "h.duckdb")
    s.record_trial_result(record(0, rows("test", [1.0, 0.0, 1.0, 1.0, 1.0, 1.0])))
    s.record_trial_result(record(1, rows("test", [0.0, 1.0, 1.0, 1.0, 1.0, 1.0], tag="b")))
    text = comparison_text(compare_trials(s, "s/0", "s/1"))
    assert "(1 pair only A right, 1 only B), 6 pairs" in text and "1 pairs" not in text
    one = Store(tmp_path / "one.duckdb")
    one.record_trial_result(record(0, rows("test", [1.0] * 7)))
    one.record_trial_result(record(1, rows("test", [0.0] + [1.0] * 6, tag="b")))
    assert "(1 pair only A right, 0 only B), 7 pairs" in comparison_text(compare_trials(one, "s/0", "s/1"))
    single = Store(tmp_path / "single.duckdb")
    single.record_trial_result(record(0, rows("test", [1.0])))
    single.record_trial_result(record(1, rows("test", [0.0], tag="b")))
    assert "only 1 pair: no test can show" in comparison_text(compare_trials(single, "s/0", "s/1"))


@pytest.mark.parametrize("margin", [5.0, 1.0, -0.5, float("nan")])
def test_a_margin_outside_0_to_1_is_refused(store, margin):
    with pytest.raises(HarnessError, match=r"a margin is a share of accuracy in \[0, 1\), e.g. 0.02 for 2 points"):
        compare_trials(store, "s/0", "s/1", margin=margin)


def test_an_under_trained_side_is_named_with_its_share(tmp_path):
    """The verdict and the gate refuse a trial its time cap cut short; a compare that used it must say so."""
    import dataclasses

    from harness.core.records import TrainingSummary

    s = Store(tmp_path / "h.duckdb")
    cut = dataclasses.replace(record(0, rows("test", A_RIGHT)),
                              training=TrainingSummary(13, "time budget", 80, 8, planned_steps=250))
    s.record_trial_result(cut)
    s.record_trial_result(record(1, rows("test", B_RIGHT, tag="b"), trained=False))
    (warning,) = compare_trials(s, "s/0", "s/1").warnings
    assert "s/0 is under-trained (13 of 250 steps, 5%)" in warning
    assert "the verdict and the gate do not use it" in warning


def test_a_label_suite_compares_macro_f1_and_decides_on_it_when_it_is_the_objective(tmp_path, toy_suite, capsys):
    """A study chosen on macro_f1 read "macro_f1 (the objective) has no per-example score ... not decided here" in
    compare, while the verdict and the gate compared it: both sides' answers are resampled together within each true
    label, as they do."""
    import json as _json

    from conftest import printed

    from harness.analysis.decision import compare_macro_f1
    from harness.cli import main
    from harness.core.records import StudyRecord

    store = Store(tmp_path / "harness.duckdb")
    store.record_study(StudyRecord(
        name="m", experiment_name="m", experiment={}, suite="toy-colours", suite_version="1.0.0",
        suite_path=str(toy_suite), model_name="tiny", model_sha256="abc", objective_metric="macro_f1", maximize=True))
    truth = ["red"] * 60 + ["green"] * 12 + ["blue"] * 8
    learned = [t if i % 10 else "red" for i, t in enumerate(truth)]
    collapsed = ["red"] * len(truth)

    def answers(number: int, said: list[str], trained: bool) -> TrialRecord:
        examples = [ExampleRow("test", f"test:{i}", f"item {i}", _json.dumps({"colour": t}),
                               _json.dumps({"colour": s}), scores={"task_accuracy": float(s == t)})
                    for i, (t, s) in enumerate(zip(truth, said))]
        return TrialRecord(id=trial_id("m", number), study="m", number=number, run_id="r", status="complete",
                           method="lora" if trained else "prompt", trained=trained, feasible=True, examples=examples)

    store.record_trial_result(answers(0, collapsed, False))
    store.record_trial_result(answers(1, learned, True))
    c = compare_trials(store, "m/1", "m/0")
    assert c.primary == "macro_f1" and c.decision.test == "paired-label-bootstrap"
    assert not any("not decided" in w for w in c.warnings)
    as_labels = {f"test:{i}": pair for i, pair in enumerate(zip(truth, learned))}
    constant = {f"test:{i}": pair for i, pair in enumerate(zip(truth, collapsed))}
    assert c.decision == compare_macro_f1(as_labels, constant)  # what the verdict and the gate decide on
    assert c.decision.outcome.value == "better" and c.score("task_accuracy") is not None
    assert main(["compare", "m/1", "m/0", "--db", str(tmp_path)]) == 0
    out = printed(capsys)
    assert "macro_f1 decides" in " ".join(out.split()) and "paired-label" in out


def test_macro_f1_left_out_for_want_of_the_suite_folder_is_said(tmp_path, toy_suite):
    """A results database copied without its suite folder lost compare's macro_f1 row and shrank its Holm family with
    no word, while the report still showed both trials' macro_f1."""
    import json as _json

    from harness.core.records import StudyRecord

    store = Store(tmp_path / "harness.duckdb")
    store.record_study(StudyRecord(
        name="m", experiment_name="m", experiment={}, suite="toy-colours", suite_version="1.0.0",
        suite_path=str(tmp_path / "moved-away"), model_name="tiny", model_sha256="abc",
        objective_metric="task_accuracy", maximize=True))
    truth = ["red"] * 30 + ["green"] * 10
    for number, said in ((0, ["red"] * 40), (1, truth)):
        examples = [ExampleRow("test", f"test:{i}", f"item {i}", _json.dumps({"colour": t}),
                               _json.dumps({"colour": s}), scores={"task_accuracy": float(s == t)})
                    for i, (t, s) in enumerate(zip(truth, said))]
        store.record_trial_result(TrialRecord(
            id=trial_id("m", number), study="m", number=number, run_id="r", status="complete", method="prompt",
            trained=False, feasible=True, examples=examples,
            metrics=[MetricRow("test", "macro_f1", 0.5 + number / 4, 0.4, 0.9, 40)]))
    c = compare_trials(store, "m/1", "m/0")
    assert c.score("macro_f1") is None
    assert any("macro_f1, which both trials were scored on, is not compared here" in w and "moved-away" in w
               for w in c.warnings)


def test_each_sides_value_carries_its_own_interval_where_it_scored_the_compared_examples(tmp_path):
    """compare printed `1.3 | 1.3 | +0.0 [-3.5, +3.5]`: the difference had its interval and n, each side a bare
    number, where every other command gives a number with its interval."""
    s = Store(tmp_path / "h.duckdb")
    a = record(0, rows("test", A_RIGHT))
    a.metrics.append(MetricRow("test", "task_accuracy", 0.55, 0.40, 0.69, 40))  # as scoring stored it, on the 40
    s.record_trial_result(a)
    b = record(1, rows("test", B_RIGHT, tag="b"), trained=False)
    b.metrics.append(MetricRow("test", "task_accuracy", 0.9, 0.8, 0.95, 80))  # scored on more than the shared 40
    s.record_trial_result(b)
    console = Console(record=True, width=250)
    console.print(comparison_table(compare_trials(s, "s/0", "s/1")))
    row = next(line for line in console.export_text().splitlines() if "task_accuracy (primary)" in line)
    assert "55.0 [40.0, 69.0]" in row  # its own interval, over the examples compared
    assert "70.0" in row and "90.0" not in row  # the other's stored figure is of other examples: the bare value
