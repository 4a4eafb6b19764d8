"""`optimizer: mipro` on the `dspy` and `api_dspy` arms: DSPy's MIPROv2 searches the instruction with the shots. Its
proposer writes free text (never constrained, never structured output, laid out by DSPy's ChatAdapter), the chosen
instruction replaces the suite's in dev and test and is recorded, a rebuild from the record gives the same prompt,
each evaluation is one batched call, the count the estimate prices bounds what it does, and parameters that do not
fit the optimizer are refused before any model loads."""

from __future__ import annotations

import dataclasses
import json
import logging
import re

import pytest
from conftest import printed, swept
from test_dspy_arm import EXPERIMENT, PLAIN, exact, hosted_search
from test_methods import _ctx

from harness.cli import main
from harness.core.records import PromptSearch
from harness.core.typed import build
from harness.data.prompting import Prompter
from harness.data.suites import load_suite
from harness.hosted.client import HostedClient
from harness.hosted.ledger import SpendLedger
from harness.lifecycle.export import export
from harness.lifecycle.prompt_export import load_prompt
from harness.store.database import Store, _typed
from harness.sweep.predict import load_candidate
from harness.training.methods import METHODS
from harness.training.methods.base import LocalCandidate
from harness.training.prompt_search import SearchSettings, search_shots, searched_prompter, split
from harness.training.prompt_search_mipro import (
    HOSTED_PROPOSER_MAX_TOKENS,
    PROPOSER_CALL_ANSWERS,
    PROPOSER_MAX_TOKENS,
    full_evaluations,
)

MIPRO = SearchSettings(max_demos=3, max_bootstrapped=2, candidates=4, val_size=12, pool_size=30, seed=0,
                       optimizer="mipro", trials=8, minibatch_size=6)
PROPOSED = "Say the COLOUR of the thing."


class Scripted:
    """A model that names the input's colour only when its instruction says COLOUR (whatever the shots), and a
    proposer that writes that instruction, as free text without ChatAdapter's field markers."""

    def __init__(self) -> None:
        self.asked: list[list[dict]] = []
        self.batches: list[int] = []
        self.proposed: list[list[dict]] = []

    def complete(self, conversations: list[list[dict]]) -> list[str]:
        self.batches.append(len(conversations))
        self.asked += conversations
        return [self._answer(PLAIN.render(messages)) for messages in conversations]

    def propose(self, conversations: list[list[dict]]) -> list[str]:
        self.proposed += conversations
        return [PROPOSED if "proposed_instruction" in json.dumps(messages) else "They are colours."
                for messages in conversations]

    @staticmethod
    def _answer(prompt: str) -> str:
        colour = re.search(r"is (\w+)", prompt.rsplit("Input: ", 1)[1]).group(1)
        return json.dumps({"colour": colour if "COLOUR" in prompt.split("Input: ", 1)[0] else "purple"})


def _search(suite, model: Scripted, settings: SearchSettings = MIPRO):
    base = Prompter(None, suite.instruction, suite.contract)
    return base, search_shots(base, model.complete, suite.splits["train"], settings, exact, "task accuracy",
                              propose=model.propose)


def test_mipro_chooses_the_instruction_that_scores_and_records_it(toy_suite):
    suite = load_suite(str(toy_suite))
    model = Scripted()
    base, found = _search(suite, model)
    report = found.report
    assert found.instruction == PROPOSED == report.instruction  # the suite's instruction scored 0: it was replaced
    assert report.optimizer.startswith("MIPROv2 (dspy ") and report.demos == len(found.shots)
    assert report.scores[0] == 1.0 and 0.0 in report.scores  # the suite's zero-shot prompt is scored, and lost
    assert len(report.scores) == 1 + full_evaluations(MIPRO.trials)  # the estimate replays DSPy's rule
    val, pool = split(suite.splits["train"], MIPRO)
    assert {ex.id for ex in found.shots} <= {ex.id for ex in pool}
    # the chosen prompt was scored with exactly the text dev and test are asked with: instruction, contract, shots
    chosen = searched_prompter(base, found.shots, found.instruction)
    assert chosen.system_text(val[0]) == f"{PROPOSED}\n\n{suite.contract.describe()}"
    assert chosen.messages(val[0]) in model.asked
    held_out = [ex.input for name in ("dev", "test") for ex in suite.splits[name]]
    assert not any(text in json.dumps(messages) for messages in model.asked + model.proposed for text in held_out)
    again = Scripted()
    _, repeated = _search(suite, again)
    assert (repeated.instruction, repeated.shots, repeated.report.scores) == (found.instruction, found.shots,
                                                                              report.scores)
    assert again.asked == model.asked and again.proposed == model.proposed  # deterministic, call for call


