"""GGUF -> safetensors: dequantize an embedded model once into a plain Hugging Face model folder.

The special tokens and the chat template come from the GGUF's own metadata, not from transformers' converter,
whose guesses have been wrong (transformers 5.17 made SmolLM2's end-of-sequence token `<|im_start|>`, and a model
trained with that never stops).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from harness.core.errors import ModelError


def say(msg: str) -> None:
    print(f"[models] {msg}", file=sys.stderr, flush=True)


def _gguf_specials(gguf_path: Path) -> tuple[dict[str, tuple[int, str]], str | None]:
    """Special tokens and chat template as the GGUF metadata states them: the converter's guess is not
    trusted (transformers 5.17 made SmolLM2's eos <|im_start|> and set no pad)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf_path)).fields
    tokens = fields["tokenizer.ggml.tokens"]
    out = {}
    for role in ("bos", "eos", "pad"):
        key = "tokenizer.ggml." + ("padding" if role == "pad" else role) + "_token_id"
        if key in fields:
            tid = int(fields[key].contents())
            out[role] = (tid, str(tokens.contents(tid)))
    template = fields.get("tokenizer.chat_template")
    return out, (str(template.contents()) if template is not None else None)


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """GGUF -> float32 safetensors HF dir, written beside out_dir and renamed into place when complete."""
    import torch
    import transformers
    from accelerate import init_empty_weights
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        GgufConfig,
    )

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if out_dir.exists():
        raise ModelError(f"refusing to convert into {out_dir}: it exists. Delete it and re-run.")
    t = [time.monotonic()]
    say(f"reading GGUF metadata of {gguf_path.name}")
    specials, template = _gguf_specials(gguf_path)
    if "eos" not in specials:
        raise ModelError(f"{gguf_path} has no tokenizer.ggml.eos_token_id; cannot tell where generation ends.")
    specials.setdefault("pad", specials["eos"])
    say("loading the GGUF tokenizer")
    where = dict(pretrained_model_name_or_path=gguf_path.parent, gguf_file=gguf_path.name)
    t.append(time.monotonic())
    try:
        tok = AutoTokenizer.from_pretrained(**where)
        t.append(time.monotonic())
        say("loading and dequantizing the GGUF weights")
        gmodel = AutoModelForCausalLM.from_pretrained(
            **where, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True))
    except (ValueError, KeyError, NotImplementedError, OSError) as exc:
        raise ModelError(f"transformers {transformers.__version__} cannot load {gguf_path}: "
                         f"{type(exc).__name__}: {exc}") from exc
    t.append(time.monotonic())
    # A GGUF-loaded model refuses save_pretrained; rebuild a plain one from its config instead, its weights the
    # dequantized tensors themselves: built on the meta device, it allocates (and randomly initialises) no second
    # copy of the model, which doubled the conversion's peak.
    config = gmodel.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    ids = {role: tid for role, (tid, _) in specials.items()}
    for role, tid in ids.items():
        setattr(config, f"{role}_token_id", tid)
    with init_empty_weights(include_buffers=False):  # buffers (rotary frequencies) are computed, not loaded
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gmodel.state_dict(), assign=True)
    model.tie_weights()  # assigned one by one, tied weights are two parameters until tied again
    model.generation_config = GenerationConfig(**{f"{role}_token_id": tid for role, tid in ids.items()})
    del gmodel
    for role, (tid, text) in specials.items():
        if tok.convert_tokens_to_ids(text) != tid:
            raise ModelError(f"{gguf_path}: the tokenizer maps {text!r} to {tok.convert_tokens_to_ids(text)}, "
                             f"the GGUF metadata says {role} id {tid}; the GGUF tokenizer is not supported.")
        setattr(tok, f"{role}_token", text)
    if template:
        tok.chat_template = template
    tok.model_max_length = getattr(config, "max_position_embeddings", tok.model_max_length)
    tmp = out_dir.parent / f".tmp-{out_dir.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        say(f"writing safetensors to {out_dir}")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if not list(tmp.glob("*.safetensors")):
            raise ModelError(f"saving {gguf_path.name} wrote no safetensors file into {tmp}")
        check = AutoTokenizer.from_pretrained(tmp)
        if (check.eos_token_id, check.pad_token_id) != (ids["eos"], ids["pad"]):
            raise ModelError(f"the saved tokenizer has eos/pad ids {check.eos_token_id}/{check.pad_token_id}, "
                             f"the GGUF says {ids['eos']}/{ids['pad']}")
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.append(time.monotonic())
    steps = ", ".join(f"{k} {b - a:.1f} s" for k, a, b in zip(("metadata", "tokenizer", "weights", "rebuild+save"),
                                                              t, t[1:]))
    say(f"converted {gguf_path.name} in {t[-1] - t[0]:.1f} s ({steps})")
