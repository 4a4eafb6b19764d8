"""`harness suite init` on the shapes a new user's data arrives in: a quote left open, files that are not UTF-8,
Excel's `sep=` line, padded header names and empty rows, a negative seed, and labels spelled several ways. Each test
writes a small real file and asserts on what init wrote or refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import printed

from harness.cli import main
from harness.core.errors import SuiteError
from harness.data.stats_text import stats_text
from harness.data.suite_init import init_suite
from harness.data.suites import load_suite


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so messages name files as a user would type them (`data.csv:3`) and compare whole."""
    monkeypatch.chdir(tmp_path)


def tickets(n: int = 12, delimiter: str = ",") -> list[str]:
    return [f"Refund for invoice {i} please{delimiter}billing" if i % 2 else
            f"Parcel {i} has not arrived{delimiter}shipping" for i in range(n)]


def write(path: Path, lines: list[str], newline: str = "\n", encoding: str = "utf-8") -> Path:
    path.write_bytes(newline.join([*lines, ""]).encode(encoding))
    return path


def refusal(tmp_path: Path, source: Path, **kwargs) -> str:
    with pytest.raises(SuiteError) as info:
        init_suite("refused", source, suites_dir=tmp_path / "suites", **kwargs)
    assert not (tmp_path / "suites" / "refused").exists()
    return str(info.value)


def inputs(path: Path) -> list[str]:
    suite = load_suite(str(path))
    return [ex.input for split in suite.splits.values() for ex in split]


# -- a quote left open ---------------------------------------------------------------------------------------------

