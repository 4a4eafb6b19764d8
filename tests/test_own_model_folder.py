"""A user's own model folder (a new user's findings): weights missing from a checkpoint are refused, not started from
random values at every load; a LoRA adapter on GPT-2's Conv1D layers (stored in, out) fits its base."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny import build_tiny_model_dir, build_tiny_tokenizer

from harness.core.errors import ModelError
from harness.models.loading import check_adapter_base, load_model
from harness.models.sources import resolve


def test_a_checkpoint_without_a_weight_its_config_needs_is_refused(tmp_path):
    folder = build_tiny_model_dir(tmp_path / "nohead")  # an untied head (tie_word_embeddings: false)
    weights = folder / "model.safetensors"
    tensors = load_file(str(weights))
    del tensors["lm_head.weight"]
    save_file(tensors, str(weights), metadata={"format": "pt"})
    with pytest.raises(ModelError) as refused:
        load_model(resolve(str(folder)), "cpu", torch.float32)
    message = str(refused.value)
    assert "its weights lack lm_head.weight, which its config.json needs" in message
    assert "random values, different at every load" in message and "tie_word_embeddings: true" in message


def test_a_checkpoint_with_non_finite_weights_is_refused_naming_the_weight(tmp_path):
    """Its prompting trial read "complete, 0.0%" (every answer empty), and training blamed the learning rate."""
    folder = build_tiny_model_dir(tmp_path / "nan")
    weights = folder / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["model.embed_tokens.weight"][3, 0] = float("nan")
    save_file(tensors, str(weights), metadata={"format": "pt"})
    with pytest.raises(ModelError, match=r"its weight model.embed_tokens.weight holds NaN or infinite values"):
        load_model(resolve(str(folder)), "cpu", torch.float32)


def test_a_lora_adapter_on_gpt2s_conv1d_layers_fits_its_base(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_tiny_tokenizer()

    def gpt2(path, width):
        model = GPT2LMHeadModel(GPT2Config(n_embd=width, n_layer=1, n_head=2, vocab_size=len(tokenizer),
                                           n_positions=64))
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        return model

    base = gpt2(tmp_path / "gpt2", 32)
    adapter = get_peft_model(base, LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True))
    adapter.save_pretrained(tmp_path / "adapter")
    check_adapter_base(tmp_path / "adapter", resolve(str(tmp_path / "gpt2")), "trial t/1")  # fits: no error
    gpt2(tmp_path / "wider", 48)
    with pytest.raises(ModelError, match=r"made for another base model than .*c_attn"):
        check_adapter_base(tmp_path / "adapter", resolve(str(tmp_path / "wider")), "trial t/1")


def test_a_tokenizer_with_more_tokens_than_the_model_embeds_is_refused_before_any_weight_loads(tmp_path):
    import json

    from harness.models.loading import context_window, load_tokenizer

    folder = build_tiny_model_dir(tmp_path / "small-vocab")
    config = json.loads((folder / "config.json").read_text())
    source = resolve(str(folder))
    tokenizer = load_tokenizer(source)
    assert context_window(source, tokenizer) is not None  # as saved: the tokenizer fits
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": len(tokenizer) - 10}))
    with pytest.raises(ModelError, match=rf"its tokenizer has {len(tokenizer):,} tokens but config.json gives the "
                                         rf"model {len(tokenizer) - 10:,}"):
        context_window(source, tokenizer)


def test_a_folder_with_two_saves_is_refused(tmp_path):
    import json
    import shutil

    folder = build_tiny_model_dir(tmp_path / "two-saves")
    resolve(str(folder))  # one save: fine
    shutil.copy(folder / "model.safetensors", folder / "model-00001-of-00001.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"lm_head.weight": "model-00001-of-00001.safetensors"}}))
    with pytest.raises(ModelError, match=r"holds two saves of a model: one file, model.safetensors, and the shards"):
        resolve(str(folder))


def test_a_recorded_model_folder_moved_away_is_named_with_the_fix_that_applies(tmp_path, monkeypatch):
    """`predict` said "give the path of a model folder", and predict has no flag to give one."""
    from harness.models.sources import resolve_recorded

    folder = build_tiny_model_dir(tmp_path / "base")
    assert resolve_recorded(str(folder), "trial s/1").path == str(folder)
    with pytest.raises(ModelError) as refused:
        resolve_recorded(str(tmp_path / "moved"), "trial s/1")
    message = str(refused.value)
    assert f"trial s/1 ran on the model folder {tmp_path / 'moved'}, which is not there any more" in message
    assert "Put the folder back at that path" in message and "give the path" not in message
