"""Batched, deterministic (greedy) generation for evaluation and predict.

Prompting trials repeat one long prefix in every prompt (the instruction, the label list, the few-shot
examples): on a CPU, encoding it again for each example costs far more than the answer. So the prefix that
all prompts share is encoded once, its key/value cache is copied into each batch, and only the rest of each
prompt is encoded. Each batch's cache is allocated once for its whole generation (`kv_cache.batch_cache`). Outputs
are the same as without either (tests check it); only time and memory change.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from harness.core.progress import bar_options
from harness.training.constrained import Grammar
from harness.training.kv_cache import batch_cache

MIN_SHARED_PREFIX = 32
"""Below this many shared tokens, caching the prefix is not worth the copy."""


@dataclass(frozen=True)
class Generation:
    output: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    """Wall seconds of the batch this prompt was generated in (local), or of its request (hosted)."""
    error: str | None = None
    """Why there is no answer (a hosted endpoint refused the request); None when it answered."""
    excluded: bool = False
    """Left out of every metric: the endpoint refused the request, so there is nothing to score."""
    batch: int | None = None
    """Which generate call of a local model answered it (0 the first to run), so each batch's seconds are counted
    once; None for a hosted request."""


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int,
             desc: str = "generate", reuse_prefix: bool = True, grammar: Grammar | None = None,
             settled: Callable[[str], bool] | None = None, bar: bool = True) -> list[Generation]:
    """Greedy-decode every prompt; batches are formed from prompts of similar length to waste less padding.
    With a `grammar`, every answer is limited to what the output contract allows (constrained decoding).
    With `settled`, a row stops as soon as its text so far is settled (its score can no longer change), instead
    of running on to `max_new_tokens`. `bar=False` draws no progress bar (a caller with a bar of its own: a prompt
    search)."""
    model.eval()
    device = next(model.parameters()).device
    encoded = [tokenizer(p).input_ids for p in prompts]
    shared = _shared_prefix_length(encoded) if reuse_prefix else 0
    prefix_cache = _encode_prefix(model, encoded[0][:shared], device) if shared >= MIN_SHARED_PREFIX else None
    if prefix_cache is None:
        shared = 0
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    starts = range(0, len(order), batch_size)
    results: list[Generation | None] = [None] * len(prompts)
    options = bar_options(transient=True)
    options["disable"] = not bar or options.get("disable", False)
    with tqdm(total=len(prompts), desc=desc, unit="ex", **options) as shown:
        # The longest batch first: each later batch fits in the memory the one before it freed. Shortest first, each
        # batch's key/value cache is a little larger than the last one's and the heap grows with every batch. Each
        # batch is the same either way, so every answer is too.
        for number, start in enumerate(reversed(starts)):
            batch = order[start:start + batch_size]
            input_ids, attention = _pad_batch([encoded[i] for i in batch], shared, tokenizer.pad_token_id)
            extra = {}
            cache = batch_cache(model, prefix_cache, len(batch), input_ids.shape[1] + max_new_tokens)
            if cache is not None:
                extra[cache_argument(model)] = cache
            if grammar is not None:
                extra["logits_processor"] = LogitsProcessorList([grammar.processor(len(batch))])
            if settled is not None:
                extra["stopping_criteria"] = StoppingCriteriaList([_Settled(tokenizer, input_ids.shape[1], settled)])
            began = time.perf_counter()
            out = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **extra,
            )
            seconds = time.perf_counter() - began
            new = out[:, input_ids.shape[1]:]
            for row, i in enumerate(batch):
                tokens = new[row]
                results[i] = Generation(
                    output=tokenizer.decode(tokens, skip_special_tokens=True),
                    prompt_tokens=len(encoded[i]),
                    completion_tokens=_answer_length(tokens, tokenizer),
                    latency_s=seconds,
                    batch=number,
                )
            shown.update(len(batch))
    return results  # type: ignore[return-value]


def timed_batches(generations: list[Generation]) -> tuple[tuple[int, float], ...]:
    """(completion tokens, seconds) of each generate call a local model made, in the order they ran: every answer of
    a batch carries the batch's seconds, counted here once."""
    batches: dict[int, tuple[int, float]] = {}
    for g in generations:
        if g.batch is not None:
            tokens, seconds = batches.get(g.batch, (0, g.latency_s))
            batches[g.batch] = (tokens + (g.completion_tokens or 0), seconds)
    return tuple(batches[number] for number in sorted(batches))


class _Settled(StoppingCriteria):
    """Stops each row whose answer so far is settled; the other rows of the batch go on."""

    def __init__(self, tokenizer, prompt_width: int, settled: Callable[[str], bool]):
        self.tokenizer, self.prompt_width, self.settled = tokenizer, prompt_width, settled

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        return torch.tensor([self.settled(t) for t in texts], dtype=torch.bool, device=input_ids.device)


def _shared_prefix_length(encoded: list[list[int]]) -> int:
    """Tokens every prompt starts with, leaving at least one token of each prompt to encode per batch."""
    first = encoded[0]
    length = min(len(ids) for ids in encoded) - 1
    for ids in encoded[1:]:
        length = next((k for k in range(length) if ids[k] != first[k]), length)
    return max(length, 0)


def cache_argument(model) -> str:
    """What this transformers calls the key/value cache: `cache` from 5.2x (where `past_key_values` warns that it
    goes in v6), `past_key_values` before (5.17, the GPU machine's)."""
    return "cache" if _forward_takes(model, "cache") else "past_key_values"


def _forward_takes(model, argument: str) -> bool:
    """Whether the model's own forward (under a PEFT wrapper, the base model's) takes `argument`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return argument in inspect.signature(type(base).forward).parameters


def _encode_prefix(model, prefix: list[int], device):
    """The key/value cache of the shared prefix. Its logits are not read, so only the last position's are computed
    where the model allows it: a whole prefix's would be tokens x vocabulary floats (600 MB for a 3,000-token
    prefix and a 49,152-token vocabulary), for nothing."""
    last_only = {"logits_to_keep": 1} if _forward_takes(model, "logits_to_keep") else {}
    out = model(input_ids=torch.tensor([prefix], device=device), use_cache=True, **last_only)
    name = cache_argument(model)
    cache = out[name] if name in out else None
    return cache if hasattr(cache, "batch_repeat_interleave") else None


def _pad_batch(rows: list[list[int]], shared: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad the part after the shared prefix: `prefix + pads + rest`, pads masked out.

    Positions come from the attention mask, so each row's tokens sit where they would without padding.
    """
    longest = max(len(r) for r in rows) - shared
    ids, mask = [], []
    for r in rows:
        gap = longest - (len(r) - shared)
        ids.append(r[:shared] + [pad_id] * gap + r[shared:])
        mask.append([1] * shared + [0] * gap + [1] * (len(r) - shared))
    return torch.tensor(ids), torch.tensor(mask)


def _answer_length(tokens: torch.Tensor, tokenizer) -> int:
    """Tokens generated up to and including the first end-of-sequence token (the rest is padding)."""
    ids = tokens.tolist()
    if tokenizer.eos_token_id in ids:
        return ids.index(tokenizer.eos_token_id) + 1
    return len(ids)
