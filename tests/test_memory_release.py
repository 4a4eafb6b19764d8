"""Memory a sweep no longer needs goes back to the OS, and generation allocates nothing it does not read; no answer
changes."""

from __future__ import annotations

import psutil
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.models import device as device_module
from harness.models import loading, sources
from harness.training import generate as generate_module
from harness.training.generate import generate


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return model, tokenizer


def test_freed_heap_pages_go_back_to_the_os():
    if device_module._malloc_trim() is None:
        pytest.skip("not glibc: there is no malloc_trim to call")
    rss = psutil.Process().memory_info().rss
    blocks = [bytearray(64 * 1024) for _ in range(4000)]  # 250 MiB in blocks under glibc's mmap threshold
    grown = psutil.Process().memory_info().rss
    keep = blocks[::8]  # every eighth stays: the freed ones are holes inside the heap, which free() never returns
    del blocks
    freed = psutil.Process().memory_info().rss
    assert device_module.return_freed_heap()
    trimmed = psutil.Process().memory_info().rss
    assert grown - rss > 200 * 2**20 and freed - trimmed > 150 * 2**20, (rss, grown, freed, trimmed)
    assert len(keep) == 500  # still held


def test_loading_a_model_first_releases_what_the_last_one_left(tiny_model_dir, monkeypatch):
    released = []
    monkeypatch.setattr(device_module, "free_memory", released.append)
    source = sources.ModelSource("tiny", str(tiny_model_dir), "0" * 64, "", "", "", True)
    model = loading.load_model(source, "cpu", torch.float32)
    assert released == ["cpu"] and next(model.parameters()).dtype == torch.float32


def test_the_shared_prefix_is_encoded_without_its_logits(tiny):
    model, tokenizer = tiny
    prefix = tokenizer("Name the colour of the thing. " * 8).input_ids
    seen = []
    hook = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    try:
        cache = generate_module._encode_prefix(model, prefix, torch.device("cpu"))
        full = model(input_ids=torch.tensor([prefix]), use_cache=True)
    finally:
        hook.remove()
    assert seen[0] == (1, 1, model.config.vocab_size) and seen[1] == (1, len(prefix), model.config.vocab_size)
    cached = getattr(full, generate_module.cache_argument(model), None) or full.past_key_values
    for mine, theirs in zip(cache.layers, cached.layers):
        assert torch.equal(mine.keys, theirs.keys) and torch.equal(mine.values, theirs.values)


def test_the_longest_batch_is_generated_first_and_answers_keep_their_order(tiny, monkeypatch):
    model, tokenizer = tiny
    texts = ["hat", "the car is red", "a long sentence about the blue boat on the lake and its sail", "cup",
             "the small green frog", "a much longer sentence about a red kite flying high over the hills at noon"]
    widths = []
    real = model.generate

    def spy(*args, **kwargs):
        widths.append(kwargs["input_ids"].shape[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    batched = generate(model, tokenizer, texts, batch_size=2, max_new_tokens=6, reuse_prefix=False)
    assert len(widths) == 3 and widths == sorted(widths, reverse=True)
    assert [g.prompt_tokens for g in batched] == [len(tokenizer(t).input_ids) for t in texts]
    monkeypatch.setattr(model, "generate", real)
    alone = [generate(model, tokenizer, [t], batch_size=1, max_new_tokens=6, reuse_prefix=False)[0] for t in texts]
    assert [g.output for g in batched] == [g.output for g in alone]


def test_training_hands_back_its_trainer_and_freed_heap_before_the_model_is_scored(tiny_model_dir, toy_suite,
                                                                                   monkeypatch):
    import gc

    from trl import SFTTrainer

    from harness.core.config import BudgetConfig, TrainingConfig
    from harness.data.prompting import trained_prompter
    from harness.data.suites import load_suite
    from harness.training import sft

    released = []
    monkeypatch.setattr(sft, "free_memory", lambda device: (gc.collect(), released.append(device)))
    gc.disable()  # no automatic collection may do the work the trainer's own release must do
    try:
        source = sources.resolve(str(tiny_model_dir))
        suite = load_suite(str(toy_suite))
        training = TrainingConfig(batch_size=4, eval_every_steps=0, precision="fp32")
        tokenizer = loading.load_tokenizer(source)
        model = loading.load_model(source, "cpu", torch.float32)
        report = sft.train(model, tokenizer, trained_prompter(tokenizer, suite, training),
                           list(suite.splits["train"])[:16], 1e-3, BudgetConfig(max_steps=2, trial_train_seconds=None),
                           training, "cpu", seed=0)
        alive = [o for o in gc.get_objects() if isinstance(o, SFTTrainer)]
    finally:
        gc.enable()
    assert alive == []  # the trainer, its optimizer state and their cycles are gone before scoring begins
    assert report.steps == 2 and released == ["cpu"]
