"""Golden, hand-checked cases for every scorer, plus a contract test run over every registered scorer."""

import pytest

from harness.core.errors import ConfigError
from harness.core.metric import Metric
from harness.data.contract import OutputContract, parse_output, parse_target
from harness.data.suites import Example
from harness.evaluation.scorers import SCORERS, ScoredCase, Scorer, higher_is_better, score_cases

LABEL = OutputContract(kind="label", key="intent", labels=("card_arrival", "lost_card", "age_limit"))
_STR_OR_LIST = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
JSON = OutputContract.from_dict(
    {
        "kind": "json",
        "schema": {"type": "object", "properties": {"person": _STR_OR_LIST, "city": {"type": "string"}}},
        "grounded": True,
    },
    "test",
)
TEXT = OutputContract.from_dict({"kind": "text", "numeric": True}, "test")


def make(output: str, target: str, contract: OutputContract, text: str = "", i: int = 0) -> ScoredCase:
    return ScoredCase(
        example=Example(id=f"test:{i}", input=text, target=target),
        output=output,
        parsed=parse_output(output, contract),
        target=parse_target(target, contract),
    )


# (output, target label, format, hallucination, accuracy)
LABEL_GOLDEN = [
    ('{"intent": "card_arrival"}', "card_arrival", 1.0, 0.0, 1.0),
    ('{"intent": " Card_Arrival "}', "card_arrival", 1.0, 0.0, 1.0),  # label case and whitespace
    ('```json\n{"intent": "lost_card"}\n```', "card_arrival", 1.0, 0.0, 0.0),  # fenced, wrong label
    ('{"intent": "lost_card"} because the card is lost', "lost_card", 1.0, 0.0, 1.0),  # trailing text
    ("", "card_arrival", 0.0, None, 0.0),  # empty output
    ("The intent is card_arrival", "card_arrival", 0.0, None, 0.0),  # prose, no JSON
    ('{"intent": "stolen_phone"}', "lost_card", 1.0, 1.0, 0.0),  # unknown label
    ('{"label": "card_arrival"}', "card_arrival", 0.0, None, 0.0),  # wrong key
    ('{"intent": "age_limit", "confidence": 0.9}', "age_limit", 1.0, 0.0, 1.0),  # extra key
]

# (output, target, input, format, hallucination, accuracy, precision, recall, f1)
JSON_GOLDEN = [
    (
        '{"person": ["Ada Lovelace", "Charles Babbage"], "city": "London"}',
        '{"person": ["Charles Babbage", "Ada Lovelace"], "city": "London"}',
        "Ada Lovelace met Charles Babbage in London.",
        1.0, 0.0, 1.0, 1.0, 1.0, 1.0,
    ),
    # a string slot equals a one-item list; grounding folds case and whitespace
    ('{"person": "ada  lovelace"}', '{"person": ["Ada Lovelace"]}', "Ada Lovelace spoke.",
     1.0, 0.0, 1.0, 1.0, 1.0, 1.0),
    # ungrounded value
    (
        '{"person": "Grace Hopper", "city": "London"}',
        '{"person": "Ada Lovelace", "city": "London"}',
        "Ada Lovelace lived in London.",
        1.0, 1.0, 0.0, 0.5, 0.5, 0.5,
    ),
    # unknown key (schema allows it, so compliant; `fields` does not, so hallucinated)
    (
        '{"person": "Ada Lovelace", "age": "36"}',
        '{"person": "Ada Lovelace", "city": "London"}',
        "Ada Lovelace, 36, lived in London.",
        1.0, 1.0, 0.0, 0.5, 0.5, 0.5,
    ),
    # unicode, casefolded
    ('{"person": "Zoë Çelik", "city": "ZÜRICH"}', '{"person": "Zoë Çelik", "city": "Zürich"}',
     "Zoë Çelik flew to Zürich.",
     1.0, 0.0, 1.0, 1.0, 1.0, 1.0),
    # empty output: no predicted pairs, so precision does not apply
    ("", '{"person": "Ada Lovelace"}', "Ada Lovelace", 0.0, None, 0.0, None, 0.0, 0.0),
    # schema violation: not compliant, but its content still counts (wrong) for the field scores
    ('{"person": 42}', '{"person": "Ada Lovelace"}', "Ada Lovelace", 0.0, None, 0.0, 0.0, 0.0, 0.0),
    # nothing to extract, nothing extracted
    ("{}", "{}", "Nothing here.", 1.0, 0.0, 1.0, None, None, 1.0),
    # fence plus trailing text
    ('```json\n{"city": "London"}\n```\nDone.', '{"city": "London"}', "Born in London", 1.0, 0.0, 1.0, 1.0, 1.0, 1.0),
]


