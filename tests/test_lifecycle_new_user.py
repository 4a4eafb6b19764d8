"""The lifecycle commands as a new user meets them after a sweep: each wrong turn (an odd --out, a pack that is not
one, an empty or over-long input, an unknown suite, a production adapter "promoted" down) is refused with a message
that names what to fix, exit 2 and no traceback, and leaves nothing half-written; the registry shows n beside every
interval and says so when it has nothing to show. One tiny real sweep: a prompting arm, a short LoRA arm, and one
whose learning rate is too small to learn anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import printed, swept, write_toy_suite
from test_bad_input import refused

from harness.cli import build_parser, main
from harness.core.config import ExperimentConfig
from harness.core.errors import HarnessError
from harness.core.typed import build
from harness.data.suites import load_suite
from harness.lifecycle.audit import verify
from harness.lifecycle.promote import promote
from harness.lifecycle.recheck import recheck
from harness.store.database import Store
from harness.sweep.followups import trained_on
from harness.sweep.predict import read_inputs

EXPERIMENT = """
name: nu
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: true, limit: 4}}
data: {{train_limit: 64, dev_limit: 12, test_limit: 12}}
budget: {{trials: 3, max_steps: 20, epochs: 50, trial_train_seconds: 300}}
training: {{batch_size: 16, eval_every_steps: 0}}
generation: {{batch_size: 12}}
space:
  prompt: {{shots: 0}}
  lora: {{r: 8, lora_alpha: 16, learning_rate: [1.0e-6, 1.0e-2]}}
enqueue:
  - {{method: prompt}}
  - {{method: lora, learning_rate: 1.0e-2}}
  - {{method: lora, learning_rate: 1.0e-6}}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model_dir) -> Store:
    root = tmp_path_factory.mktemp("nu")
    suite = write_toy_suite(root / "toy-colours")  # its own copy: a test moves it away and back
    store = swept(root / "nu.yaml", EXPERIMENT.format(model=tiny_model_dir, suite=suite, results=root / "results"),
                  "--allow-under-trained")
    assert [t.status for t in store.trials("nu")] == ["complete"] * 3
    return store


def test_a_forced_promotion_keeps_the_note_beside_the_reason(sweep):
    """Runs first: nu/1 is a candidate still."""
    promote(sweep, "nu/1", "staging", approver="ada", note="for the shadow traffic", force=True,
            reason="the gate's margin is too tight")
    assert sweep.adapter_events(trial_id="nu/1")[-1].note == "the gate's margin is too tight; for the shadow traffic"


def test_export_refuses_a_file_an_unwritable_place_and_the_artifacts_folder_before_the_model_loads(sweep, tmp_path,
                                                                                                  capsys):
    db = ["--db", str(sweep.path)]
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert "is a file; export into a new folder" in refused(["export", "nu/1", "--out", str(a_file), *db], capsys)
    assert a_file.read_text() == "mine"
    message = refused(["export", "nu/1", "--out", str(a_file / "sub"), *db], capsys)
    assert f"--out {a_file / 'sub'}: cannot write there" in message
    inside = sweep.trial("nu/1").artifact_path.parent.parent / "export"
    assert "where the sweep keeps its trials' weights" in refused(["export", "nu/1", "--out", str(inside), *db],
                                                                  capsys)
    assert not inside.exists() and not list(tmp_path.glob(".*-tmp"))
    message = refused(["audit", "nu/1", "--out", str(a_file / "pack"), *db], capsys)
    assert f"--out {a_file / 'pack'}: cannot write there" in message
    assert "no weights of its own to audit" in refused(["audit", "nu/0", "--out", str(tmp_path / "p0"), *db], capsys)
    assert not (tmp_path / "p0").exists()


def test_verify_names_a_missing_folder_a_file_and_a_manifest_that_is_not_one(tmp_path, capsys):
    assert "does not exist" in refused(["audit", "--verify", str(tmp_path / "nowhere")], capsys)
    archive = tmp_path / "pack.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    assert "is a file, not a folder (unpack an archived pack first)" in refused(["audit", "--verify", str(archive)],
                                                                                 capsys)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "record.json").write_text("{}")
    for manifest in ('{"files": ["record.json"]}', '{"files": 5}', '{"files": {"record.json": 5}}'):
        (pack / "MANIFEST.json").write_text(manifest)
        assert verify(pack) == [f"{pack / 'MANIFEST.json'}: not a valid manifest (it was changed): `files` must map "
                                "each file to its sha256"]
        assert main(["audit", "--verify", str(pack)]) == 1
        assert "Traceback" not in capsys.readouterr().err
    message = refused(["audit", "nu/1", "--out", str(tmp_path / "new"), "--verify", str(pack)], capsys)
    assert "--verify DIR checks a pack; it writes none" in message and not (tmp_path / "new").exists()


