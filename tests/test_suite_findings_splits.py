"""`harness suite init --test-from FILE` (and `--dev-from FILE`): an agreed test set kept as it is, its inputs checked
against the training file, and the examples-per-label rule asked only of the splits the --from file still gives.
Each test writes small real files and asserts on the suite written or the refusal."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import printed
from test_suite_findings_labels import in_tmp, write  # noqa: F401  in_tmp: an autouse fixture

from harness.cli import main
from harness.core.errors import SuiteError
from harness.data.suite_init import init_suite
from harness.data.suites import load_suite


def tickets(prefix: str, labels: list[str]) -> list[str]:
    return ["text,label", *(f"{prefix} ticket {i} about {label},{label}" for i, label in enumerate(labels))]


def test_the_test_file_is_the_test_split_as_it_is(tmp_path, capsys):
    train = write(tmp_path / "train.csv", tickets("train", ["billing", "shipping"] * 10))
    test = write(tmp_path / "test.csv", tickets("test", ["billing", "shipping", "billing"]))
    assert main(["suite", "init", "kept", "--from", "train.csv", "--test-from", "test.csv"]) == 0
    suite = load_suite("kept")
    assert [ex.input for ex in suite.splits["test"]] == ["test ticket 0 about billing", "test ticket 1 about shipping",
                                                         "test ticket 2 about billing"]
    assert all(ex.input.startswith("train") for split in ("train", "dev") for ex in suite.splits[split])
    assert len(suite.splits["train"]) + len(suite.splits["dev"]) == 20 and len(suite.splits["dev"]) == 2
    meta = yaml.safe_load((tmp_path / "suites" / "kept" / "suite.yaml").read_text())
    assert meta["source"]["test_from"]["file"] == "test.csv" and meta["source"]["file"] == train.name
    assert meta["source"]["fractions"] == {"dev": 0.1}  # only dev is carved from train.csv
    assert test.exists() and "Traceback" not in printed(capsys)


def test_a_label_rare_in_the_test_file_is_no_problem_and_one_rare_in_train_asks_only_for_train_and_dev(tmp_path):
    # the agreed test set has one `refund`: before --test-from, init refused it for "fewer than 3 examples"
    write(tmp_path / "train.csv", tickets("train", ["billing"] * 4 + ["shipping"] * 4 + ["refund"] * 2))
    write(tmp_path / "test.csv", tickets("test", ["billing", "shipping", "refund"]))
    result = init_suite("rare", tmp_path / "train.csv", test_from=tmp_path / "test.csv", suites_dir=tmp_path / "s")
    suite = load_suite(str(result.path))
    assert suite.contract.labels == ("billing", "refund", "shipping")
    write(tmp_path / "train1.csv", tickets("train", ["billing"] * 4 + ["shipping"] * 4 + ["refund"]))
    with pytest.raises(SuiteError) as info:
        init_suite("rare1", tmp_path / "train1.csv", test_from=tmp_path / "test.csv", suites_dir=tmp_path / "s")
    assert ("train1.csv: 1 label(s) with fewer than 2 examples, too few to put one in each of train and dev (test "
            "comes from test.csv): 'refund' (1).") in str(info.value)


def test_a_label_only_the_test_file_has_is_kept_with_a_warning(tmp_path):
    write(tmp_path / "train.csv", tickets("train", ["billing", "shipping"] * 5))
    write(tmp_path / "test.csv", tickets("test", ["billing", "shipping", "SetAlarm"]))
    result = init_suite("unseen", tmp_path / "train.csv", test_from=tmp_path / "test.csv", suites_dir=tmp_path / "s")
    assert "SetAlarm" in load_suite(str(result.path)).contract.labels
    assert ("warning: label(s) with no example in train.csv, so none in train: `SetAlarm` (1). They are scored but "
            "no adapter can learn them and no shot can show them") in " ".join(result.notes)


def test_a_test_input_also_in_the_training_file_is_refused_naming_both_lines(tmp_path):
    write(tmp_path / "train.csv", tickets("train", ["billing", "shipping"] * 5))
    write(tmp_path / "test.csv", ["text,label", "Train ticket 3 about SHIPPING!,shipping", "new one,billing"])
    with pytest.raises(SuiteError) as info:
        init_suite("contam", tmp_path / "train.csv", test_from=tmp_path / "test.csv", suites_dir=tmp_path / "s")
    assert ("test.csv:2: input also in train.csv:5 (equal after folding case, whitespace and punctuation), which is "
            "contamination between splits; remove it from train.csv.") in str(info.value)
    assert not (tmp_path / "s" / "contam").exists()


def test_dev_and_test_files_together_leave_only_train_to_the_from_file(tmp_path):
    write(tmp_path / "train.csv", tickets("train", ["billing", "shipping"]))  # one of each label is enough now
    write(tmp_path / "dev.csv", tickets("dev", ["billing", "shipping"]))
    write(tmp_path / "test.csv", tickets("test", ["shipping", "billing"]))
    result = init_suite("both", tmp_path / "train.csv", dev_from=tmp_path / "dev.csv", test_from=tmp_path / "test.csv",
                        suites_dir=tmp_path / "s")
    suite = load_suite(str(result.path))
    assert {split: [ex.input.split()[0] for ex in suite.splits[split]] for split in suite.splits} == {
        "train": ["train", "train"], "dev": ["dev", "dev"], "test": ["test", "test"]}


def test_a_test_file_with_other_fields_is_refused(tmp_path):
    write(tmp_path / "train.csv", tickets("train", ["billing", "shipping"] * 5))
    write(tmp_path / "test.jsonl", [json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                              {"role": "assistant", "content": "billing"}]})])
    with pytest.raises(SuiteError) as info:
        init_suite("other", tmp_path / "train.csv", test_from=tmp_path / "test.jsonl", suites_dir=tmp_path / "s")
    assert str(info.value) == ("test.jsonl: no field `text`, `label`; it is read as train.csv is (input `text`, answer "
                               "`label`) and its fields are ['messages']. Rename them to match.")
    with pytest.raises(SuiteError, match=r"^missing.csv: file not found; pass an existing data file, with the fields "
                                         r"of train.csv.$"):
        init_suite("gone", tmp_path / "train.csv", test_from=tmp_path / "missing.csv", suites_dir=tmp_path / "s")


def test_the_from_file_given_again_as_the_test_file_is_refused(tmp_path):
    write(tmp_path / "train.csv", tickets("train", ["billing", "shipping"] * 5))
    with pytest.raises(SuiteError, match=r"--test-from train.csv is also --from; every split would share its "
                                         r"examples"):
        init_suite("same", tmp_path / "train.csv", test_from=tmp_path / "train.csv", suites_dir=tmp_path / "s")
