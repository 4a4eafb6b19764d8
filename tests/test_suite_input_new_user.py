"""A new user's suite input, as a trial found it: a misspelt scorer or task in suite.yaml, keys in a row the harness
never reads, a suite not found from another folder, and message slips (JSON, byte order, Parquet rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import printed, write_toy_suite

from harness.cli import main
from harness.core.errors import SuiteError
from harness.data.contract import parse_output
from harness.data.formats import read_source
from harness.data.suites import SCORER_NAMES, encoding_problem, load_suite


def edited_suite(root: Path, **changes) -> Path:
    """The toy suite under `root`/suites/toy with suite.yaml keys changed."""
    path = write_toy_suite(root / "suites" / "toy")
    meta = yaml.safe_load((path / "suite.yaml").read_text())
    (path / "suite.yaml").write_text(yaml.safe_dump({**meta, **changes}))
    return path


# -- scorers and task in suite.yaml ---------------------------------------------------------------------------------

def test_a_misspelt_scorer_is_refused_when_the_suite_loads_naming_file_key_and_fix(tmp_path):
    path = edited_suite(tmp_path, scorers=["format_compliance", "hallucination_rate", "task_acuracy"])
    with pytest.raises(SuiteError) as err:
        load_suite(str(path))
    message = str(err.value)
    assert "suite.yaml" in message and "`scorers[2]`" in message and "'task_acuracy'" in message
    assert "Did you mean task_accuracy?" in message and ", ".join(SCORER_NAMES) in message


def test_suite_validate_refuses_a_misspelt_scorer_and_task(tmp_path, monkeypatch, capsys):
    edited_suite(tmp_path, scorers=["task_acuracy"], task="classificaton")
    monkeypatch.chdir(tmp_path)
    assert main(["suite", "validate", "toy"]) == 2
    out = printed(capsys)
    assert "suites/toy/suite.yaml: `scorers[0]`: unknown scorer 'task_acuracy'. Did you mean task_accuracy?" in out
    assert "`task`: unknown task 'classificaton'. Did you mean classification?" in out
    assert "classification, extraction, generation" in out and "Traceback" not in out


def test_the_sweep_plan_refuses_a_misspelt_scorer_before_any_model_loads(tmp_path, tiny_model_dir, no_model_loads,
                                                                        capsys):
    suite = edited_suite(tmp_path, scorers=["task_acuracy"])
    experiment = tmp_path / "e.yaml"
    experiment.write_text(f"name: e\nmodel: {tiny_model_dir}\nsuite: {suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nspace: {prompt: {shots: [0]}}\n")
    assert main(["sweep", str(experiment), "--dry-run"]) == 2
    out = printed(capsys)
    assert "`scorers[0]`: unknown scorer 'task_acuracy'" in out and "Traceback" not in out


def test_the_scorer_names_a_suite_is_checked_against_are_the_registry():
    from harness.evaluation.scorers import SCORERS

    assert tuple(SCORERS.names()) == SCORER_NAMES


def test_every_bundled_suite_still_loads():
    for name in ("ticket-triage", "slot-extraction", "math-word-problems"):
        assert load_suite(name).task in ("classification", "extraction", "generation")


# -- keys in a row that the harness does not read --------------------------------------------------------------------

def test_suite_validate_warns_of_row_keys_it_ignores_with_their_lines(tmp_path, monkeypatch, capsys):
    path = write_toy_suite(tmp_path / "suites" / "toy-colours")
    lines = (path / "train.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    rows[0]["extra"] = 1
    rows[2]["instrucion"] = "Name the colour."  # a misspelt optional key would drop the instruction silently
    (path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    assert main(["suite", "validate", "toy-colours"]) == 0
    out = printed(capsys)
    assert "warning: suites/toy-colours/train.jsonl:1: key `extra` is not read, so it is ignored." in out
    assert "train.jsonl:3: key `instrucion` is not read, so it is ignored. Did you mean instruction?" in out
    assert load_suite("toy-colours").warnings and not load_suite("ticket-triage").warnings


# -- a suite not found from another folder ---------------------------------------------------------------------------

def test_a_suite_not_found_from_the_projects_parent_folder_points_at_the_project(tmp_path, monkeypatch):
    write_toy_suite(tmp_path / "proj" / "suites" / "toy")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError) as err:
        load_suite("toy")
    message = str(err.value)
    assert "looked up from the current folder" in message
    assert "A suite of that name is at proj/suites/toy: run from proj (`cd proj`)" in message
    assert f"`suite: {(tmp_path / 'proj/suites/toy').resolve()}`" in message


def test_a_suite_not_found_names_the_experiment_file_and_the_key_when_told(tmp_path, monkeypatch):
    write_toy_suite(tmp_path / "proj" / "suites" / "toy")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    experiment = tmp_path / "proj" / "experiments" / "ok.yaml"
    with pytest.raises(SuiteError) as err:
        load_suite("toy", named_in=experiment)
    message = str(err.value)
    assert message.startswith(f"{experiment}: `suite: toy`: suite 'toy' not found")
    assert f"run from {tmp_path / 'proj'}" in message


def test_a_suite_found_nowhere_nearby_gets_no_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError) as err:
        load_suite("nowhere")
    assert "A suite of that name" not in str(err.value) and "harness suite init" in str(err.value)


# -- message slips -------------------------------------------------------------------------------------------------

def test_an_unterminated_string_reads_at_column_once(tmp_path):
    path = write_toy_suite(tmp_path / "toy")
    with (path / "dev.jsonl").open("a") as fh:
        fh.write('{"input": "the cup is red", "output": {"colour": "red\n')
    with pytest.raises(SuiteError) as err:
        load_suite(str(path))
    assert "(Unterminated string starting at column" in str(err.value) and "at at" not in str(err.value)
    source = tmp_path / "broken.jsonl"
    source.write_text('{"text": "a", "label": "x"}\n{"text": "b, "label": "y"}\n')
    with pytest.raises(SuiteError) as err:
        read_source(source)
    assert "at at" not in str(err.value) and "column" in str(err.value)


def test_a_model_output_cut_inside_a_string_reads_at_char_once(toy_suite):
    contract = load_suite(str(toy_suite)).contract
    assert "(Unterminated string starting at char 11)" in parse_output('{"colour": "re', contract).error


def test_undecodable_bytes_are_shown_in_the_order_the_file_holds_them():
    problem = encoding_problem(b'{"input": "caf\xff\xfe"}\n', "x.jsonl")
    assert "bytes 0xff, 0xfe" in problem
    with_emoji = '{"input": "\U0001f600 \xe9"}'.encode() + b"\xe9\n"  # an emoji is text, not an undecodable byte
    assert "(bytes 0xe9)" in encoding_problem(with_emoji, "x.jsonl")


def test_parquet_problems_count_rows_not_lines(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    labels = [None if i % 10 == 0 else "a" if i % 2 else "b" for i in range(30)]
    pq.write_table(pa.table({"text": [f"message {i}" for i in range(30)], "label": labels}), tmp_path / "d.parquet")
    with pytest.raises(SuiteError) as err:
        read_source(tmp_path / "d.parquet")
    assert "d.parquet: rows 1, 11, 21:" in str(err.value) and "lines" not in str(err.value)
