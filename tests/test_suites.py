"""Suite loading, validation errors and bundled suites (`harness suite init` is in test_suite_init.py).

Every bad input must fail with a SuiteError naming the file (and line) and the fix, because a user meets these
messages without a traceback.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from harness.core.errors import SuiteError
from harness.data.suites import Problems, list_suites, load_suite, resolve_suite_path, suite_stats

REPO_SUITES = Path(__file__).resolve().parents[1] / "suites"

LABEL_YAML = {
    "name": "toy",
    "version": "1.0.0",
    "task": "classification",
    "instruction": "Name the animal's sound.",
    "output": {"kind": "label", "key": "sound", "labels": ["bark", "meow", "moo"]},
    "scorers": ["format_compliance", "task_accuracy"],
}
JSON_YAML = {
    "name": "toy-json",
    "version": "1.0.0",
    "task": "extraction",
    "instruction": "Extract the city.",
    "output": {
        "kind": "json",
        "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False},
        "fields": ["city"],
        "grounded": True,
    },
}


def row(text: str, sound: str = "bark") -> str:
    return json.dumps({"input": text, "output": {"sound": sound}})


GOOD = {
    "train": [row("a dog"), row("a cat", "meow"), row("a cow", "moo")],
    "dev": [row("the dog")],
    "test": [row("the cat", "meow")],
}


def make_suite(tmp_path: Path, meta: dict | str = LABEL_YAML, **splits: list[str] | None) -> Path:
    """A suite folder; a split passed as None is left out, one passed as a list replaces the default."""
    folder = tmp_path / "toy"
    folder.mkdir()
    text = meta if isinstance(meta, str) else yaml.safe_dump(meta, sort_keys=False)
    (folder / "suite.yaml").write_text(text, encoding="utf-8")
    for split, default in GOOD.items():
        lines = splits.get(split, default)
        if lines is not None:
            (folder / f"{split}.jsonl").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return folder


def load_error(folder: Path) -> str:
    with pytest.raises(SuiteError) as info:
        load_suite(str(folder))
    return str(info.value)


# ----------------------------------------------------------------------------------------------- loading


def test_loads_instruction_input_output_rows(tmp_path):
    folder = make_suite(
        tmp_path,
        train=[
            json.dumps({"instruction": "Be brief.", "input": "a dog", "output": '{"sound": "bark"}'}),
            "",  # blank lines are skipped but keep line numbers stable
            row("a cat", "meow"),
        ],
    )
    suite = load_suite(str(folder))
    train = suite.splits["train"]
    assert [ex.id for ex in train] == ["train:1", "train:3"]
    assert train[0].instruction == "Be brief." and train[1].instruction is None
    assert train[1].target == '{"sound": "meow"}'
    assert suite.name == "toy" and suite.version == "1.0.0" and suite.contract.key == "sound"
    assert suite.instruction == "Name the animal's sound."
    assert suite.scorers == ("format_compliance", "task_accuracy")
    for split in ("train", "dev", "test"):
        assert suite.split_sha256[split] == hashlib.sha256((folder / f"{split}.jsonl").read_bytes()).hexdigest()


def test_loads_messages_rows(tmp_path):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a dog"},
        {"role": "assistant", "content": '{"sound": "bark"}'},
    ]
    puppy = [{"role": "user", "content": "a puppy"}, {"role": "assistant", "content": {"sound": "bark"}}]
    folder = make_suite(tmp_path, train=[json.dumps({"messages": messages}), json.dumps({"messages": puppy})])
    train = load_suite(str(folder)).splits["train"]
    assert (train[0].instruction, train[0].input, train[0].target) == ("Be brief.", "a dog", '{"sound": "bark"}')
    assert (train[1].instruction, train[1].input, train[1].target) == (None, "a puppy", '{"sound": "bark"}')


def test_object_output_is_serialised_without_ascii_escapes(tmp_path):
    folder = make_suite(
        tmp_path, JSON_YAML,
        train=[json.dumps({"input": "fly to Zürich", "output": {"city": "Zürich"}})],
        dev=[json.dumps({"input": "fly to Oslo", "output": {"city": "Oslo"}})],
        test=[json.dumps({"input": "stay home", "output": {}})],
    )
    suite = load_suite(str(folder))
    assert suite.splits["train"][0].target == '{"city": "Zürich"}'
    assert suite.contract.grounded


def test_malformed_json_line_names_file_and_line(tmp_path):
    message = load_error(make_suite(tmp_path, train=[row("a dog"), '{"input": "a cat", "output": '], dev=[row("x")]))
    assert "train.jsonl:2: malformed JSON" in message and "one JSON object per line" in message


def test_non_object_line(tmp_path):
    assert "train.jsonl:1: expected a JSON object, got an array" in load_error(make_suite(tmp_path, train=["[1, 2]"]))


def test_missing_fields(tmp_path):
    message = load_error(make_suite(tmp_path, train=[json.dumps({"input": "a dog"})]))
    assert "train.jsonl:1: missing field(s) ['output']" in message and "`messages`" in message


def test_empty_input(tmp_path):
    message = load_error(make_suite(tmp_path, train=[json.dumps({"input": "  ", "output": {"sound": "bark"}})]))
    assert "train.jsonl:1: `input` must be a non-empty string" in message


def test_empty_split(tmp_path):
    message = load_error(make_suite(tmp_path, dev=[]))
    assert "dev.jsonl: empty" in message and "add at least one example" in message


def test_missing_split_file(tmp_path):
    message = load_error(make_suite(tmp_path, test=None))
    assert "test.jsonl: missing" in message and "train.jsonl, dev.jsonl, test.jsonl" in message


def test_duplicate_within_split(tmp_path):
    message = load_error(make_suite(tmp_path, train=[row("A dog"), row("a cat"), row("  a   DOG ")]))
    assert "train.jsonl:3: duplicate input (same as line 1" in message and "remove one" in message


@pytest.mark.parametrize(
    "splits, expected",
    [
        ({"test": [row("A  Dog")]}, "test.jsonl:1: input also in train.jsonl:1"),
        ({"dev": [row("a cat", "meow")]}, "dev.jsonl:1: input also in train.jsonl:2"),
        ({"test": [row("the dog")]}, "test.jsonl:1: input also in dev.jsonl:1"),
    ],
)
def test_overlap_between_splits_is_refused(tmp_path, splits, expected):
    message = load_error(make_suite(tmp_path, **splits))
    assert expected in message and "contamination" in message


def test_label_outside_the_set(tmp_path):
    message = load_error(make_suite(tmp_path, train=[row("a dog"), row("a fox", "howl")]))
    assert "train.jsonl:2:" in message and "'howl' is not in `output.labels`" in message


def test_bare_label_target_explains_the_format(tmp_path):
    message = load_error(make_suite(tmp_path, train=[json.dumps({"input": "a dog", "output": "bark"})]))
    assert "train.jsonl:1:" in message and '{"sound": "<label>"}' in message


def test_json_target_that_breaks_the_schema(tmp_path):
    folder = make_suite(
        tmp_path, JSON_YAML,
        train=[json.dumps({"input": "fly to Rome", "output": {"city": 3}})],
        dev=[json.dumps({"input": "fly to Oslo", "output": {"city": "Oslo"}})],
        test=[json.dumps({"input": "fly to Bonn", "output": {"city": "Bonn"}})],
    )
    assert "train.jsonl:1: the reference answer breaks the output contract" in load_error(folder)


def test_ungrounded_target_in_grounded_contract(tmp_path):
    folder = make_suite(
        tmp_path, JSON_YAML,
        train=[json.dumps({"input": "fly to Rome", "output": {"city": "Paris"}})],
        dev=[json.dumps({"input": "fly to Oslo", "output": {"city": "Oslo"}})],
        test=[json.dumps({"input": "fly to Bonn", "output": {"city": "Bonn"}})],
    )
    message = load_error(folder)
    assert "train.jsonl:1: value 'Paris'" in message and "grounded" in message


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "a dog"}],
        [{"role": "assistant", "content": "{}"}, {"role": "user", "content": "a dog"}],
        [{"role": "user", "text": "a dog"}, {"role": "assistant", "content": '{"sound": "bark"}'}],
        "a dog",
    ],
)
def test_bad_messages_format(tmp_path, messages):
    message = load_error(make_suite(tmp_path, train=[json.dumps({"messages": messages})]))
    assert "train.jsonl:1: bad `messages` format" in message and '"role": "user"' in message


def test_not_utf8_split(tmp_path):
    folder = make_suite(tmp_path)
    (folder / "dev.jsonl").write_bytes(b'{"input": "caf\xe9", "output": {"sound": "bark"}}\n')
    assert "dev.jsonl:1: not UTF-8 (bytes 0xe9), likely Latin-1; re-save it as UTF-8" in load_error(folder)


def test_problems_are_collected_grouped_and_capped(tmp_path):
    message = load_error(make_suite(tmp_path, train=["{"] * 12, dev=[]))
    assert "13 problem(s)" in message  # twelve lines with one problem, said once with its lines, and the empty dev
    assert message.count("malformed JSON") == 1 and "train.jsonl: lines 1, 2, 3, 4, 5 and 7 more: malformed" in message
    assert "dev.jsonl: empty" in message
    problems = Problems()
    for i in range(13):
        problems.add(f"x.jsonl:{i + 1}: problem number {i}")
    with pytest.raises(SuiteError) as refused:
        problems.raise_if_any("x.jsonl")
    assert str(refused.value).count("problem number") == 10
    assert "and 3 more, at x.jsonl lines 11, 12, 13" in str(refused.value)  # all fixed in one pass


def test_bad_yaml_names_the_line(tmp_path):
    message = load_error(make_suite(tmp_path, "name: toy\nversion: '1'\ninstruction: [unclosed\n"))
    assert "suite.yaml:" in message and "not valid YAML" in message


def test_yaml_key_problems(tmp_path):
    meta = {**LABEL_YAML, "version": 1.0, "instructions": "typo"}
    message = load_error(make_suite(tmp_path, meta))
    assert "unknown key(s) ['instructions']" in message
    assert 'version: "1.0.0"' in message


def test_bad_contract_in_yaml(tmp_path):
    meta = {**LABEL_YAML, "output": {"kind": "label", "labels": []}}
    assert "`output.labels` must be a non-empty list" in load_error(make_suite(tmp_path, meta))


def test_folder_without_suite_yaml_is_not_a_suite(tmp_path):
    (tmp_path / "data").mkdir()
    assert "has no suite.yaml" in load_error(tmp_path / "data")


def test_resolve_suite_path(tmp_path, monkeypatch):
    folder = make_suite(tmp_path)
    assert resolve_suite_path(str(folder)) == folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    folder.rename(tmp_path / "suites" / "toy")
    assert resolve_suite_path("toy") == Path.cwd() / "suites" / "toy"
    assert resolve_suite_path("ticket-triage") == REPO_SUITES / "ticket-triage"
    with pytest.raises(SuiteError, match="suite 'nope' not found.*ticket-triage"):
        resolve_suite_path("nope")
    assert resolve_suite_path(str(Path.cwd() / "suites/toy/suite.yaml")) == Path.cwd() / "suites" / "toy"
    (tmp_path / "tickets.csv").write_text("text,label\nhi,a\n")
    with pytest.raises(SuiteError, match="is a file, not a suite.*harness suite init NAME --from tickets.csv"):
        resolve_suite_path("tickets.csv")  # not './suites/tickets.csv': a data file given for a suite


def test_suite_stats(tmp_path):
    stats = suite_stats(load_suite(str(make_suite(tmp_path))))
    assert stats["train"]["n"] == 3 and stats["train"]["labels"] == {"bark": 1, "meow": 1, "moo": 1}
    assert stats["dev"]["labels_missing"] == ["meow", "moo"]
    assert stats["test"]["input_chars"] == {"min": 7, "mean": 7.0, "max": 7}


# ------------------------------------------------------------------------------------------ bundled suites


def bundled() -> list[Path]:
    return sorted(p for p in REPO_SUITES.iterdir() if (p / "suite.yaml").is_file())


@functools.cache
def load_bundled(name: str):
    """Loaded once per test run: the bundled splits are large enough that reloading would dominate the runtime."""
    return load_suite(str(REPO_SUITES / name))


def test_every_bundled_suite_loads_and_validates():
    folders = bundled()
    assert {p.name for p in folders} >= {"ticket-triage", "slot-extraction"}
    assert list_suites() == [p.name for p in folders]  # general/ and _build/ are not suites
    for folder in folders:
        suite = load_bundled(folder.name)  # validates format, contract, duplicates and contamination
        assert suite.name == folder.name
        assert all(len(suite.splits[s]) > 0 for s in ("train", "dev", "test"))
        assert (folder / "SOURCE.md").is_file() and any(folder.glob("LICENSE*"))
        assert "source" in suite.info and "cleaning" in suite.info


def test_bundled_suite_contents():
    triage = load_bundled("ticket-triage")
    assert len(triage.contract.labels) == 77 and triage.contract.key == "intent"
    assert {k: len(v) for k, v in triage.splits.items()} == {"train": 8976, "dev": 998, "test": 3051}
    # near-duplicates too (case, whitespace and punctuation folded): the suite needs no `near_duplicates: allow`
    assert triage.info["cleaning"]["dropped"] == {"train_duplicates": 29, "test_overlapping_train": 25,
                                                  "test_duplicates": 4}
    assert "near_duplicates" not in triage.info
    slots = load_bundled("slot-extraction")
    assert slots.contract.kind == "json" and slots.contract.grounded and len(slots.contract.fields) == 39
    assert {k: len(v) for k, v in slots.splits.items()} == {"train": 12816, "dev": 700, "test": 695}
    assert "near_duplicates" not in slots.info
    assert any("Música" in ex.input for ex in slots.splits["train"])  # the CESU-8 file decoded right
    assert not any("Ã" in ex.input for ex in slots.splits["train"])


def test_general_and_build_are_not_suites():
    for name in ("general", "_build"):
        with pytest.raises(SuiteError, match="is not a suite"):
            load_suite(str(REPO_SUITES / name))
    lines = (REPO_SUITES / "general" / "piqa" / "piqa.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 1838 and first["id"] == "piqa-valid-0" and set(first) == {"id", "goal", "sol1", "sol2",
                                                                                    "label"}



def test_a_classification_task_on_a_json_contract_is_warned_about(tmp_path):
    """`task` only describes the suite, and the contract scores it: a classification suite written as JSON loses the
    per-label report, constrained label decoding and the majority floor without a word."""
    assert load_suite(str(make_suite(tmp_path))).warnings == ()
    schema = {"type": "object", "properties": {"sound": {"type": "string", "enum": ["bark", "meow", "moo"]}}}
    as_json = {**LABEL_YAML, "output": {"kind": "json", "schema": schema, "fields": ["sound"]}}
    (other := tmp_path / "other").mkdir()
    warnings = load_suite(str(make_suite(other, as_json))).warnings
    assert len(warnings) == 1 and "`task: classification`, but `output.kind` is json" in warnings[0]
    assert "write `output: {kind: label, key: KEY, labels: [...]}`" in warnings[0]


def test_a_model_answering_a_bundled_reference_is_never_counted_as_hallucinating():
    """The hallucination scorer and the suite's reference check read grounding alike (`core/text.written_in`): once
    the scorer alone refused values glued into the next word, SNIPS's own `one pm` in "one pmnear Vatican" would have
    counted as made up."""
    from harness.data.contract import parse_target
    from harness.evaluation.scorers.hallucination import hallucinated

    slots = load_bundled("slot-extraction")
    made_up = [ex.id for split in ("dev", "test") for ex in slots.splits[split]
               if hallucinated(parse_target(ex.target, slots.contract), ex.input, slots.contract)]
    assert made_up == []


@pytest.mark.parametrize("name, why", [("../billing", "reads as a path"), ("teams/billing", "reads as a path"),
                                       (".hidden", "reads as a path"), ("tri\nage", "control character")])
def test_a_name_that_reads_as_a_path_is_refused(tmp_path, name, why):
    """Studies, the registry and `rollback NAME` find a suite by name, as suites/NAME: `../billing` reached outside."""
    from conftest import write_toy_suite

    root = write_toy_suite(tmp_path / "toy")
    meta = yaml.safe_load((root / "suite.yaml").read_text())
    (root / "suite.yaml").write_text(yaml.safe_dump({**meta, "name": name}))
    with pytest.raises(SuiteError, match=rf"`name` .* {why}.*usually its folder's name \('toy'\)"):
        load_suite(str(root))


def test_a_split_that_is_a_pipe_or_a_folder_is_named_as_such_not_missing(tmp_path):
    import os

    from conftest import write_toy_suite

    root = write_toy_suite(tmp_path / "toy")
    (root / "test.jsonl").unlink()
    os.mkfifo(root / "test.jsonl")  # reading it would wait forever for a writer
    with pytest.raises(SuiteError, match=r"test.jsonl: not a regular file \(a named pipe\)"):
        load_suite(str(root))
    (root / "test.jsonl").unlink()
    (root / "test.jsonl").mkdir()
    with pytest.raises(SuiteError, match=r"test.jsonl: not a regular file \(a folder\)"):
        load_suite(str(root))