# (output, reference) for the text contract: right, wrong, comma/decimal forms, no final line, not a number
TEXT_GOLDEN = [
    ("2 + 2 = 4\n#### 4", "Two and two make 4.\n#### 4"),
    ("2 + 3 = 5\n#### 5", "Two and two make 4.\n#### 4"),
    ("#### 1,200.0", "10 * 120 = 1,200\n#### 1200"),
    ("It is 1200.", "10 * 120 = 1,200\n#### 1200"),
    ("#### twelve", "6 + 6 = 12\n#### 12"),
    ("", "6 + 6 = 12\n#### 12"),
]


@pytest.fixture
def text_cases():
    return [make(o, t, TEXT, i=i) for i, (o, t) in enumerate(TEXT_GOLDEN)]


def test_text_golden(text_cases):
    values, metrics = score_cases(text_cases, TEXT, ["format_compliance", "hallucination_rate", "task_accuracy"])
    assert values["format_compliance"] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert values["task_accuracy"] == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert values["hallucination_rate"] == [None] * 6 and metrics["hallucination_rate"].n == 0


def test_rouge_l_does_not_apply_to_label_or_json(label_cases, json_cases):
    for cases, contract in ((label_cases, LABEL), (json_cases, JSON)):
        values, metric = SCORERS.get("rouge_l").score(cases, contract)
        assert values == [None] * len(cases) and metric == Metric(None, None, None, 0)


@pytest.fixture
def label_cases():
    return [make(o, f'{{"intent": "{t}"}}', LABEL, i=i) for i, (o, t, *_) in enumerate(LABEL_GOLDEN)]


@pytest.fixture
def json_cases():
    return [make(o, t, JSON, text, i) for i, (o, t, text, *_) in enumerate(JSON_GOLDEN)]


def test_label_golden(label_cases):
    values, metrics = score_cases(label_cases, LABEL, ["format_compliance", "hallucination_rate", "task_accuracy"])
    assert values["format_compliance"] == [row[2] for row in LABEL_GOLDEN]
    assert values["hallucination_rate"] == [row[3] for row in LABEL_GOLDEN]
    assert values["task_accuracy"] == [row[4] for row in LABEL_GOLDEN]
    assert metrics["format_compliance"].value == pytest.approx(6 / 9) and metrics["format_compliance"].n == 9
    # non-compliant outputs are excluded from the hallucination denominator
    assert metrics["hallucination_rate"].value == pytest.approx(1 / 6) and metrics["hallucination_rate"].n == 6
    assert metrics["task_accuracy"].value == pytest.approx(4 / 9) and metrics["task_accuracy"].n == 9
    m = metrics["task_accuracy"]
    assert 0 <= m.low < m.value < m.high <= 1


def test_json_golden(json_cases):
    names = ["format_compliance", "hallucination_rate", "task_accuracy", "field_precision", "field_recall", "field_f1"]
    values, metrics = score_cases(json_cases, JSON, names)
    for col, name in enumerate(names, start=3):
        expected = [row[col] for row in JSON_GOLDEN]
        assert values[name] == pytest.approx(expected), name
    assert metrics["format_compliance"].value == pytest.approx(7 / 9)
    assert metrics["hallucination_rate"].value == pytest.approx(2 / 7) and metrics["hallucination_rate"].n == 7
    assert metrics["task_accuracy"].value == pytest.approx(5 / 9)
    # micro over pairs: TP 9, predicted 12, reference 13
    assert metrics["field_precision"].value == pytest.approx(9 / 12) and metrics["field_precision"].n == 7
    assert metrics["field_recall"].value == pytest.approx(9 / 13) and metrics["field_recall"].n == 8
    assert metrics["field_f1"].value == pytest.approx(18 / 25) and metrics["field_f1"].n == 9
    f1 = metrics["field_f1"]
    assert f1.low <= f1.value <= f1.high
    assert score_cases(json_cases, JSON, ["field_f1"])[1]["field_f1"] == f1  # seeded: reproducible


