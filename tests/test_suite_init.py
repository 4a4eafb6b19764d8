"""`harness suite init`: each accepted format, each refusal, grounding, text contracts and the CLI.

Every suite built here is loaded with `load_suite` (init validates before publishing, and the tests load again), and
the text suites are scored with the real scorers, so a contract init writes is one the sweep can score.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import printed

from harness.cli import main
from harness.core.errors import SuiteError
from harness.core.paths import bundled
from harness.data import suite_init as suite_init_mod
from harness.data.contract import OutputContract, parse_output, parse_target
from harness.data.suite_init import init_suite
from harness.data.suites import Suite, load_suite, suite_stats
from harness.evaluation.scorers import ScoredCase, score_cases

TEXT_SCORERS = ["format_compliance", "hallucination_rate", "task_accuracy", "rouge_l"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so messages name files as a user would type them (`data.csv:3`) and can be compared whole."""
    monkeypatch.chdir(tmp_path)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path) -> Path:
    lines = ["text,category"]
    for i in range(20):
        lines.append(f"message number {i} about cards,card")
        lines.append(f'"message number {i}, about loans",loan')
    lines += ["MESSAGE number 3 about   cards,card", "  message number 3 about cards  ,loan"]  # 2 duplicates
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build(tmp_path: Path, source: Path, *args, **kwargs) -> tuple[Suite, dict, list[str]]:
    """Run init into tmp_path/suites and return the loaded suite, its suite.yaml and init's notes."""
    result = init_suite(source.stem, source, *args, suites_dir=tmp_path / "suites", **kwargs)
    meta = yaml.safe_load((result.path / "suite.yaml").read_text(encoding="utf-8"))
    assert meta["source"]["detected"] == result.notes  # the notes printed are kept in suite.yaml
    return load_suite(str(result.path)), meta, result.notes


def examples(suite: Suite):
    return [ex for split in ("train", "dev", "test") for ex in suite.splits[split]]


def refusal(tmp_path: Path, source: Path, *args, **kwargs) -> str:
    with pytest.raises(SuiteError) as info:
        init_suite("refused", source, *args, suites_dir=tmp_path / "suites", **kwargs)
    assert not (tmp_path / "suites" / "refused").exists()
    assert not (tmp_path / "suites").exists() or not list((tmp_path / "suites").iterdir())  # no temp dir left
    return str(info.value)


def score(suite: Suite, outputs: list[str]) -> dict[str, list[float | None]]:
    """Score made-up outputs, each as an answer to the suite's first test example, with every scorer that applies."""
    ex = suite.splits["test"][0]
    target = parse_target(ex.target, suite.contract)
    cases = [ScoredCase(ex, out, parse_output(out, suite.contract), target) for out in outputs]
    return score_cases(cases, suite.contract, TEXT_SCORERS)[0]


# ---------------------------------------------------------------------------------------------- CSV/JSONL


def test_csv_label_suite_dedupes_and_stratifies(tmp_path):
    result = init_suite("mine", write_csv(tmp_path / "data.csv"), suites_dir=tmp_path / "suites")
    assert result.path == tmp_path / "suites" / "mine" and result.dropped == {"duplicates": 2}
    suite = load_suite(str(result.path))
    assert suite.contract.kind == "label" and suite.contract.key == "category"
    assert suite.contract.labels == ("card", "loan")
    assert [len(suite.splits[s]) for s in ("train", "dev", "test")] == [32, 4, 4]
    for split in ("dev", "test"):  # stratified: both labels in each small split
        assert suite_stats(suite)[split]["labels"] == {"card": 2, "loan": 2}
    meta = yaml.safe_load((result.path / "suite.yaml").read_text(encoding="utf-8"))
    assert meta["cleaning"]["dropped"]["duplicates"] == 2
    assert meta["cleaning"]["duplicates_with_a_different_answer"] == 1
    assert meta["source"]["format"] == "fields" and meta["source"]["fields"] == {"input": "text", "answer": "category"}
    assert result.notes[0] == "format: CSV fields: input `text`, answer `category`"
    assert result.notes[1].startswith('contract: label, answered as {"category": LABEL}, 2 labels (2 distinct values')
    assert sorted(p.name for p in (tmp_path / "suites").iterdir()) == ["mine"]  # no temp dir left behind


def test_split_is_seeded(tmp_path):
    source = write_csv(tmp_path / "data.csv")
    a = init_suite("a", source, seed=0, suites_dir=tmp_path).path
    b = init_suite("b", source, seed=0, suites_dir=tmp_path).path
    c = init_suite("c", source, seed=1, suites_dir=tmp_path).path
    for split in ("train.jsonl", "dev.jsonl", "test.jsonl"):
        assert (a / split).read_bytes() == (b / split).read_bytes()
    assert (a / "test.jsonl").read_bytes() != (c / "test.jsonl").read_bytes()


