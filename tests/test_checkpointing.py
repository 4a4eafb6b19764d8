"""`training.gradient_checkpointing` trades compute for memory and nothing else: the same seed gives the same
losses with it as without, for an adapter (frozen base, LoRA) and for full fine-tuning."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from harness.core.config import BudgetConfig, TrainingConfig
from harness.data.prompting import trained_prompter
from harness.data.suites import load_suite
from harness.models import loading, sources
from harness.training.sft import train


@pytest.mark.parametrize("adapter", [True, False], ids=["lora", "full"])
def test_checkpointing_changes_no_loss(tiny_model_dir, toy_suite, adapter):
    source = sources.resolve(str(tiny_model_dir))
    suite = load_suite(str(toy_suite))
    examples = list(suite.splits["train"])[:48]
    budget = BudgetConfig(max_steps=10, trial_train_seconds=None)
    curves = {}
    for checkpointing in (False, True):
        training = TrainingConfig(batch_size=4, eval_every_steps=0, precision="fp32",
                                  gradient_checkpointing=checkpointing)
        torch.manual_seed(0)
        tokenizer = loading.load_tokenizer(source)
        model = loading.load_model(source, "cpu", torch.float32)
        if adapter:
            model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                     task_type="CAUSAL_LM"))
        report = train(model, tokenizer, trained_prompter(tokenizer, suite, training), examples, 5e-3, budget,
                       training, "cpu", seed=0)
        curves[checkpointing] = [loss for _, loss in report.loss_curve]
        assert report.steps == 10 and model.is_gradient_checkpointing is checkpointing  # it was really on
    assert len(curves[True]) == 3  # steps 1, 5 and 10
    assert curves[True] == pytest.approx(curves[False], rel=1e-4)
    assert curves[False][-1] != curves[False][0]  # it trained: a curve that never moves would prove nothing
