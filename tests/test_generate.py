"""Generation: the shared-prefix cache and the reserved key/value cache change time, never outputs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.cache_utils import DynamicCache

from harness.training import generate as generate_module
from harness.training.generate import MIN_SHARED_PREFIX, _shared_prefix_length, generate, timed_batches
from harness.training.kv_cache import ReservedLayer, batch_cache, growing_cache


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return model, tokenizer


def prompts(tokenizer) -> list[str]:
    system = "Name the colour of the thing. Answer with JSON. " * 6
    inputs = ["the car is red", "a very long sentence about the blue boat on the lake", "hat", "the cup is green"]
    return [tokenizer.apply_chat_template([{"role": "system", "content": system}, {"role": "user", "content": x}],
                                          add_generation_prompt=True, tokenize=False) for x in inputs]


def test_shared_prefix_cache_gives_the_same_outputs(tiny):
    model, tokenizer = tiny
    texts = prompts(tokenizer)
    encoded = [tokenizer(t).input_ids for t in texts]
    assert _shared_prefix_length(encoded) >= MIN_SHARED_PREFIX  # the cached path is really taken
    cached = generate(model, tokenizer, texts, batch_size=3, max_new_tokens=12, reuse_prefix=True)
    plain = generate(model, tokenizer, texts, batch_size=3, max_new_tokens=12, reuse_prefix=False)
    alone = [generate(model, tokenizer, [t], batch_size=1, max_new_tokens=12, reuse_prefix=False)[0] for t in texts]
    assert [g.output for g in cached] == [g.output for g in plain] == [g.output for g in alone]
    assert [g.prompt_tokens for g in cached] == [len(e) for e in encoded]
    assert all(0 < g.completion_tokens <= 12 for g in cached)


def test_each_batch_is_timed_once_with_its_own_tokens(tiny):
    model, tokenizer = tiny
    answers = generate(model, tokenizer, prompts(tokenizer), batch_size=3, max_new_tokens=12)
    assert sorted({g.batch for g in answers}) == [0, 1]  # 4 prompts in batches of 3: two generate calls
    batches = timed_batches(answers)
    assert [seconds for _, seconds in batches] == [next(g.latency_s for g in answers if g.batch == b) for b in (0, 1)]
    assert sum(tokens for tokens, _ in batches) == sum(g.completion_tokens for g in answers)
    assert timed_batches([g.__class__(g.output, 1, 1, 0.5) for g in answers]) == ()  # a hosted reply has no batch


def test_shared_prefix_leaves_every_prompt_a_token():
    assert _shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert _shared_prefix_length([[5, 6], [7, 8]]) == 0
    assert _shared_prefix_length([[1, 2, 3, 4]]) == 3


def test_a_settled_row_stops_while_the_others_go_on(tiny):
    model, tokenizer = tiny
    texts = prompts(tokenizer)
    plain = generate(model, tokenizer, texts, batch_size=4, max_new_tokens=12)
    # A criterion only one row meets early: that row stops, the rest decode exactly as before.
    early_row = plain[0].output[:2]
    stopped = generate(model, tokenizer, texts, batch_size=4, max_new_tokens=12,
                       settled=lambda text: text.startswith(early_row) and len(text) >= 2)
    for before, after in zip(plain, stopped):
        assert before.output.startswith(after.output)
        if before.output.startswith(early_row):
            assert len(after.output) < len(before.output) or before.completion_tokens <= 2
        else:
            assert after.output == before.output


@pytest.mark.parametrize("reuse_prefix", [True, False], ids=["shared prefix", "no prefix"])
def test_generation_answers_exactly_as_with_transformers_own_cache(tiny, monkeypatch, reuse_prefix):
    model, tokenizer = tiny
    texts = prompts(tokenizer)
    writes = []
    real_update = ReservedLayer.update
    monkeypatch.setattr(ReservedLayer, "update", lambda self, *a, **k: writes.append(1) or real_update(self, *a, **k))
    reserved = generate(model, tokenizer, texts, batch_size=3, max_new_tokens=12, reuse_prefix=reuse_prefix)
    assert writes  # the reserved cache was really used
    monkeypatch.setattr(generate_module, "batch_cache", growing_cache)
    own = generate(model, tokenizer, texts, batch_size=3, max_new_tokens=12, reuse_prefix=reuse_prefix)
    assert [g.output for g in reserved] == [g.output for g in own]
    assert [g.completion_tokens for g in reserved] == [g.completion_tokens for g in own]


def test_a_model_that_asks_for_another_cache_is_left_to_generate(tiny, monkeypatch):
    model, _ = tiny
    assert isinstance(batch_cache(model, None, 2, 16), DynamicCache)
    monkeypatch.setattr(model.generation_config, "cache_implementation", "static")
    assert batch_cache(model, None, 2, 16) is None
