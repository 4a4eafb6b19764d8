"""Training speed of the harness (TRL SFTTrainer path) against the plain PEFT loop, same data, same machine.

    python bench/train_step.py [--steps 15] [--device cpu|cuda]

The baseline is the loop of ../shared/bench/cpu_peft_banking77.py (LoRA r16 all-linear, AdamW lr 1e-3,
batches of 8, loss on the answer only), run here on the same ticket-triage examples and prompts as the
harness. Prints seconds per step for both and their ratio, with device and library versions, as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from dataclasses import dataclass
from importlib import metadata

import torch
from peft import LoraConfig, get_peft_model

from harness.core.config import BudgetConfig, TrainingConfig
from harness.data.prompting import Prompter
from harness.data.suites import load_suite
from harness.models import loading
from harness.models import sources as models
from harness.training.sft import train


@dataclass(frozen=True)
class PlainRun:
    seconds: float
    steps: int
    tokens: int
    """Real (non-padding) tokens in the timed steps."""

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps


def plain_loop(model, tokenizer, prompter, examples, steps, batch_size, device, warmup: int = 0) -> PlainRun:
    """The baseline loop; `warmup` untimed steps first (kernels, allocator), then `steps` timed ones."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    rng = random.Random(0)
    began, tokens = time.perf_counter(), 0
    for step in range(warmup + steps):
        if step == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            began, tokens = time.perf_counter(), 0
        ids, labels = [], []
        for ex in rng.sample(examples, batch_size):
            prompt = tokenizer(prompter.prompt(ex)).input_ids
            answer = tokenizer(prompter.completion(ex) + tokenizer.eos_token, add_special_tokens=False).input_ids
            ids.append(prompt + answer)
            labels.append([-100] * len(prompt) + answer)
        tokens += sum(map(len, ids))
        width = max(map(len, ids))
        x = torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i in ids], device=device)
        y = torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels], device=device)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids], device=device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if device == "cuda":
        torch.cuda.synchronize()
    return PlainRun(time.perf_counter() - began, steps, tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    source = models.resolve("smollm2-135m")
    suite = load_suite("ticket-triage")
    examples = list(suite.splits["train"][:2000])
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    results = {}
    for name in ("plain", "harness"):
        tokenizer = loading.load_tokenizer(source)
        model = get_peft_model(loading.load_model(source, args.device, torch.float32), lora)
        prompter = Prompter(tokenizer, suite.instruction, suite.contract, include_contract=False)
        if name == "plain":
            results[name] = plain_loop(model, tokenizer, prompter, examples, args.steps, args.batch_size,
                                       args.device).seconds_per_step
        else:
            report = train(model, tokenizer, prompter, examples[: args.steps * args.batch_size], 1e-3,
                           BudgetConfig(max_steps=args.steps, trial_train_seconds=None),
                           TrainingConfig(batch_size=args.batch_size, eval_every_steps=0), args.device, 0)
            results[name] = report.seconds / report.steps
    print(json.dumps({
        "seconds_per_step": {k: round(v, 3) for k, v in results.items()},
        "harness_over_plain": round(results["harness"] / results["plain"], 3),
        "steps": args.steps, "batch_size": args.batch_size, "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "versions": {p: metadata.version(p) for p in ("torch", "transformers", "peft", "trl")},
    }, indent=1))


if __name__ == "__main__":
    main()