def test_the_proposer_writes_through_chat_adapter_and_never_through_the_arms_answering(toy_suite):
    suite = load_suite(str(toy_suite))
    model = Scripted()
    _, found = _search(suite, model)
    assert model.proposed and all("[[ ## " in json.dumps(messages) for messages in model.proposed)
    assert not any("[[ ## " in json.dumps(messages) for messages in model.asked)  # the task's layout only
    assert found.report.proposer_calls == len(model.proposed) <= MIPRO.proposer_calls()
    assert found.report.calls == len(model.asked) + len(model.proposed) <= MIPRO.calls()


def test_each_evaluation_is_one_batched_call_and_instructions_never_share_answers(toy_suite):
    suite = load_suite(str(toy_suite))
    model = Scripted()
    _search(suite, model)
    assert max(model.batches) >= MIPRO.minibatch_size  # a minibatch (or the slice) at once
    assert len(model.batches) < len(model.asked) / 3  # not one example at a time
    # the same shots and input under two instructions are two conversations, answered apart
    by_turns: dict[str, set[str]] = {}
    for messages in model.asked:
        by_turns.setdefault(json.dumps(messages[1:]), set()).add(messages[0]["content"])
    assert any(len(systems) > 1 for systems in by_turns.values())


def test_the_search_prints_nothing_and_leaves_optunas_logging_as_the_sweep_set_it(toy_suite, capsys):
    optuna_logger = logging.getLogger("optuna")
    optuna_logger.setLevel(logging.ERROR)  # as the sweep sets it; MIPROv2 sets WARNING for its own study
    _search(load_suite(str(toy_suite)), Scripted())
    captured = capsys.readouterr()
    assert captured.out == "" and "Trial" not in captured.err and "Bootstrapping" not in captured.err
    assert optuna_logger.level == logging.ERROR


def test_a_search_recorded_before_instructions_were_reads_as_the_suites():
    old = {"optimizer": "BootstrapFewShotWithRandomSearch (dspy 3.4.1)", "metric": "task accuracy",
           "val_examples": 50, "pool_examples": 100, "scores": [0.24, 0.22], "demos": 8, "calls": 1104,
           "seconds": 264.0, "prompt_tokens": 0, "completion_tokens": 0, "usd": None}  # a stored row's JSON
    search = _typed(PromptSearch, json.dumps(old))
    assert search.instruction is None and search.proposer_calls == 0 and "chose 8 shots" in search.text()


def test_a_failing_proposer_stops_the_search_with_its_own_error(toy_suite):
    suite = load_suite(str(toy_suite))

    def broken(conversations):
        raise RuntimeError("proposer out of memory")

    base = Prompter(None, suite.instruction, suite.contract)
    with pytest.raises(RuntimeError, match="proposer out of memory"):
        search_shots(base, Scripted().complete, suite.splits["train"], MIPRO, exact, "task accuracy",
                     propose=broken)


SMALL = {"optimizer": "mipro", "max_demos": 2, "max_bootstrapped": 1, "candidates": 2, "val_size": 4, "pool_size": 8,
         "trials": 2, "constrained": True}


def test_a_constrained_arm_proposes_unconstrained_and_a_rebuild_gives_the_same_prompt(tiny_model_dir, toy_suite,
                                                                                      monkeypatch):
    import harness.training.methods.dspy_prompt as dspy_prompt

    real, seen = dspy_prompt.generate, []

    def recording(model, tokenizer, prompts, batch_size, max_new_tokens, **kwargs):
        seen.append((max_new_tokens, kwargs.get("grammar")))
        return real(model, tokenizer, prompts, batch_size, max_new_tokens, **kwargs)

    monkeypatch.setattr(dspy_prompt, "generate", recording)
    ctx = _ctx(tiny_model_dir, toy_suite)
    method = METHODS.get("dspy")
    searched = method.load(ctx, build(method.Params, SMALL, "mipro"), None)
    proposing = [grammar for cap, grammar in seen if cap == PROPOSER_MAX_TOKENS]
    answering = [grammar for cap, grammar in seen if cap == ctx.max_new_tokens]
    assert proposing and all(grammar is None for grammar in proposing)  # free text, though the arm is constrained
    assert answering and all(grammar is not None for grammar in answering) and searched.grammar is not None
    search = searched.search
    assert search.instruction is not None and searched.prompter.instruction == search.instruction
    settings = method.Params(**SMALL).settings(0, len(ctx.train_examples))
    assert search.proposer_calls == len(proposing) and search.calls <= settings.calls()

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(dspy_prompt, "search_shots", no_search)
    recorded = dataclasses.replace(ctx, recorded_shots=tuple(ex.id for ex in searched.prompter.shots.examples),
                                   recorded_instruction=search.instruction)
    rebuilt = method.load(recorded, build(method.Params, SMALL, "rebuild"), None)
    examples = load_suite(str(toy_suite)).splits["test"][:4]
    assert [rebuilt.prompter.prompt(ex) for ex in examples] == [searched.prompter.prompt(ex) for ex in examples]
    suites = method.load(dataclasses.replace(recorded, recorded_instruction=None), build(method.Params, SMALL, "x"),
                         None)  # a trial recorded before instructions were: the suite's
    assert suites.prompter.instruction == ctx.suite.instruction