def test_refuses_to_overwrite(tmp_path):
    source = write_csv(tmp_path / "data.csv")
    init_suite("mine", source, suites_dir=tmp_path)
    before = (tmp_path / "mine" / "train.jsonl").read_bytes()
    with pytest.raises(SuiteError, match="already exists; refusing to overwrite"):
        init_suite("mine", source, seed=5, suites_dir=tmp_path)
    assert (tmp_path / "mine" / "train.jsonl").read_bytes() == before


def test_tiny_data_puts_every_label_in_every_split(tmp_path):
    source = tmp_path / "tiny.csv"
    source.write_text("text,intent\nhello,greet\nbye,leave\nhi,greet\nsee you,leave\nhey,greet\nciao,leave\n")
    suite, meta, _ = build(tmp_path, source)
    assert {s: suite_stats(suite)[s]["labels"] for s in ("train", "dev", "test")} == {
        s: {"greet": 1, "leave": 1} for s in ("train", "dev", "test")
    }
    assert 'version: "1.0.0"' in (tmp_path / "suites" / "tiny" / "suite.yaml").read_text()


def test_csv_with_a_bom_and_a_free_text_column(tmp_path):
    source = tmp_path / "qa.csv"
    rows = [f"What is the capital of country {i}?,The capital of country {i} is City {i}." for i in range(12)]
    source.write_text("\ufeffquestion,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    suite, meta, notes = build(tmp_path, source)
    assert notes[0] == "format: CSV fields: input `question`, answer `answer`"  # not "\ufeffquestion"
    assert suite.contract == OutputContract(kind="text", whole_output=True)
    assert meta["output"] == {"kind": "text", "whole_output": True, "numeric": False}
    assert notes[1].startswith("contract: text, metric rouge (12 distinct values in 12 answers, so free text; "
                               "answers are long (median 8 words)")
    assert suite.scorers == ("format_compliance", "task_accuracy", "rouge_l") and suite.task == "generation"


def test_csv_with_json_answers_in_a_column(tmp_path):
    source = tmp_path / "ext.csv"
    cell = '"{{""city"": ""Rome"", ""day"": ""day {}""}}"'  # a JSON object in a CSV cell, quotes doubled
    lines = ["text,output"] + [f"fly to Rome on day {i}," + cell.format(i) for i in range(10)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    suite, meta, notes = build(tmp_path, source)
    assert suite.contract.kind == "json" and suite.contract.fields == ("city", "day") and suite.contract.grounded
    assert json.loads(suite.splits["train"][0].target)["city"] == "Rome"


def test_plain_jsonl_with_text_and_numeric_labels(tmp_path):
    rows = [{"text": f"review {i} was {'great' if i % 2 else 'awful'}", "label": i % 2} for i in range(20)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "reviews.jsonl", rows))
    assert notes[0] == "format: JSONL fields: input `text`, answer `label`"
    assert suite.contract.kind == "label" and suite.contract.labels == ("0", "1")


def test_jsonl_with_json_object_answers_is_detected(tmp_path):
    rows = [{"utterance": f"fly to city{i}", "output": {"city": f"city{i}", "n": i % 3}} for i in range(30)]
    rows.append({"utterance": "Fly to  CITY0", "output": {"city": "CITY0"}})
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "slots.jsonl", rows))
    assert suite.contract.kind == "json" and suite.contract.fields == ("city", "n")
    assert suite.contract.schema["properties"] == {"city": {"type": "string"}, "n": {"type": "integer"}}
    assert "field_f1" in suite.scorers and suite.task == "extraction"
    assert [len(suite.splits[s]) for s in ("train", "dev", "test")] == [24, 3, 3]
    assert meta["cleaning"]["dropped"]["duplicates"] == 1
    assert notes[1] == "contract: json (every answer is a JSON object)"


def test_output_field_names_the_answer_column(tmp_path):
    rows = [{"utterance": f"fly to city{i}", "slots": {"city": f"city{i}"}, "output": "ignored"} for i in range(10)]
    suite, _, _ = build(tmp_path, write_jsonl(tmp_path / "named.jsonl", rows), None, None, "slots")
    assert suite.contract.kind == "json" and suite.contract.fields == ("city",)


def test_one_key_objects_with_few_values_become_a_label_suite(tmp_path):
    """The harness's own label format ({"input", "output": {"intent": ...}}) reads back as a label suite."""
    rows = [{"input": f"message {i}", "output": {"intent": "card" if i % 2 else "loan"}} for i in range(12)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "own.jsonl", rows))
    assert suite.contract.kind == "label" and suite.contract.key == "intent"
    assert suite.contract.labels == ("card", "loan")
    assert "every answer is {'intent': ...} with few distinct values" in notes[1]


def test_trl_prompt_completion_reads_as_fields(tmp_path):
    rows = [{"prompt": f"Spell {i} in words.", "completion": f"number {i} spelled out"} for i in range(10)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "pc.jsonl", rows))
    assert notes[0] == "format: JSONL fields: input `prompt`, answer `completion`"
    assert suite.contract.kind == "text" and examples(suite)[0].target == "number 0 spelled out"