def test_predict_refuses_an_empty_input_and_one_longer_than_the_context(sweep, capsys):
    assert "--input is empty" in refused(["predict", "nu/0", "--input", "", "--db", str(sweep.path)], capsys)
    with pytest.raises(HarnessError, match="--input is empty"):
        read_inputs("  \n ")
    long = "the car is red " * 7000  # too long for a file name: the OS refuses to look it up
    assert read_inputs(long) == [long]
    message = refused(["predict", "nu/0", "--input", long, "--device", "cpu", "--db", str(sweep.path)], capsys)
    assert "input 1 (105,000 characters)" in message and "context window of 2,048 tokens" in message


def test_predict_text_answers_what_looks_like_a_file_name_as_text(sweep, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    looks_like_a_file = "the car at example.com/red.txt"
    assert "--text answers text that looks like a file name" in refused(
        ["predict", "nu/0", "--input", looks_like_a_file, "--db", str(sweep.path)], capsys)
    assert main(["predict", "nu/0", "--text", looks_like_a_file, "--device", "cpu", "--db", str(sweep.path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["input"] for row in rows] == [looks_like_a_file]
    assert "--text is empty" in refused(["predict", "nu/0", "--text", " ", "--db", str(sweep.path)], capsys)


def test_promote_does_not_demote_production_and_rollback_names_an_unknown_suite(sweep, capsys):
    db = ["--db", str(sweep.path)]
    if sweep.production("toy-colours") is None:
        promote(sweep, "nu/1", "production", approver="ada", force=True, reason="a shadow test")
    message = refused(["promote", "nu/1", "--to", "staging", "--approver", "ada", *db], capsys)
    assert "nu/1 is the production adapter of suite toy-colours; promote does not demote it" in message
    assert sweep.production("toy-colours") == "nu/1"
    message = refused(["rollback", "toy-colour", "--approver", "ada", *db], capsys)
    assert "no suite 'toy-colour'" in message and "its studies are on toy-colours" in message
    missing = sweep.path.parent / "none.duckdb"
    message = refused(["rollback", "toy-colours", "--approver", "ada", "--db", str(missing)], capsys)
    assert "holds no study yet" in message and not missing.exists()


def test_registry_shows_n_beside_every_interval_and_says_when_it_has_nothing(sweep, tmp_path, capsys, monkeypatch):
    if sweep.production("toy-colours") is None:
        promote(sweep, "nu/1", "production", approver="ada", force=True, reason="a shadow test")
    assert main(["registry", "--db", str(sweep.path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "nu/1" in line)
    assert row.count("n=12") >= 2 and "n=4" in row  # accuracy and format on test; forgetting's items
    assert main(["registry", "--history", "--db", str(tmp_path / "none.duckdb")]) == 2  # a typo is not "none yet"
    assert "no results database there" in capsys.readouterr().err
    assert not (tmp_path / "none.duckdb").exists()
    monkeypatch.chdir(tmp_path)  # a project with no sweep yet: nothing to list, and it says so
    assert main(["registry"]) == 0
    assert "no adapters: there is no results database at" in capsys.readouterr().out
    assert "no suite 'nosuch'" in refused(["registry", "--suite", "nosuch", "--db", str(sweep.path)], capsys)


def test_every_flag_of_promote_is_explained_in_its_help():
    parser = build_parser()
    promote_parser = parser._subparsers._group_actions[0].choices["promote"]
    for action in promote_parser._actions:
        assert action.help, f"promote {action.option_strings or action.dest} has no help"


def test_export_checks_its_rescore_flags_before_it_writes_anything(sweep, tmp_path, capsys):
    db = ["--db", str(sweep.path)]
    out = tmp_path / "served"
    message = refused(["export", "nu/1", "--out", str(out), "--vllm-url", "http://127.0.0.1:9", *db], capsys)
    assert "--vllm-url is for --rescore" in message and not out.exists()
    assert "--rescore needs vLLM" in refused(["export", "nu/1", "--out", str(out), "--rescore", *db], capsys)
    assert not out.exists() and not list(tmp_path.iterdir())



def test_recheck_names_a_folder_given_as_data_and_promote_a_weights_folder_that_went_missing(sweep, toy_suite,
                                                                                             capsys):
    db = ["--db", str(sweep.path)]
    if sweep.production("toy-colours") is None:
        promote(sweep, "nu/1", "production", approver="ada", force=True, reason="a shadow test")
    message = refused(["recheck", "toy-colours", "--data", str(toy_suite), *db], capsys)
    assert f"--data {toy_suite} is a folder" in message and f"--data {toy_suite / 'test.jsonl'}" in message
    weights = sweep.trial("nu/1").artifact_path
    moved = weights.with_name("moved-away")
    weights.rename(moved)
    try:
        message = refused(["promote", "nu/1", "--to", "staging", "--approver", "ada", *db], capsys)
    finally:
        moved.rename(weights)
    assert f"nu/1 has no saved weights: {weights} is missing, and retention did not remove it" in message
    assert "Put the folder back at that path" in message and "keep_best" not in message


def test_the_model_card_reads_forgetting_as_signed_points_not_as_a_rate(sweep, tmp_path):
    pack = tmp_path / "pack"
    assert main(["audit", "nu/1", "--out", str(pack), "--db", str(sweep.path)]) == 0
    card = (pack / "MODEL_CARD.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| regression_delta |"))
    assert " points, 95% CI [" in row and "n=4" in row and "%" not in row.split("|")[2].split(",")[0]
    base = next(line for line in card.splitlines() if line.startswith("- **Base model:**"))
    assert not base.rstrip().endswith(";")
    assert verify(pack) == []


def test_a_suite_folder_moved_away_is_named_where_the_study_recorded_it(sweep, tmp_path, capsys):
    db = ["--db", str(sweep.path)]
    suite = Path(sweep.study("nu").suite_path)
    moved = suite.with_name("moved-away")
    suite.rename(moved)
    try:
        message = refused(["audit", "nu/1", "--out", str(tmp_path / "pack"), *db], capsys)
        assert f"trial nu/1 was scored on suite toy-colours at {suite}, which is not there any more" in message
        assert "Put the suite folder back at that path" in message and "Pass an existing suite folder" not in message
        assert f"at {suite}, which is not there" in refused(["predict", "nu/1", "--input", "hi", *db], capsys)
    finally:
        moved.rename(suite)
    assert not (tmp_path / "pack").exists()


def test_the_gate_says_a_dev_rate_was_not_measured_rather_than_print_a_gap(sweep, capsys):
    """nu/2 learned nothing: no compliant answer on dev, so its hallucination rate there has no value."""
    assert sweep.trial("nu/2").metric("dev", "hallucination_rate").value is None
    assert main(["promote", "nu/2", "--to", "staging", "--approver", "ada", "--db", str(sweep.path)]) == 1
    out = " ".join(printed(capsys).split())
    assert "hallucination_rate (no compliant output on dev to check it: counted as the worst rate)" in out


def test_recheck_on_a_one_line_file_counts_one_example(sweep, tmp_path):
    if sweep.production("toy-colours") is None:
        promote(sweep, "nu/1", "production", approver="ada", force=True, reason="a shadow test")
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"input": "the car is red", "output": {"colour": "red"}}))  # no newline at the end
    result = recheck(sweep, "toy-colours", actor="nightly", data=one)
    assert result.now.n == 1 and f"on {one} (1 example):" in result.text() and "1 examples" not in result.text()


def test_recheck_on_the_adapters_own_training_inputs_says_they_prove_little(sweep, tmp_path):
    if sweep.production("toy-colours") is None:
        promote(sweep, "nu/1", "production", approver="ada", force=True, reason="a shadow test")
    study, lora = sweep.study("nu"), sweep.trial("nu/1")
    config = build(ExperimentConfig, dict(study.experiment), "nu")
    used = {ex.input for ex in trained_on(config, load_suite(study.suite_path), lora.params)}
    lines = (Path(study.suite_path) / "train.jsonl").read_text().splitlines()
    train = [row for row in map(json.loads, lines) if row["input"] in used][:3]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(row) + "\n" for row in [*train, {"input": "A NEW car, painted blue!",
                                                                          "output": {"colour": "blue"}}]))
    text = recheck(sweep, "toy-colours", actor="nightly", data=mixed).text()
    assert "warning: 3 examples of them repeat the adapter's training inputs" in text and "from memory" in text
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text(json.dumps({"input": "a never seen phrase about a green kite", "output": {"colour": "green"}}))
    assert "training inputs" not in recheck(sweep, "toy-colours", actor="nightly", data=fresh).text()


def test_a_paired_recheck_of_some_recorded_examples_reads_them_against_their_own_record(sweep, tmp_path):
    if sweep.production("toy-colours") is None:
        promote(sweep, "nu/1", "production", approver="ada", force=True, reason="a shadow test")
    stored = sweep.examples("nu/1", "test")[:5]
    part = tmp_path / "part.jsonl"
    part.write_text("".join(json.dumps({"input": e.input, "output": json.loads(e.target)}) + "\n" for e in stored))
    result = recheck(sweep, "toy-colours", actor="nightly", data=part)
    assert result.paired and result.before.n == 5 == result.now.n  # not the 12 recorded
    assert result.before.value == sum(e.scores["task_accuracy"] for e in stored) / 5


def test_the_model_card_names_who_overrode_a_failing_gate_and_why():
    from harness.lifecycle.audit import _gate_text

    override = {"by": "ada", "reason": "pilot, n too small"}
    assert _gate_text({"passed": False}, override) == 'failed, overridden by ada: "pilot, n too small"'
    assert _gate_text({"passed": False}, None) == "failed"
    assert _gate_text({"passed": True}, None) == "passed" and _gate_text(None, None) == "not run"
