"""A model's layers as its config builds them, without a weight read or allocated: the names an adapter's
`target_modules` can match, and each layer's width, so both are checked before any model loads."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import ModelError
from harness.models import sources


@dataclass(frozen=True)
class Layer:
    name: str
    """Its full dotted name in the model, e.g. `model.layers.0.self_attn.q_proj`."""
    kind: str
    """Its class, e.g. `Linear`, `Embedding`, `LlamaAttention`."""
    width: tuple[int, int] | None
    """(inputs, outputs) of a layer a LoRA adapter can wrap (linear, embedding); None for every other module."""
    linear: bool = False
    """A linear layer (torch's Linear or transformers' Conv1D): what PEFT's `all-linear` adapts."""

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class ModelLayers:
    model: str
    """The model as the experiment names it, for messages."""
    layers: tuple[Layer, ...]
    output: str | None
    """The output projection (`lm_head`), which PEFT's `all-linear` leaves out."""

    def linear(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.linear]

    def linear_names(self) -> list[str]:
        """The short names of the linear layers, once each, in the model's order: what a user writes."""
        return list(dict.fromkeys(layer.short_name for layer in self.linear()))


def model_layers(ref: str) -> ModelLayers | None:
    """The layers of the model `ref` names (an embedded name, a local folder or a hub id), from its config.json;
    None when no config of it is on this machine yet (an embedded model not pulled, a hub id not downloaded), or
    when its architecture cannot be built from a config alone: then the trial's own load is the first check."""
    where = _config_location(ref)
    return None if where is None else _layers(ref, where)


def _config_location(ref: str) -> str | None:
    """Where the config is read: the folder itself (not resolved: that would hash every weight file), an embedded
    model's cache folder, or a hub id (read from the Hugging Face cache only)."""
    if Path(ref).expanduser().is_dir():
        return str(Path(ref).expanduser().resolve())
    try:
        return sources.resolve(ref, pull_missing=False).path
    except ModelError:
        return None


@functools.lru_cache(maxsize=8)
def _layers(ref: str, location: str) -> ModelLayers | None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(location, trust_remote_code=False, local_files_only=True)
        with torch.device("meta"):  # shapes only: nothing is allocated, however large the model
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    except Exception:  # noqa: BLE001 - any failure here is the load's to report, with its own message, later
        return None
    output = model.get_output_embeddings()
    names = {id(module): name for name, module in model.named_modules()}
    return ModelLayers(ref, tuple(_layer(name, module) for name, module in model.named_modules() if name),
                       names.get(id(output)) if output is not None else None)


def _layer(name: str, module) -> Layer:
    import torch
    from transformers.pytorch_utils import Conv1D

    kind = type(module).__name__
    if isinstance(module, torch.nn.Linear):
        return Layer(name, kind, (module.in_features, module.out_features), linear=True)
    if isinstance(module, Conv1D):  # GPT-2's transposed linear layer keeps its weight as (inputs, outputs)
        return Layer(name, kind, tuple(module.weight.shape), linear=True)
    if isinstance(module, torch.nn.Embedding):
        return Layer(name, kind, (module.num_embeddings, module.embedding_dim))
    return Layer(name, kind, None)
