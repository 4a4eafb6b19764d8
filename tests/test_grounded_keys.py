"""An extraction suite grounds the keys whose values are copied from the input, not the ones the answers normalise: an
invoice team's answers write "USD" for "$" and "2025-03-03" for "March 3, 2025", so `suite init` turned grounding off
altogether, and an invented customer, e-mail or item scored as no hallucination (0% reported, 3 of 4 answers
inventing an e-mail)."""

from __future__ import annotations

import json

import pytest

from harness.core.errors import SuiteError
from harness.data.contract import OutputContract
from harness.evaluation.scorers.hallucination import hallucinated

SCHEMA = {"type": "object", "properties": {
    "customer": {"type": "object", "properties": {"name": {"type": "string"}, "email": {"type": ["string", "null"]}}},
    "currency": {"enum": ["EUR", "USD", "GBP"]},
    "items": {"type": "array", "items": {"type": "string"}}}}
TEXT = "Hi, Zoë Müller (zoe@example.com) here: 2 desk lamps and a webcam, $120 due March 3."


def contract(grounded) -> OutputContract:
    return OutputContract.from_dict({"kind": "json", "schema": SCHEMA, "grounded": grounded}, "suite.yaml")


def answer(**changed) -> dict:
    return {"customer": {"name": "Zoë Müller", "email": "zoe@example.com"}, "currency": "USD",
            "items": ["desk lamps", "webcam"], **changed}


def test_only_the_listed_keys_values_must_be_written_in_the_input():
    some = contract(["customer", "items"])
    assert some.grounded and some.grounded_keys == ("customer", "items")
    assert hallucinated(answer(), TEXT, some) is False  # "USD" is not written there, and need not be
    assert hallucinated(answer(customer={"name": "Zoë Müller", "email": "made.up@nowhere.org"}), TEXT, some) is True
    assert hallucinated(answer(items=["gold bar"]), TEXT, some) is True
    assert hallucinated(answer(), TEXT, contract(True)) is True  # every key grounded: "USD" is not in the text
    assert hallucinated(answer(items=["gold bar"]), TEXT, contract(False)) is False  # nothing grounded


def test_the_list_is_kept_stated_in_the_prompt_and_checked_against_the_contracts_keys():
    some = contract(["items", "customer"])
    assert some.to_dict()["grounded"] == ["items", "customer"]
    assert contract(True).to_dict()["grounded"] is True  # suites written before lists read and write as they did
    said = some.describe()
    assert "Copy the values of items, customer verbatim from the input." in said
    assert '"enum": ["EUR", "USD", "GBP"]' in said  # the schema is stated: the other keys' values are not copied
    with pytest.raises(SuiteError, match=r"`output.grounded` names 'cutsomer', not a key of the contract \(customer, "
                                         r"currency, items\)"):
        contract(["cutsomer"])
    with pytest.raises(SuiteError, match=r"`output.grounded` is 'yes'; give true"):
        contract("yes")


def _rows(path, name_of) -> None:
    lines = []
    for i in range(40):
        text = (f"Order {i} from Client {i % 7} <c{i % 7}@example.com>: {i % 3 + 1} chairs, ${10 + i} due May "
                f"{i % 28 + 1}.")
        output = {"customer": {"name": name_of(i), "email": f"c{i % 7}@example.com"}, "currency": "USD",
                  "items": ["chairs"], "due": f"2025-05-{i % 28 + 1:02d}"}
        lines.append(json.dumps({"input": text, "output": output}))
    path.write_text("\n".join(lines) + "\n")


def test_suite_init_grounds_the_keys_every_answer_copies_and_the_suite_refuses_a_reference_that_does_not(tmp_path):
    from harness.data.suite_init import init_suite
    from harness.data.suites import load_suite

    _rows(data := tmp_path / "orders.jsonl", lambda i: f"Client {i % 7}")
    result = init_suite("orders", data, suites_dir=tmp_path / "suites")
    suite = load_suite(str(result.path))
    assert suite.contract.grounded_keys == ("customer", "items")  # "USD" and the ISO dates are not copied
    said = " ".join(result.notes)
    assert "grounded: [customer, items]:" in said and "only the values of customer, items" in said

    train = result.path / "train.jsonl"
    first, *rest = train.read_text().splitlines(keepends=True)
    row = json.loads(first)
    row["output"]["customer"]["name"] = "Somebody Else"  # a reference naming someone the input does not
    train.write_text(json.dumps(row) + "\n" + "".join(rest))
    with pytest.raises(SuiteError, match=r"value 'Somebody Else' of 'customer' does not appear in the input, but the "
                                         r"contract grounds it; copy the value from the input, or take 'customer' out "
                                         r"of `output.grounded`"):
        load_suite(str(result.path))


def test_show_says_what_hallucination_counted_and_how_many_right_answers_were_usable(tmp_path):
    """An extraction team read "hallucination 0.0%" and "accuracy 60%" as "nothing invented" and "6 of 10 usable":
    the contract was ungrounded (keys only), and five of the six right answers broke it."""
    import dataclasses

    from test_store import make_record

    from harness.analysis.report import trial_detail
    from harness.core.records import ExampleView, MetricRow
    from harness.store.database import Store

    assert contract(False).hallucination_checks() == (
        "a key outside the contract's fields only: the contract is not grounded (`output.grounded`), so a value the "
        "input does not hold is a wrong answer, not a hallucination")
    assert contract(["customer"]).hallucination_checks() == (
        "a key outside the contract's fields, a string value of customer not written in the input")

    store = Store(tmp_path / "harness.duckdb")
    record = make_record(number=0, accuracy=0.6, n_examples=10)
    store.record_trial_result(dataclasses.replace(
        record, metrics=[*record.metrics, MetricRow("test", "hallucination_rate", 0.0, 0.0, 0.49, 4)]))
    scores = [(1.0, 1.0)] + [(1.0, 0.0)] * 5 + [(0.0, 1.0)] * 4
    examples = [ExampleView("test", f"test:{i}", "x", "y", "z", None, None, None,
                            {"task_accuracy": right, "format_compliance": compliant})
                for i, (right, compliant) in enumerate(scores)]
    shown = trial_detail(store.require_trial(record.id), examples, contract=contract(False))
    assert "right and compliant  10.0% [1.8, 40.4] n=10: 5 of the right answers break the contract" in shown
    assert "hallucination_rate counts a compliant answer with a key outside the contract's fields only" in shown
    fine = [dataclasses.replace(e, scores={"task_accuracy": 1.0, "format_compliance": 1.0}) for e in examples]
    assert "right and compliant" not in trial_detail(store.require_trial(record.id), fine)  # nothing to tell apart
