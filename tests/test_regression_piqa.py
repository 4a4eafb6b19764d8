"""PIQA regression check on a tiny random Llama: shape, determinism, batch- and padding-invariance, loading."""

import json

import pytest
from tiny import build_tiny_model, build_tiny_tokenizer

from harness.errors import HarnessError
from harness.scorers.regression import (
    PROMPT,
    PiqaItem,
    _encode,
    load_piqa,
    piqa_correct,
)

GOALS = [
    ("How do I open a jar?", "Twist the lid counterclockwise.", "Freeze the jar until it opens.", 0),
    ("Keep bread fresh", "Store it in a sealed bag.", "Leave it in the sun.", 0),
    ("Dry wet shoes", "Put them in the oven at max heat.", "Stuff them with newspaper.", 1),
    ("Cut a tomato", "Use a sharp knife.", "Use a spoon, pressing hard, then tear it apart by hand.", 0),
    ("Light a candle", "Use a match on the wick.", "Pour water on it.", 0),
    ("Clean a window", "Wipe it with vinegar.", "Rub butter on it.", 0),
    ("Make tea", "Steep leaves in hot water.", "Grind leaves into cold soup.", 0),
]
ITEMS = [PiqaItem(f"i{k}", g, (s1, s2), lab) for k, (g, s1, s2, lab) in enumerate(GOALS)]
TEXTS = [PROMPT.format(goal=g) + " " + s for g, s1, s2, _ in GOALS for s in (s1, s2)]


@pytest.fixture(scope="module")
def tiny():
    tokenizer = build_tiny_tokenizer(TEXTS, chat_template=False)
    return build_tiny_model(tokenizer, seed=0), tokenizer


def test_one_bool_per_item_and_deterministic(tiny):
    model, tokenizer = tiny
    first = piqa_correct(model, tokenizer, ITEMS)
    assert len(first) == len(ITEMS) and all(isinstance(x, bool) for x in first)
    assert piqa_correct(model, tokenizer, ITEMS) == first


def test_invariant_to_batch_size_and_padding_side(tiny):
    model, tokenizer = tiny
    reference = piqa_correct(model, tokenizer, ITEMS, batch_size=1)
    assert piqa_correct(model, tokenizer, ITEMS, batch_size=4) == reference
    tokenizer.padding_side = "left"
    try:
        assert piqa_correct(model, tokenizer, ITEMS, batch_size=4) == reference
        assert tokenizer.padding_side == "left"  # untouched
    finally:
        tokenizer.padding_side = "right"


def test_label_flip_flips_answer(tiny):
    model, tokenizer = tiny
    flipped = [PiqaItem(it.id, it.goal, it.solutions, 1 - it.label) for it in ITEMS]
    assert piqa_correct(model, tokenizer, flipped) == [not x for x in piqa_correct(model, tokenizer, ITEMS)]


def test_restores_training_mode(tiny):
    model, tokenizer = tiny
    model.train()
    try:
        piqa_correct(model, tokenizer, ITEMS[:2])
        assert model.training
    finally:
        model.eval()


def test_encode_scores_only_solution_tokens(tiny):
    _, tokenizer = tiny
    prompt = PROMPT.format(goal="Make tea")
    ids, start = _encode(tokenizer, prompt, "Steep leaves in hot water.")
    assert tokenizer.decode(ids[:start]) == prompt
    assert tokenizer.decode(ids[start:]) == " Steep leaves in hot water."


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")


def test_load_piqa_subset_is_seeded(tmp_path):
    path = tmp_path / "piqa.jsonl"
    _write(path, [{"id": f"p{k}", "goal": f"g{k}", "sol1": "a", "sol2": "b", "label": k % 2} for k in range(20)])
    everything = load_piqa(path, None)
    assert [it.id for it in everything] == [f"p{k}" for k in range(20)]
    assert everything[1] == PiqaItem("p1", "g1", ("a", "b"), 1)
    subset = load_piqa(path, 5, seed=3)
    assert len(subset) == 5 and subset == load_piqa(path, 5, seed=3)
    assert [it.id for it in subset] == sorted((it.id for it in subset), key=lambda s: int(s[1:]))
    assert load_piqa(path, 50) == everything


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        '["a"]',
        '{"goal": "g", "sol1": "a", "label": 0}',
        '{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}',
    ],
)
def test_load_piqa_names_file_and_line(tmp_path, bad):
    path = tmp_path / "piqa.jsonl"
    _write(path, ['{"id": "1", "goal": "g", "sol1": "a", "sol2": "b", "label": 0}', "", bad])
    with pytest.raises(HarnessError) as info:
        load_piqa(path, None)
    assert f"{path}:3" in str(info.value)


def test_load_piqa_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="piqa.jsonl"):
        load_piqa(tmp_path / "piqa.jsonl", None)


def test_encode_keeps_a_leading_bos_and_drops_a_trailing_eos():
    from tokenizers.processors import TemplateProcessing

    tokenizer = build_tiny_tokenizer(TEXTS, chat_template=False)
    bos, eos = "<|system|>", "<eos>"  # stand-in BOS: any special token works
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        special_tokens=[(bos, tokenizer.convert_tokens_to_ids(bos)), (eos, tokenizer.eos_token_id)],
    )
    prompt = PROMPT.format(goal="Make tea")
    assert tokenizer(prompt)["input_ids"][0] == tokenizer.convert_tokens_to_ids(bos)
    ids, start = _encode(tokenizer, prompt, "Steep leaves.")
    assert ids[0] == tokenizer.convert_tokens_to_ids(bos) and tokenizer.eos_token_id not in ids
    assert tokenizer.decode(ids[start:]) == " Steep leaves."