def test_labels_are_spelled_one_way(tmp_path):
    rows = [{"text": f"message {i}", "label": ["Card", "card ", "LOAN", "loan"][i % 4]} for i in range(12)]
    suite, _, _ = build(tmp_path, write_jsonl(tmp_path / "case.jsonl", rows))
    assert suite.contract.labels == ("Card", "LOAN")  # equally frequent spellings: the first seen, compared folded


def test_merged_label_spellings_are_reported(tmp_path):
    source = tmp_path / "case.csv"
    spellings = ["billing", "Billing", "Billing ", "BILLING", "Billing", "shipping", "Shipping", "shipping"]
    source.write_text("text,label\n" + "".join(f"ticket {i},{spellings[i % 8]}\n" for i in range(24)))
    suite, meta, notes = build(tmp_path, source)
    assert suite.contract.labels == ("Billing", "shipping")  # each label's most frequent spelling
    assert notes[2] == (  # as many variants counted as listed
        "labels: respelled 3 variants as 2 labels (case, spacing and how accents are written ignored; each label "
        "keeps its most frequent spelling): 'billing' (3) -> 'Billing' (apart in case), 'BILLING' (3) -> 'Billing' "
        "(apart in case), 'Shipping' (3) -> 'shipping' (apart in case). If some are different labels, rename them in "
        "the data."
    )
    assert meta["source"]["detected"][2] == notes[2]


def test_boolean_labels_read_as_their_json_text(tmp_path):
    rows = [{"text": f"review {i} was {'great' if i % 2 else 'awful'}", "label": bool(i % 2)} for i in range(20)]
    suite, _, _ = build(tmp_path, write_jsonl(tmp_path / "bools.jsonl", rows))
    assert suite.contract.kind == "label" and suite.contract.labels == ("false", "true")


# ------------------------------------------------------------------------------------------------- chat


def chat(user: str | list[str], answer, system: str | None = "You answer support questions.") -> dict:
    users = [user] if isinstance(user, str) else user
    messages = [{"role": "system", "content": system}] if system is not None else []
    for i, text in enumerate(users):
        messages.append({"role": "user", "content": text})
        if i < len(users) - 1:
            messages.append({"role": "assistant", "content": f"earlier reply {i}"})
    messages.append({"role": "assistant", "content": answer})
    return {"messages": messages}


def test_chat_with_one_system_message_makes_it_the_suite_instruction(tmp_path):
    rows = [chat(f"Where is parcel {i}?", f"Parcel {i} left the depot this morning and arrives tomorrow.")
            for i in range(10)]
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "support.jsonl", rows))
    assert notes[0].startswith("format: chat `messages` JSONL (OpenAI fine-tuning / TRL)")
    assert suite.instruction == "You answer support questions."
    assert "every line has the same system message; it is the suite's instruction." in notes[-1]
    assert all(ex.instruction is None for ex in examples(suite))  # not repeated per example
    assert not any("instruction" in line for line in (tmp_path / "suites/support/train.jsonl").read_text().split("\n"))
    assert examples(suite)[0].input == "Where is parcel 0?"
    assert meta["source"]["format"] == "chat" and "fields" not in meta["source"]


def test_multi_turn_chat_keeps_earlier_turns_as_a_transcript(tmp_path):
    rows = [chat([f"I ordered item {i}.", "When does it arrive?"], f"Item {i} arrives on day {i}.",
                 system=None if i % 3 == 0 else f"You are agent {i % 2}.") for i in range(12)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "multi.jsonl", rows))
    first = next(ex for ex in examples(suite) if "item 0." in ex.input)
    assert first.input == "User: I ordered item 0.\n\nAssistant: earlier reply 0\n\nUser: When does it arrive?"
    assert first.target == "Item 0 arrives on day 0." and first.instruction is None  # line 1 had no system
    assert {ex.instruction for ex in examples(suite)} == {None, "You are agent 0.", "You are agent 1."}
    assert "8 of 12 lines have their own system message, kept per example" in notes[-1]
    assert suite.instruction == "Read the input and answer it."


def test_chat_with_json_answers(tmp_path):
    rows = [chat(f"Book a table for {i} in Rome", json.dumps({"city": "Rome", "people": i})) for i in range(10)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "book.jsonl", rows))
    assert suite.contract.kind == "json" and suite.contract.grounded
    assert "grounded: true" in notes[2]


# ----------------------------------------------------------------------------------------------- alpaca


