"""Redaction of stored examples: what each built-in pattern finds and leaves, user regexes checked when the file
loads, and rows redacted for the store while their scores (computed before) stay as they were."""

from __future__ import annotations

import dataclasses

import pytest

from harness.core.config import RedactionConfig, load_experiment
from harness.core.errors import ConfigError
from harness.core.records import ExampleRow, MetricRow, StudyRecord, TrialRecord
from harness.core.redaction import Redactor, redact_rows
from harness.project import EXPERIMENT_YAML
from harness.store.database import Store

ALL = Redactor.from_config(RedactionConfig(enabled=True))


@pytest.mark.parametrize("text, expect", [
    ("write to john.doe+tickets@example.co.uk.", "write to [REDACTED:email]."),
    ("Jürgen.Müller@münchen.de", "[REDACTED:email]"),
    ("a@b.io, c_d@e-f.org", "[REDACTED:email], [REDACTED:email]"),
])
def test_email(text, expect):
    assert ALL.redact(text) == expect


@pytest.mark.parametrize("text", [
    "+44 20 7946 0958", "+1 (555) 123-4567", "(030) 1234-5678", "+49 (0) 30 1234567", "0612345678", "555-1234",
    "07700 900123", "01.23.45.67.89", "030/12345678", "0049 30 12345678", "(+33) 6 12 34 56 78",
])
def test_phone_numbers_international_and_local(text):
    assert ALL.redact(f"call {text} today") == "call [REDACTED:phone] today"


@pytest.mark.parametrize("text", [
    "123456",                   # six digits: too short for a phone number
    "2024-01-15", "15.03.2024 14:30", "01/15/2024", "2024-01-15T10:30:00Z",  # dates and times
    "3.14159265", "192.168.100.200", "1.234.567,89 EUR", "version 1.2.3",  # a decimal, an IP, an amount, a version
    "12345678901234567890",    # 20 digits in one run: not a phone number, and never cut into one
    "ID-1234567", "card_lost", "ab12 this that word more",
])
def test_what_only_looks_like_a_number_stays(text):
    assert ALL.redact(text) == text


def test_two_numbers_in_a_row_and_a_number_after_a_date_are_both_found():
    assert ALL.redact("0612345678 0687654321") == "[REDACTED:phone] [REDACTED:phone]"
    assert ALL.redact("on 2024-01-15 0612345678") == "on 2024-01-15 [REDACTED:phone]"
    assert ALL.redact("tel:+4930123456") == "tel:[REDACTED:phone]"


@pytest.mark.parametrize("iban", [
    "DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "GB29 NWBK 6016 1331 9268 19", "NO93 8601 1117 947",
    "fr14 2004 1010 0505 0001 3m02 606", "MT84 MALT 0110 0001 2345 MTLC AST0 01S",
])
def test_iban_in_its_printed_and_compact_shapes(iban):
    assert ALL.redact(f"pay to {iban}, thanks") == "pay to [REDACTED:iban], thanks"


def test_an_iban_is_not_taken_for_a_phone_number_and_its_neighbours_stay():
    assert ALL.redact("IBAN DE89 3704 0044 0532 0130 00 AND MORE") == "IBAN [REDACTED:iban] AND MORE"


def test_only_the_chosen_patterns_and_user_regexes_run_with_the_replacement_given():
    config = RedactionConfig(enabled=True, patterns=("email",), regexes=(r"CUST-\d{8}", r"(?i)jane doe"),
                             replacement="<{name}>")
    redactor = Redactor.from_config(config)
    text = "Jane Doe (CUST-12345678, jane@doe.com) called 0612345678"
    assert redactor.redact(text) == "<regex2> (<regex1>, <email>) called 0612345678"
    assert Redactor.from_config(dataclasses.replace(config, replacement=r"\1 [x]")).redact("CUST-12345678") == r"\1 [x]"


def test_off_changes_nothing():
    off = Redactor.from_config(RedactionConfig(regexes=("x",)))
    assert not off.enabled and off.redact("a@b.com 0612345678") == "a@b.com 0612345678"
    rows = [ExampleRow("test", "test:1", "a@b.com", "t", "o")]
    assert redact_rows(rows, off) == rows