def test_field_scores_do_not_apply_to_labels(label_cases):
    for name in ("field_precision", "field_recall", "field_f1"):
        values, metric = SCORERS.get(name).score(label_cases, LABEL)
        assert values == [None] * len(label_cases) and metric == Metric(None, None, None, 0)


def test_parse_output_strictness():
    assert parse_output('{"intent": "lost_card"}', LABEL).strict
    assert parse_output('  {"intent": "lost_card"}\n', LABEL).strict
    assert not parse_output('```json\n{"intent": "lost_card"}\n```', LABEL).strict
    assert not parse_output('{"intent": "lost_card"} ok', LABEL).strict
    bad = parse_output('{"intent": ', LABEL)
    assert bad.value is None and not bad.compliant and "parse" in bad.error
    wrong_type = parse_output('{"intent": ["lost_card"]}', LABEL)
    assert wrong_type.value == {"intent": ["lost_card"]} and not wrong_type.compliant and "string" in wrong_type.error


def test_closed_schema_extra_key_is_a_format_failure():
    closed = OutputContract.from_dict(
        {"kind": "json", "schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "additionalProperties": False}},
        "test",
    )
    case = make('{"city": "Paris", "mayor": "x"}', '{"city": "Paris"}', closed, "Paris")
    assert not case.parsed.compliant and "mayor" in case.parsed.error
    values, metrics = score_cases([case], closed, ["format_compliance", "hallucination_rate"])
    assert values == {"format_compliance": [0.0], "hallucination_rate": [None]}
    assert metrics["hallucination_rate"] == Metric(None, None, None, 0)


@pytest.mark.parametrize(
    "text,contract,fragment",
    [
        ('{"intent": "stolen_phone"}', LABEL, "not in `output.labels`"),
        ("lost_card", LABEL, "not valid JSON"),
        ('```json\n{"intent": "lost_card"}\n```', LABEL, "not valid JSON"),
        ('["lost_card"]', LABEL, "JSON object"),
        ('{"person": "A", "age": "3"}', JSON, "outside `output.fields`"),
        ('{"person": 3}', JSON, "schema"),
    ],
)
def test_parse_target_rejects(text, contract, fragment):
    with pytest.raises(ValueError, match=None) as info:
        parse_target(text, contract)
    assert fragment in str(info.value)


def test_unknown_scorer_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        SCORERS.get("acuracy")
    assert "acuracy" in str(info.value) and all(n in str(info.value) for n in SCORERS.names())
    with pytest.raises(ConfigError):
        score_cases([], LABEL, ["task_accuracy", "nope"])


def test_register_refuses_duplicates_and_nameless_components():
    with pytest.raises(ValueError, match="already registered"):
        SCORERS.register(type(SCORERS.get("task_accuracy"))())
    with pytest.raises(TypeError):
        SCORERS.register(object())


def test_every_metric_has_one_direction():
    assert higher_is_better("task_accuracy") is True and higher_is_better("hallucination_rate") is False
    assert higher_is_better("macro_f1") is True and higher_is_better("regression_delta") is True
    assert higher_is_better("task_acuracy") is None


@pytest.mark.parametrize("name", SCORERS.names())
@pytest.mark.parametrize("which", ["label", "json", "text", "empty", "empty_text"])
def test_every_scorer_keeps_the_contract(name, which, label_cases, json_cases, text_cases):
    scorer = SCORERS.get(name)
    assert isinstance(scorer, Scorer) and scorer.name == name and isinstance(scorer.higher_is_better, bool)
    cases, contract = {"label": (label_cases, LABEL), "json": (json_cases, JSON), "text": (text_cases, TEXT),
                       "empty": ([], JSON), "empty_text": ([], TEXT)}[which]
    values, metric = scorer.score(cases, contract)
    assert len(values) == len(cases)
    assert all(v is None or (isinstance(v, float) and 0.0 <= v <= 1.0) for v in values)
    assert metric.n == sum(v is not None for v in values)
    assert (metric.value is None) == (metric.n == 0)
    if metric.value is not None:
        assert 0.0 <= metric.value <= 1.0
    if metric.low is not None:
        assert 0.0 <= metric.low <= metric.value <= metric.high <= 1.0
    assert scorer.score(cases, contract) == (values, metric)  # deterministic


def test_a_grounded_value_is_written_in_the_input_never_wholly_inside_a_word():
    """Any folded substring of the input counted as grounded: `ea` from "Heart", `igg` from "digging". A value must
    now reach at least one edge of a word; one, not both, since real data glues words (SNIPS: `one pmnear Vatican`,
    whose references `one pm` and `near` are the input's)."""
    from harness.evaluation.scorers.hallucination import hallucinated

    contract = OutputContract(kind="json", fields=("playlist", "entity_name"), grounded=True)
    given = "add digging now to my Young at Heart playlist"
    for made_up in ({"playlist": "ea"}, {"entity_name": "igg"}, {"playlist": "Jazz Classics"}):
        assert hallucinated(made_up, given, contract), made_up
    for written in ({"playlist": "young at HEART"}, {"entity_name": "digging"}, {"playlist": "now to my"}):
        assert not hallucinated(written, given, contract), written
    glued = "What kind of weather is forecast around one pmnear Vatican?"
    assert not hallucinated({"playlist": "one pm", "entity_name": "near"}, glued, contract)
    # scripts written without spaces have no word edge: a name inside a sentence is written there
    assert not hallucinated({"playlist": "北京"}, "我在北京工作", contract)
    assert not hallucinated({"playlist": "5pm"}, "remind me at 5pm.", contract)


INVOICE = OutputContract.from_dict({"kind": "json", "schema": {
    "type": "object",
    "$defs": {"money": {"type": ["number", "string"]}},
    "properties": {
        "amount": {"$ref": "#/$defs/money"},
        "postcode": {"type": "string"},
        "lines": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "customer": {"type": "object", "properties": {"balance": {"type": "number"}}},
    }}}, "test")


@pytest.mark.parametrize(("answer", "right"), [
    ('{"amount": 4417.5, "postcode": "02134", "lines": [2, 3], "customer": {"balance": -12}}', True),
    ('{"amount": "4,417.50", "postcode": "02134", "lines": ["3", 2], "customer": {"balance": "-12.0"}}', True),
    ('{"amount": 4417.51, "postcode": "02134", "lines": [2, 3], "customer": {"balance": -12}}', False),
    ('{"amount": 4417.5, "postcode": 2134, "lines": [2, 3], "customer": {"balance": -12}}', False),  # a string
    ('{"amount": "about 4417", "postcode": "02134", "lines": [2, 3], "customer": {"balance": -12}}', False),
    ('{"amount": "4.4175e3", "postcode": "02134", "lines": [2, 3], "customer": {"balance": -12}}', True),
])
def test_a_number_the_schema_types_as_one_is_compared_by_value_however_either_side_writes_it(answer, right):
    """An extraction suite whose references write some amounts as strings ("4417.50", as exports do) scored the
    right amount answered as a JSON number wrong: the string and the number were two answers. Where the schema types
    the slot as a number they are one; a slot typed as a string only (a postcode) keeps its text."""
    target = '{"amount": "4417.50", "postcode": "02134", "lines": [3, "2"], "customer": {"balance": -12}}'
    values, _ = score_cases([make(answer, target, INVOICE)], INVOICE, ["task_accuracy", "field_f1"])
    assert values["task_accuracy"] == [1.0 if right else 0.0]
    assert (values["field_f1"] == [1.0]) is right
