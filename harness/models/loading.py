"""Loading a resolved model: safetensors only, never `trust_remote_code`."""

from __future__ import annotations

from harness.core.errors import ModelError
from harness.models.sources import ModelSource


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


def load_model(source: ModelSource, device: str, dtype, quantization_config=None):
    """Safetensors only, also for hub ids (no pickles). Quantized (bitsandbytes) models must be placed by
    from_pretrained, hence device_map={"": 0}."""
    from transformers import AutoModelForCausalLM

    kw = dict(dtype=dtype, trust_remote_code=False, use_safetensors=True)
    if quantization_config is not None:
        kw.update(quantization_config=quantization_config, device_map={"": 0})
    try:
        model = AutoModelForCausalLM.from_pretrained(source.path, **kw)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {source.name} from {source.path}: {exc}") from exc
    return model if quantization_config is not None else model.to(device)
