"""Field choices in suite init that make a meaningless suite: the same column as input and answer (every answer its
input), and an input field that names a label column (most rows dropped as repeats, then counts that read as
nonsense)."""

from __future__ import annotations

import csv

import pytest

from harness.core.errors import SuiteError
from harness.data.suite_init import init_suite

INTENTS = ("PlayMusic", "GetWeather", "BookRestaurant", "RateBook", "AddToPlaylist", "SearchCreativeWork", "SetAlarm")


@pytest.fixture
def utterances(tmp_path):
    path = tmp_path / "utterances.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["utterance_text", "gold_intent"])
        for i in range(210):
            writer.writerow([f"request number {i} about {INTENTS[i % 7].lower()}", INTENTS[i % 7]])
    return path


def test_one_column_as_input_and_answer_is_refused(utterances, tmp_path):
    with pytest.raises(SuiteError, match=r"`utterance_text` would be both the input and the answer, so every answer "
                                         r"would copy its input"):
        init_suite("copy", utterances, input_field="utterance_text", output_field="utterance_text", metric="exact",
                   suites_dir=tmp_path / "suites")
    assert not (tmp_path / "suites" / "copy").exists()


def test_an_input_field_holding_labels_is_named_with_the_rows_it_dropped(utterances, tmp_path):
    with pytest.raises(SuiteError) as refused:
        init_suite("swapped", utterances, input_field="gold_intent", label_field="utterance_text",
                   suites_dir=tmp_path / "suites")
    assert ("203 of 210 rows dropped as repeated inputs: `gold_intent` holds only 7 distinct values. If that is not "
            "the column with the inputs, pass --input-field") in str(refused.value)


def test_a_number_inside_a_sentence_is_pointed_to_a_pattern_that_validates(tmp_path):
    """"... so the answer is 10." has no `#### 10` line: init says how a suite scores such answers by value, and the
    recipe it prints gives a suite that loads and reads the number."""
    import json

    from harness.data.suites import load_suite

    rows = [{"input": f"Tom has {i} apples and gets 6 more. How many?", "output": f"{i} + 6 = {i + 6}, so the answer "
             f"is {i + 6}."} for i in range(30)]
    source = tmp_path / "apples.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SuiteError, match=r"replace `output.whole_output: true` with `answer_pattern:`"):
        init_suite("apples", source, metric="final-number", suites_dir=tmp_path / "suites")
    path = init_suite("apples", source, metric="exact", suites_dir=tmp_path / "suites").path
    yaml_file = path / "suite.yaml"
    text = yaml_file.read_text()
    assert "  whole_output: true\n  numeric: false\n" in text
    yaml_file.write_text(text.replace("  whole_output: true\n  numeric: false\n",
                                      "  answer_pattern: 'answer is\\s*(-?[\\d,.]+)'\n  numeric: true\n"))
    contract = load_suite(str(path)).contract
    assert contract.numeric and not contract.whole_output
    from harness.data.contract import answers_equal, parse_output

    parsed = parse_output("4 + 6 = 10 apples, so the answer is 10.", contract)
    assert parsed.compliant and answers_equal(parsed.value["answer"], "10", contract)
