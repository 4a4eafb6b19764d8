"""`harness suite init` on CSV files: the delimiter found from the header, rows checked against the header's width,
long fields, and refusals that name the file and line. Each test writes a small real file."""

from __future__ import annotations

import csv
from contextlib import nullcontext
from pathlib import Path

import pytest

from harness.core.errors import SuiteError
from harness.data import csvfile
from harness.data.suite_init import init_suite
from harness.data.suites import load_suite


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so messages name files as a user would type them (`tickets.csv:3`) and compare whole."""
    monkeypatch.chdir(tmp_path)


def tickets(delimiter: str = ",", n: int = 12) -> list[str]:
    """Rows of a two-label ticket file, with no delimiter inside any cell."""
    return [f"Refund for invoice {i} please{delimiter}billing" if i % 2 else
            f"Parcel {i} has not arrived{delimiter}shipping" for i in range(n)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def refusal(tmp_path: Path, source: Path, *args) -> str:
    with pytest.raises(SuiteError) as info:
        init_suite("refused", source, *args, suites_dir=tmp_path / "suites")
    assert not (tmp_path / "suites" / "refused").exists()
    return str(info.value)


def test_a_row_with_more_cells_than_the_header_is_refused_with_its_line(tmp_path):
    # the unquoted comma made "thanks" the label; the blank line must not shift the line numbers after it
    lines = ["text,label", *tickets()[:4], "", "Refund for invoice 57494 please, thanks,billing", *tickets()[4:]]
    message = refusal(tmp_path, write(tmp_path / "tickets.csv", lines), "text", "label", None)
    assert message == ('tickets.csv: 1 problem(s):\n'
                       '  - tickets.csv:7: 3 fields, the header has 2; quote fields that contain commas ("...").')


def test_a_row_with_fewer_cells_than_the_header_is_refused_with_its_line(tmp_path):
    lines = ["text,queue,priority", *(f"{row},high" for row in tickets())]
    lines[3] = "Parcel 2 has not arrived,shipping"
    message = refusal(tmp_path, write(tmp_path / "tickets.csv", lines), "text", "queue", None)
    assert message == ("tickets.csv: 1 problem(s):\n  - tickets.csv:4: 2 fields, the header has 3; fill in the missing "
                       "fields (an empty field still needs its comma) or remove the row.")


def test_a_quote_left_open_is_named_rather_than_read_to_the_end_of_the_file(tmp_path):
    lines = ["text,label", *tickets()[:2], '"Refund for invoice 9, please,billing', *tickets()[2:]]
    message = refusal(tmp_path, write(tmp_path / "tickets.csv", lines))
    assert message == ('tickets.csv: 1 problem(s):\n  - tickets.csv:4: 1 field, the header has 2, and the row runs '
                       'on to line 14; close the quote (") left open in it.')


def test_a_field_over_csvs_default_limit_is_read_and_the_limit_restored(tmp_path):
    before = csv.field_size_limit()
    long_text = "lorem ipsum " * 20_000  # 240,000 characters, over csv's 131,072
    lines = ["text,label", *tickets(), f'"{long_text}",billing']
    result = init_suite("long", write(tmp_path / "long.csv", lines), suites_dir=tmp_path / "suites")
    suite = load_suite(str(result.path))
    inputs = [ex.input for split in suite.splits.values() for ex in split]
    assert long_text.strip() in inputs and len(inputs) == 13
    assert csv.field_size_limit() == before


def test_any_csv_error_names_the_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(csvfile, "_field_limit", lambda size: nullcontext())  # csv's own 128 KiB limit applies
    lines = ["text,label", tickets()[0], f'"{"x" * 140_000}",billing', *tickets()[1:]]
    message = refusal(tmp_path, write(tmp_path / "tickets.csv", lines))
    assert message == ("tickets.csv:3: not readable as CSV (field larger than field limit (131072)); check the quotes "
                       "on this row, or export the sheet again as CSV.")


@pytest.mark.parametrize("delimiter,name", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_the_delimiter_is_found_from_the_header_and_named(tmp_path, delimiter, name):
    # commas inside cells of a semicolon file are text, not delimiters
    lines = [f"text{delimiter}queue", *tickets(delimiter), f"Refund, please, for invoice 99{delimiter}billing"]
    result = init_suite("mine", write(tmp_path / "tickets.csv", lines), "text", "queue", None,
                        suites_dir=tmp_path / "suites")
    assert result.notes[0] == f"format: {name}-separated CSV fields: input `text`, answer `queue`"
    suite = load_suite(str(result.path))
    assert suite.contract.labels == ("billing", "shipping")
    assert "Refund, please, for invoice 99" in [ex.input for split in suite.splits.values() for ex in split]


def test_a_comma_in_the_header_does_not_outvote_the_rows(tmp_path):
    lines = ['"Nachricht, Text";Abteilung', *tickets(";")]  # quoted: the comma is part of the name
    result = init_suite("quoted", write(tmp_path / "quoted.csv", lines), "Nachricht, Text", "Abteilung", None,
                        suites_dir=tmp_path / "suites")
    assert result.notes[0] == "format: semicolon-separated CSV fields: input `Nachricht, Text`, answer `Abteilung`"
    lines = ["Nachricht, Text;Abteilung", *tickets(";")]  # unquoted: the header splits either way; the rows decide
    result = init_suite("bare", write(tmp_path / "bare.csv", lines), "Nachricht, Text", "Abteilung", None,
                        suites_dir=tmp_path / "suites")
    assert result.notes[0] == "format: semicolon-separated CSV fields: input `Nachricht, Text`, answer `Abteilung`"


def test_a_tsv_file_is_read_as_tab_separated(tmp_path):
    result = init_suite("tsv", write(tmp_path / "tickets.tsv", ["text\tlabel", *tickets("\t")]),
                        suites_dir=tmp_path / "suites")
    assert result.notes[0] == "format: TSV fields: input `text`, answer `label`"


def test_a_repeated_header_name_is_refused(tmp_path):
    lines = ["text,text,label", *(f"{row.split(',')[0]},other,{row.split(',')[1]}" for row in tickets())]
    message = refusal(tmp_path, write(tmp_path / "tickets.csv", lines))
    assert message == ("tickets.csv:1: the header names `text` more than once, so only one of those columns could be "
                       "read; rename or remove the others.")


def test_a_header_with_no_rows_says_so(tmp_path):
    message = refusal(tmp_path, write(tmp_path / "tickets.csv", ["text,label", ""]))
    assert message == "tickets.csv: the file has a header (text, label) and no rows; add one example per line below it."


def test_an_email_export_with_subject_and_body_columns_reads_the_body(tmp_path):
    """Mail and ticket exports call the message `Body` (or `Message`); a `Subject` beside it is not the input."""
    lines = ["Subject,Body,Category", *(f"case {i},{row}" for i, row in enumerate(tickets()))]
    result = init_suite("mail", write(tmp_path / "mail.csv", lines), suites_dir=tmp_path / "suites")
    suite = load_suite(str(result.path))
    assert {ex.input for split in suite.splits.values() for ex in split} <= {row.split(",")[0] for row in tickets()}