def test_alpaca_with_empty_inputs_and_varying_instructions(tmp_path):
    rows = [{"instruction": f"Name the capital of country {i}.", "input": "", "output": f"City {i}"}
            for i in range(6)]
    rows += [{"instruction": "Translate to French.", "input": f"word {i}", "output": f"mot {i}"} for i in range(6)]
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "alpaca.jsonl", rows))
    assert notes[0] == "format: alpaca JSONL (`instruction` / `input` / `output`)"
    by_target = {ex.target: ex for ex in examples(suite)}
    assert by_target["City 0"].input == "Name the capital of country 0." and by_target["City 0"].instruction is None
    assert by_target["mot 0"].input == "word 0" and by_target["mot 0"].instruction == "Translate to French."
    assert "6 of 12 lines have their own `instruction`, kept per example" in notes[-1]
    assert suite.contract == OutputContract(kind="text", whole_output=True)  # short answers: exact
    assert "metric exact" in notes[1] and suite.scorers == ("format_compliance", "task_accuracy")


def test_alpaca_with_one_instruction_makes_it_the_suite_instruction(tmp_path):
    rows = [{"instruction": "Classify the sentiment.", "input": f"review {i}", "output": ["pos", "neg"][i % 2]}
            for i in range(10)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "sentiment.jsonl", rows))
    assert suite.instruction == "Classify the sentiment." and suite.contract.kind == "label"
    assert suite.contract.key == "label" and all(ex.instruction is None for ex in examples(suite))


# --------------------------------------------------------------------------------------------- refusals


def test_a_label_file_too_small_for_its_labels_says_so(tmp_path):
    labels = ["billing", "account", "account", "tech support", "billing", "account", "shipping"]
    five = tmp_path / "five.csv"
    five.write_text("text,label\n" + "".join(f"ticket {i},{label}\n" for i, label in enumerate(labels[:5])))
    assert refusal(tmp_path, five) == (
        "five.csv: 5 rows, too few for a label suite: it needs 3 examples of each label (one for each of train, dev "
        "and test), so at least 9 rows for the 3 labels in `label`. Add examples; if `label` holds free text, not "
        "labels, pass --metric exact or --metric rouge instead."
    )
    seven = tmp_path / "seven.csv"  # enough rows for some label suite, not for these four labels
    seven.write_text("text,label\n" + "".join(f"ticket {i},{label}\n" for i, label in enumerate(labels)))
    assert refusal(tmp_path, seven).endswith(
        "If they are labels, there are too few rows: a label suite needs 3 examples of each label (one for each of "
        "train, dev and test), so at least 12 rows for 4 labels."
    )


def test_free_text_in_a_label_field_is_refused(tmp_path):
    rows = [{"text": f"question {i}", "label": f"a long free answer number {i}"} for i in range(10)]
    message = refusal(tmp_path, write_jsonl(tmp_path / "free.jsonl", rows))
    assert message == (
        "free.jsonl: 10 distinct values in 10 answers of `label`: that is free text, not a label. Build a text suite "
        "instead: --metric exact (the whole answer must match), --metric rouge (partial credit for long answers) or "
        "--metric final-number (answers ending `#### <number>`)."
    )
    # the same file is accepted as text when asked
    suite, _, notes = build(tmp_path, tmp_path / "free.jsonl", None, None, "label", metric="exact")
    assert suite.contract.kind == "text" and notes[1].startswith("contract: text, metric exact (--metric exact)")


def test_rare_labels_are_refused_or_dropped_with_the_flag(tmp_path):
    rows = [{"text": f"message {i}", "label": "common" if i < 10 else "usual"} for i in range(20)]
    rows += [{"text": "odd one", "label": "rare"}, {"text": "odd two", "label": "rare"}, {"text": "x", "label": "once"}]
    source = write_jsonl(tmp_path / "rare.jsonl", rows)
    message = refusal(tmp_path, source)
    assert message == (
        "rare.jsonl: 2 label(s) with fewer than 3 examples, too few to put one in each of train, dev and test: "
        "'once' (1), 'rare' (2). Merge them into related labels, add examples, or pass --drop-rare-labels to leave "
        "them out (the count is recorded in suite.yaml)."
    )
    suite, meta, _ = build(tmp_path, source, drop_rare_labels=True)
    assert suite.contract.labels == ("common", "usual")
    assert meta["cleaning"]["dropped"] == {"duplicates": 0, "rare_labels": 3}
    assert meta["cleaning"]["rare_labels_dropped"] == {"once": 1, "rare": 2}


def test_a_single_label_is_refused(tmp_path):
    rows = [{"text": f"message {i}", "label": "only"} for i in range(6)] + [{"text": "x", "label": "rare"}]
    message = refusal(tmp_path, write_jsonl(tmp_path / "one.jsonl", rows), drop_rare_labels=True)
    assert "labels left with enough examples: 'only'; a classifier needs at least two" in message


