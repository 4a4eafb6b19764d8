"""Padding-free batches: whether this model keeps the examples of a joined row apart.

TRL's padding-free collator joins a batch into one row and tells its examples apart by `position_ids` alone.
That is exact only where the model builds its attention mask from them (transformers does, for the architectures
and attention kernels tests/test_packing.py covers). A model whose attention ignored them would let each example
see the ones joined before it, and train on another loss without a word. So the model itself is asked, before
training, on two real rows: three short forward passes.
"""

from __future__ import annotations

import torch

LEAK_SHARE = 0.1
"""Joined logits may differ from the row's own by at most this share of what attending across rows changes: rounding
differs between shapes (bf16, 4-bit), a leak changes the context itself."""


@torch.no_grad()
def keeps_examples_apart(model, first: list[int], second: list[int]) -> bool:
    """Whether `second`, joined after `first` with its positions restarting at 0, gets the logits it gets alone."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        joined = torch.tensor([first + second], device=device)
        positions = torch.tensor([list(range(len(first))) + list(range(len(second)))], device=device)
        alone = _logits(model, input_ids=torch.tensor([second], device=device))
        packed = _logits(model, input_ids=joined, position_ids=positions)[len(first):]
        leaky = _logits(model, input_ids=joined)[len(first):]  # one causal row: the second sees the first
    finally:
        model.train(was_training)
    leak = (leaky - alone).abs().max().item()
    return (packed - alone).abs().max().item() <= LEAK_SHARE * leak


def _logits(model, **inputs) -> torch.Tensor:
    return model(**inputs, use_cache=False).logits[0].float()
