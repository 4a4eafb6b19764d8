"""LoRA and QLoRA adapters through PEFT. QLoRA loads the base model in 4-bit NF4 (bitsandbytes, CUDA only), and
loads its saved adapter onto the same 4-bit base, so `predict`, `recheck` and `export` run the model that was
scored and gated."""

from __future__ import annotations

import difflib
import importlib.util
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import ModelError
from harness.core.typed import at_least, from_up_to, greater_than
from harness.data.prompting import Prompter
from harness.models import loading
from harness.models.layers import Layer, ModelLayers
from harness.training.methods.base import (
    LocalCandidate,
    TrialContext,
    contract_grammar,
    save_pretrained,
    train_candidate,
    trained_prompter,
)


@dataclass(frozen=True)
class LoraParams:
    r: int = field(default=16, metadata=at_least(1))
    """Adapter rank: trainable parameters grow linearly with it. 8-16 suits classification; more for generation."""
    lora_alpha: float = field(default=32, metadata=greater_than(0))
    """Scale of the adapter's update (alpha / r multiplies it); usually 2 x r."""
    lora_dropout: float = field(default=0.0, metadata=from_up_to(0, 1))
    """Dropout on the adapter's input during training; 0 for short runs."""
    target_modules: str = "all-linear"
    """`all-linear`, or comma-separated module names such as `q_proj,v_proj`."""
    learning_rate: float = field(default=1e-3, metadata={**greater_than(0), "max": 1.0})  # AdamW: above 1 diverges
    """AdamW learning rate. Adapters take far larger rates than full fine-tuning (1e-4 to 2e-3)."""
    constrained: bool = False
    """Answer with decoding limited to the output contract (the label set or the JSON Schema), as a constrained
    prompting arm does, so the comparison is like for like: the adapter cannot invent a label. Not for free text."""


class LoRA:
    name = "lora"
    trains = True
    hosted = False
    searches = False
    quantized = False
    """Whether the base is loaded in 4-bit: the adapter is trained, scored, saved and loaded on that base."""
    Params = LoraParams

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def load_base(self, ctx: TrialContext):
        return loading.load_model(ctx.source, ctx.device, ctx.dtype)

    def framing(self, ctx: TrialContext, params: LoraParams, tokenizer) -> Prompter:
        return trained_prompter(ctx, tokenizer)

    def prepare(self, ctx: TrialContext, params: LoraParams) -> LocalCandidate:
        from peft import LoraConfig, get_peft_model
        from transformers import set_seed

        tokenizer = loading.load_tokenizer(ctx.source)
        base = self.load_base(ctx)
        adapter = LoraConfig(
            r=params.r,
            lora_alpha=params.lora_alpha,
            lora_dropout=params.lora_dropout,
            target_modules=target_list(params.target_modules),
            task_type="CAUSAL_LM",
        )
        set_seed(ctx.seed)  # the adapter's random init: the same seed gives the same trial, whatever ran before
        with _quiet_peft():
            model = get_peft_model(base, adapter)
        _stable_targets(model)
        return train_candidate(ctx, model, tokenizer, params.learning_rate, params.constrained, self.quantized)

    def save(self, candidate: LocalCandidate, directory: Path) -> Path:
        """The PEFT adapter (adapter_config.json, adapter_model.safetensors) and the tokenizer."""
        return save_pretrained(candidate, directory)

    def load(self, ctx: TrialContext, params: LoraParams, artifact: Path | None) -> LocalCandidate:
        """The adapter on the base exactly as it was trained and scored on (QLoRA: the 4-bit base)."""
        from peft import PeftModel

        if artifact is None:
            raise ValueError(f"a {self.name} trial needs its saved adapter folder to load")
        if not (Path(artifact) / "adapter_model.safetensors").is_file():  # else PEFT falls back to a pickle (.bin)
            raise ModelError(f"{artifact} has no adapter_model.safetensors; only safetensors are loaded, never "
                             "pickles. Re-save the adapter with save_pretrained(dir, safe_serialization=True).")
        base = self.load_base(ctx)
        tokenizer = loading.load_tokenizer(ctx.source)
        with _quiet_peft():
            model = PeftModel.from_pretrained(base, str(artifact)).eval()
        _stable_targets(model)  # `export` saves it again
        return LocalCandidate(model, tokenizer, trained_prompter(ctx, tokenizer), trained=True,
                              grammar=contract_grammar(ctx, tokenizer, params.constrained), quantized=self.quantized)


ALL_LINEAR = "all-linear"
"""PEFT's word for every linear layer but the output projection; it stands alone, never in a comma list."""


