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


def test_scoring_only_the_answer_positions_leaves_the_loss_and_its_gradient_unchanged(tiny_model_dir, toy_suite,
                                                                                      monkeypatch):
    """`lm_head_on_labels_only` makes TRL project only the labelled positions on a CPU: the same losses, and the same
    trained weights, as scoring every position and masking the rest (what TRL does on a CPU by itself)."""
    import contextlib

    import trl.trainer.utils as trl_utils
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from harness.core.config import BudgetConfig, TrainingConfig
    from harness.data.prompting import trained_prompter
    from harness.data.suites import load_suite
    from harness.training import sft

    real = trl_utils._use_triton  # the TRL hook this relies on: a TRL without it fails here, not silently
    with sft.lm_head_on_labels_only():
        assert trl_utils._use_triton(torch.device("cpu")) is True
    assert trl_utils._use_triton is real  # and it is put back

    suite = load_suite(str(toy_suite))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    training = TrainingConfig(batch_size=4, eval_every_steps=0, precision="fp32")

    def trained():
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                               LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
        report = sft.train(model, tokenizer, trained_prompter(tokenizer, suite, training),
                           list(suite.splits["train"][:40]), 1e-2, BudgetConfig(max_steps=10, trial_train_seconds=None),
                           training, "cpu", 0)
        return report.loss_curve, {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

    losses_labels, weights_labels = trained()
    monkeypatch.setattr(sft, "lm_head_on_labels_only", contextlib.nullcontext)  # TRL's own CPU path: every position
    losses_all, weights_all = trained()
    assert len(losses_all) == 3 and [s for s, _ in losses_all] == [s for s, _ in losses_labels]
    assert [loss for _, loss in losses_labels] == pytest.approx([loss for _, loss in losses_all], rel=1e-5)
    for name, weight in weights_all.items():
        torch.testing.assert_close(weights_labels[name], weight, rtol=1e-4, atol=1e-6)


def _tiny(arch: str, vocab_size: int, **extra):
    from transformers import AutoConfig

    config = AutoConfig.for_model(arch, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, vocab_size=vocab_size, **extra)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


@pytest.mark.parametrize(("arch", "extra", "apart"), [
    ("llama", {}, True),
    ("gpt_neox", {}, True),
    ("opt", {"ffn_dim": 64, "word_embed_proj_dim": 32}, False),  # learned positions counted from the attention mask
    ("bloom", {"n_layer": 2, "n_head": 4}, False),  # ALiBi: no positions at all
])
def test_the_packing_check_tells_models_that_keep_joined_examples_apart_from_those_that_do_not(arch, extra, apart):
    from harness.training.packing import keeps_examples_apart

    model = _tiny(arch, 128, **extra)
    model.train()
    assert keeps_examples_apart(model, list(range(5, 14)), list(range(20, 31))) is apart
    assert model.training  # its mode is put back


def test_a_model_that_would_leak_across_joined_examples_trains_on_padded_batches_and_says_so(
        tiny_model_dir, toy_suite, capsys):
    """Padding-free is the default. An OPT model would let joined examples see each other: training says so, and
    takes padded batches, so its loss is each example's own; the tiny Llama keeps them apart and trains joined."""
    from transformers import AutoTokenizer

    from harness.core.config import BudgetConfig, TrainingConfig
    from harness.data.prompting import trained_prompter
    from harness.data.suites import load_suite
    from harness.training import sft

    suite = load_suite(str(toy_suite))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    training = TrainingConfig(batch_size=4, eval_every_steps=0, precision="fp32")
    assert training.padding_free
    budget = BudgetConfig(max_steps=2, trial_train_seconds=None)
    examples = list(suite.splits["train"][:8])

    def train(model):
        return sft.train(model, tokenizer, trained_prompter(tokenizer, suite, training), examples, 1e-3, budget,
                         training, "cpu", 0)

    opt = train(_tiny("opt", len(tokenizer), ffn_dim=64, word_embed_proj_dim=32))
    assert not opt.padding_free and opt.steps == 2
    assert "does not keep the examples of a joined row apart" in capsys.readouterr().out
    llama = train(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32))
    assert llama.padding_free and llama.steps == 2
    assert "joined row" not in capsys.readouterr().out
