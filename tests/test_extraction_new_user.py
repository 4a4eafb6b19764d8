"""An extraction team as a helper played it (invoices to JSON). The suite grounds the keys whose values are copied
from the input, not the ones its answers normalise: answers wrote "USD" for "$" and "2025-03-03" for "March 3", so
`suite init` turned grounding off, and an invented customer, e-mail or item scored as no hallucination (0% reported,
3 of 4 answers inventing an e-mail). `show` says what hallucination counted and how many right answers were usable,
and a table with a column per field becomes a suite."""

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
        "a key outside the contract's fields or a string value of customer not written in the input")
    numbers = OutputContract.from_dict({"kind": "json", "schema": SCHEMA, "grounded": ["customer"],
                                        "grounded_numbers": True}, "suite.yaml")
    assert numbers.hallucination_checks().endswith("a string or number value of customer not written in the input")

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


def test_a_table_with_a_column_per_extracted_field_becomes_an_extraction_suite(tmp_path):
    """The commonest export of an extraction task is a column per field; `suite init` could read one answer column
    only, and `--output-field amount` quietly built a one-field suite."""
    import csv

    from harness.data.suite_init import init_suite
    from harness.data.suites import load_suite

    data = tmp_path / "invoices.csv"
    with data.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["email", "customer", "amount", "currency", "due", "items", "zip"])
        for i in range(40):
            items = json.dumps(["chairs", "desk"] if i % 2 else ["lamp"])
            out.writerow([f"Invoice from Client {i % 7}: {i % 3 + 1} items, total {100 + i}.50, due soon.",
                          f"Client {i % 7}", f"{100 + i}.50", "EUR", "" if i % 4 else f"2025-05-{i % 28 + 1:02d}",
                          items, ("02134", "10001", "94105")[i % 3]])
    result = init_suite("invoices", data, input_field="email", output_field="customer, amount,currency,due,items,zip",
                        suites_dir=tmp_path / "suites")
    suite = load_suite(str(result.path))
    assert suite.contract.kind == "json"
    assert suite.contract.schema["properties"]["amount"]["type"] == "number"  # "100.50" in the cell is an amount
    assert suite.contract.schema["properties"]["items"]["type"] == "array"
    assert suite.contract.schema["properties"]["zip"]["type"] == "string"  # "02134" is no number: the column is text
    targets = [json.loads(ex.target) for split in suite.splits.values() for ex in split]
    assert all(isinstance(t["amount"], float) for t in targets)
    assert {t["zip"] for t in targets} == {"02134", "10001", "94105"}
    assert any("due" not in t for t in targets)  # an empty cell is an absent key, not ""
    with pytest.raises(SuiteError, match=r"no field 'amont'; each name of --output-field must be one of"):
        init_suite("typo", data, input_field="email", output_field="customer,amont", suites_dir=tmp_path / "suites")
    with pytest.raises(SuiteError, match=r"cannot guess the answer field .* several fields, `--output-field "
                                         r"customer,amount,currency`, make one JSON object"):
        init_suite("guess", data, input_field="email", suites_dir=tmp_path / "suites")


def test_suite_init_describes_nested_objects_dates_some_answers_leave_null_and_names_closed_sets(
        tmp_path, tiny_model_dir):
    """The schema init wrote let `"currency": "dollars"` and `"due_date": "next Friday"` be compliant: a nested
    `customer` had no keys, a date some answers left null lost its pattern, and nothing said the currency took three
    values. The schema it writes now still builds a grammar for constrained decoding."""
    from transformers import AutoTokenizer

    from harness.data.suite_init import init_suite
    from harness.data.suites import load_suite
    from harness.training.constrained import Grammar

    lines = []
    for i in range(48):
        due = None if i % 3 == 0 else f"2025-0{i % 9 + 1}-1{i % 9}"
        email = f"c{i % 5}@example.com" if i % 2 else None
        output = {"customer": {"name": f"Client {i % 5}", "email": email}, "currency": ("EUR", "USD", "GBP")[i % 3],
                  "due_date": due, "items": [{"name": "chair", "qty": i % 4 + 1}]}
        lines.append(json.dumps({"input": f"Client {i % 5} <c{i % 5}@example.com> orders {i % 4 + 1} chair(s), "
                                          f"request {i}.", "output": output}))
    (data := tmp_path / "orders.jsonl").write_text("\n".join(lines) + "\n")
    result = init_suite("orders", data, suites_dir=tmp_path / "suites")
    suite = load_suite(str(result.path))
    properties = suite.contract.schema["properties"]
    assert properties["customer"]["properties"]["email"] == {"type": ["null", "string"]}
    assert properties["customer"]["required"] == ["name", "email"]  # in every answer, null or not
    assert properties["due_date"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert properties["items"]["items"]["properties"]["qty"] == {"type": "integer"}
    said = " ".join(result.notes)
    assert "the answers give `currency` only EUR, GBP, USD. If no other value is right, add `enum: [...]`" in said
    assert "`customer`" not in said.split("the answers give")[1]  # an object, not a closed set of strings
    Grammar(suite.contract, AutoTokenizer.from_pretrained(tiny_model_dir))  # raises where llguidance cannot build it
    from harness.data.suites import suite_stats

    dated = sum(1 for ex in suite.splits["train"] if json.loads(ex.target).get("due_date") is not None)
    assert suite_stats(suite)["train"]["keys"]["due_date"] == dated  # a null date is no date, as the scorers read it



def test_answer_fields_named_alike_in_two_objects_keep_their_whole_names(tmp_path):
    """`--output-field meta.customer,ship.customer` keyed both `customer`: one overwrote the other, without a word."""
    from harness.data.suite_init import init_suite
    from harness.data.suites import load_suite

    rows = [{"text": f"order {i} for Acme {i % 5}, ship to Depot {i % 3}",
             "meta": {"customer": f"Acme {i % 5}"}, "ship": {"customer": f"Depot {i % 3}"}} for i in range(40)]
    (data := tmp_path / "orders.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = init_suite("orders", data, output_field="meta.customer,ship.customer", suites_dir=tmp_path / "suites")
    target = json.loads(load_suite(str(result.path)).splits["train"][0].target)
    assert set(target) == {"meta.customer", "ship.customer"}
