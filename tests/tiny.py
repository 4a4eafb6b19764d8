"""Tiny offline tokenizer and model for tests: real transformers classes, random weights, built in well under
a second, no network.

The tokenizer is byte-level BPE trained on the given texts, so any text (JSON, unicode) encodes and decodes
losslessly; it has `<pad>`, `<eos>` and, with `chat_template=True`, a template that marks turns with
`<|system|>`, `<|user|>`, `<|assistant|>` (assistant content wrapped in `{% generation %}` so
`return_assistant_tokens_mask` works). The model is a 2-layer LlamaForCausalLM saved as safetensors.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>\n{% generation %}{{ message['content'] }}<eos>{% endgeneration %}\n"
    "{% else %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<eos>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

DEFAULT_TEXTS = (
    "Question: How do I open a jar?\nAnswer: Twist the lid.",
    '{"intent": "card_arrival"} {"name": "Ada Lovelace", "city": "London"}',
    "The quick brown fox jumps over the lazy dog. Café, naïve, 東京.",
)


def build_tiny_tokenizer(texts: Iterable[str] = DEFAULT_TEXTS, chat_template: bool = True, vocab_size: int = 400):
    """A PreTrainedTokenizerFast trained on `texts` (byte-level BPE; every byte is in the vocabulary)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, UNK, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) or [" "], trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=2048,
        padding_side="right",
    )
    if chat_template:
        wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_model(tokenizer, seed: int = 0, hidden_size: int = 32, num_layers: int = 2,
                     head_dim: int | None = None):
    """A randomly initialised (seeded) LlamaForCausalLM sized to `tokenizer`. `head_dim` None is hidden_size / 4
    heads (8); vLLM's CPU attention needs 32 or more."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        head_dim=head_dim,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval()


def build_tiny_model_dir(
    path: Path, texts: Iterable[str] = DEFAULT_TEXTS, chat_template: bool = True, seed: int = 0,
    head_dim: int | None = None,
) -> Path:
    """Save a tiny model (safetensors) and its tokenizer to `path`, loadable with `from_pretrained`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(texts, chat_template=chat_template)
    model = build_tiny_model(tokenizer, seed=seed, head_dim=head_dim)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
