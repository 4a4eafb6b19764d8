"""The prompting a team would try before fine-tuning: shots similar to each input (drawn from train only) and
decoding constrained to the output contract."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from harness.core.text import fold
from harness.data.contract import OutputContract, parse_output
from harness.data.prompting import Prompter
from harness.data.shots import FixedShots, SimilarShots, draw_shots, picker
from harness.data.suites import Example
from harness.models import loading, sources
from harness.training.constrained import Grammar, contract_schema
from harness.training.generate import generate

TRAIN = tuple(Example(f"train:{i}", text, json.dumps({"intent": label})) for i, (text, label) in enumerate([
    ("my card was stolen at the station", "card_lost"), ("where is my refund for the shoes", "refund"),
    ("I lost my debit card yesterday", "card_lost"), ("the refund has not arrived yet", "refund"),
    ("how do I activate my new card", "activate"), ("activate the card I just received", "activate"),
]))


def test_similar_shots_are_the_nearest_train_examples_and_never_the_input():
    shots = SimilarShots(TRAIN, k=2)
    picked = shots.pick(Example("dev:1", "someone stole my card", ""))
    assert [ex.id for ex in picked][-1] in ("train:0", "train:2")  # the most similar sits right before the input
    assert {ex.id for ex in picked} <= {ex.id for ex in TRAIN}
    refund = shots.pick(Example("dev:2", "refund not arrived", ""))
    assert {ex.target for ex in refund} == {json.dumps({"intent": "refund"})}
    same = shots.pick(TRAIN[1])  # an input that is a train example never gets itself as a shot
    assert TRAIN[1] not in same and len(same) == 2
    assert shots.pick(Example("dev:3", "someone stole my card", "")) == picked  # deterministic
    assert SimilarShots(TRAIN, k=0).pick(TRAIN[0]) == ()
    repeated = TRAIN + tuple(Example(f"copy:{i}", TRAIN[1].input.upper(), TRAIN[1].target) for i in range(3))
    picked = SimilarShots(repeated, k=2).pick(TRAIN[1])  # the input sits in train four times, never a shot
    assert len(picked) == 2 and all(fold(ex.input) != fold(TRAIN[1].input) for ex in picked)
    assert SimilarShots(TRAIN, k=2).pick(Example("dev:4", "?!", "")) == (TRAIN[1], TRAIN[0])  # no words: train order


def test_similar_shots_find_japanese_and_chinese_neighbours_though_they_are_written_without_spaces():
    """Split on spaces, a whole Japanese sentence was one term no train input shares: every Japanese input got the
    same first train examples, and the prompting opponent the verdict weighs was a fixed prompt."""
    train = tuple(Example(f"train:{i}", text, label) for i, (text, label) in enumerate([
        ("配送先の住所を変更したいです。", "配送"), ("荷物がまだ届きません", "配送"),
        ("製品の品質に不満があります。", "苦情"), ("返金はいつになりますか", "返金"),
        ("注文をキャンセルしたので返金してください", "返金"), ("我的包裹还没到", "配送"), ("请给我退款", "返金"),
    ]))
    shots = SimilarShots(train, k=2)
    refund = shots.pick(Example("dev:1", "キャンセルした注文の返金はいつですか？💸", ""))
    assert {ex.target for ex in refund} == {"返金"}
    assert shots.pick(Example("dev:2", "私の荷物が届きません", ""))[-1].id == "train:1"
    assert shots.pick(Example("dev:3", "包裹到哪里了", ""))[-1].id == "train:5"
    assert shots.pick(Example("dev:4", "我想要退款", ""))[-1].id == "train:6"


def test_random_shots_are_one_seeded_draw_with_distinct_answers_first():
    fixed = picker("random", TRAIN, 3, seed=0)
    assert isinstance(fixed, FixedShots) and fixed.examples == draw_shots(TRAIN, 3, seed=0)
    assert len({ex.target for ex in fixed.examples}) == 3
    assert fixed.pick(TRAIN[0]) == fixed.pick(TRAIN[1])
    with pytest.raises(ValueError, match="not one of random, similar"):
        picker("nearest", TRAIN, 1, 0)


def test_messages_are_what_a_hosted_endpoint_receives():
    contract = OutputContract(kind="label", key="intent", labels=("card_lost", "refund", "activate"))
    prompter = Prompter(None, "Route the message.", contract, SimilarShots(TRAIN, 1))
    messages = prompter.messages(Example("dev:1", "stolen card", ""))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "card_lost, refund, activate" in messages[0]["content"] and messages[-1]["content"] == "stolen card"
    assert messages[2]["content"] == json.dumps({"intent": "card_lost"})


def test_constrained_decoding_never_leaves_the_label_set(tiny_model_dir):
    source = sources.resolve(str(tiny_model_dir))
    tokenizer, model = loading.load_tokenizer(source), loading.load_model(source, "cpu", torch.float32)
    contract = OutputContract(kind="label", key="colour", labels=("red", "green", "blue"))
    prompter = Prompter(tokenizer, "Name the colour.", contract)
    prompts = [prompter.prompt(Example(f"dev:{i}", f"item {i}: the cup is {c}", "")) for i, c in
               enumerate(["red", "blue", "green", "red", "blue", "green"])]
    free = generate(model, tokenizer, prompts, batch_size=3, max_new_tokens=16)
    bound = generate(model, tokenizer, prompts, batch_size=3, max_new_tokens=16, grammar=Grammar(contract, tokenizer))
    assert not all(parse_output(g.output, contract).compliant for g in free)  # a random tiny model: rarely valid
    for g in bound:
        parsed = parse_output(g.output, contract)
        assert parsed.compliant and parsed.strict and parsed.value["colour"] in contract.labels, g.output


def test_free_text_has_no_schema_to_constrain_to():
    assert contract_schema(OutputContract(kind="text")) is None
    schema = contract_schema(OutputContract(kind="label", key="k", labels=("a", "b")))
    assert schema["properties"]["k"]["enum"] == ["a", "b"] and schema["additionalProperties"] is False


def test_shots_that_would_pass_the_models_window_are_left_out_the_least_similar_first(tiny_model_dir):
    """A legal team's similar shots are whole contracts: three of them and the input ran past the model's window,
    where it answers from positions it was never built for. The prompt keeps to its room, dropping the shots shown
    first (the least similar), and keeps every shot where they fit."""
    source = sources.resolve(str(tiny_model_dir))
    tokenizer = loading.load_tokenizer(source)
    contract = OutputContract(kind="label", key="intent", labels=("card_lost", "refund", "activate"))
    long = Example("train:long", "my card was stolen " + "and the bank would not listen " * 60,
                   json.dumps({"intent": "card_lost"}))
    pool = (*TRAIN, long)
    probe = Example("dev:1", "my card was stolen and the bank would not listen", "")
    roomy = Prompter(tokenizer, "Name the intent.", contract, SimilarShots(pool, k=3))
    chosen = roomy.shots.pick(probe)
    assert long in chosen and chosen[-1] == long  # the long contract is the most similar: shown last
    full = len(tokenizer(roomy.prompt(probe)).input_ids)
    alone = len(tokenizer(Prompter(tokenizer, "Name the intent.", contract).prompt(probe)).input_ids)
    # room for everything: nothing is left out
    assert dataclasses.replace(roomy, room=full).fitted_shots(probe) == chosen
    tight = dataclasses.replace(roomy, room=full - 1)
    fitted = tight.fitted_shots(probe)
    assert fitted == chosen[1:] and len(tokenizer(tight.prompt(probe)).input_ids) <= full - 1
    no_room = dataclasses.replace(roomy, room=alone)  # only the input fits: no shot at all
    assert no_room.fitted_shots(probe) == () and no_room.prompt(probe) == dataclasses.replace(
        roomy, shots=FixedShots()).prompt(probe)
