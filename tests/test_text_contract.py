"""The free-text contract (`kind: text`): final-answer parsing, numeric comparison and ROUGE-L, hand-checked."""

import pytest

from harness.core.errors import SuiteError
from harness.data.contract import OutputContract, parse_number, parse_output, parse_target
from harness.data.suites import Example
from harness.evaluation.scorers import ScoredCase, score_cases
from harness.evaluation.scorers.rouge import rouge_l

NUMERIC = OutputContract.from_dict({"kind": "text", "numeric": True}, "test")
WORDS = OutputContract.from_dict({"kind": "text"}, "test")
REF = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18"
NAMES = ["format_compliance", "hallucination_rate", "task_accuracy", "rouge_l"]


def make(output: str, target: str = REF, contract: OutputContract = NUMERIC) -> ScoredCase:
    return ScoredCase(Example("test:1", "q", target), output, parse_output(output, contract),
                      parse_target(target, contract))


def test_from_dict_defaults_and_round_trip():
    assert NUMERIC.answer_pattern == r"####\s*(.+)$" and NUMERIC.numeric and not WORDS.numeric
    assert OutputContract.from_dict(NUMERIC.to_dict(), "test") == NUMERIC
    assert "#### <number>" in NUMERIC.describe() and "reasoning" in NUMERIC.describe()
    custom = OutputContract.from_dict({"kind": "text", "answer_pattern": r"Answer: (\S+)"}, "test")
    assert "Answer: (\\S+)" in custom.describe()


@pytest.mark.parametrize("raw,fragment", [
    ({"kind": "text", "answer_pattern": "#### .+"}, "exactly one group"),
    ({"kind": "text", "answer_pattern": "(a)(b)"}, "exactly one group"),
    ({"kind": "text", "answer_pattern": "(unclosed"}, "not a valid regex"),
    ({"kind": "text", "numeric": "yes"}, "true or false"),
])
def test_bad_text_contract(raw, fragment):
    with pytest.raises(SuiteError, match=fragment):
        OutputContract.from_dict(raw, "suite.yaml")


def test_parse_output_splits_rationale_and_answer():
    parsed = parse_output("  Two plus two.\n#### 4\n", NUMERIC)
    assert parsed.compliant and parsed.strict and parsed.value == {"answer": "4", "rationale": "Two plus two."}
    run_on = parse_output("So 4.\n#### 4\n\nQuestion: next one?\n#### 7", NUMERIC)  # the first final line counts
    assert run_on.compliant and not run_on.strict and run_on.value["answer"] == "4"


@pytest.mark.parametrize("output,compliant,correct", [
    ("9 * 2 = 18\n#### 18", True, 1.0),
    ("#### 18.0", True, 1.0),  # 18.0 == 18
    ("#### $18", True, 1.0),
    ("#### 18.", True, 1.0),  # sentence-ending period
    ("#### 19", True, 0.0),
    ("9 * 2 = 18, so the answer is 18.", False, 0.0),  # no final line: non-compliant, and wrong
    ("#### eighteen", False, 0.0),  # numeric contract: the final answer must be a number
    ("#### 18 dollars", False, 0.0),
    ("", False, 0.0),
])
def test_numeric_final_answer(output, compliant, correct):
    c = make(output)
    assert c.parsed.compliant is compliant, c.parsed.error
    values, _ = score_cases([c], NUMERIC, ["format_compliance", "task_accuracy"])
    assert values == {"format_compliance": [1.0 if compliant else 0.0], "task_accuracy": [correct]}


def test_commas_and_dollars():
    ref = "Total 1,000 + 200 = $1,200.\n#### 1,200"
    assert make("#### 1200", ref).parsed.compliant
    assert score_cases([make("#### $1,200", ref), make("#### 1200", ref), make("#### 120", ref)], NUMERIC,
                       ["task_accuracy"])[0]["task_accuracy"] == [1.0, 1.0, 0.0]
    assert parse_number("$1,200") == parse_number("1200") == parse_number("1200.00")
    assert parse_number("-3.5") == parse_number("-3.50") and parse_number("1/2") is None


def test_non_numeric_answers_fold_case_and_whitespace():
    ref = "The capital is Paris.\n#### Paris"
    cases = [make("#### paris ", ref, WORDS), make("#### Lyon", ref, WORDS)]
    assert score_cases(cases, WORDS, ["task_accuracy"])[0]["task_accuracy"] == [1.0, 0.0]


@pytest.mark.parametrize("ref,fragment", [
    ("She makes 18 dollars.", "no final answer"),
    ("#### 18\nand then some", "text after its final answer"),
    ("#### eighteen", "not a number"),
])
def test_parse_target_rejects(ref, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_target(ref, NUMERIC)


def test_rouge_l_identical_and_disjoint():
    assert rouge_l("She makes 9 * 2 = $18.", "She makes 9 * 2 = $18.") == 1.0
    assert rouge_l("apples oranges", "trains buses") == 0.0
    assert rouge_l("", "anything") == 0.0
    same = make("She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 19")  # wrong answer, same steps
    other = make("Bananas are yellow.\n#### 18")
    bare = make("She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.")  # no final line: whole output scored
    values, metrics = score_cases([same, other, bare], NUMERIC, NAMES)
    assert values["rouge_l"] == [1.0, 0.0, 1.0]
    assert values["task_accuracy"] == [0.0, 1.0, 0.0] and values["format_compliance"] == [1.0, 1.0, 0.0]
    assert values["hallucination_rate"] == [None] * 3  # not defined for free text
    assert metrics["hallucination_rate"].value is None and metrics["hallucination_rate"].n == 0
    m = metrics["rouge_l"]
    assert m.value == pytest.approx(2 / 3) and m.n == 3 and 0.0 <= m.low <= m.value <= m.high <= 1.0
    assert score_cases([same, other, bare], NUMERIC, ["rouge_l"])[1]["rouge_l"] == m  # seeded bootstrap


def test_rouge_l_stems_and_ignores_case():
    assert rouge_l("He sells EGGS", "he selling eggs") == 1.0  # Porter stems sells/selling to "sell"
    assert rouge_l("He sells eggs", "he sold eggs") == pytest.approx(2 / 3)  # irregular forms are not stemmed


def test_bundled_math_word_problems():
    from harness.data.suites import load_suite, suite_stats

    suite = load_suite("math-word-problems")  # validates every reference against the text contract
    assert suite.contract == NUMERIC and suite.scorers == ("format_compliance", "task_accuracy", "rouge_l")
    assert {k: len(v) for k, v in suite.splits.items()} == {"train": 1000, "dev": 119, "test": 200}
    assert not any("<<" in ex.target for split in suite.splits.values() for ex in split)  # annotations stripped
    assert suite_stats(suite)["test"]["n"] == 200
    refs = [make(ex.target, ex.target) for ex in suite.splits["dev"]]  # a reference scores perfectly on itself
    _, metrics = score_cases(refs, NUMERIC, ["format_compliance", "task_accuracy", "rouge_l"])
    assert all(metrics[name].value == 1.0 for name in ("format_compliance", "task_accuracy", "rouge_l"))
