"""Batched, deterministic (greedy) generation for evaluation and predict."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Generation:
    output: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    """Wall seconds of the batch this prompt was generated in: the wait at the evaluated batch size."""


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int,
             desc: str = "generate") -> list[Generation]:
    """Greedy-decode every prompt; batches are formed from prompts of similar length to waste less padding."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[Generation | None] = [None] * len(prompts)
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the last real token
    try:
        with tqdm(total=len(prompts), desc=desc, leave=False, unit="ex") as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True).to(device)
                began = time.perf_counter()
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
                seconds = time.perf_counter() - began
                new = out[:, enc.input_ids.shape[1]:]
                for row, i in enumerate(batch):
                    tokens = new[row]
                    results[i] = Generation(
                        output=tokenizer.decode(tokens, skip_special_tokens=True),
                        prompt_tokens=int(enc.attention_mask[row].sum()),
                        completion_tokens=_answer_length(tokens, tokenizer),
                        latency_s=seconds,
                    )
                bar.update(len(batch))
    finally:
        tokenizer.padding_side = previous_side
    return results  # type: ignore[return-value]


def _answer_length(tokens: torch.Tensor, tokenizer) -> int:
    """Tokens generated up to and including the first end-of-sequence token (the rest is padding)."""
    ids = tokens.tolist()
    if tokenizer.eos_token_id in ids:
        return ids.index(tokenizer.eos_token_id) + 1
    return len(ids)
