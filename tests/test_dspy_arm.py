"""The `dspy` and `api_dspy` arms: prompting whose shots DSPy's optimizer searched for on train. The search scores
candidate prompts on a slice of train (never dev or test) with the exact text dev and test are asked with, keeps the
best, is deterministic, and is recorded; a sweep stores it, `show` says how it was chosen, the estimate counts it,
`predict` rebuilds the prompt from the recorded shots without searching again, and a hosted arm's search is paid from
the study's budget for its endpoint but kept apart from what a query costs."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from conftest import printed, swept
from test_methods import _ctx

from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.typed import build
from harness.data.contract import OutputContract
from harness.data.prompting import Prompter
from harness.data.shots import FixedShots
from harness.data.suites import load_suite
from harness.hosted.ledger import SpendLedger
from harness.store.database import Store
from harness.training.methods import METHODS
from harness.training.methods.api import hosted_candidate
from harness.training.prompt_search import (
    FIXED_CANDIDATES,
    SearchSettings,
    search_shots,
    searched_prompter,
    split,
)

PLAIN = Prompter(None, "", OutputContract("label"))
"""Renders a conversation as a model without a chat template sees it (`Input:`/`Output:` blocks)."""
SETTINGS = SearchSettings(max_demos=3, max_bootstrapped=2, candidates=3, val_size=12, pool_size=30, seed=0)


def scripted(seen: list[str]):
    """A model that names the input's colour when its prompt shows at least two shots, and invents one otherwise."""
    def answer(prompt: str) -> str:
        seen.append(prompt)
        asked = prompt.rsplit("Input: ", 1)[1]
        colour = re.search(r"is (\w+)", asked).group(1)
        return json.dumps({"colour": colour if prompt.count("Output:") >= 3 else "purple"})
    return lambda conversations: [answer(PLAIN.render(messages)) for messages in conversations]


def exact(example, output: str) -> float:
    return float(json.loads(output) == json.loads(example.target))


def test_the_search_keeps_the_best_candidate_scored_on_train_alone(toy_suite):
    suite = load_suite(str(toy_suite))
    base = Prompter(None, suite.instruction, suite.contract)  # a model without a chat template: Input/Output blocks
    seen: list[str] = []
    found = search_shots(base, scripted(seen), suite.splits["train"], SETTINGS, exact, "task accuracy")
    report = found.report
    assert len(found.shots) >= 2 and report.demos == len(found.shots)
    assert report.scores[0] == 1.0 and 0.0 in report.scores  # the best kept; no shots scored nothing
    assert list(report.scores) == sorted(report.scores, reverse=True)
    assert report.val_examples == 12 and report.pool_examples == 30
    assert 0 < report.calls <= SETTINGS.calls() and report.calls == len(seen) == len(set(seen))  # each prompt once
    assert report.optimizer.startswith("BootstrapFewShotWithRandomSearch (dspy ")
    val, pool = split(suite.splits["train"], SETTINGS)
    pool_ids = {ex.id for ex in pool}
    assert {ex.id for ex in found.shots} <= pool_ids and not {ex.id for ex in val} & pool_ids
    # scored with exactly the text dev and test are asked with
    assert searched_prompter(base, found.shots).prompt(val[0]) in seen
    held_out = [ex.input for split_name in ("dev", "test") for ex in suite.splits[split_name]]
    assert not any(text in prompt for prompt in seen for text in held_out)  # dev and test never reach the search
    again = search_shots(base, scripted([]), suite.splits["train"], SETTINGS, exact, "task accuracy")
    assert again.shots == found.shots and again.report.scores == report.scores


