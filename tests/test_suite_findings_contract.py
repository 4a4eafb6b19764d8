"""Output contracts as a generation-task user wrote them: a schema with a typo or a `required` key it never defines,
scorers that cannot apply to the contract, and the schema `suite init` infers (required keys, array item types).
Each test loads a small real suite folder or runs init on a small real file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import printed

from harness.cli import main
from harness.core.errors import SuiteError
from harness.data.contract import OutputContract, parse_output, parse_target
from harness.data.suite_init import init_suite
from harness.data.suites import SCORER_CONTRACTS, SCORER_NAMES, Example, load_suite
from harness.evaluation.scorers import SCORERS, ScoredCase


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


INVOICES = [{"text": f"Invoice {i} from Acme for {10 * i} EUR: bolts, nuts",
             "output": {"vendor": "Acme", "invoice_id": f"{i}", "total": 10 * i, "items": ["bolts", "nuts"]}}
            for i in range(1, 11)]


def json_suite(root: Path, schema: dict, scorers: list[str] | None = None, rows: list[dict] = INVOICES) -> Path:
    root.mkdir(parents=True)
    for split, part in (("train", rows[:6]), ("dev", rows[6:8]), ("test", rows[8:])):
        (root / f"{split}.jsonl").write_text("".join(json.dumps({"input": r["text"], "output": r["output"]}) + "\n"
                                                     for r in part))
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": root.name, "version": "1.0.0", "task": "extraction", "instruction": "Extract the invoice.",
        "output": {"kind": "json", "schema": schema},
        "scorers": scorers or ["format_compliance", "task_accuracy", "field_f1"]}))
    return root


SCHEMA = {"type": "object", "properties": {"vendor": {"type": "string"}, "invoice_id": {"type": "string"},
                                           "total": {"type": "number"}, "items": {"type": "array"}}}


# -- N2 (a), (b): mistakes in the schema itself --------------------------------------------------------------------

def test_an_invalid_schema_names_the_place_in_it(tmp_path, capsys):
    json_suite(tmp_path / "suites" / "typo", {**SCHEMA, "properties": {**SCHEMA["properties"],
                                                                        "vendor": {"type": "strnig"}}})
    assert main(["suite", "validate", "typo"]) == 2
    out = " ".join(printed(capsys).split())
    assert ("suites/typo/suite.yaml: `output.schema.properties.vendor.type` is not valid JSON Schema: 'strnig' is not "
            "a JSON Schema type; use one of string, number, integer, boolean, object, array, null") in out
    assert "Traceback" not in out


def test_a_required_key_the_schema_does_not_define_is_one_schema_error_not_one_per_line(tmp_path):
    path = json_suite(tmp_path / "suites" / "req", {**SCHEMA, "required": ["vendor", "invoice_no"]})
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert message.startswith("suites/req/suite.yaml: `output.schema.required` lists 'invoice_no', which is not under "
                              "`output.schema.properties` (invoice_id, items, total, vendor); a misspelt or renamed "
                              "key? Add it to `properties`")
    assert "train.jsonl" not in message


def test_a_nested_required_key_is_named_by_its_path(tmp_path):
    schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "items": {
        "type": "array", "items": {"type": "object", "properties": {"name": {}}, "required": ["qty"]}}}}
    with pytest.raises(SuiteError, match=r"`output.schema.properties.items.items.required` lists 'qty'"):
        OutputContract.from_dict({"kind": "json", "schema": schema}, "suite.yaml")


# -- N2 (c): scorers that cannot apply to the contract -------------------------------------------------------------

def test_a_scorer_that_measures_nothing_on_the_contract_is_refused_with_the_reason(tmp_path):
    path = json_suite(tmp_path / "suites" / "rouge", SCHEMA, ["format_compliance", "task_accuracy", "rouge_l"])
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    assert ("suites/rouge/suite.yaml: `scorers[2]`: rouge_l measures nothing on a json contract (it compares free "
            "text; use task_accuracy for labels and field_f1 for partial credit on JSON), so it would be n=0 on every "
            "split; remove it from `scorers`.") in str(info.value)


def test_field_f1_on_free_text_is_refused_and_hallucination_rate_there_is_a_warning(tmp_path, capsys):
    root = tmp_path / "suites" / "qa"
    root.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (root / f"{split}.jsonl").write_text("".join(json.dumps({"input": f"{split} q{i}?", "output": f"a{i}"}) + "\n"
                                                     for i in range(3)))
    meta = {"name": "qa", "version": "1.0.0", "task": "generation", "instruction": "Answer.",
            "output": {"kind": "text", "whole_output": True},
            "scorers": ["format_compliance", "task_accuracy", "hallucination_rate", "field_f1", "rouge_l"]}
    (root / "suite.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(SuiteError, match=r"`scorers\[3\]`: field_f1 measures nothing on a text contract \(it "
                                         r"compares the fields of JSON answers\)"):
        load_suite(str(root))
    (root / "suite.yaml").write_text(yaml.safe_dump({**meta, "scorers": meta["scorers"][:3] + ["rouge_l"]}))
    assert main(["suite", "validate", "qa"]) == 0
    assert ("warning: suites/qa/suite.yaml: `scorers[2]`: hallucination_rate measures nothing on a text contract "
            "(it checks labels against the label set and JSON values against the input; free text has neither), so "
            "it is n=0 on every split (it runs on every suite); remove it from `scorers`."
            ) in " ".join(printed(capsys).split())


CONTRACTS = {
    "label": (OutputContract(kind="label", key="intent", labels=("a", "b")), "a b", '{"intent": "a"}'),
    "json": (OutputContract(kind="json", schema={"type": "object"}, fields=("x",)), "x is 1", '{"x": "1"}'),
    "text": (OutputContract(kind="text", whole_output=True), "say hi", "hi there"),
}


@pytest.mark.parametrize("name", SCORER_NAMES)
@pytest.mark.parametrize("kind", list(CONTRACTS))
def test_the_contracts_a_suite_may_list_a_scorer_for_are_those_it_measures(name, kind):
    """SCORER_CONTRACTS lives in harness.data, below the registry, so this checks it against every registered scorer:
    on each contract kind, a right answer is measured (n > 0) exactly where the suite check lets the scorer be."""
    contract, text, target = CONTRACTS[kind]
    example = Example(id="test:1", input=text, target=target)
    case = ScoredCase(example, target, parse_output(target, contract), parse_target(target, contract))
    _, metric = SCORERS.get(name).score([case], contract)
    assert (metric.n > 0) == (kind in SCORER_CONTRACTS[name])


# -- N3: the schema init infers ------------------------------------------------------------------------------------

def test_init_requires_the_keys_every_answer_has_and_types_array_items(tmp_path):
    rows = [{**r, "output": {**r["output"], **({"due": "soon"} if i % 2 else {})}} for i, r in enumerate(INVOICES)]
    rows[3]["output"]["items"] = [{"name": "bolts"}]  # one answer's items are objects: no common item type
    (tmp_path / "inv.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    strings = [{**r, "output": {**r["output"], "items": ["bolts"]}} for r in rows]
    (tmp_path / "strings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in strings))

    mixed = init_suite("inv", tmp_path / "inv.jsonl", suites_dir=tmp_path / "suites")
    suite = load_suite(str(mixed.path))
    assert suite.contract.schema["required"] == ["vendor", "invoice_id", "total", "items"]  # not `due`
    assert "items" not in suite.contract.schema["properties"]["items"]
    assert ("schema: `vendor`, `invoice_id`, `total`, `items` are in all 10 answers, so required: an answer without "
            "one of them is not format-compliant. If answers may leave one out, remove it from "
            "`output.schema.required`.") in mixed.notes
    assert not parse_output("{}", suite.contract).compliant  # `{}` was format-compliant before

    typed = load_suite(str(init_suite("strings", tmp_path / "strings.jsonl", suites_dir=tmp_path / "suites").path))
    assert typed.contract.schema["properties"]["items"] == {"type": "array", "items": {"type": "string"}}
    nested = json.dumps({"vendor": "Acme", "invoice_id": "1", "total": 10, "items": [{"name": "bolts"}]})
    assert not parse_output(nested, typed.contract).compliant


def test_a_grounded_contract_with_required_keys_tells_the_prompt_to_always_give_them(tmp_path):
    rows = [{"text": f"Fly to Rome on day {i}", "output": {"city": "Rome", "day": f"day {i}"}} for i in range(10)]
    (tmp_path / "trips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = load_suite(str(init_suite("trips", tmp_path / "trips.jsonl", suites_dir=tmp_path / "suites").path))
    assert suite.contract.grounded
    assert "Always include city, day; leave out other keys that do not occur." in suite.contract.describe()
    assert "answer {}" not in suite.contract.describe()


def test_dates_every_answer_writes_as_iso_are_stated_to_the_prompt_and_checked(tmp_path, tiny_model_dir):
    """A legal team's answers normalise each contract's date to ISO, which the documents write as "22 October 2021":
    the prompt gave `"date": {"type": "string"}` alone, so a prompting arm copied the date as written and lost it on
    every example, where the adapter learnt the form from its answers."""
    from transformers import AutoTokenizer

    from harness.training.constrained import Grammar

    written = ["22 October 2021", "March 3, 2020", "1/2/2019", "7 July 2018"]
    iso = ["2021-10-22", "2020-03-03", "2019-02-01", "2018-07-07"]
    rows = [{"input": f"Signed on {w} by Acme Ltd.", "output": {"party": "Acme Ltd", "date": d}}
            for w, d in zip(written, iso, strict=True)] * 3
    rows = [{**r, "input": f"{r['input']} Contract {i}."} for i, r in enumerate(rows)]
    (tmp_path / "contracts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    made = init_suite("contracts", tmp_path / "contracts.jsonl", suites_dir=tmp_path / "suites")
    contract = load_suite(str(made.path)).contract
    assert contract.schema["properties"]["date"]["pattern"] == "^\\d{4}-\\d{2}-\\d{2}$"
    assert "pattern" not in contract.schema["properties"]["party"]
    assert any("`date` is an ISO date (YYYY-MM-DD) in every answer" in note for note in made.notes)
    assert '"pattern": "^\\\\d{4}-\\\\d{2}-\\\\d{2}$"' in contract.describe()  # the prompt says the form
    assert parse_output('{"party": "Acme Ltd", "date": "2021-10-22"}', contract).compliant
    assert not parse_output('{"party": "Acme Ltd", "date": "22 October 2021"}', contract).compliant
    Grammar(contract, AutoTokenizer.from_pretrained(tiny_model_dir))  # constrained decoding takes the pattern
