"""Loading a resolved model: safetensors only, never `trust_remote_code`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.core.errors import ModelError
from harness.models.sources import ModelSource, weights_sha256


@contextmanager
def library_bars_off() -> Iterator[None]:
    """No progress bars from transformers (loading weights, writing shards) or datasets (TRL's dataset preparation)
    in the sweep's output, which keeps one bar per phase of its own; each library's setting is restored after."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets_on, hf_on = not datasets.utils.are_progress_bars_disabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if hf_on:
            hf_logging.enable_progress_bar()


def load_tokenizer(source: ModelSource):
    """pad falls back to eos: batched generation and training both need a pad id."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer of {source.name} from {source.path}: {exc}") from exc
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ModelError(f"the tokenizer of {source.name} has neither a pad nor an eos token; set one in "
                             f"{source.path}/tokenizer_config.json")
        tok.pad_token = tok.eos_token
    return tok


CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")
"""Where model configs state their context window, by architecture."""


def context_window(source: ModelSource, tokenizer) -> int | None:
    """Tokens the model can attend to, from its config (no weights load); else the tokenizer's stated limit; None
    when neither says (then nothing is checked against it). A tokenizer with more tokens than the model has
    embeddings is refused here, before any weight loads."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source.path, trust_remote_code=False)
    except (OSError, ValueError):
        config = None
    _check_vocabulary(source, config, tokenizer)
    return window_of(config, tokenizer)


def _check_vocabulary(source: ModelSource, config, tokenizer) -> None:
    """A token id past the model's embeddings fails the first prompt that holds it, deep in a forward pass (an
    IndexError that reads as anything but this)."""
    vocab = getattr(getattr(config, "get_text_config", lambda: config)(), "vocab_size", None)
    tokens = len(tokenizer)
    if isinstance(vocab, int) and 0 < vocab < tokens:
        raise ModelError(f"model {source.name} ({source.path}): its tokenizer has {tokens:,} tokens but config.json "
                         f"gives the model {vocab:,} (`vocab_size`), so a token id from {vocab:,} up has no embedding "
                         "and the first prompt holding one fails. Fix: put the tokenizer saved with these weights in "
                         "the folder (tokenizer.json and its config), or the config.json that goes with them.")


def window_of(config, tokenizer) -> int | None:
    """`context_window` from a config already at hand (a loaded model's), else the tokenizer's stated limit."""
    for key in CONTEXT_KEYS:
        value = getattr(getattr(config, "get_text_config", lambda: config)(), key, None)
        if isinstance(value, int) and value > 0:
            return value
    stated = getattr(tokenizer, "model_max_length", None)
    return stated if isinstance(stated, int) and 0 < stated < 10_000_000 else None  # 1e30 means "not stated"


def load_model(source: ModelSource, device: str, dtype, quantization_config=None):
    """Safetensors only, also for hub ids (no pickles). Quantized (bitsandbytes) models must be placed by
    from_pretrained, hence device_map={"": 0}."""
    from transformers import AutoModelForCausalLM

    from harness.models.device import free_memory


    free_memory(device)  # what the previous model left (a trial's trainer lives on in reference cycles) goes first
    kw = dict(dtype=dtype, trust_remote_code=False, use_safetensors=True, output_loading_info=True)
    if quantization_config is not None:
        kw.update(quantization_config=quantization_config, device_map={"": 0})
    try:
        with library_bars_off():
            model, loading = AutoModelForCausalLM.from_pretrained(source.path, **kw)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {source.name} from {source.path}: {exc}") from exc
    except RuntimeError as exc:
        if "mismatched" not in str(exc):  # e.g. out of memory: the caller's handling stays
            raise
        raise ModelError(f"cannot load model {source.name} from {source.path}: the shapes of its weights do not match "
                         "its config.json (transformers printed which above): the config of another model size, or "
                         "weights saved from another model. Fix: copy config.json and every *.safetensors from the "
                         "same save_pretrained.") from None
    if missing := sorted(loading.get("missing_keys") or ()):
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ModelError(f"cannot load model {source.name} from {source.path}: its weights lack {shown}, which its "
                         "config.json needs. transformers would start them from random values, different at every "
                         "load, so every trial, and every later predict, would score another model under one sha256. "
                         "Fix: copy every *.safetensors of the same save_pretrained (a shard may be missing), or the "
                         "config.json that goes with these weights (a head tied to the embeddings is not stored: "
                         "`tie_word_embeddings: true`).")
    if (broken := _not_finite(model)) is not None:
        raise ModelError(f"cannot load model {source.name} from {source.path}: its weight {broken} holds NaN or "
                         "infinite values, so every answer would be empty and every training loss NaN (as a broken "
                         "fp16 conversion leaves a model). Fix: convert or download the model again, and check it "
                         "loads with finite weights.")
    return model if quantization_config is not None else model.to(device)


def _not_finite(model) -> str | None:
    """The first floating-point weight holding NaN or infinity, by name; None when every one is finite."""
    import torch

    for name, weight in model.named_parameters():
        if weight.is_floating_point() and not torch.isfinite(weight).all():
            return name
    return None


def check_adapter_base(artifact: Path, source: ModelSource, owner: str) -> None:
    """Refuse a PEFT adapter folder that was made for another base model than `source`, before anything loads.

    Three signs, each enough: an export's `base_model.json` records another sha256; `adapter_config.json` names a
    base folder on this machine whose weights are another model's; or the adapter's matrices do not fit the base
    model's layers (read from the safetensors headers, not the weights). A whole model (full fine-tuning) has no
    adapter_config.json and nothing to check."""
    config_path = Path(artifact) / "adapter_config.json"
    if not config_path.is_file():
        return
    fix = f"Use the model it was trained on (`model:` of its study), or re-train the adapter on {source.name}."
    try:
        named = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{config_path} is not a readable adapter config ({exc}); {owner} cannot be loaded. Re-run "
                         "the trial (or export it again).") from None
    recorded = _recorded_base_sha256(Path(artifact))
    if recorded is not None and recorded != source.sha256:
        raise ModelError(f"{owner}: the adapter in {artifact} was made for the base model with sha256 "
                         f"{recorded[:12]} (base_model.json), but the base model here, {source.name}, has "
                         f"{source.sha256[:12]}. {fix}")
    if named and named != source.path and Path(named).is_dir() and list(Path(named).glob("*.safetensors")):
        if weights_sha256(Path(named)) != source.sha256:
            raise ModelError(f"{owner}: the adapter in {artifact} was made for the base model {named}, which is not "
                             f"{source.name} ({source.path}): their weights differ. {fix}")
    problem = _shape_problem(Path(artifact), source)
    if problem:
        raise ModelError(f"{owner}: the adapter in {artifact} was made for another base model than {source.name} "
                         f"({problem}). {fix}")


