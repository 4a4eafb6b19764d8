"""A hosted arm in the same sweep as local prompting and LoRA, through the real CLI, against a real OpenAI-compatible
server on loopback: measured tokens, latency and cost; a re-run that sends nothing; payback against the hosted arm
with every input measured or entered; a key that never reaches the disk; and endpoint mistakes refused before any
model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import printed
from fault_proxy import FaultProxy
from test_prompt_export import built_by_readme

from harness.analysis.cost import ASSUMED
from harness.cli import main
from harness.hosted.ledger import SpendLedger
from harness.store.database import Store
from harness.sweep.predict import load_candidate

KEY = "sk-hosted-test-7c0ffee-never-on-disk"


def experiment(tmp_path: Path, model: Path, suite: Path, url: str, served: str, body: str = "") -> Path:
    path = tmp_path / "hosted.yaml"
    path.write_text(f"""
name: hosted
model: {model}
suite: {suite}
results_dir: {tmp_path / "results"}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 8, test_limit: 8}}
budget: {{trials: 3, max_steps: 2}}
training: {{batch_size: 8, eval_every_steps: 0}}
endpoints:
  tiny: {{base_url: "{url}", model: "{served}", api_key_env: HARNESS_TEST_KEY, price: tiny-hosted, concurrency: 2}}
prices: {{apis: {{tiny-hosted: {{input_usd_per_1m: 0.5, output_usd_per_1m: 1.5}}}}}}
space:
  prompt: {{shots: 1, shot_selection: similar, constrained: true}}
  api: {{endpoint: tiny, shots: [0, 2]}}
  lora: {{r: 4}}