MIPRO_SEARCH = ("{optimizer: mipro, max_demos: 2, max_bootstrapped: 1, candidates: 2, val_size: 8, pool_size: 16, "
                "trials: 3, minibatch_size: 4, constrained: true}")


@pytest.fixture(scope="module")
def mipro_sweep(tmp_path_factory, tiny_model_dir, toy_suite):
    """A sweep of one mipro trial; every dev and test answer records the instruction it was asked with."""
    root = tmp_path_factory.mktemp("mipro")
    monkey = pytest.MonkeyPatch()
    monkey.setenv("HARNESS_CACHE", str(root / "cache"))
    asked_with: list[tuple[str, str]] = []
    real = LocalCandidate.answer

    def answer(self, examples, max_new_tokens, batch_size, desc="generate"):
        asked_with.append((desc, self.prompter.instruction))
        return real(self, examples, max_new_tokens, batch_size, desc)

    monkey.setattr(LocalCandidate, "answer", answer)
    try:
        experiment = EXPERIMENT.format(root=root, model=tiny_model_dir, suite=toy_suite, dspy=MIPRO_SEARCH)
        store = swept(root / "mipro.yaml", experiment.replace("enqueue: [{method: dspy}, {method: prompt}]",
                                                              "enqueue: [{method: dspy}]"), "--trials", "1")
    finally:
        monkey.undo()
    return root, store, asked_with


def test_a_mipro_trial_is_scored_with_its_instruction_recorded_shown_and_rebuilt(mipro_sweep, capsys):
    root, store, asked_with = mipro_sweep
    trial = next(t for t in store.trials("searched") if t.method == "dspy")
    search = trial.prompt_search
    assert trial.complete and search.optimizer.startswith("MIPROv2") and search.instruction is not None
    assert search.proposer_calls > 0 and trial.params["optimizer"] == "mipro"
    scored = {desc: instruction for desc, instruction in asked_with if desc in ("score dev", "score test")}
    assert scored == {"score dev": search.instruction, "score test": search.instruction}
    assert main(["show", trial.id, "--db", str(store.path)]) == 0
    out = printed(capsys)
    assert "prompt searched: MIPROv2 (dspy" in out and "chose an instruction and" in out
    assert f"instruction (searched, in place of the suite's): {search.instruction}" in out
    candidate, suite, _ = load_candidate(store, trial.id, "cpu")  # what predict, recheck and export rebuild
    assert candidate.prompter.instruction == search.instruction and candidate.search is None
    assert tuple(ex.id for ex in candidate.prompter.shots.examples) == trial.shots
    # where the searched prompt won, its export is that prompt: the instruction and shots the search chose
    export(store, trial.id, root / "prompt")
    exported = load_prompt(root / "prompt", candidate.tokenizer)
    assert exported.instruction == search.instruction
    assert [exported.prompt(ex) for ex in suite.splits["test"][:8]] == [candidate.prompter.prompt(ex)
                                                                        for ex in suite.splits["test"][:8]]