def test_a_model_never_right_costs_no_more_answers_than_the_estimate_counts(toy_suite):
    """Bootstrapping then walks every teacher over the whole pool, asking each teacher's own shots without
    themselves: the batched answers must still stay within `SearchSettings.calls`, which the estimate prices."""
    suite = load_suite(str(toy_suite))
    asked: list[str] = []

    def wrong(conversations: list[list[dict]]) -> list[str]:
        asked.extend(json.dumps(messages) for messages in conversations)
        return [json.dumps({"colour": "purple"})] * len(conversations)

    found = search_shots(Prompter(None, suite.instruction, suite.contract), wrong, suite.splits["train"], SETTINGS,
                         exact, "task accuracy")
    assert set(found.report.scores) == {0.0} and found.report.calls == len(asked) <= SETTINGS.calls()


def test_a_failing_model_call_stops_the_search_with_its_own_error(toy_suite):
    suite = load_suite(str(toy_suite))

    def broken(conversations: list[list[dict]]) -> list[str]:
        raise RuntimeError("out of memory on the third call")

    with pytest.raises(RuntimeError, match="out of memory on the third call"):
        search_shots(Prompter(None, suite.instruction, suite.contract), broken, suite.splits["train"], SETTINGS, exact,
                     "task accuracy")


def test_a_plain_models_prompt_lays_out_shots_as_input_output_blocks():
    suite_contract = load_suite("ticket-triage").contract
    shots = load_suite("ticket-triage").splits["train"][:2]
    prompter = Prompter(None, "Route it.", suite_contract, FixedShots(tuple(shots)))
    example = load_suite("ticket-triage").splits["dev"][0]
    blocks = prompter.prompt(example).split("\n\n")
    assert blocks[0] == "Route it." and blocks[-1] == f"Input: {example.input}\nOutput:"
    assert blocks[-3] == f"Input: {shots[0].input}\nOutput: {shots[0].target}"


