"""label_report: a hand-checked confusion matrix, plus a cross-check against scikit-learn's conventions."""

import json
from collections import Counter

import numpy as np
import pytest

from harness.core.label_report import LabelReport, LabelRow
from harness.core.metric import Metric
from harness.data.contract import OutputContract, parse_output, parse_target
from harness.data.suites import Example, Suite
from harness.evaluation.labels import (
    INVALID,
    _draw_counts,
    _stratified_draws,
    label_bootstrap,
    label_report,
    macro_f1_metric,
    predicted_label,
    too_few_a_label,
)
from harness.evaluation.scorers import ScoredCase
from harness.evaluation.scoring import score_split
from harness.evaluation.stats import wilson_interval

LABELS = OutputContract(kind="label", key="intent", labels=("lost_card", "card_arrival", "age_limit", "top_up"))


def case(output: str, target: str, i: int = 0) -> ScoredCase:
    ref = json.dumps({"intent": target})
    return ScoredCase(Example(f"test:{i}", "x", ref), output, parse_output(output, LABELS), parse_target(ref, LABELS))


def out(label: str) -> str:
    return json.dumps({"intent": label})


# (output, true label) -> predicted
ROWS = [
    (out("card_arrival"), "card_arrival"),  # card_arrival
    (out("  CARD_Arrival "), "card_arrival"),  # card_arrival: case and whitespace folded
    (out("lost_card"), "card_arrival"),  # lost_card
    ("I think it is card_arrival", "card_arrival"),  # (invalid): no JSON
    (out("lost_card"), "lost_card"),  # lost_card
    (out("stolen_phone"), "lost_card"),  # (invalid): label outside the set
    (out("card_arrival"), "age_limit"),  # card_arrival
    ('{"intent": 3}', "age_limit"),  # (invalid): not a string
]
# hand count:
#   card_arrival: tp 2, fp 1 (age_limit row), fn 2 (lost_card, invalid) -> P 2/3, R 2/4, F1 4/7
#   lost_card:    tp 1, fp 1 (card_arrival row), fn 1 (invalid)        -> P 1/2, R 1/2, F1 1/2
#   age_limit:    tp 0, fp 0, fn 2 -> P None (never predicted), R 0, F1 0
#   top_up:       no support, never predicted -> all None, excluded from macro
#   invalid predictions lower recall but add no false positive: card_arrival's fp is 1, not 2


@pytest.fixture
def report():
    return label_report([case(o, t, i) for i, (o, t) in enumerate(ROWS)], LABELS)


def test_hand_checked_report(report):
    assert report.n == 8 and report.invalid == 3
    assert list(report.labels) == ["age_limit", "card_arrival", "lost_card", "top_up"]  # sorted
    ca, lc = report.labels["card_arrival"], report.labels["lost_card"]
    assert (ca.precision, ca.recall, ca.f1, ca.support, ca.predicted) == pytest.approx((2 / 3, 2 / 4, 4 / 7, 4, 3))
    assert (lc.precision, lc.recall, lc.f1, lc.support, lc.predicted) == pytest.approx((1 / 2, 1 / 2, 1 / 2, 2, 2))
    assert report.labels["age_limit"] == LabelRow(precision=None, recall=0.0, f1=0.0, support=2, predicted=0)
    assert report.labels["top_up"] == LabelRow(precision=None, recall=None, f1=None, support=0, predicted=0)
    # macro over the 3 supported labels; never-predicted age_limit counts as F1 0 (zero_division=0)
    assert report.macro_labels == 3 and report.macro_f1 == pytest.approx((4 / 7 + 1 / 2 + 0) / 3)
    assert report.confusion == {
        "age_limit": {"card_arrival": 1, INVALID: 1},
        "card_arrival": {"card_arrival": 2, "lost_card": 1, INVALID: 1},
        "lost_card": {"lost_card": 1, INVALID: 1},
    }
    assert list(report.confusion["card_arrival"])[-1] == INVALID  # invalid last in a row


