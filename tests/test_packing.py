"""Padding-free batches (TRL's `padding_free`): examples joined into one row, told apart by `position_ids` alone.

That is only correct if the attention backend keeps each example's tokens from seeing the others'. This checks it
for the backends a CPU runs (sdpa, eager): every example's loss is the same packed as alone. transformers derives
the block-diagonal mask from `position_ids` only when no cache is in use, which TRL's `compute_loss` ensures by
passing `use_cache=False`, as this test does.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packing_changes_no_examples_loss(tiny_model_dir, attention):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation=attention)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    examples = []
    for length in (5, 17, 9, 2):
        ids = torch.randint(8, model.config.vocab_size, (length,), generator=generator).tolist()
        labels = [-100] * (length // 2) + ids[length // 2:]  # loss on the "answer" half only, as in training
        examples.append({"input_ids": ids, "completion_mask": [0] * (length // 2) + [1] * (length - length // 2),
                         "labels": labels})

    def token_losses(logits, labels):
        shifted, targets = logits[:-1], torch.tensor(labels[1:])
        losses = torch.nn.functional.cross_entropy(shifted, targets.clamp(min=0), reduction="none")
        return losses[targets != -100]

    with torch.no_grad():
        alone = [token_losses(model(input_ids=torch.tensor([e["input_ids"]])).logits[0], e["labels"])
                 for e in examples]
        packed = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
            [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples])
        assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0]
    start = 0
    for example, expected in zip(examples, alone):
        end = start + len(example["input_ids"])
        got = token_losses(logits[start:end], example["labels"])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        start = end
    # The check has teeth: without position_ids the model attends across examples and the losses differ.
    with torch.no_grad():
        leaky = model(input_ids=packed["input_ids"]).logits[0]
    second = slice(len(examples[0]["input_ids"]), len(examples[0]["input_ids"]) + len(examples[1]["input_ids"]))
    assert not torch.allclose(token_losses(leaky[second], examples[1]["labels"]), alone[1], atol=1e-4)
