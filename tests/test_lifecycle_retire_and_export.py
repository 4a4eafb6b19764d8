"""Taking a suite's first production adapter out of service, and exporting an adapter for serving, as a new user
meets them: every command a message prints runs as printed; `--reason` without `--force` is refused rather than
dropped; an export whose re-score through vLLM fails leaves nothing behind; the export says the scores were measured
with constrained decoding, and how to serve it that way; exported files are readable by a server of another user.
One tiny real sweep: a prompting arm, a LoRA arm decoded within the label set, and one decoded freely."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import COLOURS, swept
from test_bad_input import refused

from harness.cli import main
from harness.core.errors import HarnessError
from harness.data.suites import load_suite
from harness.lifecycle.export import export
from harness.lifecycle.promote import promote, rollback
from harness.lifecycle.serving_notes import STRUCTURED_OUTPUTS_CONFIG
from harness.serving.vllm import VllmError, VllmSettings, _structured_config
from harness.store.database import Store
from harness.training.constrained import served_schema

EXPERIMENT = """
name: srv
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 12, test_limit: 12}}
budget: {{trials: 3, max_steps: 20, epochs: 50, trial_train_seconds: 300}}
training: {{batch_size: 16, eval_every_steps: 0}}
generation: {{batch_size: 12}}
space:
  prompt: {{shots: 0}}
  lora: {{r: 8, lora_alpha: 16, learning_rate: 1.0e-2, constrained: [true, false]}}
enqueue:
  - {{method: prompt}}
  - {{method: lora, constrained: true}}
  - {{method: lora, constrained: false}}