def _recorded_base_sha256(artifact: Path) -> str | None:
    try:
        recorded = json.loads((artifact / "base_model.json").read_text(encoding="utf-8")).get("sha256")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, str) and recorded else None


def _shape_problem(artifact: Path, source: ModelSource) -> str | None:
    """Where a LoRA matrix does not fit the base layer it adapts, in words; None when all fit (or for hub bases,
    whose headers are not on this machine)."""
    base_dir = Path(source.path)
    adapter_file = artifact / "adapter_model.safetensors"
    if not base_dir.is_dir() or not adapter_file.is_file():
        return None
    base = {}
    try:
        for weights in sorted(base_dir.glob("*.safetensors")):
            base.update(_safetensors_shapes(weights))
        adapter = _safetensors_shapes(adapter_file)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"the weights in {adapter_file} or {base_dir} do not read as safetensors ({exc}); re-run or "
                         "re-export the trial.") from None
    for key, shape in adapter.items():
        for part, axis in ((".lora_A.weight", 1), (".lora_B.weight", 0)):
            if not key.endswith(part):
                continue
            module = key.removeprefix("base_model.model.").removesuffix(part)
            target = base.get(f"{module}.weight")
            if target is None:
                return f"it adapts `{module}`, which the base model does not have"
            # a Linear stores (out, in); a Conv1D (GPT-2's c_attn) stores (in, out), and LoRA's matrices stay (r, in)
            # and (out, r) either way: a dimension that fits either way round fits
            if len(shape) != 2 or len(target) != 2 or shape[axis] not in (target[axis], target[1 - axis]):
                return f"`{module}` is {target} in the base model, and the adapter's {part[1:7]} is {shape}"
    return None


def _safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape, from the safetensors header only: no weight is read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return {name: list(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except SafetensorError as exc:
        raise ValueError(str(exc)) from None
