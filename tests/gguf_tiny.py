"""A tiny llama GGUF written with gguf's GGUFWriter, for testing convert_gguf offline in well under a second.

Byte-level BPE ("gpt2") vocab: three specials, the 256 byte symbols and a few merges. Its eos is
<|im_end|> (id 2), not <|endoftext|> (id 0) that a byte-level converter would guess, so a converter that
ignores the metadata fails the tests. The feed-forward weights are Q8_0 blocks to exercise dequantization.
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MERGES = ("Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HIDDEN, HEADS, KV_HEADS, FF, LAYERS = 32, 4, 2, 64, 2


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-in for each byte value."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def vocab() -> list[str]:
    tokens = list(SPECIALS) + _byte_symbols()
    for merge in MERGES:
        merged = merge.replace(" ", "")
        if merged not in tokens:
            tokens.append(merged)
    return tokens


def write_tiny_gguf(path: Path, pad_id: int | None = None, chat_template: str | None = CHAT_TEMPLATE) -> Path:
    import gguf
    import numpy as np

    tokens = vocab()
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test")
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL] * len(SPECIALS) + [gguf.TokenType.NORMAL] * (len(tokens) - 3))
    w.add_token_merges(list(MERGES))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    if pad_id is not None:
        w.add_pad_token_id(pad_id)
    w.add_add_bos_token(False)
    if chat_template:
        w.add_chat_template(chat_template)

    def f32(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    kv = KV_HEADS * HIDDEN // HEADS
    w.add_tensor("token_embd.weight", f32(len(tokens), HIDDEN))
    w.add_tensor("output_norm.weight", np.ones(HIDDEN, np.float32))
    for i in range(LAYERS):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", np.ones(HIDDEN, np.float32))
        w.add_tensor(b + "ffn_norm.weight", np.ones(HIDDEN, np.float32))
        for name, shape in (("attn_q", (HIDDEN, HIDDEN)), ("attn_k", (kv, HIDDEN)), ("attn_v", (kv, HIDDEN)),
                            ("attn_output", (HIDDEN, HIDDEN))):
            w.add_tensor(b + name + ".weight", f32(*shape))
        for name, shape in (("ffn_gate", (FF, HIDDEN)), ("ffn_up", (FF, HIDDEN)), ("ffn_down", (HIDDEN, FF))):
            q = gguf.quants.quantize(f32(*shape), gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(b + name + ".weight", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
