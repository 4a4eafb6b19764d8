"""`settled`: generation may stop a row once its output is settled, and no score may change because of it."""

from __future__ import annotations

import pytest

from harness.data.contract import OutputContract, parse_output, settled

LABEL = OutputContract(kind="label", key="intent", labels=("card_arrival", "lost_card"))
SCHEMA = OutputContract.from_dict({"kind": "json", "schema": {"type": "object", "required": ["city"],
                                                              "properties": {"city": {"type": "string"}}}}, "test")
REASONED = OutputContract.from_dict({"kind": "text", "numeric": True}, "test")
FREE = OutputContract.from_dict({"kind": "text", "whole_output": True}, "test")

RUNAWAY = [  # what small models write, with the run-on that generation used to pay for
    (LABEL, '{"intent": "lost_card"}\nThe customer lost their card, so the intent is lost_card. ' * 3),
    (LABEL, '  {"intent": "card_arrival"}   \n\n{"intent": "lost_card"}'),
    (LABEL, '```json\n{"intent": "lost_card"}\n```\nDone.'),
    (LABEL, '{"intent": "lost_card", "why": {"a": [1, 2, "}"]}} and more'),
    (LABEL, 'Sure! Here is the intent you asked for, in the JSON format: {"intent": "lost_card"} ok'),
    (SCHEMA, '{"city": "Oslo"} {"city": "Bergen"}'),
    (SCHEMA, '{"city": 3}\nOops, that is not a city name at all, let me try again.'),
    (REASONED, "3 apples plus 4 apples.\n#### 7\nQuestion: how many pears are there in the basket?"),
    (REASONED, "####\n12\n\nThe next question is about something else entirely."),
]

UNFINISHED = [  # outputs that might still become something else: never settled
    (LABEL, '{"intent": "lost_ca'),
    (LABEL, '{"intent": "lost_card"}   \n'),
    (LABEL, "``"),
    (LABEL, "```json\n"),
    (LABEL, "Sure! Here is"),
    (REASONED, "3 plus 4 is 7.\n#### 7"),
    (FREE, "The capital of Norway is Oslo. It lies at the head of the Oslofjord. " * 3),
]


@pytest.mark.parametrize("contract, output", RUNAWAY)
def test_every_settled_prefix_reads_as_the_whole_output(contract, output):
    whole = parse_output(output, contract)
    settled_at = [n for n in range(len(output) + 1) if settled(output[:n], contract)]
    assert settled_at, "a run-on output must settle before its end"
    assert settled_at[0] < len(output)
    for n in settled_at:
        assert parse_output(output[:n], contract) == whole, output[:n]


@pytest.mark.parametrize("contract, output", UNFINISHED)
def test_an_unfinished_output_never_settles(contract, output):
    assert not settled(output, contract)