enqueue: [{{method: prompt}}, {{method: api, shots: 2}}, {{method: lora}}]
{body}""")
    return path


@pytest.mark.slow
def test_hosted_arm_runs_beside_lora_and_is_measured(tmp_path, tiny_model_dir, toy_suite, openai_server,
                                                     monkeypatch, capfd):
    monkeypatch.setenv("HARNESS_TEST_KEY", KEY)
    with FaultProxy(openai_server.url) as proxy:
        path = experiment(tmp_path, tiny_model_dir, toy_suite, proxy.url, openai_server.model)
        assert main(["sweep", str(path)]) == 0
        store = Store(tmp_path / "results" / "harness.duckdb")
        trials = {t.method: t for t in store.trials("hosted")}
        hosted = trials["api"]
        assert hosted.complete and hosted.device == "hosted" and hosted.params["shots"] == 2
        usage = hosted.hosted
        assert (usage.endpoint, usage.requests, usage.cache_hits, usage.errors) == ("tiny", 16, 0, 0)
        # every request went through the study's spend ledger, which other workers of the results folder share
        ledger = SpendLedger(tmp_path / "results" / "cache" / "hosted-spend" / "hosted--tiny.jsonl").spent()
        assert (ledger.prompt, ledger.completion, ledger.held) == (usage.prompt_tokens, usage.completion_tokens, 0)
        assert usage.usd == pytest.approx((usage.prompt_tokens * 0.5 + usage.completion_tokens * 1.5) / 1e6)
        # the arm's 16 requests, and the one probe with the arm's parameters that preceded every model load
        assert proxy.forwarded == 17 and proxy.authorizations == {f"Bearer {KEY}"}
        examples = store.examples(hosted.id)
        assert len(examples) == 16 and all(e.prompt_tokens > 0 and e.latency_s > 0 for e in examples)
        assert hosted.throughput["test"].prompt_tokens == sum(e.prompt_tokens for e in examples if e.split == "test")
        assert trials["prompt"].params["constrained"] is True
        out = capfd.readouterr().out
        assert "the real opponent" in out and hosted.id in out

        # payback defaults to the hosted arm, and every input is measured or entered by the user
        db = ["--db", str(tmp_path / "results" / "harness.duckdb")]
        assert main(["payback", trials["lora"].id, "--volume", "100000", "--format", "json", *db]) == 0
        estimate = json.loads(capfd.readouterr().out)
        assert estimate["baseline"] == hosted.id
        sources = [a["source"] for a in estimate["assumptions"].values()]
        assert not any(ASSUMED in s for s in sources), sources
        assert estimate["assumptions"]["baseline.prompt_tokens_per_query"]["source"].startswith(
            f"measured in trial {hosted.id}")

        # a re-run of the hosted arm sends no request: every answer comes from the cache
        again = ["sweep", str(path), "--study", "again", "--set", "enqueue=[{method: api, shots: 2}]",
                 "--set", "budget.trials=1"]
        assert main(again) == 0
        (rerun,) = store.trials("again")
        assert proxy.forwarded == 18 and (rerun.hosted.requests, rerun.hosted.cache_hits) == (0, 16)  # its probe
        assert [e.output for e in store.examples(rerun.id)] == [e.output for e in examples]

        # predict rebuilds each arm as it ran: the hosted one asks its endpoint, the local one keeps its shots
        for trial in (hosted, trials["prompt"]):
            assert main(["predict", trial.id, "--input", "item 9: the hat is blue", *db]) == 0
            answer = json.loads(capfd.readouterr().out.splitlines()[-1])
            assert set(answer) == {"input", "output", "parsed", "format_compliant", "error", "hallucinated"}
        assert proxy.forwarded == 19
        assert answer["format_compliant"] is True  # the local arm decodes constrained to the label set
        assert answer["hallucinated"] is False  # and so names a label of the set

        # where the hosted arm won, its export is what it sent: the README's Python builds the request of every test
        # input, and neither the export nor its key ask the endpoint
        candidate, suite, _ = load_candidate(store, hosted.id)
        monkeypatch.delenv("HARNESS_TEST_KEY")
        exported, asked = tmp_path / "exported", proxy.forwarded
        assert main(["export", hosted.id, "--out", str(exported), *db]) == 0
        assert proxy.forwarded == asked
        served = json.loads((exported / "serving.json").read_text())
        assert json.loads((exported / "endpoint.json").read_text())["model"] == openai_server.model
        tested = [ex for ex in suite.splits["test"] if ex.id in {e.example_id for e in examples}]
        assert len(tested) == 8
        for ex in tested:
            messages = built_by_readme(exported, ex, "messages")
            assert {**served["request"], "messages": messages} == candidate.request(ex).body()

    # the key was used, and is nowhere on disk or in what the harness printed
    printed = capfd.readouterr()
    assert KEY not in printed.out + printed.err
    for file in [*(tmp_path / "results").rglob("*"), *(tmp_path / "exported").rglob("*")]:
        if file.is_file():
            assert KEY.encode() not in file.read_bytes(), file
    assert KEY not in path.read_text()


@pytest.mark.parametrize("body, env, message", [
    ("", None, "reads its key from $HARNESS_TEST_KEY, which is not set"),
    ("", KEY, None),
])
def test_a_missing_key_is_refused_before_any_model_loads(tmp_path, tiny_model_dir, toy_suite, openai_server,
                                                         monkeypatch, capsys, body, env, message):
    from harness.sweep.plan import plan_sweep

    if env:
        monkeypatch.setenv("HARNESS_TEST_KEY", env)
    else:
        monkeypatch.delenv("HARNESS_TEST_KEY", raising=False)
    path = experiment(tmp_path, tiny_model_dir, toy_suite, openai_server.url, openai_server.model, body)
    if message is None:
        plan = plan_sweep(path, [])
        assert set(plan.endpoints) == {"tiny"} and plan.endpoints["tiny"].usd_per_1m == (0.5, 1.5)
        assert KEY not in repr(plan)
        return
    assert main(["sweep", str(path)]) == 2
    out = printed(capsys)
    assert message in out and "Traceback" not in out


def test_endpoint_mistakes_are_refused_at_plan_time(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    from harness.core.errors import ConfigError
    from harness.models import loading
    from harness.sweep.plan import plan_sweep

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the endpoints were checked")

    monkeypatch.setattr(loading, "load_model", loaded)
    monkeypatch.setenv("HARNESS_TEST_KEY", KEY)
    dead = "http://127.0.0.1:9/v1"  # the discard port: nothing answers there
    path = experiment(tmp_path, tiny_model_dir, toy_suite, dead, "m")
    with pytest.raises(ConfigError, match="cannot be reached") as info:
        plan_sweep(path, [])
    assert KEY not in str(info.value)
    with pytest.raises(ConfigError, match="names 'mini', which is not under `endpoints:`"):
        plan_sweep(path, ["space.api.endpoint=mini"])
    with pytest.raises(ConfigError, match="`space.api.endpoint` is missing"):
        plan_sweep(path, ["space.api={shots: [0, 2]}"])
    with pytest.raises(ConfigError, match="no price for hosted model `nope`"):
        plan_sweep(path, ["endpoints.tiny.price=nope"])
    with pytest.raises(ConfigError, match="budget_usd` needs `endpoints.tiny.price`"):
        plan_sweep(path, ["endpoints.tiny.price=null", "endpoints.tiny.budget_usd=1"])
    with pytest.raises(ConfigError, match="missing required key `endpoints.tiny.api_key_env`"):
        plan_sweep(path, ["endpoints.tiny={base_url: x, model: m}"])
    with pytest.raises(ConfigError, match="`redaction` is on, but `endpoints.tiny.cache` keeps every request"):
        plan_sweep(path, ["redaction.enabled=true"])


def test_an_endpoint_that_rejects_the_arms_request_is_refused_before_any_model_loads(
        tmp_path, tiny_model_dir, toy_suite, openai_server, monkeypatch, capsys):
    """Scored example by example, its refusals would read 0%, and 'fine-tuning beat hosted prompting'."""
    from harness.models import loading

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the arm's request was checked")

    monkeypatch.setattr(loading, "load_model", loaded)
    monkeypatch.setenv("HARNESS_TEST_KEY", KEY)
    with FaultProxy(openai_server.url, rejects="'response_format' of type 'json_schema' is not supported") as proxy:
        path = experiment(tmp_path, tiny_model_dir, toy_suite, proxy.url, openai_server.model)
        assert main(["sweep", str(path), "--set", "space.api.structured=true"]) == 2
        assert len(proxy.received) == 1  # one probe, then nothing
    out = printed(capsys)
    assert "rejected a chat request with the arm's exact parameters" in out and "structured=True" in out
    assert "'json_schema' is not supported" in out and "Traceback" not in out
    assert Store(tmp_path / "results" / "harness.duckdb").trials() == []


def test_a_model_the_server_does_not_serve_is_refused_with_the_servers_own_words(
        tmp_path, tiny_model_dir, toy_suite, openai_server, monkeypatch, capsys):
    """`transformers serve` answers FastAPI's `{"detail": ...}`, which the openai client leaves out of its message
    ("Error code: 400"): the refusal must still say what the server said, and point at `model`."""
    monkeypatch.setenv("HARNESS_TEST_KEY", KEY)
    path = experiment(tmp_path, tiny_model_dir, toy_suite, openai_server.url, "not-served-here")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    out = printed(capsys)
    assert "requested 'not-served-here'" in out and "`endpoints.tiny.model` (not-served-here)" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("action, changes, says, fix", [
    ("model_not_found", [], "does not exist or you do not have access to it.; it does not serve model",
     "Fix `endpoints.tiny.model`"),
    ("hang", ["endpoints.tiny.timeout_s=0.5", "endpoints.tiny.max_retries=0"],
     "gave no answer to one chat request with the arm's parameters", "raise `endpoints.tiny.timeout_s`"),
])
def test_the_one_request_check_points_at_the_setting_to_fix(tmp_path, tiny_model_dir, toy_suite, openai_server,
                                                            monkeypatch, capsys, action, changes, says, fix):
    """A misspelt model (OpenAI answers 404, as for a wrong route) and a slow server are no rejected parameters."""
    monkeypatch.setenv("HARNESS_TEST_KEY", KEY)
    with FaultProxy(openai_server.url, script=[action], hang_s=3) as proxy:
        path = experiment(tmp_path, tiny_model_dir, toy_suite, proxy.url, openai_server.model)
        sets = [arg for change in changes for arg in ("--set", change)]
        assert main(["sweep", str(path), "--dry-run", *sets]) == 2
    out = printed(capsys)
    assert says in out and fix in out
    assert "rejected a chat request" not in out and "re-run" not in out and "Traceback" not in out


def test_a_trial_an_endpoint_failure_stopped_runs_again_when_the_same_command_runs_again(
        tmp_path, tiny_model_dir, toy_suite, openai_server, monkeypatch, capsys):
    """An endpoint that went down is not the configuration's fault: the trial counts as failed in its run (which
    would otherwise ask the dead endpoint again and again), and the same command, run again, runs it again."""
    monkeypatch.setenv("HARNESS_TEST_KEY", KEY)
    command = ["--set", "space.prompt=null", "--set", "space.lora=null", "--set", "enqueue=[{method: api, shots: 0}]",
               "--set", "budget.trials=1", "--set", "endpoints.tiny.max_retries=0", "--set",
               "endpoints.tiny.concurrency=1"]
    with FaultProxy(openai_server.url, script=["pass", "500"]) as proxy:  # the one-request check, then a failure
        path = experiment(tmp_path, tiny_model_dir, toy_suite, proxy.url, openai_server.model)
        assert main(["sweep", str(path), *command]) == 1
        assert "re-run the same command to resume" in printed(capsys)
        assert main(["sweep", str(path), *command]) == 0
        store = Store(tmp_path / "results" / "harness.duckdb")
        first, again = store.trials("hosted")
        assert first.status == "failed" and first.failure_reason.endswith("; re-run as hosted/1")
        assert again.complete and again.params == first.params and again.hosted.cache_hits == 0
        assert main(["sweep", str(path), *command]) == 0 and len(store.trials("hosted")) == 2  # nothing left


def test_a_few_refused_examples_are_recorded_and_left_out_of_every_metric(tmp_path, tiny_model_dir, toy_suite,
                                                                          openai_server, monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_KEY", KEY)
    with FaultProxy(openai_server.url, script=["pass", "pass", "400", "pass", "400"]) as proxy:  # probe first
        path = experiment(tmp_path, tiny_model_dir, toy_suite, proxy.url, openai_server.model)
        assert main(["sweep", str(path), "--set", "enqueue=[{method: api, shots: 0}]", "--set", "budget.trials=1",
                     "--set", "endpoints.tiny.max_refused_share=0.25", "--set", "endpoints.tiny.concurrency=1"]) == 0
    store = Store(tmp_path / "results" / "harness.duckdb")
    (hosted,) = store.trials("hosted")
    assert hosted.complete and hosted.hosted.errors == 2
    refused = [e for e in store.examples(hosted.id) if e.error]
    assert len(refused) == 2 and all(e.split == "dev" for e in refused)
    assert all(value is None for e in refused for value in e.scores.values())
    assert hosted.metric("dev", "task_accuracy").n == 6 and hosted.metric("test", "task_accuracy").n == 8