def test_json_serialisable_and_deterministic(report):
    again = label_report([case(o, t, i) for i, (o, t) in enumerate(ROWS)], LABELS)
    assert json.dumps(report.to_json()) == json.dumps(again.to_json())
    assert LabelReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_predicted_label_folding():
    assert predicted_label(case(out("Lost_Card"), "lost_card"), LABELS) == "lost_card"
    assert predicted_label(case('```json\n{"intent": "top_up"}\n```', "top_up"), LABELS) == "top_up"
    assert predicted_label(case("", "top_up"), LABELS) == INVALID
    assert predicted_label(case('{"label": "top_up"}', "top_up"), LABELS) == INVALID  # wrong key


def test_empty_and_wrong_contract():
    empty = label_report([], LABELS)
    assert empty.n == 0 and empty.macro_f1 is None and empty.confusion == {}
    with pytest.raises(ValueError, match="label contract"):
        label_report([], OutputContract(kind="text"))


def test_matches_sklearn_zero_division_0(report):
    metrics = pytest.importorskip("sklearn.metrics")
    y_true = [t for _, t in ROWS]
    y_pred = [predicted_label(case(o, t), LABELS) for o, t in ROWS]
    supported = sorted(set(y_true))
    f1 = metrics.f1_score(y_true, y_pred, labels=supported, average="macro", zero_division=0)
    assert report.macro_f1 == pytest.approx(f1)
    p = metrics.precision_score(y_true, y_pred, labels=supported, average=None, zero_division=0)
    assert [report.labels[lab].precision or 0.0 for lab in supported] == pytest.approx(list(p))


def test_macro_f1_interval_brackets_the_value_and_is_seeded():
    cases = [case(o, t, i) for i, (o, t) in enumerate(ROWS * 5)]  # 20, 10 and 10 examples a label
    metric = macro_f1_metric(cases, LABELS, seed=0)
    assert metric.value == pytest.approx((4 / 7 + 1 / 2 + 0) / 3) and metric.n == 40
    assert 0.0 <= metric.low <= metric.value <= metric.high <= 1.0
    assert macro_f1_metric(cases, LABELS, seed=0) == metric
    few = macro_f1_metric(cases[:8], LABELS, seed=0)  # 4, 2 and 2 examples a label: too few to resample
    assert few.value == metric.value and few.low is None and few.high is None
    perfect = [case(out(t), t, i) for i, (_, t) in enumerate(ROWS)]
    # every answer right: the bootstrap has no spread, but 8 examples do not show certainty; the interval is the one
    # 8 right of 8 gets as a rate
    assert macro_f1_metric(perfect, LABELS) == Metric(1.0, *wilson_interval(8, 8), 8)
    assert macro_f1_metric(perfect, LABELS).low == pytest.approx(8 / (8 + 1.959964 ** 2))


def test_each_label_gets_an_f1_interval_from_the_same_bootstrap(report):
    cases = [case(o, t, i) for i, (o, t) in enumerate(ROWS)]
    macro, spans = label_bootstrap(cases, LABELS, seed=0)
    assert macro == macro_f1_metric(cases, LABELS, seed=0)  # one bootstrap: the macro interval is unchanged
    assert "top_up" not in spans  # no support, never predicted: no F1, so no interval
    for name in ("card_arrival", "lost_card"):
        low, high = spans[name]
        assert 0.0 <= low <= report.labels[name].f1 <= high <= 1.0 and low < high
    # age_limit: F1 0 in every draw that holds it; 2 examples decide it, so the interval is 0 of 2's, not [0, 0]
    assert spans["age_limit"] == pytest.approx(wilson_interval(0, 2))