def test_predict_answers_with_the_recorded_instruction(mipro_sweep, capsys, monkeypatch):
    root, store, _ = mipro_sweep
    trial = next(t for t in store.trials("searched") if t.method == "dspy")

    def no_search(*args, **kwargs):
        raise AssertionError("predict searched again")

    monkeypatch.setattr("harness.training.methods.dspy_prompt.search_shots", no_search)
    stored = list(store.examples(trial.id, "test"))[:3]
    (inputs := root / "inputs.txt").write_text("".join(e.input + "\n" for e in stored))
    assert main(["predict", trial.id, "--device", "cpu", "--db", str(store.path), "--input", str(inputs)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["output"] for row in rows] == [e.output for e in stored]


def test_the_dry_run_prices_each_enqueued_search_by_its_own_optimizer(tmp_path, tiny_model_dir, toy_suite, capsys,
                                                                      monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "dry.yaml"
    both = MIPRO_SEARCH.replace("optimizer: mipro", "optimizer: [random_search, mipro]")  # trials for mipro's
    experiment = EXPERIMENT.format(root=tmp_path, model=tiny_model_dir, suite=toy_suite, dspy=both)
    path.write_text(experiment.replace("enqueue: [{method: dspy}, {method: prompt}]",
                                       "enqueue: [{method: dspy, optimizer: random_search}, {method: dspy, "
                                       "optimizer: mipro}]"))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = printed(capsys)
    pace = float(re.search(r"dspy: ([\d.]+) s per generated example", out).group(1))
    random_search = SearchSettings(2, 1, 2, 8, 16, 0).calls()
    assert re.search(rf"1\. dspy: prompt search {random_search} answers, ", out), out
    settings = SearchSettings(2, 1, 2, 8, 16, 0, "mipro", 3, 4)
    calls, proposer = settings.calls(), settings.proposer_calls()
    found = re.search(rf"2\. dspy: prompt search up to {calls} model calls \({proposer} proposing instructions\), "
                      r"([\d.]+) min", out)
    assert found and calls != random_search, out
    answers = calls - proposer + proposer * PROPOSER_CALL_ANSWERS
    assert float(found.group(1)) == pytest.approx(answers * pace / 60, abs=0.05 + answers * 0.005 / 60)


@pytest.mark.parametrize(("search", "message"), [
    ("{trials: 4}", "`space.dspy.trials` applies to `optimizer: mipro` only, but `space.dspy.optimizer` is "
                    "random_search; set `space.dspy.optimizer: mipro` (or a list with both, to compare "
                    "them), or remove `trials`."),
    ("{optimizer: random_search, minibatch_size: 4}",
     "`space.dspy.minibatch_size` applies to `optimizer: mipro` only, but `space.dspy.optimizer` is random_search"),
    ("{optimizer: mipro, val_size: 8, minibatch_size: 9}",
     "`space.dspy.minibatch_size` reaches 9, more than the 8 validation examples of `val_size`"),
    ("{optimizer: mipro, candidates: 1, trials: 20, val_size: 30}",
     f"`space.dspy.trials` 20 has MIPROv2 score {full_evaluations(20)} prompts on the whole validation slice"),
    ("{optimizer: bayesian}", "`space.dspy.optimizer` must be one of random_search, mipro"),
])
def test_parameters_that_do_not_fit_the_optimizer_are_refused_before_any_model_loads(search, message, tmp_path,
                                                                                    tiny_model_dir, toy_suite, capsys,
                                                                                    no_model_loads):
    path = tmp_path / "bad.yaml"
    path.write_text(EXPERIMENT.format(root=tmp_path, model=tiny_model_dir, suite=toy_suite, dspy=search))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert message in printed(capsys)


@pytest.mark.slow
def test_a_hosted_mipro_search_proposes_without_response_format_and_counts_the_spend(tmp_path, tiny_model_dir,
                                                                                    toy_suite, openai_server,
                                                                                    monkeypatch):
    """`api_dspy` with `optimizer: mipro` on a real OpenAI-compatible server: the proposer's requests go without the
    arm's `response_format`, and every request of the search counts against the study's budget for the endpoint."""
    monkeypatch.setenv("HARNESS_TEST_KEY", "sk-search-test")
    sent = []
    real = HostedClient.answer
    monkeypatch.setattr(HostedClient, "answer", lambda self, requests, desc="ask": sent.extend(
        (desc, r.max_tokens, r.response_format) for r in requests) or real(self, requests, desc))
    path = hosted_search(tmp_path, "hosted-mipro", tiny_model_dir, toy_suite, openai_server, 4,
                         "structured: true, optimizer: mipro, max_demos: 2, max_bootstrapped: 1, candidates: 2, "
                         "val_size: 4, pool_size: 6, trials: 2")
    assert main(["sweep", str(path)]) == 0
    trial = Store(tmp_path / "results" / "harness.duckdb").trials("hosted-mipro")[0]
    search = trial.prompt_search
    assert trial.complete and search.instruction is not None and search.proposer_calls > 0
    proposing = [r for r in sent if r[0] == "propose"]
    assert proposing and all(fmt is None and cap == HOSTED_PROPOSER_MAX_TOKENS for _, cap, fmt in proposing)
    assert all(fmt is not None for desc, _, fmt in sent if desc != "propose")  # the task's requests stay structured
    spent = SpendLedger(tmp_path / "results" / "cache" / "hosted-spend" / "hosted-mipro--tiny.jsonl").spent()
    assert (spent.prompt, spent.completion) == (trial.hosted.prompt_tokens + search.prompt_tokens,
                                                trial.hosted.completion_tokens + search.completion_tokens)