SEARCH = "{max_demos: 2, max_bootstrapped: 1, candidates: 1, val_size: 8, pool_size: 16, constrained: true}"
EXPERIMENT = """
name: searched
model: {model}
suite: {suite}
results_dir: {root}/results
regression: {{enabled: false}}
data: {{train_limit: 80, dev_limit: 8, test_limit: 8}}
budget: {{trials: 2, max_steps: 2, trial_train_seconds: 600}}
training: {{batch_size: 4, eval_every_steps: 0}}
generation: {{batch_size: 4}}
space:
  prompt: {{shots: 0}}
  dspy: {dspy}
enqueue: [{{method: dspy}}, {{method: prompt}}]
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_model_dir, toy_suite):
    root = tmp_path_factory.mktemp("searched")
    monkey = pytest.MonkeyPatch()
    monkey.setenv("HARNESS_CACHE", str(root / "cache"))
    try:
        experiment = EXPERIMENT.format(root=root, model=tiny_model_dir, suite=toy_suite, dspy=SEARCH)
        store = swept(root / "searched.yaml", experiment)
    finally:
        monkey.undo()
    return root, store


def test_a_sweep_records_the_search_and_show_says_how_the_prompt_was_chosen(searched, capsys):
    root, store = searched
    trial = next(t for t in store.trials("searched") if t.method == "dspy")
    assert trial.status == "complete" and not trial.trained and trial.artifact_path is None
    search = trial.prompt_search
    assert search is not None and search.val_examples == 8 and search.pool_examples == 16
    assert len(trial.shots) == search.demos and search.calls > 0 and search.seconds > 0
    assert trial.engine.constrained and trial.metric("test", "task_accuracy").n == 8
    assert main(["show", trial.id, "--db", str(store.path)]) == 0
    out = printed(capsys)
    assert "prompt searched: BootstrapFewShotWithRandomSearch" in out and "on 8 train examples held out" in out
    assert ("shots (train ids, in the prompt's order): " + ", ".join(trial.shots) in out) == bool(trial.shots)


def test_predict_rebuilds_the_searched_prompt_from_the_recorded_shots(searched, capsys, monkeypatch):
    root, store = searched
    trial = next(t for t in store.trials("searched") if t.method == "dspy")

    def no_search(*args, **kwargs):
        raise AssertionError("predict searched again")

    monkeypatch.setattr("harness.training.methods.dspy_prompt.search_shots", no_search)
    stored = list(store.examples(trial.id, "test"))[:3]
    inputs = root / "inputs.txt"
    inputs.write_text("".join(e.input + "\n" for e in stored))
    assert main(["predict", trial.id, "--device", "cpu", "--db", str(store.path), "--input", str(inputs)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["output"] for row in rows] == [e.output for e in stored]


def test_a_finished_trials_shots_are_rebuilt_in_their_order_without_searching(tiny_model_dir, toy_suite, monkeypatch):
    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr("harness.training.methods.dspy_prompt.search_shots", no_search)
    ctx = _ctx(tiny_model_dir, toy_suite)
    ids = (ctx.train_examples[7].id, ctx.train_examples[3].id)
    method = METHODS.get("dspy")
    rebuilt = method.load(dataclasses.replace(ctx, recorded_shots=ids), build(method.Params, {}, "rebuild"), None)
    assert tuple(ex.id for ex in rebuilt.prompter.shots.examples) == ids and rebuilt.search is None
    with pytest.raises(HarnessError, match="train split has changed"):
        method.load(dataclasses.replace(ctx, recorded_shots=("train:gone",)), build(method.Params, {}, "x"), None)


def test_the_dry_run_prices_the_search_at_the_arms_calibrated_pace(tmp_path, tiny_model_dir, toy_suite, capsys,
                                                                    monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "dry.yaml"
    path.write_text(EXPERIMENT.format(root=tmp_path, model=tiny_model_dir, suite=toy_suite, dspy=SEARCH))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = printed(capsys)
    pace = float(re.search(r"dspy: ([\d.]+) s per generated example", out).group(1))  # timed here, 2 shots shown
    calls = SearchSettings(2, 1, 1, 8, 16, 0).calls()
    minutes = float(re.search(rf"1\. dspy: prompt search {calls} answers, ([\d.]+) min", out).group(1))
    assert minutes == pytest.approx(calls * pace / 60, abs=0.05 + calls * 0.005 / 60)  # pace is printed rounded


@pytest.mark.parametrize(("search", "message"), [
    ("{val_size: 78, max_demos: 4}", "holds out `val_size` 78 train examples to score its candidate prompts and draws "
                                     "up to `max_demos` 4 shots from the rest, but the train subset holds only 80"),
    ("{max_demos: 2, max_bootstrapped: 3}", "`space.dspy.max_bootstrapped` reaches 3, more than the 2 shots"),
])
def test_a_search_that_cannot_fit_train_is_refused_before_any_model_loads(search, message, tmp_path, tiny_model_dir,
                                                                        toy_suite, capsys, no_model_loads):
    path = tmp_path / "bad.yaml"
    path.write_text(EXPERIMENT.format(root=tmp_path, model=tiny_model_dir, suite=toy_suite, dspy=search))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert message in printed(capsys)


def hosted_search(tmp_path, name: str, model, suite, server, examples: int, search: str):
    """An experiment with one `api_dspy` arm on the loopback server (priced, so its spend is counted), `examples`
    dev and test examples, and `search`: the arm's other parameters, as YAML flow mapping items."""
    path = tmp_path / "hosted.yaml"
    path.write_text(f"""
name: {name}
model: {model}
suite: {suite}
results_dir: {tmp_path / "results"}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: {examples}, test_limit: {examples}}}
budget: {{trials: 1}}
endpoints:
  tiny: {{base_url: "{server.url}", model: "{server.model}", api_key_env: HARNESS_TEST_KEY,
          price: tiny-hosted, concurrency: 2}}
prices: {{apis: {{tiny-hosted: {{input_usd_per_1m: 0.5, output_usd_per_1m: 1.5}}}}}}
space:
  api_dspy: {{endpoint: tiny, {search}}}
""")
    return path


