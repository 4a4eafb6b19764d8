"""A data scientist whose task is not classification: extraction into JSON fields, free text scored by ROUGE or
exact match, short numeric answers; data from Parquet, nested JSONL, Windows CSV exports, in many scripts. Each test
builds a small real file or scores real outputs by hand-checked numbers."""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import printed

from harness.cli import main
from harness.core.errors import SuiteError
from harness.data.contract import OutputContract, parse_number, parse_output, parse_target
from harness.data.suite_init import init_suite
from harness.data.suites import Example, load_suite, suite_stats
from harness.evaluation.scorers import score_cases
from harness.evaluation.scorers.base import ScoredCase
from harness.evaluation.scorers.rouge import rouge_l

REPO = Path(__file__).resolve().parents[1]
NFD_JOSE = unicodedata.normalize("NFD", "José")  # "Jose" + U+0301, as macOS and some exports write it


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so messages name files as a user would type them (`orders.parquet:3`)."""
    monkeypatch.chdir(tmp_path)


def cases(contract: OutputContract, rows: list[tuple[str, str, str]]) -> list[ScoredCase]:
    """(input, reference, model output) rows as the scorers see them."""
    return [ScoredCase(Example(f"test:{i}", text, ref), out, parse_output(out, contract), parse_target(ref, contract))
            for i, (text, ref, out) in enumerate(rows, start=1)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ ROUGE-L


def test_rouge_l_reads_every_script_not_only_ascii_letters():
    # rouge-score's default tokenizer keeps [a-z0-9] only: these identical answers scored 0.0
    assert rouge_l("北京是中国的首都", "北京是中国的首都") == 1.0
    assert rouge_l("القاهرة هي عاصمة مصر", "القاهرة هي عاصمة مصر") == 1.0
    assert rouge_l("مُحَمَّد رسول", "مُحَمَّد رسول") == 1.0  # harakat are marks inside the word, not breaks
    # Chinese is compared character by character: 5 of 8 characters in order
    assert rouge_l("北京是中国的首都", "上海是中国的城市") == pytest.approx(0.5)
    # an accent is part of the word, so `café` is not `cafe`, and NFD spelling is the same word as NFC
    assert rouge_l("café crème", "cafe creme") == 0.0
    assert rouge_l(NFD_JOSE + " arrive", "José arrive") == 1.0
    assert rouge_l("Der Bär läuft schnell", "Der Hund geht langsam") == pytest.approx(0.25)


def test_rouge_l_on_english_is_unchanged_from_rouge_scores_default():
    from rouge_score.rouge_scorer import RougeScorer

    default = RougeScorer(["rougeL"], use_stemmer=True)
    lines = (REPO / "suites/math-word-problems/test.jsonl").read_text().splitlines()[:40]
    answers = [json.loads(line)["output"] for line in lines]
    for prediction, reference in zip(answers, answers[1:]):
        assert rouge_l(prediction, reference) == default.score(reference, prediction)["rougeL"].fmeasure


def test_a_rouge_suite_in_chinese_scores_a_copied_answer_1(tmp_path):
    answer = "这是第{}个问题的一个很长的回答，包含许多汉字和细节。 detail {} a b c"
    rows = [{"question": f"第{i}个问题是什么？", "answer": answer.format(i, i)} for i in range(12)]
    suite = load_suite(str(init_suite("zh", write_jsonl(tmp_path / "zh.jsonl", rows), suites_dir=tmp_path).path))
    assert "rouge_l" in suite.scorers and suite.contract.whole_output
    test = suite.splits["test"]
    values, metrics = score_cases(cases(suite.contract, [(e.input, e.target, e.target) for e in test]),
                                  suite.contract, ["rouge_l", "task_accuracy"])
    assert values["rouge_l"] == [1.0] * len(test) and metrics["rouge_l"].n == len(test)


# ------------------------------------------------------------------------------------------ numeric answers


@pytest.mark.parametrize("text,number", [
    ("1,000", 1000), ("1000", 1000), ("$1,200.50", 1200.5), ("12,34,567", 1234567), ("1 000", 1000),
    ("1\u202f000", 1000), ("\u22123", -3), ("3.0", 3), ("-3.", -3),
])
def test_thousands_separators_and_a_unicode_minus_read_as_numbers(text, number):
    assert parse_number(text) == pytest.approx(number)


@pytest.mark.parametrize("text, value", [("3,5", "3.5"), ("1.000,5", "1000.5"), ("1,00", "1.00"), ("1,0000", "1"),
                                         ("45,50 €", "45.5"), ("1 234,56", "1234.56"), ("１２，５", "12.5"),
                                         ("٤٥٫٥", "45.5"), ("1,000,00", None), ("12,500", "12500"),
                                         ("0,125", "0.125"), ("-0,250", "-0.25"), ("1.000.000", "1000000"),
                                         ("1.000", "1")])
def test_a_decimal_comma_is_read_as_one_and_never_as_grouping(text, value):
    """These read as 35, 1.0005, 100, 10000 and 100000 once (a reference "3,5" matched an output "35"), then as no
    number at all, so an answer "3,5" against the reference "3,5" scored wrong. A comma before exactly three digits is
    still grouping, and a string of both kinds no number."""
    assert parse_number(text) == (None if value is None else Decimal(value))


def test_numeric_answers_compare_by_value_and_decimal_commas_do_not_match_a_wrong_number():
    contract = OutputContract(kind="text", whole_output=True, numeric=True)
    rows = [("q1", "1000", "1,000"), ("q2", "3", "3.0"), ("q3", "1000", "100"), ("q4", "35", "3,5"),
            ("q5", "3,5", "3,5"), ("q6", "3.5", "3,5 €")]
    values, metrics = score_cases(cases(contract, rows), contract, ["task_accuracy", "format_compliance"])
    assert values["task_accuracy"] == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert values["format_compliance"] == [1.0] * 6
    assert metrics["task_accuracy"].n == 6 and metrics["task_accuracy"].value == pytest.approx(4 / 6)


def test_init_names_the_answers_that_stop_a_numeric_suite_comparing_by_value(tmp_path, capsys):
    lines = ["question,answer", *(f"how much is {i} and a half,{i}.5" for i in range(1, 21)),
             'three and a half,"3,5"', "the weight,12 kg", "the length,about 4 m"]
    (tmp_path / "half.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["suite", "init", "half", "--from", "half.csv", "--suites-dir", "."]) == 0
    out = capsys.readouterr().out
    assert ("21 of 23 answers are numbers, but in half.csv line 23 (`12 kg`), line 24 (`about 4 m`) are not, so "
            "every answer is compared as text") in " ".join(out.split())
    assert load_suite("half").contract.numeric is False


def test_a_numeric_reference_with_a_decimal_comma_says_how_to_write_it(tmp_path):
    rows = [{"input": f"question {i}", "output": f"{i}.5"} for i in range(12)]
    path = init_suite("nums", write_jsonl(tmp_path / "nums.jsonl", rows), suites_dir=tmp_path).path
    test = path / "test.jsonl"
    test.write_text(json.dumps({"input": "question 99", "output": "3,5"}) + "\n", encoding="utf-8")
    load_suite(str(path))  # a decimal comma is a number
    test.write_text(json.dumps({"input": "question 99", "output": "3.5 kg"}) + "\n", encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    assert ("nums/test.jsonl:1: the reference answer is unusable (the answer '3.5 kg' is not a number); write it as a "
            "plain number (`3.5`, `3,5`, `1,000`, `45,50 €`; no units), or set `output.numeric: false`"
            ) in str(info.value)


# --------------------------------------------------------------------------------- extraction, by hand


def test_an_accent_written_as_a_combining_mark_is_the_same_value_not_an_invented_one(tmp_path):
    rows = [{"text": f"Booking {i}: {name} flies to Zürich on day {i}.", "output": {"name": "José", "day": i}}
            for i, name in enumerate([NFD_JOSE, "José"] * 6)]
    result = init_suite("trips", write_jsonl(tmp_path / "trips.jsonl", rows), suites_dir=tmp_path)
    assert "grounded: true" in " ".join(result.notes)  # every "José" occurs in its input, in one spelling or other
    suite = load_suite(str(result.path))
    names = ["task_accuracy", "hallucination_rate", "field_precision", "field_recall", "field_f1"]
    scored = [
        (f"{NFD_JOSE} flies on day 1.", json.dumps({"name": "José", "day": 1}), json.dumps({"name": "José", "day": 1})),
        ("José flies on day 2.", json.dumps({"name": "José", "day": 2}), json.dumps({"name": NFD_JOSE, "day": 2.0})),
        ("Bob flies on day 3.", json.dumps({"name": "Bob", "day": 3}), json.dumps({"name": "Robert", "day": 3})),
        ("李雷 flies on day 4.", json.dumps({"name": "李雷", "day": 4}), json.dumps({"name": "李雷"})),
    ]
    values, metrics = score_cases(cases(suite.contract, scored), suite.contract, names)
    assert values["task_accuracy"] == [1.0, 1.0, 0.0, 0.0]
    # only "Robert" is not in its input; the last answer lacks `day`, which every answer has, so it is not compliant
    # and not counted (suite init requires the keys every answer has)
    assert values["hallucination_rate"] == [0.0, 0.0, 1.0, None]
    assert values["field_precision"] == [1.0, 1.0, 0.5, 1.0]
    assert values["field_recall"] == [1.0, 1.0, 0.5, 0.5]
    # micro over pairs: 6 right of 7 predicted, of 8 expected; F1 = 2*6 / (7 + 8)
    assert metrics["field_precision"].value == pytest.approx(6 / 7) and metrics["field_precision"].n == 4
    assert metrics["field_recall"].value == pytest.approx(6 / 8)
    assert metrics["field_f1"].value == pytest.approx(12 / 15)
    for metric in metrics.values():
        assert metric.low <= metric.value <= metric.high


# ----------------------------------------------------------------------------------------- file shapes


def test_nested_jsonl_fields_are_named_by_their_path(tmp_path, capsys):
    rows = [{"doc": {"body": f"Order {i} to Zürich 🚚", "lang": "de"}, "meta": {"answer": f"{i * 1000}"}}
            for i in range(1, 13)]
    write_jsonl(tmp_path / "orders.jsonl", rows)
    assert main(["suite", "init", "orders", "--from", "orders.jsonl", "--suites-dir", "."]) == 2
    assert ("orders.jsonl: cannot guess the input field (looked for ['text', 'input', 'sentence', 'utterance', "
            "'question', 'query', 'prompt', 'body', 'message', 'content']); pass --input-field with one of ['doc', "
            "'meta', 'doc.body', 'doc.lang', 'meta.answer']") in " ".join(printed(capsys).split())
    argv = ["suite", "init", "orders", "--from", "orders.jsonl", "--input-field", "doc.body", "--output-field",
            "meta.answer", "--suites-dir", "."]
    assert main(argv) == 0
    assert "input `doc.body`, answer `meta.answer`" in printed(capsys)
    suite = load_suite("orders")
    assert suite.contract.numeric and {e.input for e in suite.splits["test"]} <= {r["doc"]["body"] for r in rows}


def test_a_parquet_file_becomes_a_suite_and_its_bad_rows_are_listed_at_once(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"doc": {"body": f"Bestellung {i} von Zoë nach القاهرة"}, "answer": f"{i},000"} for i in range(1, 16)]
    rows[4]["doc"]["body"], rows[9]["answer"] = "   ", None
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "orders.parquet")
    with pytest.raises(SuiteError) as info:
        init_suite("orders", Path("orders.parquet"), "doc.body", suites_dir=tmp_path / "suites")
    assert str(info.value) == (
        "orders.parquet: 2 problem(s):\n"
        "  - orders.parquet:5: `doc.body` is empty or not a string; fill it in or remove the row.\n"
        "  - orders.parquet:10: `answer` is empty or not text or a JSON object; fill it in or remove it.")
    assert not (tmp_path / "suites").exists() or not any((tmp_path / "suites").iterdir())
    del rows[9], rows[4]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "orders.parquet")
    result = init_suite("orders", Path("orders.parquet"), "doc.body", suites_dir=tmp_path / "suites")
    assert result.notes[0].startswith("format: Parquet (a number after `file:` in messages is a row, from 1) fields")
    suite = load_suite(str(result.path))
    assert suite.contract.numeric and sum(len(s) for s in suite.splits.values()) == 13


def test_a_file_that_is_not_parquet_says_so(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1")
    with pytest.raises(SuiteError, match=r"^broken\.parquet: not readable as Parquet \(.*\); export it again"):
        init_suite("broken", Path("broken.parquet"), suites_dir=tmp_path / "suites")


def test_windows_line_ends_inside_quoted_cells_become_newlines(tmp_path):
    body = "text;answer\r\n" + "".join(f'"Frage {i}\r\nZeile zwei";"Antwort {i} ist lang genug hier"\r\n'
                                       for i in range(12))
    (tmp_path / "win.csv").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    suite = load_suite(str(init_suite("win", Path("win.csv"), suites_dir=tmp_path / "suites").path))
    inputs = [e.input for split in suite.splits.values() for e in split]
    assert len(inputs) == 12 and all(text.endswith("\nZeile zwei") and "\r" not in text for text in inputs)


def test_stats_of_a_text_suite_describe_its_answers(tmp_path):
    rows = [{"input": f"how much is {i} thousand", "output": f"{i * 1000:,}"} for i in range(12)]
    stats = suite_stats(load_suite(str(init_suite("k", write_jsonl(tmp_path / "k.jsonl", rows),
                                                  suites_dir=tmp_path).path)))
    # not the {answer, rationale} keys of the parsed record, which every text answer has
    assert "keys" not in stats["train"]
    assert stats["train"]["answer_words"] == {"min": 1, "mean": 1.0, "max": 1}
    assert sum(stats[s]["distinct_answers"] for s in stats) == 12
    math = suite_stats(load_suite(str(REPO / "suites/math-word-problems")))["test"]
    assert math["rationale_words"]["min"] > 0 and math["distinct_answers"] <= math["n"]