@pytest.mark.parametrize("messages,problem", [
    ([{"role": "system", "content": " "}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
     "the system turn (message 1) is empty; fill it in or remove the line."),
    ([{"role": "user", "content": ""}, {"role": "assistant", "content": "yo"}],
     "the user turn (message 1) is empty; fill it in or remove the line."),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "  "},
      {"role": "assistant", "content": "b"}],
     "the user turn (message 3) is empty; fill it in or remove the line."),
    ([{"role": "user", "content": "hi"}],
     "the last two turns must be a user turn and the assistant's answer (got roles ['user'])."),
    ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}, {"role": "assistant", "content": "a"}],
     "message 2 has role 'tool'; use an optional first system turn, then user and assistant."),
    ([{"role": "user", "content": [{"type": "text", "text": "hi"}]}, {"role": "assistant", "content": "a"}],
     "the user turn (message 1) has no text `content`; write it as a string."),
])
def test_bad_chat_turns_name_the_line(tmp_path, messages, problem):
    rows = [chat(f"question {i}", f"answer {i}") for i in range(5)]
    rows.insert(2, {"messages": messages})
    message = refusal(tmp_path, write_jsonl(tmp_path / "chat.jsonl", rows))
    assert message == f"chat.jsonl: 1 problem(s):\n  - chat.jsonl:3: {problem}"


def test_alpaca_empty_input_under_one_shared_instruction_is_refused(tmp_path):
    rows = [{"instruction": "Summarise.", "input": f"text {i}", "output": f"summary {i}"} for i in range(5)]
    rows[3]["input"] = ""
    message = refusal(tmp_path, write_jsonl(tmp_path / "same.jsonl", rows))
    assert message == ("same.jsonl: 1 problem(s):\n  - same.jsonl:4: `input` is empty and every line has the same "
                       "`instruction`, so this line asks nothing of its own; fill in `input` or remove the line.")


def test_mixed_answer_kinds_are_refused(tmp_path):
    rows = [{"text": f"t{i}", "output": {"k": f"t{i}"}} for i in range(4)] + [{"text": "t9", "output": "plain"}]
    message = refusal(tmp_path, write_jsonl(tmp_path / "mixed.jsonl", rows))
    assert message == ("mixed.jsonl:5: the answer is text, but the answer on line 1 is a JSON object; make every "
                            "answer a JSON object or every answer text.")


def test_flag_conflicts_are_refused(tmp_path):
    source = write_csv(tmp_path / "data.csv")
    with pytest.raises(SuiteError, match="--metric builds a free-text suite and --label-field a label suite"):
        init_suite("x", source, None, "category", None, metric="exact", suites_dir=tmp_path)
    rows = [{"text": f"t{i}", "output": {"k": f"t{i}"}} for i in range(4)]
    with pytest.raises(SuiteError, match="the answers are JSON objects; --metric rouge needs text answers"):
        init_suite("x", write_jsonl(tmp_path / "obj.jsonl", rows), metric="rouge", suites_dir=tmp_path)
    with pytest.raises(SuiteError, match="`output` holds JSON objects, not labels; pass --output-field output"):
        init_suite("x", tmp_path / "obj.jsonl", None, "output", None, suites_dir=tmp_path)


