"""`harness predict --input FILE`: which files are read as tables, which one input per line, which are refused, and
which column of a table holds the inputs (`--input-field`, else the field the trial's suite was built from)."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import toy_rows
from test_bad_input import refused, scored, study_record

from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.records import RunRecord
from harness.data.suite_init import init_suite
from harness.store.database import Store
from harness.sweep import predict as predict_module
from harness.sweep.predict import Prediction, read_input_rows, read_inputs, suite_input_field


def never_asked() -> str | None:
    raise AssertionError("the suite was looked up for a file that is not a table")


def test_a_tsv_is_a_table_its_header_and_gold_column_are_not_answered(tmp_path):
    """The tester's file: read as lines, the header and each row's gold answer were answered too."""
    tsv = tmp_path / "new.tsv"
    tsv.write_text("utterance\twhere_gold\nWill it rain in Boston tomorrow\tBoston\nBook a table, in Paris\tParis\n")
    assert read_inputs(str(tsv)) == ["Will it rain in Boston tomorrow", "Book a table, in Paris"]
    upper = tmp_path / "NEW.TSV"  # the suffix in any case; a comma inside a cell does not split it
    upper.write_text("id\ttext\n1\tI lost my card, again\n")
    assert read_inputs(str(upper)) == ["I lost my card, again"]


def test_a_table_is_read_as_suite_init_reads_it(tmp_path):
    """Excel's `sep=` line, a quoted cell over two lines, a BOM; an empty row inside is skipped, as init skips it, and
    every input keeps its line, so no answer shifts."""
    excel = tmp_path / "sheet.csv"
    excel.write_bytes('\ufeffsep=;\ntext;label\n"first line\nsecond line";a\nplain; b\n'.encode())
    assert read_inputs(str(excel)) == ["first line\nsecond line", "plain"]
    gap = tmp_path / "gap.tsv"
    gap.write_text("text\tlabel\nred\ta\n\nblue\tb\n")
    assert [(g.text, g.at) for g in read_input_rows(str(gap))] == [("red", f"{gap}:2"), ("blue", f"{gap}:4")]
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("text\tlabel\nred\ta\textra\n")
    with pytest.raises(HarnessError, match=r"ragged.tsv:2: 3 fields, the header has 2"):
        read_inputs(str(ragged))
    utf16 = tmp_path / "utf16.tsv"
    utf16.write_bytes("text\nhello\n".encode("utf-16"))
    with pytest.raises(HarnessError, match=r"utf16.tsv:1: UTF-16 text .*iconv -f utf-16 -t utf-8 utf16.tsv"):
        read_inputs(str(utf16))


def test_a_parquet_file_is_read_by_its_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "new.parquet"
    pq.write_table(pa.table({"id": [1, 2], "utterance_text": ["lost card", "refund please"]}), path)
    assert read_inputs(str(path), "utterance_text") == ["lost card", "refund please"]
    assert read_inputs(str(path), suite_field=lambda: "utterance_text") == ["lost card", "refund please"]
    with pytest.raises(HarnessError, match=r"new.parquet: which column holds the inputs\? It has \['id', "
                                           r"'utterance_text'\]; pass --input-field NAME"):
        read_inputs(str(path))
    missing = tmp_path / "gap.parquet"
    pq.write_table(pa.table({"id": [1, 2, None], "text": ["a", None, None]}), missing)
    assert [(g.text, g.problem) for g in read_input_rows(str(missing))] == [
        ("a", None), ("", "`text` is missing on this row: nothing was answered")]  # the all-empty row is no input


def test_input_field_names_a_column_or_a_nested_jsonl_field(tmp_path):
    table = tmp_path / "odd.csv"
    table.write_text('id,utterance_text,text\n1,Will it rain in Boston,x\n2,"Book a table, Paris",y\n')
    assert read_inputs(str(table), "utterance_text") == ["Will it rain in Boston", "Book a table, Paris"]
    assert read_inputs(str(table)) == ["x", "y"]  # without the flag, the guess list
    with pytest.raises(HarnessError, match=r"odd.csv: no column 'utterance'; --input-field must name one of "
                                           r"\['id', 'utterance_text', 'text'\]"):
        read_inputs(str(table), "utterance")
    nested = tmp_path / "docs.jsonl"
    nested.write_text('{"doc": {"body": "first"}, "text": "no"}\n{"doc": {"body": "second"}, "text": "no"}\n')
    assert read_inputs(str(nested), "doc.body") == ["first", "second"]
    assert read_inputs(str(nested), suite_field=lambda: "doc.body") == ["first", "second"]


def test_the_suites_field_comes_before_the_guesses_and_is_named_when_missing(tmp_path):
    both = tmp_path / "both.csv"
    both.write_text("text,Utterance_Text\nnot this,the input\n")
    assert read_inputs(str(both), suite_field=lambda: "utterance_text") == ["the input"]  # the file's own case
    assert read_inputs(str(both), "text", suite_field=never_asked) == ["not this"]  # the flag wins, nothing asked
    fallback = tmp_path / "fallback.csv"
    fallback.write_text("id,message\n1,hello\n")
    assert read_inputs(str(fallback), suite_field=lambda: "utterance_text") == ["hello"]
    neither = tmp_path / "neither.csv"
    neither.write_text("id,utterance_txt\n1,hello\n")
    with pytest.raises(HarnessError, match=r"neither.csv: which column holds the inputs\? It has \['id', "
                                           r"'utterance_txt'\] \(the trial's suite was built from column "
                                           r"`utterance_text`, which it lacks\); pass --input-field NAME"):
        read_inputs(str(neither), suite_field=lambda: "utterance_text")


def test_only_txt_or_no_suffix_is_one_input_per_line(tmp_path):
    for name in ("inputs.txt", "inputs"):
        (path := tmp_path / name).write_text("utterance\twhere_gold\nWill it rain\n")
        assert read_inputs(str(path), suite_field=never_asked) == ["utterance\twhere_gold", "Will it rain"]
    (notes := tmp_path / "notes.md").write_text("- a\n- b\n")
    with pytest.raises(HarnessError, match=r"notes.md: a .md file is not read. predict reads a table "
                                           r"\(.jsonl, .csv, .tsv or .parquet.*rename it to notes.txt"):
        read_inputs(str(notes))
    (sheet := tmp_path / "new.xlsx").write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(HarnessError, match=r"new.xlsx: a .xlsx file is not read.*save the sheet as CSV"):
        read_inputs(str(sheet))
    (packed := tmp_path / "new.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00")
    with pytest.raises(HarnessError, match=r"a .gz file is not read.*unpack it first"):
        read_inputs(str(packed))
    (binary := tmp_path / "bytes.txt").write_bytes(b"ab\x00\x01cd\n")
    with pytest.raises(HarnessError, match=r"bytes.txt:1: holds NUL bytes"):
        read_inputs(str(binary))


def test_input_field_needs_a_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (lines := tmp_path / "in.txt").write_text("a\nb\n")
    with pytest.raises(HarnessError, match=r"--input-field text: in.txt is read one input per line"):
        read_inputs(str(lines), "text")
    with pytest.raises(HarnessError, match=r"--input-field text names the column of a file of inputs, but --input "
                                           r"'hello there' is no file here"):
        read_inputs("hello there", "text")
    for missing in ("new.tsv", "new.parquet"):  # a table's name that is not there is not answered as text
        with pytest.raises(HarnessError, match=rf"--input {missing}: no such file"):
            read_inputs(missing)


@pytest.fixture(scope="module")
def built_suite_store(tmp_path_factory, toy_suite) -> Store:
    """s/0 on a suite made by `suite init --input-field utterance_text`; b/0 on a hand-written suite."""
    root = tmp_path_factory.mktemp("predict_inputs")
    source = root / "colours.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "utterance_text", "colour"])
        writer.writerows((i, row["input"], row["output"]["colour"]) for i, row in enumerate(toy_rows()))
    suite = init_suite("colours", source, "utterance_text", "colour", suites_dir=root / "suites").path
    store = Store(root / "h.duckdb")
    store.record_run(RunRecord("r1", "s", 1, "host", "cpu", "cpu", 2, {}))
    store.record_study(study_record("s", "colours", suite))
    store.record_trial_result(scored("s", 0, "colours", trained=False))
    store.record_study(study_record("b", "toy-colours", toy_suite))
    store.record_trial_result(scored("b", 0, "toy-colours", trained=False))
    return store


def test_the_input_field_suite_init_recorded_is_found(built_suite_store):
    assert suite_input_field(built_suite_store, "s/0") == "utterance_text"
    assert suite_input_field(built_suite_store, "b/0") is None  # a suite that records none


def test_predict_reads_the_column_its_suite_was_built_from(built_suite_store, tmp_path, monkeypatch, capsys):
    """The tester's second file: `id,utterance_text`, answered with no flag for a suite built from that column."""
    asked = []

    def answer(store, trial_id, inputs, device="auto", batch_size=16):  # the reading is under test, not the model
        asked.append([g.text for g in inputs])
        return [Prediction(g.text, "red", None, True, None, at=g.at) for g in inputs]

    monkeypatch.setattr(predict_module, "predict", answer)
    odd = tmp_path / "new_odd.csv"
    odd.write_text('id,utterance_text\n1,Will it rain in Boston tomorrow\n2,"Book a table for two in Paris, France"\n')
    db = ["--db", str(built_suite_store.path)]
    assert main(["predict", "s/0", "--input", str(odd), *db]) == 0
    expected = ["Will it rain in Boston tomorrow", "Book a table for two in Paris, France"]
    assert asked == [expected]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == expected
    assert [line["at"] for line in lines] == [f"{odd}:2", f"{odd}:3"]  # to put each answer back in its row
    out = refused(["predict", "b/0", "--input", str(odd), *db], capsys)  # its suite records no field
    assert "which column holds the inputs?" in out and "['id', 'utterance_text']" in out and "--input-field" in out
    assert main(["predict", "b/0", "--input", str(odd), "--input-field", "utterance_text", *db]) == 0
    assert asked[-1] == expected
    out = refused(["predict", "s/0", "--text", "hello", "--input-field", "utterance_text", *db], capsys)
    assert "--input-field names the column of an --input file" in out
    assert len(asked) == 2  # nothing answered for a refusal


def test_a_folder_is_refused_with_or_without_its_trailing_slash(tmp_path, monkeypatch):
    """`--input results` answered the word "results" as an input; `--input results/` was refused."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    for given in ("results", "results/"):
        with pytest.raises(HarnessError, match=rf"--input {given}: a folder, not a file"):
            read_input_rows(given)
    assert read_inputs("no such folder here") == ["no such folder here"]  # text is still text