@pytest.mark.slow
def test_a_hosted_arm_searches_its_shots_on_its_endpoint_and_counts_the_spend_apart(tmp_path, tiny_model_dir, toy_suite,
                                                                                  openai_server, monkeypatch, capsys):
    """`api_dspy` asks a real OpenAI-compatible server on loopback: the search's requests count against the study's
    budget for the endpoint, and are recorded with the search, not in what a query costs."""
    monkeypatch.setenv("HARNESS_TEST_KEY", "sk-search-test")
    path = hosted_search(tmp_path, "hosted-search", tiny_model_dir, toy_suite, openai_server, 6,
                         "max_demos: 2, max_bootstrapped: 1, candidates: 1, val_size: 4, pool_size: 6")
    assert main(["sweep", str(path)]) == 0
    store = Store(tmp_path / "results" / "harness.duckdb")
    trial = store.trials("hosted-search")[0]
    assert trial.method == "api_dspy" and trial.complete and trial.device == "hosted"
    assert trial.hosted.requests + trial.hosted.cache_hits == 12  # dev and test alone price a query
    search = trial.prompt_search
    assert 0 < search.calls <= SearchSettings(2, 1, 1, 4, 6, 0).calls() and search.prompt_tokens > 0
    assert search.usd == pytest.approx((search.prompt_tokens * 0.5 + search.completion_tokens * 1.5) / 1e6)
    spent = SpendLedger(tmp_path / "results" / "cache" / "hosted-spend" / "hosted-search--tiny.jsonl").spent()
    assert (spent.prompt, spent.completion) == (trial.hosted.prompt_tokens + search.prompt_tokens,
                                                trial.hosted.completion_tokens + search.completion_tokens)
    assert main(["show", trial.id, "--db", str(store.path)]) == 0
    assert "tokens on the endpoint ($" in printed(capsys)

    # predict asks the endpoint with the recorded shots: no search, and no second client that could spend
    def no_search(*args, **kwargs):
        raise AssertionError("predict searched again")

    monkeypatch.setattr("harness.training.methods.dspy_prompt.search_shots", no_search)
    made = []
    monkeypatch.setattr("harness.training.methods.dspy_prompt.hosted_candidate",
                        lambda *args: made.append(args) or hosted_candidate(*args))
    stored = list(store.examples(trial.id, "test"))[:2]
    (inputs := tmp_path / "inputs.txt").write_text("".join(e.input + "\n" for e in stored))
    assert main(["predict", trial.id, "--db", str(store.path), "--input", str(inputs)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["output"] for row in rows] == [e.output for e in stored] and len(made) == 1


def test_without_dspy_installed_the_arm_is_skipped_with_the_reason(monkeypatch):
    from importlib import util

    from harness.sweep.space import build_space

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *args: None if name == "dspy" else real(name, *args))
    space = build_space({"dspy": {}, "prompt": {"shots": 0}}, "cpu", "exp.yaml")
    assert "dspy" not in space.methods and "prompt" in space.methods
    assert "pip install 'dspy>=3.4.1,<3.6'" in space.skipped["dspy"]


def test_a_pool_larger_than_the_train_subset_is_counted_as_the_pool_it_draws():
    """`pool_size: 500` on 100 train examples drew 90 (what is left after the validation slice), and the estimate
    priced 500: 1,550 answers where the search makes at most 320."""
    params = build(METHODS.get("dspy").Params, {"pool_size": 500, "val_size": 10, "candidates": 2}, "x")
    settings = params.settings(0, 100)
    assert settings.pool_size == 90 and settings.calls() == (2 + FIXED_CANDIDATES) * 10 + (2 + 1) * 90
    assert params.settings(0, 1_000).pool_size == 500  # room for the whole pool: as asked
    train = tuple(range(100))
    val, pool = split(train, settings)
    assert len(val) == 10 and len(pool) == settings.pool_size and not set(val) & set(pool)