def test_huge_texts_take_linear_time():
    """No pattern backtracks catastrophically on long runs of the characters it matches."""
    import time

    start = time.perf_counter()
    for text in ("a" * 200_000, "1 " * 100_000, "a." * 100_000, "AB12 " * 40_000, "x" * 100_000 + "@" + "b." * 50_000):
        ALL.redact(text)
    assert time.perf_counter() - start < 5


def _row(i: int, output: str) -> ExampleRow:
    return ExampleRow("test", f"test:{i}", f"from jane@doe.com, IBAN DE89370400440532013000 ({i})",
                      '{"intent": "refund"}', output, 10, 3, 0.1, {"task_accuracy": 1.0}, error=None)


def test_rows_are_redacted_for_the_store_and_their_scores_kept(tmp_path):
    """What the lead's call in the sweep does: scores computed on the text as generated, the stored text redacted."""
    rows = [_row(0, "call me on +44 20 7946 0958"), dataclasses.replace(_row(1, ""), error="refused: jane@doe.com")]
    stored = redact_rows(rows, ALL)
    assert rows[0].output == "call me on +44 20 7946 0958"  # the originals are untouched
    assert [r.scores for r in stored] == [r.scores for r in rows]
    store = Store(tmp_path / "r.duckdb")
    store.record_study(StudyRecord("s", "s", {}, "toy", "1", "", "m", "", "task_accuracy", True))
    record = TrialRecord(id="s/0", study="s", number=0, run_id=None, method="prompt", status="complete",
                         metrics=[MetricRow("test", "task_accuracy", 1.0, 0.5, 1.0, 2)], examples=stored)
    store.record_trial_result(record)
    back = store.examples("s/0")
    assert [(e.input, e.output, e.error) for e in back] == [
        ("from [REDACTED:email], IBAN [REDACTED:iban] (0)", "call me on [REDACTED:phone]", None),
        ("from [REDACTED:email], IBAN [REDACTED:iban] (1)", "", "refused: [REDACTED:email]")]
    assert back[0].scores == {"task_accuracy": 1.0}
    assert store.trial("s/0").metric("test", "task_accuracy").value == 1.0


MINIMAL = "name: x\nspace:\n  prompt: {shots: [0, 2]}\n"


@pytest.mark.parametrize("text, message", [
    ("redaction: {patterns: [email, ssn]}\n", "`redaction.patterns[1]` must be one of email, iban, phone; got 'ssn'"),
    ("redaction: {regexes: ['CUST-(\\d+']}\n", "`redaction.regexes[0]` 'CUST-(\\\\d+' is not a valid regular "
                                               "expression (missing ), unterminated subpattern"),
    ("redaction: {regexes: [ok, 'a*']}\n", "`redaction.regexes[1]` 'a*' matches the empty text"),
    ("redaction: {replacement: '[{kind}]'}\n", "`redaction.replacement` '[{kind}]' is not a valid template"),
    ("redaction: {enable: true}\n", "unknown key `redaction.enable`. Did you mean `redaction.enabled`?"),
    ("redaction: {regexes: CUST}\n", "`redaction.regexes` must be a list"),
])
def test_config_mistakes_name_the_key(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(MINIMAL + text)
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert message in str(err.value)


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(MINIMAL)
    assert load_experiment(path).redaction == RedactionConfig(enabled=False, patterns=("email", "iban", "phone"))
    config = load_experiment(path, ["redaction.enabled=true", "redaction.regexes=['ACME-\\d+']"]).redaction
    assert config.enabled and config.regexes == ("ACME-\\d+",)


def test_the_commented_section_of_the_init_template_loads_when_uncommented(tmp_path):
    lines = EXPERIMENT_YAML.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("# redaction:")))
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    path = tmp_path / "x.yaml"
    path.write_text(EXPERIMENT_YAML.replace("\n".join(lines[start:start + len(block)]), "\n".join(block)))
    config = load_experiment(path).redaction
    assert config.enabled and config.regexes == (r"CUST-\d{8}",) and config.replacement == "[REDACTED:{name}]"
