"""The lifecycle as a team lead's trial met it: the model card states the last gate outcome, refused included, and says
when an adapter is under-trained; `audit --verify` catches a pack forged with its manifest recomputed once the hash
recorded when it was written (or one kept elsewhere) is at hand, and says so plainly when none is; the card names
registry moves in words; the export README says how a local base model reaches the serving machine; promote gives
the ways on when production was scored on another test subset; and every command that needs an adapter's weights
says alike whether retention removed them or they went missing otherwise, with the fix that fits.

Two tiny real sweeps in one results database: `lead` (prompting and a LoRA arm, 12 test examples) and `cut` (the same
with a time cap that stops its LoRA arm short, on 8 test examples: another test subset)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import swept
from test_bad_input import refused

from harness.cli import build_parser, main
from harness.lifecycle.audit import _status_text, verify
from harness.lifecycle.promote import promote
from harness.lifecycle.serving_notes import base_model_lines
from harness.store.database import Store

EXPERIMENT = """
name: {name}
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 12, test_limit: {test_limit}}}
budget: {{trials: 2, max_steps: {steps}, epochs: 50, trial_train_seconds: {cap}}}
training: {{batch_size: 16, eval_every_steps: 0}}
generation: {{batch_size: 12}}
gate: {{require_regression: false}}
space:
  prompt: {{shots: 0}}
  lora: {{r: 8, lora_alpha: 16, learning_rate: 1.0e-2}}
enqueue:
  - {{method: prompt}}
  - {{method: lora}}
"""
LORA, CUT = "lead/1", "cut/1"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model_dir, toy_suite) -> Store:
    root = tmp_path_factory.mktemp("lead")
    common = dict(model=tiny_model_dir, suite=toy_suite, results=root / "results")
    swept(root / "lead.yaml", EXPERIMENT.format(name="lead", test_limit=12, steps=20, cap=300, **common))
    store = swept(root / "cut.yaml", EXPERIMENT.format(name="cut", test_limit=8, steps=5000, cap=1, **common),
                  "--allow-under-trained")
    assert [t.status for t in store.trials()] == ["complete"] * 4
    assert store.trial(CUT).under_trained and not store.trial(LORA).under_trained
    assert store.study("lead").suite_gate == (True, None)  # recorded: the toy suite has no `gate:`, the gate reads so
    return store


def one_line(text: str) -> str:
    return " ".join(text.split())


def said(capsys) -> str:
    """What the last commands printed, results and errors alike, on one line."""
    captured = capsys.readouterr()
    return one_line(captured.out + captured.err)


def card_line(pack: Path, field: str) -> str:
    """One `- **Field:** ...` entry of the model card, its wrapped lines joined."""
    card = (pack / "MODEL_CARD.md").read_text()
    return one_line(re.search(rf"^- \*\*{field}.*?(?=^- \*\*|^#|\Z)", card, re.M | re.S).group(0))


def test_the_card_of_a_refused_under_trained_adapter_says_both(sweep, tmp_path, capsys):
    """Runs first: no production adapter yet, so cut/1 is gated against its study's prompting arm."""
    db = ["--db", str(sweep.path)]
    assert main(["promote", CUT, "--to", "staging", "--approver", "ana", *db]) == 1
    refusal = said(capsys)
    assert "[FAIL] trained in full" in refusal
    assert "; from the experiment's `gate:` (" in refusal  # not the objective's limits, which a lead assumed
    pack = tmp_path / "pack"
    assert main(["audit", CUT, "--out", str(pack), *db]) == 0

    gate = card_line(pack, "Last gate evaluation")
    assert gate.startswith("- **Last gate evaluation:** refused on ") and "(ana, for staging, against cut/0)" in gate
    assert "failing rule(s): " in gate and "; trained in full (its time cap stopped training at" in gate
    assert card_line(pack, "Approved by") == "- **Approved by:** not promoted."
    training = sweep.trial(CUT).training
    share = training.steps / training.planned_steps
    share = "under 1%" if share < 0.01 else f"{share:.0%}"
    assert card_line(pack, "Training").startswith(
        f"- **Training:** UNDER-TRAINED: {training.steps} of 5000 steps ({share} of its step budget), stopped by "
        "time budget")
    assert "gate not run" not in (pack / "MODEL_CARD.md").read_text()
    record = json.loads((pack / "record.json").read_text())
    assert record["last_gate_evaluation"]["outcome"] == "refused" and record["training"]["under_trained"] is True
    assert "trained in full" in [rule["name"] for rule in record["last_gate_evaluation"]["failed_rules"]]


