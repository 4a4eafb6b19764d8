"""New labelled data for a re-check comes as the team's export: a CSV with the columns the suite was built from.
recheck refused every CSV ("convert it to JSONL"), so a team wrote its own converter, which wrote labels otherwise
than `suite init` had. It now reads any table init reads, from the suite's recorded fields."""

from __future__ import annotations

import pytest

from harness.core.errors import SuiteError
from harness.data.labelled import FieldNames, read_labelled, recorded_fields
from harness.data.suite_init import init_suite
from harness.data.suites import load_suite

QUEUES = ("Billing", "Claims", "Fraud")


@pytest.fixture
def suite(tmp_path):
    rows = [(f"message {i} about {QUEUES[i % 3].lower()} matters number {i}", QUEUES[i % 3]) for i in range(60)]
    source = tmp_path / "tickets.csv"
    source.write_text("body_text,queue_name\n" + "".join(f"{text},{label}\n" for text, label in rows))
    init_suite("tickets", source, "body_text", "queue_name", suites_dir=tmp_path / "suites")
    return load_suite(str(tmp_path / "suites" / "tickets"))


def test_a_table_is_read_from_the_fields_the_suite_was_built_from(suite, tmp_path):
    assert recorded_fields(suite) == FieldNames("body_text", "queue_name", None)
    new = tmp_path / "march.csv"
    new.write_text("ticket_id,body_text,queue_name\n7,my card was charged twice,billing \n8,someone used my card,"
                   "Fraud\n")
    read = read_labelled(new, suite, "recheck")
    examples, sha = read.examples, read.sha256
    assert [(e.id, e.input, e.target) for e in examples] == [
        ("recheck:2", "my card was charged twice", '{"queue_name": "Billing"}'),  # spelled as the suite spells it
        ("recheck:3", "someone used my card", '{"queue_name": "Fraud"}')]
    assert len(sha) == 64


def test_named_fields_win_and_every_bad_line_is_named(suite, tmp_path):
    new = tmp_path / "april.tsv"
    new.write_text("text\tteam\nfirst message\tClaims\nsecond message\tRefunds\nthird message\tPayroll\n")
    with pytest.raises(SuiteError) as refused:
        read_labelled(new, suite, "recheck", FieldNames(input="text", label="team"))
    message = str(refused.value)
    assert "april.tsv:3:" in message and "Refunds" in message and "april.tsv:4:" in message and "Payroll" in message
    assert "(read against suite tickets 1.0.0, " in message and "tickets/suite.yaml)" in message
    with pytest.raises(SuiteError, match="queue_name"):  # the recorded answer field is not in this file
        read_labelled(new, suite, "recheck", FieldNames(input="text"))


def test_the_suites_own_jsonl_is_read_as_its_test_split(suite, tmp_path):
    new = tmp_path / "fresh.jsonl"
    new.write_text('{"input": "a charge I do not know", "output": {"queue_name": "Fraud"}}\n')
    examples = read_labelled(new, suite, "recheck").examples
    assert [(e.id, e.target) for e in examples] == [("recheck:1", '{"queue_name": "Fraud"}')]


def test_a_label_suite_without_recorded_fields_reads_its_answer_key(toy_suite, tmp_path):
    bundled = load_suite(str(toy_suite))  # made by hand: suite.yaml records no source fields
    assert recorded_fields(bundled) == FieldNames(None, "colour", None)
    new = tmp_path / "new.csv"
    new.write_text("text,colour\nthe grass,Green\n")
    examples = read_labelled(new, bundled, "recheck").examples
    assert [(e.input, e.target) for e in examples] == [("the grass", '{"colour": "green"}')]


def test_a_repeated_row_is_read_once_and_an_input_with_two_answers_is_refused(suite, tmp_path):
    """The same 12 rows given twice read as n=24, and their interval as narrow as 24 examples'."""
    rows = "".join(f"message {i},{QUEUES[i % 3]}\n" for i in range(12))
    new = tmp_path / "doubled.csv"
    new.write_text("body_text,queue_name\n" + rows + rows)
    read = read_labelled(new, suite, "recheck")
    assert len(read.examples) == 12 and read.repeated == 12
    new.write_text("body_text,queue_name\n" + rows + "message 0,Fraud\n")
    with pytest.raises(SuiteError, match=r"doubled.csv:14: the input of line 2 again, with another answer"):
        read_labelled(new, suite, "recheck")


def test_a_header_capitalised_otherwise_than_the_suites_field_is_read(suite, tmp_path):
    new = tmp_path / "export.csv"
    new.write_text("Body_Text,Queue_Name\nmy card was charged twice,Billing\n")
    assert [e.input for e in read_labelled(new, suite, "recheck").examples] == ["my card was charged twice"]
