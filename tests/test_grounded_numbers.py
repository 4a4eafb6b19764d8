"""An invented number is a hallucination where the suite grounds numbers: a new user's invoice suite scored a total of
999999.0, for an input that says 3,327.07, as no hallucination, since only string values were checked."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from harness.core.errors import SuiteError
from harness.data.contract import OutputContract, numbers_in
from harness.evaluation.scorers.hallucination import hallucinated

SCHEMA = {"type": "object", "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
          "required": ["vendor", "total"]}
INVOICE = "Invoice INV-9999 from Acme Ltd: 1 200 items, total 3,327.07 USD."


def contract(**extra) -> OutputContract:
    return OutputContract.from_dict({"kind": "json", "schema": SCHEMA, "grounded": True, **extra}, "suite.yaml")


def test_numbers_are_read_from_the_text_as_answers_are():
    found = numbers_in(INVOICE)
    assert {Decimal("3327.07"), Decimal("1200"), Decimal("9999"), Decimal("1"), Decimal("200")} <= found
    assert Decimal("3327") not in found and numbers_in("no digits here") == set()


def test_an_invented_number_is_hallucinated_where_the_suite_grounds_numbers():
    numbers = contract(grounded_numbers=True)
    assert hallucinated({"vendor": "Acme Ltd", "total": 3327.07}, INVOICE, numbers) is False
    assert hallucinated({"vendor": "Acme Ltd", "total": 999999.0}, INVOICE, numbers) is True
    assert hallucinated({"vendor": "Acme Ltd", "total": 1200}, INVOICE, numbers) is False  # "1 200" is written there
    assert hallucinated({"vendor": "Acme Ltd", "total": True}, INVOICE, numbers) is False  # true is no number
    assert hallucinated({"vendor": "Acme Ltd", "total": 999999.0}, INVOICE, contract()) is False  # strings only


def test_the_contract_keeps_the_key_only_where_it_is_set_and_refuses_it_alone():
    assert contract(grounded_numbers=True).to_dict()["grounded_numbers"] is True
    assert "grounded_numbers" not in contract().to_dict()  # suites written before it read and write as they did
    with pytest.raises(SuiteError, match=r"`output.grounded_numbers: true` checks numbers as `output.grounded: true` "
                                         r"checks strings; set `grounded: true` as well"):
        OutputContract.from_dict({"kind": "json", "schema": SCHEMA, "grounded_numbers": True}, "suite.yaml")


def test_a_grounded_prompt_says_which_values_are_numbers():
    assert "total as a JSON number, every other value as a string" in contract().describe()
    strings = OutputContract.from_dict({"kind": "json", "schema": {"type": "object", "properties": {
        "city": {"type": "string"}}}, "grounded": True}, "suite.yaml")
    assert "Each value is a string copied verbatim from the input" in strings.describe()  # as bundled suites read


def _invoices(path, total) -> None:
    lines = []
    for i in range(40):
        amount = 100 + i * 7.25
        text = f"Invoice {i} from Vendor {i % 5}: total {amount:,.2f} EUR, {i % 3 + 1} items."
        lines.append(json.dumps({"input": text, "output": {"vendor": f"Vendor {i % 5}", "total": total(amount, i)}}))
    path.write_text("\n".join(lines) + "\n")


def test_suite_init_grounds_numbers_only_where_every_answer_copies_them(tmp_path):
    from harness.data.suite_init import init_suite
    from harness.data.suites import load_suite

    _invoices(copied := tmp_path / "copied.jsonl", lambda amount, i: amount)
    result = init_suite("copied", copied, suites_dir=tmp_path / "suites")
    assert load_suite(str(result.path)).contract.grounded_numbers
    assert any(note.startswith("grounded_numbers: true: every number value") for note in result.notes)

    _invoices(summed := tmp_path / "summed.jsonl", lambda amount, i: round(amount * 1.2, 2))  # with VAT: computed
    result = init_suite("summed", summed, suites_dir=tmp_path / "suites")
    suite = load_suite(str(result.path))
    assert suite.contract.grounded and not suite.contract.grounded_numbers
    assert any("the answers compute numbers" in note for note in result.notes)


def test_a_reference_number_not_in_its_input_is_refused_where_numbers_are_grounded(tmp_path):
    from harness.data.suite_init import init_suite
    from harness.data.suites import load_suite

    _invoices(copied := tmp_path / "copied.jsonl", lambda amount, i: amount)
    path = init_suite("copied", copied, suites_dir=tmp_path / "suites").path
    test = path / "test.jsonl"
    lines = test.read_text().splitlines()
    lines[0] = lines[0].replace('"total": ', '"total": 1', 1)  # 1 before the amount: a number the input never writes
    test.write_text("\n".join(lines) + "\n")
    with pytest.raises(SuiteError, match=r"is not written in the input, but the contract grounds numbers"):
        load_suite(str(path))


def test_numbers_written_with_a_decimal_comma_or_swiss_grouping_are_read_too():
    """A European invoice ("Gesamt 1.234,50 EUR") read as 1.234 and 50: a correct total of 1234.5 was an invention."""
    numbers = contract(grounded_numbers=True)
    german = "Rechnung von Acme GmbH: Gesamt 1.234,50 EUR, davon MwSt. 197,10 EUR."
    assert {Decimal("1234.50"), Decimal("197.10"), Decimal("1.234"), Decimal("50")} <= numbers_in(german)
    assert hallucinated({"vendor": "Acme GmbH", "total": 1234.5}, german, numbers) is False
    assert hallucinated({"vendor": "Acme GmbH", "total": 1243.5}, german, numbers) is True
    assert Decimal("1234.50") in numbers_in("Total CHF 1'234.50") and Decimal("-12.5") in numbers_in("Saldo −12,50")
    assert Decimal("1234.5") in numbers_in("Summe 1 234,5 EUR")


def test_thousands_by_points_full_width_and_arabic_figures_are_read_too(tmp_path):
    """A German invoice for "12.500 €" read only as 12.5: the correct 12500 was an invention, and suite init said the
    answers "compute numbers" and turned number grounding off. Japanese forms write full-width figures, Arabic ones
    their own separators."""
    numbers = contract(grounded_numbers=True)
    german = "Rechnung von Straßenbau Groß über 12.500 € (netto)"
    assert {Decimal("12500"), Decimal("12.5")} <= numbers_in(german)
    assert hallucinated({"vendor": "Straßenbau Groß", "total": 12500}, german, numbers) is False
    assert hallucinated({"vendor": "Straßenbau Groß", "total": 125000}, german, numbers) is True
    assert Decimal("1234567") in numbers_in("Summe 1.234.567 EUR")
    assert Decimal("12345") in numbers_in("金額１２，３４５円")
    assert Decimal("1234.50") in numbers_in("المبلغ ١٬٢٣٤٫٥٠")
    rows = [{"text": f"Rechnung von Firma {n} über {n}.000 € (netto)",
             "answer": {"firma": f"Firma {n}", "betrag": n * 1000}} for n in range(1, 13)]
    (tmp_path / "inv.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    from harness.data.suite_init import init_suite

    notes = " ".join(init_suite("inv", tmp_path / "inv.jsonl", suites_dir=tmp_path).notes)
    assert "grounded_numbers: true" in notes, notes


def test_a_reference_is_checked_at_every_depth_as_answers_are(tmp_path):
    """The suite check read a key's value and one list level; an answer is read at every depth, so a nested reference
    value not in its input passed the check and read as a hallucination when a model answered it exactly."""
    from harness.data.suites import load_suite

    schema = {"type": "object", "properties": {"vendor": {"type": "object", "properties": {
        "name": {"type": "string"}, "total": {"type": "number"}}}}}
    suite = tmp_path / "nested"
    suite.mkdir()
    (suite / "suite.yaml").write_text("name: nested\nversion: 1.0.0\ntask: extraction\ninstruction: Extract.\n"
                                      "output:\n  kind: json\n  grounded: true\n  grounded_numbers: true\n"
                                      f"  schema: {json.dumps(schema)}\n")

    def write(vendor: str, total: float) -> None:
        for number, split in enumerate(("train", "dev", "test")):
            row = {"input": f"Invoice {number} from Acme: total 12,50 EUR.",
                   "output": {"vendor": {"name": vendor, "total": total}}}
            (suite / f"{split}.jsonl").write_text(json.dumps(row) + "\n")

    write("Acme", 12.5)
    assert load_suite(suite).contract.grounded_numbers  # 12.5 is written there, as 12,50
    write("Initech", 12.5)
    with pytest.raises(SuiteError, match=r"value 'Initech' of 'vendor' does not appear in the input"):
        load_suite(suite)
    write("Acme", 99)
    with pytest.raises(SuiteError, match=r"number 99 of 'vendor' is not written in the input"):
        load_suite(suite)