def test_input_errors(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(SuiteError, match=r"latin.csv:2: not UTF-8 .*iconv"):
        init_suite("x", latin, suites_dir=tmp_path)
    odd = tmp_path / "odd.csv"
    odd.write_text("note,tag\nhello,a\n", encoding="utf-8")
    with pytest.raises(SuiteError, match=r"cannot guess the input field.*--input-field"):
        init_suite("x", odd, suites_dir=tmp_path)
    with pytest.raises(SuiteError, match=r"cannot guess the answer field.*--label-field \(labels\) or --output-field"):
        init_suite("x", odd, "note", suites_dir=tmp_path)
    with pytest.raises(SuiteError, match=r"no field 'nope'; --label-field must be one of"):
        init_suite("x", odd, "note", "nope", None, suites_dir=tmp_path)
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(SuiteError, match="unsupported file type '.xlsx'; convert it to .jsonl or .csv"):
        init_suite("x", tmp_path / "data.xlsx", suites_dir=tmp_path)
    (tmp_path / "data.json").write_text("[]")
    with pytest.raises(SuiteError, match=r"a JSON array converts with `jq -c '\.\[\]' data.json > data.jsonl`"):
        init_suite("x", tmp_path / "data.json", suites_dir=tmp_path)
    with pytest.raises(SuiteError, match="file not found"):
        init_suite("x", tmp_path / "missing.csv", suites_dir=tmp_path)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(SuiteError, match="^empty.jsonl: the file has no lines; write one JSON object per line.$"):
        init_suite("x", tmp_path / "empty.jsonl", suites_dir=tmp_path)
    with pytest.raises(SuiteError, match="not allowed"):
        init_suite("general", odd, "note", "tag", None, suites_dir=tmp_path)
    with pytest.raises(SuiteError, match="only 1 distinct example"):
        init_suite("x", odd, "note", "tag", None, suites_dir=tmp_path)
    with pytest.raises(SuiteError, match="--metric 'bleu' is not one of exact, rouge, final-number"):
        init_suite("x", odd, metric="bleu", suites_dir=tmp_path)
    assert not (tmp_path / "x").exists()


def test_from_a_directory_says_it_is_one(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(SuiteError) as info:
        init_suite("x", tmp_path / "data", suites_dir=tmp_path / "suites")
    assert str(info.value) == ("data is a directory; --from takes one data file: a .jsonl or .csv file (this folder "
                               "has none).")
    write_csv(tmp_path / "data" / "tickets.csv")
    with pytest.raises(SuiteError) as info:
        init_suite("x", tmp_path / "data", suites_dir=tmp_path / "suites")
    assert str(info.value) == "data is a directory; --from takes one data file: one of data/tickets.csv."


def test_a_bundled_suite_name_is_warned_about(tmp_path, capsys):
    source = write_csv(tmp_path / "tickets.csv")
    said = (f"warning: a bundled suite is also called 'ticket-triage' ({bundled('suites') / 'ticket-triage'}); from "
            f"this directory `suite: ticket-triage` means ")
    result = init_suite("ticket-triage", source, suites_dir=tmp_path / "elsewhere")
    assert result.notes[-1] == said + ("the bundled suite, not this one; name this one by its path, "
                                       "elsewhere/ticket-triage.")
    suites = tmp_path / "suites"  # ./suites is looked in before the bundled suites
    assert main(["suite", "init", "ticket-triage", "--from", str(source), "--suites-dir", str(suites)]) == 0
    shadowed = ("this new suite, not the bundled one; unless you mean that, delete suites/ticket-triage and choose "
                "another name.")
    assert said + shadowed in capsys.readouterr().out.replace("\n", " ")
    meta = yaml.safe_load((suites / "ticket-triage" / "suite.yaml").read_text(encoding="utf-8"))
    assert not any("warning" in note for note in meta["source"]["detected"])  # about this machine, not the data
    result = init_suite("ticket-triage", source, suites_dir=tmp_path / "other")
    assert result.notes[-1] == said + "suites/ticket-triage; name this one by its path, other/ticket-triage."
    assert not any("warning" in note for note in init_suite("mine", source, suites_dir=suites).notes)


def test_leaves_nothing_when_validation_fails(tmp_path, monkeypatch):
    def fail(_):
        raise SuiteError("boom")

    monkeypatch.setattr(suite_init_mod, "load_suite", fail)
    with pytest.raises(SuiteError, match="boom"):
        init_suite("mine", write_csv(tmp_path / "data.csv"), suites_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()  # nor the folder it made to hold the suite
    (tmp_path / "kept").mkdir()
    with pytest.raises(SuiteError, match="boom"):
        init_suite("mine", write_csv(tmp_path / "data.csv"), suites_dir=tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir()) == []  # a folder that was there stays


# ------------------------------------------------------------------------------------------- grounding


def test_grounded_when_every_string_value_occurs_in_its_input(tmp_path):
    rows = [{"text": f"Fly to  ROME on day {i}", "output": {"city": "rome", "days": [f"day {i}"], "n": i}}
            for i in range(10)]
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "on.jsonl", rows))
    assert suite.contract.grounded and meta["output"]["grounded"] is True  # compared folded, lists included
    assert notes[2] == ("grounded: true: every string value in the answers occurs in its input, so a value a model "
                        "invents counts as hallucinated.")
    ex = suite.splits["test"][0]
    invented = json.dumps({"city": "Paris", "days": [], "n": 0})  # every key is in every answer, so required
    cases = [ScoredCase(ex, out, parse_output(out, suite.contract), parse_target(ex.target, suite.contract))
             for out in (ex.target, invented)]
    assert score_cases(cases, suite.contract, ["hallucination_rate"])[0]["hallucination_rate"] == [0.0, 1.0]


def test_not_grounded_when_a_value_is_not_in_its_input(tmp_path):
    rows = [{"text": f"fly to rome on day {i}", "output": {"city": "Rome", "day": f"day {i}"}} for i in range(10)]
    rows[6]["output"]["city"] = "Roma"
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "some.jsonl", rows), None, None, "output")
    assert suite.contract.grounded_keys == ("day",) and meta["output"]["grounded"] == ["day"]  # copied in every answer
    assert notes[2].startswith("grounded: [day]: line 7: 'Roma' does not occur in its input, so only the values of "
                               "day, each written in its input in every answer, are checked against it")
    rows[3]["output"]["day"] = "tuesday"
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "off.jsonl", rows), None, None, "output")
    assert not suite.contract.grounded and meta["output"]["grounded"] is False
    assert notes[2].startswith("grounded: false: line 4: 'tuesday' does not occur in its input, so values cannot be "
                               "checked against the input")
    numbers = [{"text": f"t{i}", "output": {"n": i}} for i in range(10)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "numbers.jsonl", numbers))
    assert not suite.contract.grounded and "no string values" in notes[2]


