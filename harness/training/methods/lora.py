"""LoRA and QLoRA adapters through PEFT. QLoRA loads the base model in 4-bit NF4 (bitsandbytes, CUDA only)."""

from __future__ import annotations

import importlib.util
from typing import Any

from harness.models import sources as models
from harness.training.methods.base import Candidate, TrialContext, train_candidate


class LoRA:
    name = "lora"
    trains = True
    defaults = {
        "r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "target_modules": "all-linear",
        "learning_rate": 1e-3,
    }

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def load_base(self, ctx: TrialContext):
        return models.load_model(ctx.source, ctx.device, ctx.dtype)

    def prepare(self, ctx: TrialContext, params: dict[str, Any]) -> Candidate:
        from peft import LoraConfig, get_peft_model

        tokenizer = models.load_tokenizer(ctx.source)
        base = self.load_base(ctx)
        targets = params["target_modules"]
        adapter = LoraConfig(
            r=int(params["r"]),
            lora_alpha=float(params["lora_alpha"]),
            lora_dropout=float(params["lora_dropout"]),
            target_modules=targets if targets == "all-linear" else list(targets.split(",")),
            task_type="CAUSAL_LM",
        )
        return train_candidate(ctx, get_peft_model(base, adapter), tokenizer, float(params["learning_rate"]))


class QLoRA(LoRA):
    name = "qlora"

    def unavailable_reason(self, device: str) -> str | None:
        if device != "cuda":
            return "QLoRA needs a CUDA GPU: bitsandbytes 4-bit NF4 kernels do not run on the CPU."
        if importlib.util.find_spec("bitsandbytes") is None:
            return "QLoRA needs bitsandbytes: pip install 'bitsandbytes>=0.45' (or install the `gpu` extra)."
        return None

    def load_base(self, ctx: TrialContext):
        import torch
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        base = models.load_model(ctx.source, ctx.device, ctx.dtype, quantization_config=quantization)
        return prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