def test_verify_catches_a_pack_forged_with_its_manifest_recomputed_once_a_hash_is_at_hand(sweep, tmp_path, capsys,
                                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)  # no results/harness.duckdb here: only --db brings the recorded hashes
    pack, forged = tmp_path / "pack", tmp_path / "forged"
    assert main(["audit", LORA, "--out", str(pack), "--db", str(sweep.path)]) == 0
    printed = said(capsys)
    digest = hashlib.sha256((pack / "MANIFEST.json").read_bytes()).hexdigest()
    assert f"sha256 of {pack / 'MANIFEST.json'}: {digest}" in printed
    recorded = [p for p in sweep.audit_packs(LORA) if p.folder == str(pack.resolve())]
    assert [p.manifest_sha256 for p in recorded] == [digest] and recorded[0].actor
    assert main(["registry", "--history", "--db", str(sweep.path)]) == 0  # an auditor sees every pack written
    history = said(capsys)
    assert "Audit packs written, oldest first" in history and digest[:20] in history.replace(" ", "")

    forged.mkdir()
    for path in pack.rglob("*"):
        if path.is_file():
            (forged / path.relative_to(pack)).parent.mkdir(parents=True, exist_ok=True)
            (forged / path.relative_to(pack)).write_bytes(path.read_bytes())
    record = json.loads((forged / "record.json").read_text())
    record["approver"] = "mallory"
    (forged / "record.json").write_text(json.dumps(record, indent=2))
    manifest = json.loads((forged / "MANIFEST.json").read_text())
    manifest["files"]["record.json"] = hashlib.sha256((forged / "record.json").read_bytes()).hexdigest()
    (forged / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    assert verify(forged) == []  # it agrees with itself: that alone proves nothing

    assert main(["audit", "--verify", str(forged)]) == 0
    alone = said(capsys)
    assert "consistent with itself only (no recorded hash to compare: keep the printed hash elsewhere" in alone
    assert "matches the hash recorded" not in alone
    assert main(["audit", "--verify", str(forged), "--db", str(sweep.path)]) == 1
    out = said(capsys)
    assert "mismatch: MANIFEST.json: sha256" in out and f"recorded when the packs of {LORA} were written" in out
    assert main(["audit", "--verify", str(forged), "--manifest-sha256", digest]) == 1
    assert f"is not the {digest} given with --manifest-sha256" in said(capsys)

    assert main(["audit", "--verify", str(pack), "--db", str(sweep.path)]) == 0
    out = said(capsys)
    assert "every file matches MANIFEST.json; MANIFEST.json" in out
    assert f"matches the hash recorded when it was written ({LORA}," in out
    assert main(["audit", "--verify", str(pack), "--manifest-sha256", digest.upper()]) == 0
    assert "matches the hash given with --manifest-sha256" in said(capsys)
    assert "64 hexadecimal digits" in refused(["audit", "--verify", str(pack), "--manifest-sha256", "abc"], capsys)
    assert "--manifest-sha256 checks a pack, with --verify DIR" in refused(
        ["audit", LORA, "--out", str(tmp_path / "other"), "--manifest-sha256", digest, "--db", str(sweep.path)],
        capsys)

    audit_parser = build_parser()._subparsers._group_actions[0].choices["audit"]
    assert all(action.help for action in audit_parser._actions)
    assert "consistent with itself only" in one_line(audit_parser.format_help())


def test_promote_gives_the_ways_on_when_production_was_scored_on_another_test_subset(sweep, tmp_path, capsys):
    db = ["--db", str(sweep.path)]
    promote(sweep, LORA, "production", approver="ana", force=True, reason="the first one we ship")
    assert main(["promote", CUT, "--to", "staging", "--approver", "ana", *db]) == 1
    out = said(capsys)
    assert f"[FAIL] task_accuracy: not decided: {CUT} and {LORA} were scored on different test subsets" in out
    assert "data.test_limit 8 and 12" in out  # what the two recorded differently, not a list of what it might be
    assert "payback" not in out and "Compare trials" not in out
    assert f"The gate could not weigh {CUT} against production {LORA} on the same test examples" in out
    commands = [shlex.split(c) for c in re.findall(r"`harness ([^`]+)`", out.split("Nothing changed.")[1])]
    assert len(commands) == 1  # retiring production first is not offered: the gate would then weigh the same adapter
    rerun = commands[0]
    assert rerun[:2] == ["sweep", sweep.study("cut").notes["config_path"]]
    assert rerun[2:] == ["--study", "cut-like-lead", "--set", "data.test_limit=12", "--set", "seed=0"]
    assert "--force --reason TEXT" in out and "the record says the objective was not compared like for like" in out
    assert main([*rerun, "--dry-run", "--allow-under-trained"]) == 0  # as printed, with the flag study cut ran with
    assert sweep.adapter_statuses().get(CUT) is None and sweep.looks(kind="gate")[-1].outcome == "refused"

    assert main(["promote", CUT, "--to", "staging", "--approver", "ana", "--force", "--reason", "pilot", *db]) == 0
    promoted = said(capsys)
    assert "the objective was not compared: different test subsets" in promoted
    assert f"registry head {sweep.registry_chain().head[:16]} (keep it outside the database" in promoted
    event = sweep.adapter_events(trial_id=CUT)[-1]
    assert event.forced and "different test subsets" in event.gate["unpaired"]
    pack = tmp_path / "pack"
    assert main(["audit", CUT, "--out", str(pack), *db]) == 0
    assert card_line(pack, "Approved by") == '- **Approved by:** ana; gate failed, overridden by ana: "pilot".'
    gate = card_line(pack, "Last gate evaluation")
    assert gate.startswith("- **Last gate evaluation:** failed on ") and 'overridden by ana: "pilot"' in gate
    assert f"task_accuracy (not decided: {CUT} and {LORA} were scored on different test subsets" in gate


def test_the_export_readme_says_to_copy_a_local_base_model_and_pull_only_an_embedded_one(sweep, tiny_model_dir,
                                                                                          tmp_path):
    assert main(["export", LORA, "--out", str(tmp_path / "serve"), "--db", str(sweep.path)]) == 0
    readme = one_line((tmp_path / "serve" / "README.md").read_text())
    assert "models pull" not in readme.replace("`harness models pull` does not fetch it", "")
    assert f"`{Path(tiny_model_dir).resolve()}`, a model folder of your own" in readme
    assert "copy that whole folder" in readme and "base_model.json" in readme

    embedded = one_line(" ".join(base_model_lines("/cache/models/smollm2-135m-abc", "smollm2-135m")))
    assert "`harness models pull smollm2-135m`" in embedded
    hub = one_line(" ".join(base_model_lines("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M")))
    assert "Hugging Face Hub id" in hub and "pull" not in hub


def test_every_command_that_needs_weights_tells_retention_from_a_folder_gone_missing(sweep, tmp_path, capsys):
    db = ["--db", str(sweep.path)]
    if sweep.production("toy-colours") is None:  # run alone, without the promotion test before it
        promote(sweep, LORA, "production", approver="ana", force=True, reason="the first one we ship")
    weights = sweep.trial(LORA).artifact_path
    away = weights.with_name("away")
    weights.rename(away)
    try:
        messages = [refused(argv, capsys) for argv in (
            ["recheck", "toy-colours", *db], ["export", LORA, "--out", str(tmp_path / "e"), *db],
            ["audit", LORA, "--out", str(tmp_path / "a"), *db], ["predict", LORA, "--text", "a red kite", *db])]
    finally:
        away.rename(weights)
    config = sweep.study("lead").notes["config_path"]
    for message in messages:
        assert message == (
            f"error: trial {LORA} has no saved weights: {weights} is missing, and retention did not remove it (it was "
            f"moved or deleted outside the harness). Put the folder back at that path, or train its configuration "
            f"again in a new study (a study runs each configuration once): `harness sweep {config} --study NEW_NAME`, "
            f"with its parameters (`harness show {LORA}`) under `enqueue:`.")
    assert not (tmp_path / "e").exists() and not (tmp_path / "a").exists()

    kept = sweep.trial(CUT).artifact_path
    sweep.set_artifact_path(CUT, None)  # as retention records the folders it deletes
    try:
        message = refused(["promote", CUT, "--to", "production", "--approver", "ana", *db], capsys)
    finally:
        sweep.set_artifact_path(CUT, kept)
    assert message.startswith(f"error: trial {CUT} has no saved weights: retention removed them after its sweep")
    assert "raise retention.keep_best" in message and "Put the folder back" not in message


def test_the_card_names_registry_moves_in_words(sweep, tmp_path):
    assert main(["promote", CUT, "--to", "retired", "--approver", "ana", "--note", "pilot over",
                 "--db", str(sweep.path)]) == 0
    pack = tmp_path / "pack"
    assert main(["audit", CUT, "--out", str(pack), "--db", str(sweep.path)]) == 0
    status = card_line(pack, "Status when")
    assert "retired (taken out of service by ana, " in status and "withdraw" not in status
    when = {"since": None, "by": "ada"}
    assert _status_text({**when, "status": "production", "action": "promote"}) == "production (promoted by ada)"
    assert _status_text({**when, "status": "retired", "action": "retire"}) == (
        "retired (replaced in production by another adapter, approved by ada)")
    assert _status_text({**when, "status": "production", "action": "rollback"}) == (
        "production (restored by a rollback, by ada)")


def test_a_promotion_and_its_gate_look_are_written_together_or_not_at_all(sweep):
    """promote wrote the look ("overridden") and the move in two transactions: a kill between them left a look for a
    promotion that never happened."""
    from harness.core.records import AdapterEvent, LookAtTest

    looks = len(sweep.looks())
    look = LookAtTest("gate", "toy-colours", None, LORA, "lead/0", "task_accuracy", {}, "overridden", "ana", None)
    with pytest.raises(ValueError, match="adapter status 'nowhere'"):
        sweep.record_adapter_events([AdapterEvent(LORA, "toy-colours", "nowhere", "candidate", "promote", "ana",
                                                  None)], look)
    assert len(sweep.looks()) == looks  # the move was refused, so its look was not written either


def test_an_approver_in_brackets_or_markdown_is_shown_as_written(sweep, tmp_path, capsys):
    """The registry's words are the approver's: `alice[/bold] [bob]` read as rich markup made `harness registry` and
    `registry --history` exit with a MarkupError for every suite, and lost `[bob]`; markdown in it made the model card
    draw an outside image and a link of its choosing."""
    from markdown_it import MarkdownIt

    db = ["--db", str(sweep.path)]
    approver = "alice[/bold] [bob] ![x](http://127.0.0.1:9/pixel.png)"
    assert main(["promote", LORA, "--to", "retired", "--approver", approver, "--note", "[red]n[/]ote", *db]) == 0
    capsys.readouterr()
    for command in (["registry"], ["registry", "--history"]):
        assert main([*command, *db]) == 0
        shown = said(capsys)
        assert "alice[/bold] [bob]" in shown, shown
    assert "[red]n[/]ote" in shown
    pack = tmp_path / "pack"
    assert main(["audit", LORA, "--out", str(pack), *db]) == 0
    card = MarkdownIt("commonmark").render((pack / "MODEL_CARD.md").read_text())
    assert "<img" not in card and "alice[/bold] [bob] ![x](http://127.0.0.1:9/pixel.png)" in card


def test_weights_swapped_after_scoring_are_refused_by_every_command_that_uses_them(sweep, tmp_path, capsys):
    """A security review replaced an adapter's weights with others of the same shapes: predict answered with them,
    promote moved the trial to production, audit wrote a pack listing the new file beside the trial's scores, and
    `audit --verify` passed it. Each file's sha256 is recorded when the trial saves it, and checked before use."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(sweep.path.parent, copy)
    store = Store(copy / "harness.duckdb")
    trial = store.trial(CUT)
    events = len(store.adapter_events())
    recorded = dict(trial.weights_sha256)
    assert "adapter_model.safetensors" in recorded and all(len(digest) == 64 for digest in recorded.values())
    weights = trial.artifact_path / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last tensor: the same shapes, other values
    weights.write_bytes(bytes(data))
    db = ["--db", str(copy)]
    commands = [["predict", CUT, "--text", "the hat is red"],
                ["promote", CUT, "--to", "staging", "--approver", "mallory", "--force", "--reason", "swapped"],
                ["export", CUT, "--out", str(tmp_path / "export")], ["audit", CUT, "--out", str(tmp_path / "pack")]]
    for command in commands:
        assert main([*command, *db]) == 2, command
        error = one_line(capsys.readouterr().err)
        assert f"trial {CUT}'s weights in {trial.artifact_path} are not the ones it was trained and scored with " \
               "(changed: adapter_model.safetensors;" in error, (command, error)
    assert not (tmp_path / "export").exists() and not (tmp_path / "pack").exists()
    assert len(store.adapter_events()) == events  # nothing moved
    weights.unlink()
    assert main(["predict", CUT, "--text", "x", *db]) == 2
    assert "(missing: adapter_model.safetensors;" in one_line(capsys.readouterr().err)