def test_a_label_with_one_test_example_is_in_every_draw():
    """60 tickets, 55 `lost_card`, 4 `card_arrival`, 1 `age_limit`, every answer right but the `age_limit` one
    (answered `lost_card`): macro-F1 (0.991 + 1 + 0) / 3 = 0.664. Drawn over all examples, about a third of the draws
    missed that one ticket and averaged over two labels, so the interval read [0.655, 1.000]; drawn within each label,
    `age_limit` is in every draw, always wrong."""
    truth = ["lost_card"] * 55 + ["card_arrival"] * 4 + ["age_limit"]
    cases = [case(out(t if t != "age_limit" else "lost_card"), t, i) for i, t in enumerate(truth)]
    macro = macro_f1_metric(cases, LABELS, seed=0)
    assert macro.value == pytest.approx((2 * 55 / 111 + 1 + 0) / 3)
    # one of three labels has one example: its F1 is the same example's in every draw, so no interval holds 95%
    assert macro.low is None and macro.high is None
    assert "1 of 3 labels have 1 or 2" in too_few_a_label(Counter(truth).values())
    more = truth * 4  # 220, 16 and 4 examples: every label resampled, and the one wrong `age_limit` ticket with it
    macro = macro_f1_metric([case(out(t if t != "age_limit" else "lost_card"), t, i) for i, t in enumerate(more)],
                            LABELS, seed=0)
    assert macro.low <= macro.value <= macro.high < 0.7


def test_a_model_giving_one_label_everywhere_still_has_an_interval_of_the_label_shares():
    """100 examples at 48/26/26, every answer `lost_card`: with each label's count fixed in every draw, each draw
    scored the same and the interval read 21.6 [21.6, 21.6]. Drawing the counts as the plain bootstrap does, the
    label shares vary as another test set's would."""
    truth = ["lost_card"] * 48 + ["card_arrival"] * 26 + ["age_limit"] * 26
    cases = [case(out("lost_card"), t, i) for i, t in enumerate(truth)]
    macro, spans = label_bootstrap(cases, LABELS, seed=0)
    assert macro.value == pytest.approx(2 * 48 / 148 / 3)
    assert macro.low < macro.value - 0.01 and macro.high > macro.value + 0.01  # about [18, 24]: not [v, v]
    assert spans["lost_card"][0] < 2 * 48 / 148 < spans["lost_card"][1]
    # every label stays in every draw: a label of one example too
    one = ["lost_card"] * 59 + ["age_limit"]
    draws = _stratified_draws(np.array([t == "age_limit" for t in one], dtype=int), 0, 500)
    assert ((draws == 59).sum(axis=1) >= 1).all()


def test_a_label_right_every_time_is_not_certain():
    perfect = [case(out(t), t, i) for i, (_, t) in enumerate(ROWS)]
    _, spans = label_bootstrap(perfect, LABELS)
    assert spans["lost_card"] == pytest.approx(wilson_interval(2, 2))  # 2 of 2 right: F1 1.0 [34.2, 100]
    assert spans["card_arrival"] == pytest.approx(wilson_interval(4, 4))


def test_scored_split_stores_each_label_interval_beside_its_f1(tmp_path):
    examples = [Example(f"test:{i}", "x", json.dumps({"intent": t})) for i, (_, t) in enumerate(ROWS)]
    suite = Suite("s", "1", "classification", "Classify.", LABELS, {"test": tuple(examples)}, {}, tmp_path)
    scores = score_split(examples, [o for o, _ in ROWS], suite, seed=0)
    rows = scores.labels.labels
    _, spans = label_bootstrap([case(o, t, i) for i, (o, t) in enumerate(ROWS)], LABELS, seed=0)
    assert (rows["lost_card"].f1_low, rows["lost_card"].f1_high) == spans["lost_card"]
    assert rows["top_up"].f1_low is None and scores.metrics["macro_f1"].low is None  # 8 examples: too few a label
    stored = json.loads(json.dumps(scores.labels.to_json()))  # stored as JSON
    assert "f1_low" not in stored["labels"]["top_up"]
    assert (stored["labels"]["lost_card"]["f1_low"], stored["labels"]["lost_card"]["f1_high"]) == spans["lost_card"]