# ---------------------------------------------------------------------------------------- text contracts


def test_exact_metric_compares_the_whole_answer(tmp_path):
    rows = [{"question": f"Capital of country {i}?", "answer": f"City {i}"} for i in range(20)]
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "capitals.jsonl", rows), metric="exact")
    assert meta["output"] == {"kind": "text", "whole_output": True, "numeric": False}
    assert "task_accuracy compares the whole answer after folding case and whitespace" in notes[2]
    target = suite.splits["test"][0].target
    values = score(suite, [f"  {target.upper()} ", "Somewhere else", ""])
    assert values["task_accuracy"][:3] == [1.0, 0.0, 0.0]
    assert values["format_compliance"][:3] == [1.0, 1.0, 0.0]  # an empty output has no answer at all
    assert values["hallucination_rate"] == [None] * 3  # not defined for free text
    assert values["rouge_l"][:2] == [1.0, 0.0]  # not in this suite's scorers, but it would compare whole answers


def test_exact_metric_on_numbers_compares_by_value(tmp_path):
    rows = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(20)]
    suite, _, notes = build(tmp_path, write_jsonl(tmp_path / "sums.jsonl", rows))
    assert suite.contract == OutputContract(kind="text", whole_output=True, numeric=True)
    target = suite.splits["test"][0].target
    assert score(suite, [f"{target}.0", f"{int(target) + 1}", "eighteen"])["task_accuracy"] == [1.0, 0.0, 0.0]


def test_numbers_too_rare_to_be_labels_make_a_numeric_answer_suite(tmp_path):
    """Amounts repeat (a third of them here), so the "at most half distinct" rule alone would call them labels, and
    the rare ones would be refused or dropped: numbers are compared by value instead, unless --label-field says
    they are classes."""
    # 0, 5, ..., 55: six of them three times, six twice
    rows = [{"question": f"How many apples in basket {i}?", "number": str(i % 12 * 5)} for i in range(30)]
    rows += [{"question": f"A rare sum {i}?", "number": str(1000 + i)} for i in range(4)]
    source = write_jsonl(tmp_path / "amounts.jsonl", rows)
    message = refusal(tmp_path, source, label_field="number")
    assert message.endswith("Every answer is a number: if they are amounts or counts rather than classes, pass "
                            "--output-field with --metric exact instead, which compares answers by value.")
    suite, _, notes = build(tmp_path, source, output_field="number")
    assert suite.contract == OutputContract(kind="text", whole_output=True, numeric=True)
    assert notes[1] == ("contract: text, metric exact (16 distinct values in 34 answers, every one a number and 10 of "
                        "them too rare to be a label (fewer than 3 examples), so a numeric answer, compared by value; "
                        "pass --label-field to make them labels instead).")
    frequent = [{"question": f"Rate review {i}", "stars": str(i % 5 + 1)} for i in range(30)]  # ratings: labels
    suite, _, _ = build(tmp_path, write_jsonl(tmp_path / "stars.jsonl", frequent), output_field="stars")
    assert suite.contract.kind == "label" and suite.contract.labels == ("1", "2", "3", "4", "5")


def test_final_number_on_bare_numbers_is_one_refusal_that_names_the_metric(tmp_path):
    rows = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(20)]
    message = refusal(tmp_path, write_jsonl(tmp_path / "bare.jsonl", rows), metric="final-number")
    assert message == ("bare.jsonl: no answer has a `#### <number>` line (line 1 ends '1'), which --metric "
                       "final-number reads the answer from. Every answer is a bare number: pass --metric exact, which "
                       "compares them by value.")


def test_rouge_metric_gives_partial_credit_on_whole_answers(tmp_path):
    rows = [{"instruction": f"Describe animal {i}.", "input": "", "output": f"Animal {i} is a small brown bird "
             f"that sings at dawn in the forest {i}."} for i in range(20)]
    suite, meta, notes = build(tmp_path, write_jsonl(tmp_path / "animals.jsonl", rows))
    assert "metric rouge" in notes[1] and "objective.metric: rouge_l" in notes[3]
    assert meta["scorers"] == ["format_compliance", "task_accuracy", "rouge_l"]
    target = suite.splits["test"][0].target
    half = " ".join(target.split()[:6])
    values = score(suite, [target, half, "Completely unrelated words here."])
    assert values["rouge_l"][0] == 1.0 and 0.3 < values["rouge_l"][1] < 1.0 and values["rouge_l"][2] == 0.0
    assert values["task_accuracy"][:3] == [1.0, 0.0, 0.0]