def target_list(targets: str) -> str | list[str]:
    """What PEFT is given: `all-linear` as it is, else the comma-separated names, each of which PEFT matches against
    the end of a module's dotted name (`q_proj`, or `self_attn.q_proj`)."""
    return targets if targets == ALL_LINEAR else [name.strip() for name in targets.split(",")]


def adapter_problems(choices: list[tuple[str, str]], rank_key: str, rank: int, layers: ModelLayers,
                     where: str) -> list[str]:
    """What is wrong, for this model, with each `(key, target_modules)` choice of an adapter arm, and with its
    highest rank `rank` (at `rank_key`). PEFT would otherwise fail after the model loads on a name that matches
    nothing, and ignore a misspelt name beside a good one, silently adapting fewer layers than the file says."""
    problems = []
    for key, targets in choices:
        found = [f"{where}: `{key}`: {problem}" for problem in _target_problems(targets, layers)]
        problems += found or _rank_problems(key, targets, rank_key, rank, layers, where)
    return list(dict.fromkeys(problems))


def _target_problems(targets: str, layers: ModelLayers) -> list[str]:
    names = target_list(targets)
    if isinstance(names, str):
        return []
    known = layers.linear_names()
    listed = (f"the linear modules of {layers.model} are {', '.join(known)}; write some of them comma-separated "
              f"(e.g. `{','.join(known[:2])}`), or {ALL_LINEAR}")
    if ALL_LINEAR in names:
        return [f"`{ALL_LINEAR}` stands alone, never in a comma list (it already names every linear layer but the "
                f"output); {listed}."]
    problems = []
    for name in names:
        if not name:
            problems.append(f"`{targets}` has an empty name (a doubled, leading or trailing comma); {listed}.")
            continue
        matched = _matching(name, layers)
        wrong = [layer for layer in matched if layer.width is None]
        if not matched:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            problems.append(f"`{name}` matches no module of {layers.model}{hint}; {listed}.")
        elif wrong:
            problems.append(f"`{name}` names {wrong[0].kind} modules (such as {wrong[0].name}), which LoRA cannot "
                            f"adapt: it wraps linear and embedding layers; {listed}.")
    return list(dict.fromkeys(problems))


def _matching(name: str, layers: ModelLayers) -> list[Layer]:
    """The layers PEFT would adapt for one name of a list: the name itself, or a dotted name ending with it."""
    return [layer for layer in layers.layers if layer.name == name or layer.name.endswith(f".{name}")]


def _targeted(targets: str, layers: ModelLayers) -> list[Layer]:
    names = target_list(targets)
    if isinstance(names, str):  # all-linear
        return [layer for layer in layers.linear() if layer.name != layers.output]
    return [layer for name in names for layer in _matching(name, layers)]


def _rank_problems(key: str, targets: str, rank_key: str, rank: int, layers: ModelLayers, where: str) -> list[str]:
    """A rank above the narrowest adapted layer's smaller side gives an adapter of full rank there: no longer
    low-rank, it only costs memory and time (the calibration of r=100000 on a 32-wide model ran 16 s a step)."""
    widths = [(min(layer.width), layer) for layer in _targeted(targets, layers) if layer.width]
    if not widths:
        return []
    bound, narrowest = min(widths, key=lambda item: item[0])
    if rank <= bound:
        return []
    inputs, outputs = narrowest.width
    return [f"{where}: `{rank_key}` reaches {rank}, but {narrowest.name} of {layers.model}, which `{key}: {targets}` "
            f"adapts, is {inputs} -> {outputs}: a rank above {bound} is no longer low-rank and only costs memory and "
            f"time. Set r to at most {bound} (8 to 64 is usual)."]


def _stable_targets(model) -> None:
    """PEFT keeps the adapted module names as a set and writes it to adapter_config.json in set order, which
    Python's string hashing changes from process to process: the same adapter would get another file, hence another
    sha256 in the audit pack, on every run. Sorted, the file is the same bytes whenever the adapter is the same."""
    for config in model.peft_config.values():
        if isinstance(config.target_modules, set):
            config.target_modules = sorted(config.target_modules)


@contextmanager
def _quiet_peft():
    """peft 0.21 reads `is_gradient_checkpointing`, which transformers 5.2x deprecates with a FutureWarning on every
    adapter; nothing here uses it, so that one warning is silenced where peft raises it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


class QLoRA(LoRA):
    name = "qlora"
    quantized = True

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
        base = loading.load_model(ctx.source, ctx.device, ctx.dtype, quantization_config=quantization)
        return prepare_model_for_kbit_training(
            base, use_gradient_checkpointing=ctx.config.training.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
