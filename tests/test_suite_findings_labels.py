"""Labels as a new user's data spells them, from a bring-your-own-data trial: labels the scorer cannot tell apart,
`get_weather` beside `GetWeather`, integer class ids with no names, one-element label lists, and GLUE's `sentence`
input. Each test writes a small real file and asserts on what init or validate wrote, printed or refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import printed

from harness.cli import main
from harness.core.errors import SuiteError
from harness.data.contract import label_lookup
from harness.data.stats_text import stats_text
from harness.data.suite_init import init_suite
from harness.data.suites import load_suite


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so messages name files as a user would type them (`data.csv:3`)."""
    monkeypatch.chdir(tmp_path)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([*lines, ""]), encoding="utf-8")
    return path


def label_suite(root: Path, labels: list[str], answers: list[str]) -> Path:
    """A label suite folder whose train, dev and test each hold one example per answer in `answers`."""
    root.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        rows = [{"input": f"{split} request {i}", "output": {"intent": a}} for i, a in enumerate(answers)]
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": root.name, "version": "1.0.0", "task": "classification", "instruction": "Name the intent.",
        "output": {"kind": "label", "key": "intent", "labels": labels},
        "scorers": ["format_compliance", "task_accuracy"]}))
    return root


# -- F6: labels equal after the fold the scorer uses ---------------------------------------------------------------

def test_labels_the_scorer_folds_together_are_refused_naming_them(tmp_path, capsys):
    labels = ["PlayMusic", "playmusic", " PlayMusic ", "GetWeather"]
    assert len(label_lookup(tuple(labels))) == 2  # what scoring would see: 4 labels listed, 2 told apart
    label_suite(tmp_path / "suites" / "case", labels, ["PlayMusic", "GetWeather"])
    assert main(["suite", "validate", "case"]) == 2
    out = " ".join(printed(capsys).split())
    assert ("suites/case/suite.yaml: `output.labels` lists labels that are equal once case, spacing and how accents "
            "are written are folded, as scoring compares them, so scores would count them as one label: 'PlayMusic', "
            "'playmusic', ' PlayMusic ' (apart in case). List each label once, in one spelling") in out
    assert "Traceback" not in out