"""
CONSTRAINED, FREE = "srv/1", "srv/2"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model_dir, toy_suite) -> Store:
    root = tmp_path_factory.mktemp("srv")
    store = swept(root / "srv.yaml", EXPERIMENT.format(model=tiny_model_dir, suite=toy_suite,
                                                       results=root / "results"), "--allow-under-trained")
    assert [t.status for t in store.trials("srv")] == ["complete"] * 3
    assert store.trial(CONSTRAINED).engine.constrained and not store.trial(FREE).engine.constrained
    return store


def printed_commands(message: str) -> list[list[str]]:
    """The `harness ...` commands a message prints, as argv, with its placeholders filled in as a user would."""
    commands = re.findall(r"`harness ([^`]+)`", message)
    return [shlex.split(c.replace("NAME", "ada").replace("WHY", "'refunds misrouted'")) for c in commands]


def test_reason_without_force_is_refused_before_the_gate_runs(sweep, capsys):
    looks = len(sweep.looks(kind="gate"))
    with pytest.raises(HarnessError, match="--reason says why a failing gate is overridden, so it goes with --force"):
        promote(sweep, FREE, "staging", approver="ada", reason="pilot")
    message = refused(["promote", FREE, "--to", "staging", "--approver", "ada", "--reason", "pilot",
                       "--db", str(sweep.path)], capsys)
    assert "Say why you promote with --note TEXT" in message
    assert len(sweep.looks(kind="gate")) == looks and sweep.adapter_statuses() == {}  # no look at test, no change


def test_a_first_production_adapter_is_retired_by_the_command_the_refusals_print(sweep, capsys):
    db = ["--db", str(sweep.path)]
    promote(sweep, CONSTRAINED, "production", approver="ada", force=True, reason="the first one we ship")
    demoted = refused(["promote", CONSTRAINED, "--to", "staging", "--approver", "ada", "--force", "--reason", "down",
                       *db], capsys)
    assert "promote does not demote it" in demoted and "rollback" not in demoted  # nothing to roll back to
    stuck = refused(["rollback", "toy-colours", "--approver", "ada", *db], capsys)
    assert "has no earlier production adapter to roll back to" in stuck
    assert printed_commands(demoted) == printed_commands(stuck) == [
        ["promote", CONSTRAINED, "--to", "retired", "--approver", "ada", "--note", "refunds misrouted"]]

    assert main([*printed_commands(demoted)[0], *db]) == 0  # as printed
    assert f"{CONSTRAINED}: production -> retired for suite toy-colours" in " ".join(capsys.readouterr().out.split())
    assert sweep.production("toy-colours") is None and sweep.adapter_statuses() == {CONSTRAINED: "retired"}
    last = sweep.adapter_events(trial_id=CONSTRAINED)[-1]
    assert (last.previous, last.status, last.action, last.actor, last.note, last.gate) == (
        "production", "retired", "withdraw", "ada", "refunds misrouted", None)
    assert "--to retired needs --note" in refused(["promote", FREE, "--to", "retired", "--approver", "ada", *db],
                                                  capsys)
    message = refused(["promote", FREE, "--to", "retired", "--approver", "ada", "--force", "--reason", "x", *db],
                      capsys)
    assert "retiring runs no gate, so there is nothing to override" in message
    assert "is already retired" in refused(["promote", CONSTRAINED, "--to", "retired", "--approver", "ada",
                                            "--note", "again", *db], capsys)


def test_rollback_restores_an_adapter_that_was_replaced_never_one_retired_by_hand(sweep):
    status = sweep.adapter_statuses().get(CONSTRAINED)
    if status != "retired":  # run alone, without the test before it
        if status != "production":
            promote(sweep, CONSTRAINED, "production", approver="ada", force=True, reason="shipped")
        promote(sweep, CONSTRAINED, "retired", approver="ada", note="taken down")
    promote(sweep, FREE, "production", approver="ada", force=True, reason="its replacement")
    promote(sweep, CONSTRAINED, "production", approver="ada", force=True, reason="back, retrained")
    with pytest.raises(HarnessError, match="promote does not demote it") as demoted:
        promote(sweep, CONSTRAINED, "staging", approver="ada")
    rollback_command = printed_commands(str(demoted.value))[-1]  # FREE was replaced, so rollback is offered
    assert rollback_command == ["rollback", "toy-colours", "--approver", "ada"]
    assert main([*rollback_command, "--db", str(sweep.path)]) == 0
    assert sweep.production("toy-colours") == FREE and sweep.adapter_statuses()[CONSTRAINED] == "retired"

    promote(sweep, FREE, "retired", approver="ada", note="leaks PII")  # taken down by hand: never restored
    promote(sweep, CONSTRAINED, "production", approver="ada", force=True, reason="the only one left")
    with pytest.raises(HarnessError, match="never one retired by hand") as stuck:
        rollback(sweep, "toy-colours", approver="ada")
    assert "harness rollback" not in str(stuck.value) and sweep.production("toy-colours") == CONSTRAINED


@pytest.fixture
def vllm_refusing_adapters():
    """A vLLM server as `attach` sees one (healthy, serving `base`) that refuses to load an adapter, as one that ran
    out of memory does: the re-score fails after the export's model has loaded."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            bodies = {"/health": {}, "/version": {"version": "0.0.test"}, "/v1/models": {"data": [{"id": "base"}]}}
            self._answer(200 if self.path in bodies else 404, bodies.get(self.path, {"detail": "Not Found"}))

        def do_POST(self):
            self._answer(500, {"error": {"message": "out of memory loading the adapter"}})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@contextmanager