def test_final_number_metric(tmp_path):
    rows = [{"question": f"Tom has {i} eggs and buys 2. How many?", "answer": f"{i} + 2 = {i + 2}.\n#### {i + 2}"}
            for i in range(20)]
    source = write_jsonl(tmp_path / "eggs.jsonl", rows)
    suite, meta, notes = build(tmp_path, source)  # detected: every answer ends with `#### <number>`
    assert meta["output"] == {"kind": "text", "answer_pattern": r"####\s*(.+)$", "numeric": True}
    assert "metric final-number" in notes[1] and "every answer ends with a `#### <number>` line" in notes[1]
    target = suite.splits["test"][0].target
    number = target.rsplit("#### ", 1)[1]
    steps = target.split("\n")[0]
    values = score(suite, [f"{steps}\n#### {number}.0", f"{steps}\n#### 999", number])
    assert values["task_accuracy"] == [1.0, 0.0, 0.0] and values["format_compliance"] == [1.0, 1.0, 0.0]
    assert values["rouge_l"][:2] == [1.0, 1.0]  # the steps match, whatever the final number


def test_final_number_metric_refuses_answers_without_the_final_line(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"so {i}\n#### {i}"} for i in range(5)]
    rows += [{"question": "q", "answer": "9"}, {"question": "r", "answer": "#### ten"},
             {"question": "s", "answer": "#### 1\nok"}]
    message = refusal(tmp_path, write_jsonl(tmp_path / "gsm.jsonl", rows), metric="final-number")
    fix = "end it with `#### <number>`, or pass --metric exact or --metric rouge."
    assert message == (
        "gsm.jsonl: 3 problem(s):\n"
        f"  - gsm.jsonl:6: not a final-number answer: it has no `#### <number>` line (ends '9'); {fix}\n"
        f"  - gsm.jsonl:7: not a final-number answer: the final answer 'ten' is not a number (ends '#### ten'); {fix}\n"
        f"  - gsm.jsonl:8: not a final-number answer: it has text after its `#### <number>` line (ends '#### 1\\nok'); "
        f"{fix}"
    )


def test_whole_output_contract_round_trip_and_errors():
    contract = OutputContract.from_dict({"kind": "text", "whole_output": True}, "test")
    assert OutputContract.from_dict(contract.to_dict(), "test") == contract
    assert "answer itself and nothing else" in contract.describe() and "####" not in contract.describe()
    assert parse_output("  Paris\n", contract).value == {"answer": "Paris", "rationale": ""}
    with pytest.raises(SuiteError, match="`answer_pattern` is unused; remove one of them"):
        OutputContract.from_dict({"kind": "text", "whole_output": True, "answer_pattern": "(.+)"}, "s.yaml")
    with pytest.raises(SuiteError, match="`output.whole_output` must be true or false"):
        OutputContract.from_dict({"kind": "text", "whole_output": "yes"}, "s.yaml")
    with pytest.raises(ValueError, match="the reference answer is unusable"):
        parse_target("   ", contract)


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_init_prints_what_it_chose(tmp_path, capsys):
    rows = [chat(f"Where is parcel {i}?", f"Parcel {i} left the depot this morning and arrives tomorrow.")
            for i in range(10)]
    source = write_jsonl(tmp_path / "support.jsonl", rows)
    suites = tmp_path / "suites"
    assert main(["suite", "init", "support", "--from", str(source), "--suites-dir", str(suites)]) == 0
    out = capsys.readouterr().out
    assert "format: chat `messages` JSONL (OpenAI fine-tuning / TRL)" in out
    assert "contract: text, metric rouge" in out and "instruction: every line has the same system message" in out
    assert "(train 8, dev 1, test 1; rows dropped: none)" in out
    assert main(["suite", "validate", str(suites / "support")]) == 0


def test_cli_init_metric_and_drop_flags(tmp_path, capsys):
    rows = [{"text": f"message {i}", "label": "a" if i % 2 else "b"} for i in range(12)] + [{"text": "z", "label": "c"}]
    source = write_jsonl(tmp_path / "flags.jsonl", rows)
    suites = str(tmp_path / "suites")
    assert main(["suite", "init", "strict", "--from", str(source), "--suites-dir", suites]) == 2
    assert "error:" in (out := printed(capsys)) and "'c' (1)" in out and "--drop-rare-labels" in out
    assert main(["suite", "init", "dropped", "--from", str(source), "--suites-dir", suites, "--drop-rare-labels"]) == 0
    assert "rows dropped: rare labels 1)" in printed(capsys)
    argv = ["suite", "init", "text", "--from", str(source), "--suites-dir", suites, "--output-field", "label"]
    assert main(argv + ["--metric", "exact"]) == 0
    assert "contract: text, metric exact (--metric exact)" in printed(capsys)


def test_cli_init_help_teaches_formats_and_flags(capsys):
    with pytest.raises(SystemExit):
        main(["suite", "init", "--help"])
    out = capsys.readouterr().out
    for needle in ('{"messages": [{"role": "system"', '{"instruction": ..., "input": ..., "output": ...}',
                   "--metric {exact,rouge,final-number}", "--drop-rare-labels", "--metric final-number",
                   "harness suite init support --from chats.jsonl", "--output-field slots"):
        assert needle in out, needle