def test_a_reference_that_folds_to_a_label_says_which_label_it_means(tmp_path):
    path = label_suite(tmp_path / "suites" / "near", ["PlayMusic", "GetWeather"], ["PlayMusic", "GetWeather"])
    test = path / "test.jsonl"
    test.write_text(test.read_text() + json.dumps({"input": "loud please", "output": {"intent": "playmusic"}}) + "\n"
                    + json.dumps({"input": "weather now", "output": {"intent": "get_weather"}}) + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert ("suites/near/test.jsonl:3: the reference label 'playmusic' is not in `output.labels`: did you mean "
            "'PlayMusic' (apart in case)? Scoring reads them as one label; write the answer as 'PlayMusic'") in message
    assert ("suites/near/test.jsonl:4: the reference label 'get_weather' is not in `output.labels`: did you mean "
            "'GetWeather'?") in message


def test_labels_apart_in_how_an_accent_is_written_or_a_stray_space_say_so_and_where_to_fix_it(tmp_path, capsys):
    """Two spellings of `réclamation` printed alike, blamed on "case and spacing"; and a stray space in one label of
    suite.yaml had validate ask for that space on every answer of it."""
    nfd = "re\u0301clamation"
    label_suite(tmp_path / "suites" / "accents", ["réclamation", nfd, "配送"], ["réclamation", "配送"])
    assert main(["suite", "validate", "accents"]) == 2
    out = " ".join(printed(capsys).split())
    assert ("'réclamation', 're\\u0301clamation' (apart in how an accent is written (Unicode NFD: a letter and a "
            "combining mark; NFC: one character))") in out
    path = label_suite(tmp_path / "suites" / "spaced", ["réclamation", " 配送 "], ["réclamation", "配送"])
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    assert ("the reference label '配送' is not in `output.labels`, which writes it ' 配送 ' (apart in spacing); write "
            "it in `output.labels` as '配送', as the answers should be") in str(info.value)
    train = path / "train.jsonl"
    train.write_text(train.read_text() + json.dumps({"input": "where is it", "output": {"intent": "配送"}}) + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    assert str(info.value).startswith("suites/spaced: 4 problem(s), in 3 group(s):")  # two lines in one


def test_validate_from_inside_the_suite_names_its_folder(tmp_path, capsys, monkeypatch):
    path = label_suite(tmp_path / "suites" / "inside", ["a", "b"], ["a", "b"])
    monkeypatch.chdir(path)
    assert main(["suite", "validate", "."]) == 0
    assert "the folder is named" not in printed(capsys)  # it is named as the suite is


# -- F2: spellings that differ in word breaks ----------------------------------------------------------------------

def test_camel_and_snake_case_and_a_space_are_warned_about_in_init_and_stats(tmp_path):
    spelled = ["GetWeather", "get_weather", "Play Music", "PlayMusic", "BookRestaurant"]
    lines = ["text,label", *(f"request {n}-{i},{label}" for n, label in enumerate(spelled) for i in range(3))]
    result = init_suite("spelled", write(tmp_path / "spelled.csv", lines), suites_dir=tmp_path / "suites")
    groups = "`GetWeather` (3), `get_weather` (3); `Play Music` (3), `PlayMusic` (3)"
    assert any(note.startswith("warning: labels in spelled.csv that differ only") and groups in note
               for note in result.notes)
    assert groups in stats_text(load_suite(str(result.path)))


def test_the_merge_note_counts_what_it_lists(tmp_path):
    spellings = ["PlayMusic"] * 4 + ["playmusic"] * 3 + ["PLAYMUSIC"] * 3 + ["GetWeather"] * 3
    lines = ["text,label", *(f"request {i},{label}" for i, label in enumerate(spellings))]
    result = init_suite("merged", write(tmp_path / "merged.csv", lines), suites_dir=tmp_path / "suites")
    note = next(note for note in result.notes if note.startswith("labels:"))
    assert note.startswith("labels: respelled 2 variants as 1 label (case, spacing and how accents are written ignored")
    assert "'playmusic' (3) -> 'PlayMusic' (apart in case), 'PLAYMUSIC' (3) -> 'PlayMusic' (apart in case)." in note
    spelled = ["re\u0301clamation"] * 4 + ["réclamation"] * 6 + ["livraison"] * 6
    nfd = write(tmp_path / "accents.csv", ["text,label", *(f"message {i},{label}" for i, label in enumerate(spelled))])
    note = next(n for n in init_suite("accents", nfd, suites_dir=tmp_path / "suites").notes if n.startswith("labels:"))
    assert ("'re\\u0301clamation' (4) -> 'réclamation' (apart in how an accent is written (Unicode NFD: a letter and "
            "a combining mark; NFC: one character))") in note


# -- F1: integer class ids -----------------------------------------------------------------------------------------

NAMES = ["billing", "shipping", "refund"]


def int_label_file(tmp_path: Path) -> Path:
    return write(tmp_path / "ids.csv", ["text,label", *(f"ticket number {i},{i % 3}" for i in range(12))])


def test_integer_labels_without_names_get_a_warning_that_says_why_and_how(tmp_path, capsys):
    assert main(["suite", "init", "ids", "--from", str(int_label_file(tmp_path))]) == 0
    out = " ".join(printed(capsys).split())
    assert ("warning: every label is an integer (0, 1, 2), so prompting trials are asked to answer with an id that "
            "tells a model nothing, and fine-tuning wins the comparison by construction. If the ids stand for "
            "classes, give their names with --label-names FILE") in out


@pytest.mark.parametrize("layout", ["list", "object", "hf", "text"])
def test_label_names_map_ids_to_names(tmp_path, capsys, layout):
    files = {"list": ("names.json", json.dumps(NAMES)),
             "object": ("names.json", json.dumps({str(i): n for i, n in enumerate(NAMES)})),
             "hf": ("names.json", json.dumps({"names": NAMES})),
             "text": ("names.txt", "\n".join(NAMES) + "\n")}
    name, text = files[layout]
    (tmp_path / name).write_text(text)
    assert main(["suite", "init", "named", "--from", str(int_label_file(tmp_path)), "--label-names", name]) == 0
    out = " ".join(printed(capsys).split())
    assert f"labels: named from {name}: 0 -> `billing`, 1 -> `shipping`, 2 -> `refund`." in out
    assert "every label is an integer" not in out
    suite = load_suite("named")
    assert suite.contract.labels == ("billing", "refund", "shipping")
    assert json.loads(suite.splits["train"][0].target) == {"label": NAMES[int(suite.splits["train"][0].input[-1]) % 3]}
    meta = yaml.safe_load((tmp_path / "suites" / "named" / "suite.yaml").read_text())
    assert meta["source"]["label_names"]["file"] == name


def test_a_label_id_the_names_file_lacks_is_refused_with_its_line(tmp_path):
    (tmp_path / "names.json").write_text(json.dumps(NAMES[:2]))
    with pytest.raises(SuiteError) as info:
        init_suite("x", int_label_file(tmp_path), label_names=tmp_path / "names.json", suites_dir=tmp_path / "s")
    assert ("ids.csv: lines 4, 7, 10, 13: label id 2 has no name in names.json (it names ids 0 and 1); add its "
            "name there or fix the label.") in str(info.value)


def test_label_names_that_fold_together_are_refused(tmp_path):
    (tmp_path / "names.txt").write_text("Billing\nbilling\nrefund\n")
    with pytest.raises(SuiteError, match=r"names.txt: names equal once case and spacing are folded, which scoring "
                                         r"reads as one label: 'Billing', 'billing'; give each id a distinct name"):
        init_suite("x", int_label_file(tmp_path), label_names=tmp_path / "names.txt", suites_dir=tmp_path / "s")


# -- F4: a list-valued label field ---------------------------------------------------------------------------------

def test_one_element_label_lists_are_read_as_their_label_and_said_once(tmp_path):
    rows = [{"text": f"request {i}", "labels": [["PlayMusic", "GetWeather"][i % 2]]} for i in range(12)]
    (tmp_path / "lists.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = init_suite("lists", tmp_path / "lists.jsonl", None, "labels", suites_dir=tmp_path / "suites")
    assert load_suite(str(result.path)).contract.labels == ("GetWeather", "PlayMusic")
    said = [note for note in result.notes if "one-element list" in note]
    assert said == ["answers: `labels` holds a one-element list on 12 row(s); each is read as its element. "
                    "Multi-label answers (several in one list) are not supported."]


def test_a_multi_label_row_is_refused_as_a_list_not_as_empty(tmp_path):
    rows = [{"text": f"request {i}", "labels": ["PlayMusic"]} for i in range(6)]
    rows[2]["labels"] = ["PlayMusic", "GetWeather"]
    rows[4]["labels"] = []
    (tmp_path / "multi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SuiteError) as info:
        init_suite("multi", tmp_path / "multi.jsonl", None, "labels", suites_dir=tmp_path / "suites")
    message = str(info.value)
    assert ("multi.jsonl:3: `labels` is a list of several values: multi-label answers are not supported, so give "
            "each row one label") in message
    assert "multi.jsonl:5: `labels` is an empty list; give the row its label or answer, or remove the row." in message
    assert "is empty or not text" not in message


# -- F5: input fields guessed by their common names ----------------------------------------------------------------

@pytest.mark.parametrize("field", ["sentence", "query", "utterance", "question"])
def test_common_input_field_names_are_guessed(tmp_path, field):
    lines = [f"id,{field},label", *(f"{i},request {i},{['a', 'b'][i % 2]}" for i in range(12))]
    result = init_suite("guessed", write(tmp_path / "g.csv", lines), suites_dir=tmp_path / "suites")
    assert result.notes[0] == f"format: CSV fields: input `{field}`, answer `label`"
