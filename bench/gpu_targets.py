"""Issue 10's GPU targets, each against the plain transformers/PEFT loop measured in the same run.

    python bench/gpu_targets.py [--steps 60] [--shapes smollm2 0.5b] [--out $OUT/gpu_targets.json]
    python bench/gpu_targets.py --device cpu --model PATH --steps 3 --shapes smollm2 --examples 64   (a dry run)

1. Training throughput, per model shape: the plain padded loop of ../shared/bench/plain_peft_banking77.py
   (right-padded batches of 32, bf16, AdamW, loss on the answer) against the harness's `train` (TRL, padding-free
   batches of 64, bf16), both on ticket-triage with the same prompts. Real (non-padding) tokens per second, their
   ratio, and MFU (4N FLOPs per token for LoRA, N the base model's parameters). Shapes: SmolLM2-135M (the embedded
   model) and a 0.5B shape (Qwen2.5-0.5B's layers with SmolLM2's vocabulary, random weights: speed does not
   depend on the values).
2. Generation, on the adapter trained in 1: plain `generate` (left-padded batches of 64 in input order, 24 new
   tokens) against the harness's `generate` (length-sorted batches of 64, each row stopping once its answer is
   settled), greedy. The decoded outputs without early stopping must be identical to plain, and the parsed answers
   with it identical too.
3. Peak GPU memory of one training step per method on SmolLM2 (LoRA, full, and QLoRA when bitsandbytes is here).

4. Long-sequence memory through the harness's own trial path (the method's prepare: load, adapter, three training
   steps): a 7B shape (Llama-2-7B's layers, random weights) with QLoRA at 1024 tokens, batch 1, gradient
   checkpointing on. Target: it fits in 12 GiB.

5. With --vllm-python: the same adapter and prompts through a vLLM server (the `vllm` engine): its completion tokens
   per second against plain `generate` at batch 64, at 64 requests in flight, and whether its greedy answers are the
   same text. Target: at least 10x plain `generate`, on the same outputs. vLLM needs its own environment (its torch
   pin), so on a machine without a registry its wheels must be carried there first.

Elsewhere, each on its own call: the 20-trial sweep in 10 minutes (`bash bench/gpu_sweep.sh`), several trials at
once on one GPU (`bench/concurrency.py`) and the default sampler against a full grid (`bench/sweep_efficiency.py`).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

sys.path.insert(0, str(Path(__file__).parent))
from train_step import plain_loop  # noqa: E402  (the same baseline loop as the CPU benchmarks)

from harness.core.config import BudgetConfig, TrainingConfig  # noqa: E402
from harness.data.contract import parse_output, settled
from harness.data.prompting import trained_prompter
from harness.data.suites import Example, load_suite
from harness.models import loading
from harness.models import sources as models
from harness.models.sources import ModelSource
from harness.training.generate import generate
from harness.training.sft import train

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
SHAPES = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, tie_word_embeddings=True),  # Qwen2.5-0.5B's layers
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, tie_word_embeddings=False),  # Llama-2-7B's layers
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, tie_word_embeddings=False),  # for a dry run of the script on a CPU
}
LORA = dict(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
HARNESS_TRAINING = TrainingConfig(batch_size=64, max_length=256, precision="bf16", include_instruction=False,
                                  padding_free=True, eval_every_steps=0)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_flops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def shape_source(base: ModelSource, shape: str, scratch: Path, device: str = "cpu") -> ModelSource:
    """The embedded model, or a random-weight model of another shape that uses its tokenizer, saved as safetensors
    (initialised on `device`: a 7B shape initialises in seconds on a GPU, minutes on a CPU)."""
    if shape == "smollm2":
        return base
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base.path)
    for key, value in SHAPES[shape].items():
        setattr(config, key, value)
    config.head_dim = config.hidden_size // config.num_attention_heads
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    target = scratch / shape
    model.save_pretrained(target, safe_serialization=True)
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    for name in Path(base.path).iterdir():
        if name.name.startswith(("tokenizer", "special_tokens", "chat_template", "generation_config")):
            shutil.copy(name, target / name.name)
    return replace(base, name=f"{shape}-shaped (random weights)", path=str(target))


def lengths(prompter, examples) -> list[int]:
    tok = prompter.tokenizer
    return [len(tok(prompter.prompt(e)).input_ids) + len(tok(prompter.completion(e)).input_ids) + 1 for e in examples]


def training(source: ModelSource, shape: str, device: str, steps: int, examples: list) -> tuple[dict, object]:
    suite = load_suite("ticket-triage")
    tokenizer = loading.load_tokenizer(source)
    prompter = trained_prompter(tokenizer, suite, HARNESS_TRAINING)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = get_peft_model(loading.load_model(source, device, dtype), LoraConfig(**LORA))
    n_params = model.get_base_model().num_parameters()
    plain = plain_loop(model, tokenizer, prompter, examples, steps, 32, device, warmup=2)
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = get_peft_model(loading.load_model(source, device, dtype), LoraConfig(**LORA))
    seen = examples[: steps * HARNESS_TRAINING.batch_size]
    report = train(model, tokenizer, prompter, seen, 1e-3, BudgetConfig(max_steps=steps, trial_train_seconds=None),
                   HARNESS_TRAINING, device, 0)
    harness_tokens = sum(lengths(prompter, seen[: report.steps * HARNESS_TRAINING.batch_size]))
    plain_tps, harness_tps = plain.tokens / plain.seconds, harness_tokens / report.seconds
    flops = peak_flops()
    row = {
        "shape": shape, "model": source.name, "params": n_params, "steps": steps,
        "plain": {"batch": 32, "seconds": plain.seconds, "real_tokens_per_s": plain_tps},
        "harness": {"batch": HARNESS_TRAINING.batch_size, "padding_free": True, "seconds": report.seconds,
                    "real_tokens_per_s": harness_tps, "steps": report.steps},
        "ratio": harness_tps / plain_tps,
        "mfu_plain": None if flops is None else 4 * n_params * plain_tps / flops,
        "mfu_harness": None if flops is None else 4 * n_params * harness_tps / flops,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
    }
    return row, (model, tokenizer, prompter)


@torch.no_grad()
def plain_generate(model, tokenizer, prompts: list[str], batch_size: int, new_tokens: int, device: str) -> list[str]:
    tokenizer.padding_side = "left"
    outputs = []
    for start in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True).to(device)
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        outputs += tokenizer.batch_decode(out[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
    return outputs


def generation(trained, device: str, n: int) -> dict:
    model, tokenizer, prompter = trained
    model.eval()
    suite = load_suite("ticket-triage")
    examples = list(suite.splits["test"][:n])
    prompts = [prompter.prompt(e) for e in examples]
    timings = {}
    plain_generate(model, tokenizer, prompts[:8], 64, 4, device)  # warm-up: kernels, allocator
    sync(device)
    began = time.perf_counter()
    plain = plain_generate(model, tokenizer, prompts, 64, 24, device)
    sync(device)
    timings["plain"] = time.perf_counter() - began
    began = time.perf_counter()
    sorted_only = generate(model, tokenizer, prompts, 64, 24, desc="harness")
    sync(device)
    timings["harness_sorted"] = time.perf_counter() - began
    began = time.perf_counter()
    stopped = generate(model, tokenizer, prompts, 64, 24, desc="harness, settled",
                       settled=lambda text: settled(text, suite.contract))
    sync(device)
    timings["harness_settled"] = time.perf_counter() - began
    return {
        "n": n, "batch": 64, "max_new_tokens": 24, "seconds": timings,
        "speedup": {k: timings["plain"] / v for k, v in timings.items()},
        "outputs_identical": [g.output for g in sorted_only] == plain,
        "parsed_identical_when_settled": all(parse_output(a, suite.contract) == parse_output(b.output, suite.contract)
                                             for a, b in zip(plain, stopped)),
    }


def vllm_generation(trained, base: ModelSource, n: int, python: str, scratch: Path) -> dict:
    """The trained adapter through a vLLM server against plain `generate`, on the same prompts (target 10x)."""
    from harness.serving.vllm import VllmServer, VllmSettings

    model, tokenizer, prompter = trained
    adapter = scratch / "vllm-adapter"
    model.save_pretrained(adapter, safe_serialization=True)
    suite = load_suite("ticket-triage")
    prompts = [prompter.prompt(e) for e in suite.splits["test"][:n]]
    began = time.perf_counter()
    plain = plain_generate(model.eval(), tokenizer, prompts, 64, 24, "cuda")
    sync("cuda")
    plain_s = time.perf_counter() - began
    plain_tokens = sum(len(tokenizer(text).input_ids) for text in plain)
    settings = VllmSettings(python=python, dtype="bfloat16", max_loras=2, max_lora_rank=64)
    with VllmServer.start(base.path, settings, "base", scratch / "vllm.log") as server:
        server.load_adapter("trained", adapter)
        server.complete("trained", prompts[:64], 24, concurrency=64)  # warm-up
        began = time.perf_counter()
        served = server.complete("trained", prompts, 24, concurrency=64)
        served_s = time.perf_counter() - began
        version = server.version
    served_tokens = sum(c.completion_tokens for c in served)
    return {"n": n, "plain_batch": 64, "vllm_concurrency": 64, "vllm": version, "dtype": "bfloat16",
            "plain_completion_tokens_per_s": plain_tokens / plain_s, "vllm_completion_tokens_per_s": served_tokens
            / served_s, "speedup": (served_tokens / served_s) / (plain_tokens / plain_s), "target": 10.0,
            "identical_outputs": sum(c.text == p for c, p in zip(served, plain)), "of": len(prompts)}


def memory(source: ModelSource, device: str, examples: list) -> dict:
    """Peak GPU memory of a few harness training steps, per method."""
    if device != "cuda":
        return {"skipped": "needs a GPU"}
    suite = load_suite("ticket-triage")
    out = {}
    methods = ["lora", "full"]
    try:
        import bitsandbytes  # noqa: F401

        methods.append("qlora")
    except ImportError:
        out["qlora"] = "skipped: bitsandbytes is not installed here"
    for method in methods:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        tokenizer = loading.load_tokenizer(source)
        if method == "qlora":
            from transformers import BitsAndBytesConfig

            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                       bnb_4bit_compute_dtype=torch.bfloat16)
            model = loading.load_model(source, device, torch.bfloat16, quantization_config=quant)
        else:
            model = loading.load_model(source, device, torch.bfloat16)
        if method != "full":
            model = get_peft_model(model, LoraConfig(**LORA))
        prompter = trained_prompter(tokenizer, suite, HARNESS_TRAINING)
        train(model, tokenizer, prompter, examples[: 5 * 64], 1e-4, BudgetConfig(max_steps=5, trial_train_seconds=None),
              HARNESS_TRAINING, device, 0)
        out[method] = {"peak_gib": torch.cuda.max_memory_allocated() / 2**30, "batch": 64}
        del model
    return out


def long_sequence_memory(base: ModelSource, shape: str, method: str, device: str, seq: int, scratch: Path) -> dict:
    """Peak GPU memory of the harness's own trial path (the method's `prepare`: load, adapter, train) for a
    `shape` model at `seq` tokens per example, batch 1, with gradient checkpointing: the 7B QLoRA target."""
    from harness.core.config import ExperimentConfig
    from harness.core.typed import build
    from harness.training.methods import METHODS
    from harness.training.methods.base import TrialContext
    from harness.training.methods.lora import LoraParams

    reason = METHODS.get(method).unavailable_reason(device)
    if reason:
        return {"method": method, "shape": shape, "skipped": reason}
    suite = load_suite("ticket-triage")
    tokenizer = loading.load_tokenizer(base)
    tickets, examples = [e.input for e in suite.splits["train"]], []
    for i, target in enumerate(e.target for e in suite.splits["train"][:4]):
        words, text = 0, []
        while words < seq - 48:  # tickets joined into one input of about `seq` tokens
            ticket = tickets[(i * 97 + len(text)) % len(tickets)]
            text.append(ticket)
            words += len(tokenizer(ticket).input_ids)
        examples.append(Example(id=f"long:{i}", input=" ".join(text), target=target))
    config = build(ExperimentConfig, {
        "name": "memory", "space": {method: {}},
        "budget": {"max_steps": 3, "trial_train_seconds": None},
        "training": {"batch_size": 1, "max_length": seq + 64, "precision": "bf16", "gradient_checkpointing": True,
                     "include_instruction": False, "padding_free": False, "eval_every_steps": 0},
    }, "gpu_targets")
    began = time.perf_counter()
    source = shape_source(base, shape, scratch, device)
    built = time.perf_counter() - began
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    ctx = TrialContext(config=config, suite=suite, train_examples=tuple(examples), source=source, device=device,
                       dtype=torch.bfloat16, seed=0)
    began = time.perf_counter()
    candidate = METHODS.get(method).prepare(ctx, LoraParams(r=16, lora_alpha=32, learning_rate=1e-4))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    row = {"method": method, "shape": shape, "seq": seq, "batch": 1, "gradient_checkpointing": True,
           "steps": candidate.train_report.steps, "peak_gib": None if peak is None else round(peak, 2),
           "target": "fits in 12 GiB", "met": None if peak is None else peak <= 12,
           "seconds_to_build_weights": round(built, 1),
           "seconds_load_and_train": round(time.perf_counter() - began, 1)}
    del candidate
    if source.path != base.path:
        shutil.rmtree(source.path, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="smollm2-135m", help="the embedded model, or a local model folder")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--examples", type=int, default=None, help="train examples to draw from (default: all)")
    parser.add_argument("--generate-n", type=int, default=1000)
    parser.add_argument("--shapes", nargs="+", default=["smollm2", "0.5b"], choices=["smollm2", *SHAPES])
    parser.add_argument("--long", nargs="*", default=["qlora:7b"], metavar="METHOD:SHAPE",
                        help="peak memory of a trial at --seq tokens with gradient checkpointing (default qlora:7b; "
                             "`lora:tiny` for a CPU dry run; none to skip)")
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--vllm-python", help="the python of a vLLM environment: also time the vllm engine (5)")
    parser.add_argument("--out", type=Path, default=Path("gpu_targets.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    base = models.resolve(args.model)
    suite = load_suite("ticket-triage")
    examples = list(suite.splits["train"])
    random.Random(0).shuffle(examples)
    examples = examples[: args.examples] if args.examples else examples
    result = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "versions": {p: metadata.version(p) for p in ("torch", "transformers", "peft", "trl")},
        "training": [],
    }

    def save():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="gpu-targets-") as scratch:
        for shape in args.shapes:
            row, trained = training(shape_source(base, shape, Path(scratch)), shape, args.device, args.steps, examples)
            result["training"].append(row)
            print(json.dumps(row), flush=True)
            save()
            if shape == "smollm2":
                result["generation"] = generation(trained, args.device, args.generate_n)
                print(json.dumps(result["generation"]), flush=True)
                save()
                if args.vllm_python and args.device == "cuda":
                    result["vllm_generation"] = vllm_generation(trained, base, args.generate_n, args.vllm_python,
                                                                Path(scratch))
                    print(json.dumps(result["vllm_generation"]), flush=True)
                    save()
            del trained
    result["memory"] = memory(base, args.device, examples)
    print(json.dumps(result["memory"]), flush=True)
    save()
    result["long_sequence_memory"] = []
    for spec in args.long:
        method, shape = spec.split(":")
        with tempfile.TemporaryDirectory(prefix="gpu-targets-long-", dir="/var/tmp" if Path("/var/tmp").is_dir()
                                         else None) as scratch:  # a 7B shape is 14 GB: not in a RAM-backed /tmp
            row = long_sequence_memory(base, shape, method, args.device, args.seq, Path(scratch))
        result["long_sequence_memory"].append(row)
        print(json.dumps(row), flush=True)
        save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