def test_a_quote_left_open_that_swallows_the_next_row_is_refused_with_its_line(tmp_path):
    # the open quote closes at the next row's opening quote: two rows read as one row of the header's width
    lines = ["text,label", *(f'"{row.split(",")[0]}",{row.split(",")[1]}' for row in tickets())]
    lines.insert(4, '"oops unterminated,shipping')
    message = refusal(tmp_path, write(tmp_path / "tickets.csv", lines))
    assert message == (
        "tickets.csv: 1 problem(s):\n  - tickets.csv:5: the row runs on to line 6 (',' expected after '\"'): a quote "
        '(") opened in it is not closed where its cell ends, so the rows below were read into that cell; close the '
        'quote, or write a quote that is part of the text as two ("").'
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_quoted_cell_over_several_lines_is_still_one_example(tmp_path, newline):
    # its second line, `world, again" said the customer",billing`, would parse alone as a row of two cells
    lines = ["text,label", *tickets(), '"Hello,', 'world, again"" said the customer",billing', *tickets(4)]
    result = init_suite("multi", write(tmp_path / "multi.csv", lines, newline), suites_dir=tmp_path / "suites")
    assert 'Hello,\nworld, again" said the customer' in inputs(result.path)


# -- encodings -----------------------------------------------------------------------------------------------------

def test_a_utf16_file_gets_the_utf16_iconv_keeping_its_suffix(tmp_path):
    # Excel's "Unicode Text": UTF-16 with a byte-order mark, tab-separated
    csv_file = write(tmp_path / "sheet.csv", ["text\tlabel", *tickets(delimiter="\t")], "\r\n", "utf-16")
    assert refusal(tmp_path, csv_file) == (
        "sheet.csv:1: UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8; re-save it as UTF-8, e.g. "
        "`iconv -f utf-16 -t utf-8 sheet.csv > fixed.csv`."
    )
    jsonl = write(tmp_path / "rows.jsonl", ['{"text": "a", "label": "b"}'], encoding="utf-16")
    assert "`iconv -f utf-16 -t utf-8 rows.jsonl > fixed.jsonl`" in refusal(tmp_path, jsonl)


def test_windows_1252_gets_cp1252_and_latin1_gets_latin1(tmp_path):
    # curly quotes are 0x93/0x94 in Windows-1252; `-f latin1` would turn them into control characters
    lines = ["text,label", *tickets(), "Caf\u00e9 \u201cclosed\u201d,billing"]
    cp1252 = write(tmp_path / "cp.csv", lines, encoding="cp1252")
    assert refusal(tmp_path, cp1252) == (
        "cp.csv:14: not UTF-8 (bytes 0xe9, 0x93, 0x94), likely Windows-1252 (Excel's default on Windows); re-save it "
        "as UTF-8, e.g. `iconv -f cp1252 -t utf-8 cp.csv > fixed.csv`."
    )
    latin1 = write(tmp_path / "latin.csv", ["text,label", *tickets(), "Caf\u00e9 closed,billing"], encoding="latin-1")
    assert refusal(tmp_path, latin1) == (
        "latin.csv:14: not UTF-8 (bytes 0xe9), likely Latin-1; re-save it as UTF-8, e.g. "
        "`iconv -f latin1 -t utf-8 latin.csv > fixed.csv`."
    )


def test_japanese_excel_gets_shift_jis_and_chinese_is_not_called_windows_1252(tmp_path):
    """A Shift_JIS CSV was called Windows-1252; the iconv it suggested wrote `”z‘—` for 配送, and init took that."""
    rows = ["text,label", *(f"荷物{i}番が届きません,配送" for i in range(8)),
            *(f"請求書{i}を再発行,請求" for i in range(8))]
    sjis = write(tmp_path / "jp.csv", rows, encoding="cp932")
    assert refusal(tmp_path, sjis) == (
        "jp.csv:2: not UTF-8 (bytes 0x89, 0xa8, 0x94, 0xaa, 0x93, ...), likely Shift_JIS (Japanese Excel's default on "
        "Windows); re-save it as UTF-8, e.g. `iconv -f cp932 -t utf-8 jp.csv > fixed.csv`.")
    chinese = write(tmp_path / "zh.csv", ["text,label", *(f"我的包裹{i}还没到,配送" for i in range(12))],
                    encoding="gb18030")
    refused = refusal(tmp_path, chinese)
    assert "not Western or Japanese text. Its first line beyond ASCII reads, in the encodings it may be in:" in refused
    assert "`-f gb18030` (Simplified Chinese): '我的包裹0还没到,配送'" in refused and "cp1252 (" not in refused


@pytest.mark.parametrize("text, encoding, said", [
    ("환불을 요청합니다,환불", "cp949", "`-f cp949` (Korean): '환불을 요청합니다,환불'"),
    ("Хочу вернуть деньги,возврат", "cp1251", "`-f cp1251` (Cyrillic): 'Хочу вернуть деньги,возврат'"),
    ("Θέλω επιστροφή χρημάτων,επιστροφή", "cp1253", "`-f cp1253` (Greek): 'Θέλω επιστροφή χρημάτων,επιστροφή'"),
    ("Chcę zwrotu pieniędzy za złoty,zwrot", "cp1250", "likely Windows-1250 (Central European"),
])
def test_other_legacy_encodings_are_told_or_shown_as_each_would_read(tmp_path, text, encoding, said):
    """Korean got `iconv -f gb18030`, which wrote `券阂阑` for 환불을; Polish got Windows-1252 (`pieniêdzy`), Russian
    and Greek 'perhaps Chinese or Korean'. What the bytes cannot tell apart is shown read each way, to pick from."""
    message, label = text.split(",")
    rows = ["text,label", f"{message},{label}", *(f"{message} {i},{label}" for i in range(12))]
    assert said in refusal(tmp_path, write(tmp_path / "legacy.csv", rows, encoding=encoding))


# -- Excel's habits ------------------------------------------------------------------------------------------------

def test_excel_sep_line_names_the_delimiter_and_is_not_the_header(tmp_path):
    lines = ["sep=;", "text;label", *tickets(delimiter=";"), "Refund; please;billing"]
    # the ragged row keeps its own line number: the sep line counts
    assert refusal(tmp_path, write(tmp_path / "sheet.csv", lines, "\r\n")) == (
        "sheet.csv: 1 problem(s):\n  - sheet.csv:15: 3 fields, the header has 2; quote fields that contain "
        'semicolons ("...").'
    )
    result = init_suite("sep", write(tmp_path / "sheet.csv", lines[:-1], "\r\n"), suites_dir=tmp_path / "suites")
    assert "format: semicolon-separated CSV fields: input `text`, answer `label`" in result.notes
    assert sorted(inputs(result.path)) == sorted(row.split(";")[0] for row in tickets(delimiter=";"))


def test_header_names_are_stripped_and_empty_rows_skipped_and_counted(tmp_path, capsys):
    lines = [" Text , Label ,,", *(f"{row},," for row in tickets()), ",,,", " , ,,", ""]
    source = write(tmp_path / "sheet.csv", lines, "\r\n")
    assert main(["suite", "init", "sheet", "--from", str(source), "--input-field", "Text"]) == 0
    assert "(train 8, dev 2, test 2; rows dropped: empty rows 2)" in printed(capsys)
    meta = yaml.safe_load((tmp_path / "suites" / "sheet" / "suite.yaml").read_text(encoding="utf-8"))
    assert meta["source"]["fields"] == {"input": "Text", "answer": "Label"}
    assert meta["cleaning"]["dropped"] == {"duplicates": 0, "empty_rows": 2}


# -- the seed ------------------------------------------------------------------------------------------------------

def test_a_negative_seed_is_refused_as_an_experiment_refuses_it(tmp_path, capsys):
    source = write(tmp_path / "tickets.csv", ["text,label", *tickets()])
    assert main(["suite", "init", "neg", "--from", str(source), "--seed", "-1"]) == 2
    out = printed(capsys)
    assert "--seed must be at least 0 and at most 2147483647; got -1" in out and "Traceback" not in out
    assert not (tmp_path / "suites" / "neg").exists()


# -- labels spelled several ways -----------------------------------------------------------------------------------

def test_labels_that_differ_only_in_separators_or_number_form_are_kept_with_a_warning(tmp_path):
    spelled = ["top up failed", "top-up failed", "top_up_failed", "1", "01", "1.0", "card lost", "Claim", "Claims",
               "address", "addresses"]
    lines = ["text,label", *(f"message {i} of {n},{label}" for n, label in enumerate(spelled) for i in range(3))]
    result = init_suite("spelled", write(tmp_path / "spelled.csv", lines), suites_dir=tmp_path / "suites")
    suite = load_suite(str(result.path))
    assert sorted(suite.contract.labels) == sorted(spelled)  # warned about, not merged
    # `Claim` (3) beside `Claims` (3): a plural s made two classes of one in a small team's hand-tagged export
    warning = ("warning: labels in spelled.csv that differ only in hyphens and underscores, case and spacing, a "
               "plural s, or in how a number is written are kept as different labels: `01` (3), `1` (3), `1.0` (3); "
               "`Claim` (3), `Claims` (3); `top up failed` (3), `top-up failed` (3), `top_up_failed` (3). If each "
               "group is one label, write it one way in the data, or run init again with --merge-label-variants; if "
               "they are different labels, ignore this.")
    assert warning in result.notes
    stats = stats_text(suite)
    assert ("`01` (3), `1` (3), `1.0` (3); `Claim` (3), `Claims` (3); `top up failed` (3), `top-up failed` (3), "
            "`top_up_failed` (3). If each group is one label, write it one way in the splits and in suite.yaml's "
            "`output.labels`") in " ".join(stats.split())


def test_merge_label_variants_makes_each_warned_group_one_label_and_names_every_merge(tmp_path, capsys):
    """A support team's export wrote one intent `card_arrival` and `Card Arrival`: two labels, a right answer on
    either read wrong, and the only way on was to rewrite the data."""
    counts = {"card_arrival": 5, "Card Arrival": 4, "card arrival": 3, "top_up": 6, "Claims": 3, "Claim": 4}
    answers = [label for label, n in counts.items() for _ in range(n)]
    source = write(tmp_path / "export.csv", ["text,label", *(f"message {k},{a}" for k, a in enumerate(answers))])
    assert main(["suite", "init", "merged", "--from", str(source), "--merge-label-variants",
                 "--suites-dir", str(tmp_path / "suites")]) == 0
    said = " ".join(printed(capsys).split())
    suite = load_suite(str(tmp_path / "suites" / "merged"))
    assert sorted(suite.contract.labels) == ["Card Arrival", "Claim", "top_up"]  # the most frequent spellings
    # `Card Arrival` and `card arrival` are one spelling first (7 examples), which then outnumbers `card_arrival`
    assert "labels: merged 2 variants into the most frequent spelling of each group (--merge-label-variants)" in said
    assert "`card_arrival` (5) -> `Card Arrival`" in said and "`Claims` (3) -> `Claim`" in said
    assert "differ only in hyphens" not in said
    assert sum(1 for split in suite.splits.values() for ex in split if "Card Arrival" in ex.target) == 12


def test_distinct_labels_get_no_spelling_warning(tmp_path):
    lines = ["text,label", *tickets()]
    result = init_suite("plain", write(tmp_path / "plain.csv", lines), suites_dir=tmp_path / "suites")
    assert not any(note.startswith("warning:") for note in result.notes)
    assert "warning" not in stats_text(load_suite(str(result.path)))


def test_an_emoji_that_carries_the_answer_keeps_two_inputs_and_one_that_does_not_is_a_leak(tmp_path):
    """Read as spacing, emoji made `Service 👍` (positive) and `Service 👎` (negative) one input: init dropped one as
    a duplicate, and a test split holding the other was refused as contamination. With one answer, an emoji more
    or less is the same message."""
    rows = [f"message {i} about the app,{'positive' if i % 2 else 'negative'}" for i in range(12)]
    lines = ["text,label", *rows, "Service 👍,positive", "Service 👎,negative"]
    result = init_suite("thumbs", write(tmp_path / "thumbs.csv", lines), suites_dir=tmp_path)
    everything = [ex.input for split in load_suite(str(result.path)).splits.values() for ex in split]
    assert "Service 👍" in everything and "Service 👎" in everything
    test = write(tmp_path / "test.csv", ["text,label", "Service 👎,negative", "message 3 about the app 😡,positive"])
    with pytest.raises(SuiteError) as info:
        init_suite("leak", write(tmp_path / "train.csv", lines[:14]), suites_dir=tmp_path, test_from=test)
    said = str(info.value)  # line 3, the emoji-less copy of train's message 3; not line 2, the other thumb
    assert "test.csv:3: input also in train.csv:5" in said and "contamination" in said and "test.csv:2" not in said


def test_an_agreed_test_file_with_repeated_inputs_says_which_lines_were_dropped(tmp_path):
    """`--test-from` keeps the agreed test set as it is, yet 23 rows became 20 with only an overall count."""
    rows = [f"message {i} about the app,{'positive' if i % 2 else 'negative'}" for i in range(12)]
    test = write(tmp_path / "test.csv", ["text,label", "the screen froze,negative", "I love it,positive",
                                         "The screen froze!,negative", "i love it ,positive"])
    result = init_suite("agreed", write(tmp_path / "train.csv", ["text,label", *rows]), suites_dir=tmp_path,
                        test_from=test)
    said = " ".join(result.notes)
    assert "test.csv repeats 2 input(s), dropped (lines 4, 5; the first copy kept): its test split holds " \
           "2 examples of its 4 rows." in said
    assert len(load_suite(str(result.path)).splits["test"]) == 2


def test_summaries_in_an_unspaced_script_are_long_answers_scored_by_rouge(tmp_path):
    """A 35-character Japanese summary counted one word (split on spaces), so init chose whole-answer exact match."""
    from harness.data.contract_choice import _default_metric, word_count

    summaries = ["東京で新しい駅が開業し、多くの人が初日に訪れた。", "大阪の祭りは雨のため一日延期された。",
                 "北海道で記録的な大雪が降り、交通が乱れた。"]
    assert word_count(summaries[0]) > 5 and word_count("東京") == 2 and word_count("a quick fox") == 3
    assert _default_metric(summaries)[0] == "rouge"
    assert _default_metric(["東京", "大阪", "札幌"])[0] == "exact"