def _simulated_coverage(labels: int, per_label: int, test_sets: int) -> tuple[float, float]:
    """How often the macro-F1 interval, and the plain percentile interval of the same draws, hold the true macro-F1
    of a simulated classifier (each label's recall drawn from [40%, 95%], errors spread over the other labels)."""
    rng = np.random.default_rng(7)
    names = tuple(f"label_{i:03d}" for i in range(labels))
    contract = OutputContract(kind="label", key="intent", labels=names)
    parsed = [(out(n), parse_output(out(n), contract), parse_target(out(n), contract)) for n in names]
    recall = rng.uniform(0.4, 0.95, labels)

    def draw(per: int) -> tuple[np.ndarray, np.ndarray]:
        true = np.repeat(np.arange(labels), per)
        wrong = (true + rng.integers(1, labels, true.size)) % labels
        return true, np.where(rng.random(true.size) < recall[true], true, wrong)

    def macro(true: np.ndarray, pred: np.ndarray) -> float:
        support, predicted = np.bincount(true, minlength=labels), np.bincount(pred, minlength=labels)
        hits = np.bincount(true[true == pred], minlength=labels)
        return float((2 * hits / np.maximum(support + predicted, 1))[support > 0].mean())

    truth = macro(*draw(4000))
    held = plain = 0
    for k in range(test_sets):
        true, pred = draw(per_label)
        cases = [ScoredCase(Example(f"test:{i}", "x", parsed[t][0]), parsed[p][0], parsed[p][1], parsed[t][2])
                 for i, (t, p) in enumerate(zip(true, pred))]
        metric, _ = label_bootstrap(cases, contract, seed=k)
        held += metric.low <= truth <= metric.high
        draws = np.random.default_rng(k).integers(0, len(cases), size=(1000, len(cases)))
        support, predicted, hits = _draw_counts(true, pred, draws, labels)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(support > 0, 2 * hits / (support + predicted), 0.0)
        low, high = np.percentile(f1.sum(axis=1) / (support > 0).sum(axis=1), [2.5, 97.5])
        plain += low <= truth <= high
    return held / test_sets, plain / test_sets


def test_the_macro_f1_interval_holds_the_truth_with_few_examples_a_label():
    """Resampling pulls macro-F1's draws below the estimate when labels have a handful of examples: the plain
    percentile interval held the true macro-F1 9 times in 100 with 500 labels of 4 examples; centred, 84."""
    held, plain = _simulated_coverage(500, 4, 25)
    assert held >= 0.7 and plain <= 0.3, (held, plain)
    held, plain = _simulated_coverage(5, 40, 40)  # many examples a label: little to move, and still about 95%
    assert held >= 0.85 and plain >= 0.85, (held, plain)


def test_a_paired_macro_f1_comparison_with_too_few_examples_a_label_runs_no_test():
    """100 test messages over 56 labels, 27 of them once: the paired macro-F1 difference read -20.3 [-24.4, -12.8],
    p < 0.001, from draws that could not vary those labels."""
    from harness.analysis.decision import compare_macro_f1

    truth = [f"l{i}" for i in range(27)] + [f"m{i}" for i in range(29) for _ in range(2)]
    a = {f"e{i}": (t, t) for i, t in enumerate(truth)}
    b = {f"e{i}": (t, t if i % 2 else "l0") for i, t in enumerate(truth)}
    decision = compare_macro_f1(a, b)
    assert decision.test == "none" and decision.difference.value is None
    assert decision.a == pytest.approx(1.0) and "too few test examples a label" in decision.why


def test_the_prompt_quotes_labels_only_where_a_comma_or_quote_would_split_one():
    """`cash withdrawal, fee` was listed as `..., cash withdrawal, fee, ...`: two labels to a prompted model, which was
    then scored wrong for answering either. Plain labels keep the list the demo's numbers were measured with."""
    messy = OutputContract(kind="label", key="intent", labels=("card", "cash withdrawal, fee", "say \"hi\"",
                                                               "virement_non_reçu"))
    said = messy.describe()
    assert 'exactly one of: "card", "cash withdrawal, fee", "say \\"hi\\"", "virement_non_reçu".' in said
    assert 'e.g. {"intent": "card"}' in said
    assert "exactly one of: lost_card, card_arrival, age_limit, top_up." in LABELS.describe()
    french = OutputContract(kind="label", key="intent", labels=("virement_non_reçu", "carte"))
    assert '{"intent": "virement_non_reçu"}' in french.describe()  # not "\u00e7", which a model reads as six characters