def refusing_url():
    """The url of a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


def test_an_export_whose_rescore_fails_leaves_nothing_and_can_run_again(sweep, tmp_path, capsys,
                                                                         vllm_refusing_adapters):
    out, db = tmp_path / "s3", ["--db", str(sweep.path)]
    with refusing_url() as url:  # checked before anything is written or loaded
        message = refused(["export", FREE, "--out", str(out), "--rescore", "--vllm-url", url, *db], capsys)
    assert "no vLLM server answers at" in message and not out.exists()
    with pytest.raises(VllmError, match="out of memory loading the adapter"):  # it fails after the model loaded
        export(sweep, FREE, out, rescore=VllmSettings(url=vllm_refusing_adapters))
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []
    message = refused(["export", FREE, "--out", str(out), "--rescore", "--vllm-url", vllm_refusing_adapters, *db],
                      capsys)
    assert "out of memory loading the adapter" in message and not out.exists() and os.listdir(tmp_path) == []
    assert main(["export", FREE, "--out", str(out), *db]) == 0  # the same --out, once the server is fixed
    assert (out / "adapter_model.safetensors").is_file() and not (out / "rescore.json").exists()


def test_the_export_says_the_scores_were_measured_with_constrained_decoding(sweep, toy_suite, tmp_path):
    folder = export(sweep, CONSTRAINED, tmp_path / "constrained").folder
    serving = json.loads((folder / "serving.json").read_text())
    assert serving["decoding"] == "greedy, constrained to the output contract" and serving["constrained"] is True
    answers = [json.dumps({"colour": colour}) for colour in COLOURS]
    assert serving["constraint"]["answers"] == answers
    assert serving["constraint"]["json_schema"]["properties"]["colour"]["enum"] == list(COLOURS)
    stored = {e.output for e in sweep.examples(CONSTRAINED, "test")}
    assert stored <= set(answers)  # what was scored is what the constraint allows
    request = serving["vllm_request"]  # what the harness's own vLLM engine sends (engines.VllmCandidate)
    assert request["structured_outputs"] == {"json": served_schema(load_suite(toy_suite).contract)}
    assert request["temperature"] == 0 and request["max_tokens"] == serving["max_new_tokens"]
    assert serving["vllm_server_flags"] == ["--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS_CONFIG)]
    assert STRUCTURED_OUTPUTS_CONFIG == _structured_config(VllmSettings())  # as the harness starts its servers
    readme = (folder / "README.md").read_text()
    assert "constrained to the output contract" in readme and "Answer greedily: the" not in readme
    assert f"--structured-outputs-config '{json.dumps(STRUCTURED_OUTPUTS_CONFIG)}'" in readme
    assert 'extra_body=serving["vllm_request"]' in readme and '"srv-1"' in readme

    free = json.loads((export(sweep, FREE, tmp_path / "free").folder / "serving.json").read_text())
    assert free["decoding"] == "greedy" and free["constrained"] is False and "constraint" not in free
    assert "structured" not in (tmp_path / "free" / "README.md").read_text()


def test_exported_files_get_the_umask_mode_so_a_server_of_another_user_can_read_them(sweep, tmp_path):
    previous = os.umask(0o022)
    try:
        folder = export(sweep, FREE, tmp_path / "modes", merged=True).folder
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(folder)): oct(p.stat().st_mode & 0o777) for p in folder.rglob("*") if p.is_file()}
    assert "adapter_model.safetensors" in modes and "merged/model.safetensors" in modes
    assert set(modes.values()) == {"0o644"}, modes
    assert oct(folder.stat().st_mode & 0o777) == "0o755"


def test_replace_swaps_an_earlier_export_whole_and_never_touches_another_folder(sweep, tmp_path, capsys):
    """A re-export into the same --out (after the adapter was re-scored, or the serving notes changed) exited 2 with
    no way on but another folder name; then --replace deleted a file of the user's own with the earlier export."""
    out, db = tmp_path / "serve", ["--db", str(sweep.path)]
    assert main(["export", FREE, "--out", str(out), *db]) == 0
    message = refused(["export", FREE, "--out", str(out), *db], capsys)
    assert "add --replace to replace an earlier export there" in message
    (out / "deploy-notes.txt").write_text("the user's own")  # --replace had deleted it with the export
    message = refused(["export", CONSTRAINED, "--out", str(out), "--replace", *db], capsys)
    assert "holds 1 file(s) the export did not write (deploy-notes.txt); replacing it would delete them" in message
    assert (out / "deploy-notes.txt").read_text() == "the user's own"
    (out / "deploy-notes.txt").unlink()
    assert main(["export", CONSTRAINED, "--out", str(out), "--replace", *db]) == 0
    serving = json.loads((out / "serving.json").read_text())
    assert serving["constrained"] is True
    assert serving["files"] == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serve"]  # nothing left beside it

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("not an export")
    message = refused(["export", FREE, "--out", str(notes), "--replace", *db], capsys)
    assert "it holds no export (no serving.json or base_model.json), so --replace leaves it alone" in message
    assert (notes / "mine.txt").read_text() == "not an export"
