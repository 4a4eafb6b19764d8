"""The output contract of a suite: what a correct answer must look like.

Three kinds exist. A `label` contract asks for a JSON object `{key: one of labels}`. A `json` contract asks for a
JSON object that validates against a JSON Schema, whose keys come from `fields`, and (when `grounded`) whose
string values all appear in the input text. A `text` contract asks for free text (e.g. worked reasoning) that
ends with a final answer found by `answer_pattern` (GSM8K's `#### 18`), compared as a number when `numeric`; or,
with `whole_output`, for an answer that is the whole output (a short answer, a summary, a rewrite).
The contract is stated in the prompt of every prompting trial so that the prompting baseline is a fair one: a
model cannot be blamed for not guessing a label set it never saw.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from harness.core.errors import SuiteError
from harness.core.text import fold

CONTRACT_KINDS = ("label", "json", "text")
_DECODER = json.JSONDecoder()
DEFAULT_ANSWER_PATTERN = r"####\s*(.+)$"
"""GSM8K's final-answer line. Patterns are compiled with re.MULTILINE, so `$` ends a line."""


@dataclass(frozen=True)
class OutputContract:
    kind: str
    """`label` (one label out of a closed set) or `json` (an object validated by a JSON Schema)."""
    key: str = "label"
    """For `label`: the JSON key that holds the label, e.g. `intent`."""
    labels: tuple[str, ...] = ()
    """For `label`: the closed label set."""
    schema: dict[str, Any] = field(default_factory=dict)
    """For `json`: the JSON Schema an output must validate against (structure and types)."""
    fields: tuple[str, ...] = ()
    """For `json`: the keys an output may use. A key outside this list counts as hallucinated."""
    grounded: bool = False
    """For `json`: every string value must appear in the input text; one that does not is hallucinated."""
    grounded_keys: tuple[str, ...] = ()
    """For a `json` contract grounded on some keys only (`grounded: [customer, items]`): the values of these keys
    (at any depth inside them) are checked against the input, the others not (a currency code the input writes as
    "$", a date it writes in words); empty with `grounded`: every key's."""
    grounded_numbers: bool = False
    """For a grounded `json` contract: every number value must appear in the input text too (`numbers_in`), so an
    invented amount is a hallucination. Off unless the suite says so: a suite whose answers compute numbers (a sum, a
    count) from the input would read every right answer as invented."""
    answer_pattern: str = DEFAULT_ANSWER_PATTERN
    """For `text`: a regex with one group that captures the final answer; its first match ends the answer."""
    numeric: bool = False
    """For `text`: the final answer is a number, compared by value ("$1,200" == "1200", "18.0" == "18")."""
    whole_output: bool = False
    """For `text`: the whole output (stripped) is the answer; there is no reasoning and `answer_pattern` is unused.
    For data whose answers are the reply itself (chat and instruction data), not worked steps and a final line."""

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> "OutputContract":
        """Build from the `output:` block of a suite.yaml; `where` names the file for error messages."""
        if not isinstance(raw, dict):
            raise SuiteError(f"{where}: `output` must be a mapping with `kind: label`, `kind: json` or `kind: text`.")
        allowed = {"kind", "key", "labels", "schema", "fields", "grounded", "grounded_numbers", "answer_pattern",
                   "numeric", "whole_output"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise SuiteError(f"{where}: unknown key(s) under `output`: {unknown}. Allowed: {sorted(allowed)}.")
        kind = raw.get("kind")
        if kind not in CONTRACT_KINDS:
            raise SuiteError(f"{where}: `output.kind` is {kind!r}; set it to one of {list(CONTRACT_KINDS)}.")
        if kind == "label":
            labels = raw.get("labels")
            if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
                raise SuiteError(f"{where}: `output.labels` must be a non-empty list of strings for kind: label.")
            _check_label_spellings(labels, where)
            key = raw.get("key", "label")
            if not isinstance(key, str) or not key:
                raise SuiteError(f"{where}: `output.key` must be a non-empty string, e.g. `intent`.")
            return cls(kind="label", key=key, labels=tuple(labels))
        if kind == "text":
            return _text_contract(cls, raw, where)
        schema = raw.get("schema")
        if not isinstance(schema, dict):
            raise SuiteError(f"{where}: `output.schema` must be a JSON Schema mapping for kind: json.")
        _check_schema(schema, where)
        fields_ = raw.get("fields", list(schema.get("properties", {})))
        if not isinstance(fields_, list) or not all(isinstance(x, str) for x in fields_):
            raise SuiteError(f"{where}: `output.fields` must be a list of key names.")
        unlisted = [key for key in schema.get("required", []) if fields_ and key not in fields_]
        if unlisted:
            raise SuiteError(
                f"{where}: `output.schema.required` lists {', '.join(repr(k) for k in unlisted)}, not in "
                f"`output.fields` ({', '.join(fields_)}), so every compliant answer would use a key the contract "
                f"counts as hallucinated; add it to `output.fields` or remove it from `required`."
            )
        keys = _grounded_keys(raw.get("grounded", False), fields_ or list(schema.get("properties", {})), where)
        grounded, numbers = bool(keys) or raw.get("grounded") is True, bool(raw.get("grounded_numbers", False))
        if numbers and not grounded:
            raise SuiteError(f"{where}: `output.grounded_numbers: true` checks numbers as `output.grounded: true` "
                             "checks strings; set `grounded: true` as well, or drop `grounded_numbers`.")
        return cls(kind="json", schema=schema, fields=tuple(fields_), grounded=grounded, grounded_keys=keys,
                   grounded_numbers=numbers)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "label":
            return {"kind": "label", "key": self.key, "labels": list(self.labels)}
        if self.kind == "text" and self.whole_output:
            return {"kind": "text", "whole_output": True, "numeric": self.numeric}
        if self.kind == "text":
            return {"kind": "text", "answer_pattern": self.answer_pattern, "numeric": self.numeric}
        numbers = {"grounded_numbers": True} if self.grounded_numbers else {}  # as suites without it were written
        grounded = list(self.grounded_keys) if self.grounded_keys else self.grounded
        return {"kind": "json", "schema": self.schema, "fields": list(self.fields), "grounded": grounded, **numbers}

    def hallucination_checks(self) -> str | None:
        """What `hallucination_rate` counts under this contract, in words; None for text, where it checks nothing.
        An ungrounded extraction contract counts keys only: an invented value is then a wrong answer, and a rate of
        0% says nothing of invented values, which a reader must be told."""
        if self.kind == "label":
            return "a label outside the set"
        if self.kind != "json":
            return None
        keys = "a key outside the contract's fields" if self.fields else None
        if not self.grounded:
            return (f"{keys or 'nothing'} only: the contract is not grounded (`output.grounded`), so a value the "
                    "input does not hold is a wrong answer, not a hallucination")
        kinds = "string or number" if self.grounded_numbers else "string"
        of = f" of {', '.join(self.grounded_keys)}" if self.grounded_keys else ""
        return " or ".join(filter(None, (keys, f"a {kinds} value{of} not written in the input")))

    def grounded_items(self, value: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        """The (key, value) pairs of an answer whose values must be written in the input: every key's where the
        contract is grounded, the listed keys' where it grounds some; none where it is not grounded."""
        if self.kind != "json" or not self.grounded:
            return
        for key, item in value.items():
            if not self.grounded_keys or key in self.grounded_keys:
                yield key, item

    def label_list(self) -> str:
        """The labels as the prompt lists them: `a, b, c`, or, where a label holds a comma, a quote or spaces at its
        ends (`cash withdrawal, fee` read as two labels), each quoted as JSON writes it."""
        if any("," in label or '"' in label or label != label.strip() for label in self.labels):
            return ", ".join(json.dumps(label, ensure_ascii=False) for label in self.labels)
        return ", ".join(self.labels)

    def describe(self) -> str:
        """The contract in words, appended to the instruction of prompting trials."""
        if self.kind == "label":
            example = json.dumps({self.key: self.labels[0]}, ensure_ascii=False)
            return (
                f'Answer with a single JSON object {{"{self.key}": LABEL}} and nothing else, e.g. {example}. '
                f"LABEL must be exactly one of: {self.label_list()}."
            )
        if self.kind == "text":
            what = "<number>" if self.numeric else "<answer>"
            plain = " Write the number alone, without units or words." if self.numeric else ""
            if self.whole_output:
                return f"Reply with the answer itself and nothing else: no preamble, no explanation.{plain}"
            if self.answer_pattern == DEFAULT_ANSWER_PATTERN:
                return f"Show your reasoning step by step, then end with a final line `#### {what}`.{plain}"
            return (
                f"Show your reasoning step by step, then end with your final answer {what} written so that it "
                f"matches the regular expression `{self.answer_pattern}`.{plain}"
            )
        required = self.schema.get("required", [])
        parts = [
            "Answer with a single JSON object and nothing else.",
            f"Allowed keys: {', '.join(self.fields)}." if self.fields else "",
            _grounded_values(self.schema)
            + (f"Always include {', '.join(required)}; leave out other keys that do not occur."
               if required else "Leave out keys that do not occur; answer {} if none do.")
            if self.grounded and not self.grounded_keys
            else f"It must validate against this JSON Schema: {json.dumps(self.schema)}",
            f"Copy the values of {', '.join(self.grounded_keys)} verbatim from the input." if self.grounded_keys
            else "",
        ]
        return " ".join(p for p in parts if p)


def _grounded_keys(raw: Any, keys: list[str], where: str) -> tuple[str, ...]:
    """`output.grounded` as the keys it grounds: () for `true` (every key) or `false`, the list's keys otherwise."""
    if isinstance(raw, bool):
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(k, str) for k in raw):
        raise SuiteError(f"{where}: `output.grounded` is {raw!r}; give true (every value is copied from the input), "
                         "false, or a list of the keys whose values are, e.g. [customer, items].")
    unknown = [k for k in raw if k not in keys]
    if unknown:
        raise SuiteError(f"{where}: `output.grounded` names {', '.join(map(repr, unknown))}, not a key of the "
                         f"contract ({', '.join(keys) or 'none'}); list keys of `output.fields` or the schema's "
                         "`properties`.")
    return tuple(dict.fromkeys(raw))


def _grounded_values(schema: dict[str, Any]) -> str:
    """How a grounded contract's values are written: strings copied from the input, and any key the schema types as a
    number, a number as the input writes it (a prompt that called every value a string would mark a prompting arm
    down for the numbers its contract asks for)."""
    numbers = [key for key, spec in (schema.get("properties") or {}).items()
               if isinstance(spec, dict) and spec.get("type") in ("number", "integer")]
    if not numbers:
        return "Each value is a string copied verbatim from the input; use a list of strings when a key occurs more " \
               "than once. "
    return (f"Each value is copied verbatim from the input: {', '.join(numbers)} as a JSON number, every other value "
            "as a string; use a list when a key occurs more than once. ")


_IN_TEXT = re.compile(r"[-+\u2212]?(?:\d{1,3}(?:[,\u00a0\u202f\u2009 ]\d{3})+|\d+)(?:\.\d+)?")
_COMMA_DECIMAL = re.compile(r"[-+\u2212]?(?:\d{1,3}(?:[.\u00a0\u202f\u2009 '\u2019]\d{3})+|\d+),\d+")
"""A number written with a decimal comma, grouped by points, spaces or apostrophes: "1.234,50", "12,50", "1 234,5"."""
_APOSTROPHE_GROUPED = re.compile(r"[-+\u2212]?\d{1,3}(?:['\u2019]\d{3})+(?:\.\d+)?")
"""Swiss grouping: "1'234.50"."""
_POINT_GROUPED = re.compile(r"[-+\u2212]?\d{1,3}(?:\.\d{3})+(?![\d,])")
"""Thousands grouped by points, without decimals: "12.500 €", German, French, Italian or Spanish for 12500."""
_ARABIC_MARKS = str.maketrans({"\u066b": ".", "\u066c": ","})
"""Arabic decimal and thousands separators, read as their Latin counterparts: "١٬٢٣٤٫٥٠" is 1234.50."""


def plain_figures(text: str) -> str:
    """`text` with its figures as the number readers take them: compatibility forms folded (full-width "１２，３４５"
    to "12,345"), Arabic separators read as Latin ones, U+2212 as a minus, and currency symbols dropped ("12,50 €").
    Digits of every script stay as they are: Python reads them all."""
    folded = unicodedata.normalize("NFKC", text).translate(_ARABIC_MARKS).replace("\u2212", "-")
    return "".join(c for c in folded if unicodedata.category(c) != "Sc")


def numbers_in(text: str) -> set[Decimal]:
    """Every number written in `text`, in every reading a writer may have meant: "Total 3,327.07" holds 3327.07,
    "1 200" 1200 (and 1 and 200: a space may separate two numbers as well as group one), "INV-9999" both -9999 and
    9999, "1.234,50 EUR" 1234.50 (and 1.234 and 50), "12,50" 12.50, "12.500 €" 12500 (and 12.5), "1'234.50"
    1234.50, full-width "１２，３４５円" 12345, Arabic "١٬٢٣٤٫٥٠" 1234.50. A grounded answer is checked against this
    set, so a reading too many only ever spares an answer, where a reading missed called a correct amount of a
    European invoice invented."""
    text = plain_figures(text)
    found: set[Decimal] = set()
    for match in _IN_TEXT.finditer(text):
        for part in (match.group(), *re.split(r"[ \u00a0\u202f\u2009]", match.group())):
            if (value := parse_number(part)) is not None:
                found |= {value, abs(value)}  # "INV-9999": a hyphen, or a minus; either reading is in the text
    for match in _COMMA_DECIMAL.finditer(text):
        whole, fraction = match.group().rsplit(",", 1)
        value = Decimal(re.sub(r"[.\u00a0\u202f\u2009 '\u2019]", "", whole.replace("\u2212", "-")) + "." + fraction)
        found |= {value, abs(value)}
    for match in _APOSTROPHE_GROUPED.finditer(text):
        value = Decimal(re.sub(r"['\u2019]", "", match.group().replace("\u2212", "-")))
        found |= {value, abs(value)}
    for match in _POINT_GROUPED.finditer(text):
        value = Decimal(match.group().replace(".", ""))
        found |= {value, abs(value)}
    return found


def string_values(value: Any) -> Iterator[str]:
    """Every string value inside a JSON value (keys excluded: they are checked against `fields`)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from string_values(item)


def number_values(value: Any) -> Iterator[Decimal]:
    """Every number value inside a JSON value, exact (`number_value`)."""
    if (number := number_value(value)) is not None:
        yield number
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from number_values(item)


def number_value(value: Any) -> Decimal | None:
    """A JSON number as an exact Decimal (`3327.07`, not the float's binary expansion); None for anything else
    (booleans included: JSON's true is no number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def label_clashes(labels: Iterable[str]) -> list[list[str]]:
    """The groups of labels that scoring cannot tell apart: answers and references are matched to labels after `fold`
    (`label_lookup`), so `PlayMusic` and ` playmusic ` share one key and one of them would never be counted. An exact
    repeat is a group too."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(fold(label), []).append(label)
    return [group for group in groups.values() if len(group) > 1]


def _check_label_spellings(labels: list[str], where: str) -> None:
    clashes = label_clashes(labels)
    if not clashes:
        return
    listed = "; ".join(", ".join(spelled_label(label) for label in group) + f" (apart {how_apart(*group[:2])})"
                       for group in clashes)
    raise SuiteError(
        f"{where}: `output.labels` lists labels that are equal once case, spacing and how accents are written are "
        f"folded, as scoring compares them, so scores would count them as one label: {listed}. List each label once, "
        f"in one spelling, and write the answers in train, dev and test that way (then bump `version`)."
    )


def spelled_label(label: str) -> str:
    """A label quoted so that what tells it apart shows: escapes where an accent is a combining mark
    (`'re\\u0301clamation'`), which prints exactly as the one-character accent does."""
    return ascii(label) if unicodedata.normalize("NFC", label) != label else repr(label)


def _tidy(label: str) -> str:
    """A label as it should be written: NFC, without spaces before, after or doubled."""
    return " ".join(unicodedata.normalize("NFC", label).split())


def how_apart(a: str, b: str) -> str:
    """How two labels that scoring reads as one differ, in words: `in case`, `in spacing`, `in how an accent is
    written (Unicode NFD: a letter and a combining mark; NFC: one character)`."""
    ways = []
    if unicodedata.normalize("NFC", a) != a or unicodedata.normalize("NFC", b) != b:
        ways.append("in how an accent is written (Unicode NFD: a letter and a combining mark; NFC: one character)")
    if " ".join(a.split()) != a or " ".join(b.split()) != b:
        ways.append("in spacing")
    if _tidy(a) != _tidy(b):
        ways.append("in case")
    return " and ".join(ways) or "in case or spacing"


def spelling_key(label: str) -> str:
    """A label with case, spaces, hyphens and underscores removed: `get_weather`, `GetWeather` and `Get-Weather` share
    one key, and so do `Play Music` and `PlayMusic`. Labels equal under it are probably one label written two ways
    (camelCase against snake_case is the commonest drift in exported data); nothing is merged on it."""
    return _SEPARATORS.sub("", fold(label))


_SEPARATORS = re.compile(r"[\s_\-\u2010-\u2015]+")


def _text_contract(cls, raw: dict[str, Any], where: str) -> "OutputContract":
    whole_output = raw.get("whole_output", False)
    if not isinstance(whole_output, bool):
        raise SuiteError(f"{where}: `output.whole_output` must be true or false, got {whole_output!r}.")
    if whole_output and "answer_pattern" in raw:
        raise SuiteError(
            f"{where}: `output.whole_output: true` makes the whole output the answer, so `answer_pattern` is unused; "
            f"remove one of them."
        )
    pattern = raw.get("answer_pattern", DEFAULT_ANSWER_PATTERN)
    try:
        groups = re.compile(pattern, re.MULTILINE).groups if isinstance(pattern, str) else -1
    except re.error as exc:
        raise SuiteError(f"{where}: `output.answer_pattern` is not a valid regex ({exc}); fix it.") from None
    if groups != 1:
        raise SuiteError(
            f"{where}: `output.answer_pattern` must be a regex string with exactly one group that captures the "
            f"final answer, e.g. {DEFAULT_ANSWER_PATTERN!r}."
        )
    numeric = raw.get("numeric", False)
    if not isinstance(numeric, bool):
        raise SuiteError(f"{where}: `output.numeric` must be true or false, got {numeric!r}.")
    return cls(kind="text", answer_pattern=pattern, numeric=numeric, whole_output=whole_output)


def _check_schema(schema: dict[str, Any], where: str) -> None:
    """A valid JSON Schema, named at the place that is wrong (`output.schema.properties.vendor.type`), whose
    `required` keys are all properties: a required key with no property is a mistake in the schema, and reading it
    against the data would report it once per example instead of once."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        at = ".".join(["output.schema", *(str(part) for part in exc.path)])
        if exc.path and exc.path[-1] == "type":
            why = (f"{exc.instance!r} is not a JSON Schema type; use one of {', '.join(SCHEMA_TYPES)} (or a list of "
                   f"them)")
        else:
            why = f"{exc.message}; fix it"
        raise SuiteError(f"{where}: `{at}` is not valid JSON Schema: {why}.") from None
    for at, node in _object_schemas(schema, "output.schema"):
        if "properties" not in node:  # `required` alone only asks for keys, whatever their values
            continue
        properties = node["properties"]
        missing = [key for key in node.get("required", []) if key not in properties]
        if missing:
            raise SuiteError(
                f"{where}: `{at}.required` lists {', '.join(repr(k) for k in missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not under `{at}.properties` "
                f"({', '.join(properties) or 'none'}); a misspelt or renamed key? Add "
                f"{'it' if len(missing) == 1 else 'them'} to `properties` (and to `output.fields`) or remove "
                f"{'it' if len(missing) == 1 else 'them'} from `required`."
            )


SCHEMA_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


def _object_schemas(node: Any, at: str) -> Iterator[tuple[str, dict]]:
    """(where, schema) for `node` and every schema below it under `properties` and `items`, the places an
    answer's nested objects are described."""
    if not isinstance(node, dict):  # `true`/`false` are schemas too, with nothing below them
        return
    yield at, node
    for key, sub in node.get("properties", {}).items():
        yield from _object_schemas(sub, f"{at}.properties.{key}")
    yield from _object_schemas(node.get("items"), f"{at}.items")


def label_lookup(labels: tuple[str, ...]) -> Mapping[str, str]:
    """Each label of a label set by its folded spelling, so an answer is matched in one lookup.

    Cached per label set: scoring asks this for every example, and folding a thousand labels for each of
    thousands of examples made scoring quadratic. Read-only, since every caller shares one mapping."""
    return _label_lookup(tuple(labels))


@lru_cache(maxsize=32)
def _label_lookup(labels: tuple[str, ...]) -> Mapping[str, str]:
    return MappingProxyType({fold(label): label for label in labels})


@lru_cache(maxsize=32)
def _label_set(labels: tuple[str, ...]) -> frozenset[str]:
    """The exact spellings of a label set, for the membership test every reference answer takes."""
    return frozenset(labels)


class TargetError(SuiteError, ValueError):
    """A reference answer that breaks its contract; the message says why and how to fix it. A ValueError as well,
    for the callers that catch that."""


@dataclass(frozen=True)
class ParsedOutput:
    """What a generated text contains, judged against the contract's structure only (never its content)."""

    value: dict | None
    """The JSON object found in the output, or None if none parsed. Text contracts: {"answer", "rationale"}."""
    compliant: bool
    """Format compliance: an object parsed AND required keys/types are present (text: a final answer found,
    and a number when `numeric`)."""
    error: str | None
    """Why it is not compliant, in words (None when compliant)."""
    strict: bool
    """The whole output was exactly one JSON object: no fences, no trailing text (text: nothing after the
    final answer)."""


def json_error(exc: json.JSONDecodeError, position: str) -> str:
    """The decoder's message with where it stopped (`column 50`, `char 7`). Some of its messages end in "at" already
    ("Unterminated string starting at"), and "at at column" reads as a typo."""
    said = f"{exc.msg} {position}" if exc.msg.endswith(" at") else f"{exc.msg} at {position}"
    if exc.msg == "Extra data" and exc.doc[exc.pos:].strip() == ",":  # `{...},` as a JSON array's lines are written
        said += ": a comma after the object; remove the trailing comma"
    return said


def load_json(text: str) -> Any:
    """`json.loads`, except that text Python cannot read (nested deeper than its recursion limit, an integer longer
    than its digit limit) is a JSONDecodeError like any other malformed JSON, never a crash; and that `NaN`,
    `Infinity` and a number too large for a float (`1e999`), which Python reads but JSON has not, are malformed too:
    read as data they became the labels "nan" and "inf", and suite files no other JSON reader can read."""
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite, object_pairs_hook=_once_each)
    except (RecursionError, ValueError) as exc:
        raise _malformed(exc, text) from None


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are each given once: `{"label": "x", "label": "billing"}` kept the last without a word."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _NotStrictJson(f"key {key!r} is given twice in one object; keep one", f'"{key}"')
        seen[key] = value
    return seen


class _NotStrictJson(ValueError):
    """What Python's json reads and JSON does not allow (NaN, a float beyond range) or leaves ambiguous (a key given
    twice), with the token to point at."""

    def __init__(self, why: str, token: str):
        super().__init__(why)
        self.token = token


def _not_json(name: str) -> Any:
    raise _NotStrictJson(f"{name} is not a JSON value (JSON has no NaN or Infinity); write a number or null", name)


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise _NotStrictJson(f"the number {text[:20]} is too large for a float; write a smaller number or a string",
                             text)
    return value


def decode_json_prefix(text: str) -> tuple[Any, int]:
    """`JSONDecoder.raw_decode` (the first JSON value in `text` and where it ends), malformed as `load_json` says."""
    try:
        return _DECODER.raw_decode(text)
    except (RecursionError, ValueError) as exc:
        raise _malformed(exc, text) from None


def _malformed(exc: Exception, text: str) -> json.JSONDecodeError:
    if isinstance(exc, json.JSONDecodeError):
        return exc
    if isinstance(exc, _NotStrictJson):  # where the token is (the first of its spelling: near enough to find it)
        return json.JSONDecodeError(str(exc), text, max(text.find(exc.token), 0))
    why = "Nested too deeply to read" if isinstance(exc, RecursionError) else "Number too long to read"
    return json.JSONDecodeError(why, text, 0)


def parse_output(text: str, contract: OutputContract) -> ParsedOutput:
    """Find the first JSON object in a model's output and check its structure.

    Lenient about wrapping (surrounding whitespace, a ```json fence, trailing text after the first complete
    object) because small models add those and they are easy to strip in production; `strict` records it.
    Not lenient about prose before the object: that is a format failure a consumer would have to guess around.
    Text contracts: see `_find_answer`.
    """
    if contract.kind == "text":
        value, strict, error = _find_answer(text, contract)
        return ParsedOutput(value, value is not None and error is None, error, strict)
    value, strict, error = _find_object(text)
    if value is None:
        return ParsedOutput(None, False, error, False)
    problem = _structure_problem(value, contract)
    return ParsedOutput(value, problem is None, problem, strict)


def parse_target(text: str, contract: OutputContract) -> dict:
    """Parse a reference answer; raise TargetError (a ValueError, with the fix) when it breaks the contract.

    Stricter than `parse_output`: a reference must be exactly one JSON object (no fences, no extra text), a
    label must be one of `labels` (exact spelling), and a JSON answer may only use keys from `fields`.
    A text reference must end with its final answer (a number when `numeric`); it returns {"answer", "rationale"}.
    """
    if not isinstance(text, str):
        raise TargetError(f"the reference answer must be a string or a JSON object, got {type(text).__name__}")
    if contract.kind == "text":
        value, strict, error = _find_answer(text, contract)
        if contract.whole_output and error is not None:
            fix = ("write it as a plain number (`3.5`, `3,5`, `1,000`, `45,50 €`; no units), or set "
                   "`output.numeric: false` to compare answers as text") if value is not None else "write the answer"
            raise TargetError(f"the reference answer is unusable ({error}); {fix}")
        layout = "`#### <answer>`" if contract.answer_pattern == DEFAULT_ANSWER_PATTERN else "the final answer"
        if value is None or error is not None:
            raise TargetError(f"the reference answer {error or 'has no final answer'}; end it with {layout}")
        if not strict:
            raise TargetError(f"the reference answer has text after its final answer; end it with {layout}")
        return value
    try:
        value = load_json(text)
    except json.JSONDecodeError as exc:
        hint = (
            f'write it as {{"{contract.key}": "<label>"}}' if contract.kind == "label" else "write it as a JSON object"
        )
        raise TargetError(f"the reference answer is not valid JSON ({json_error(exc, f'char {exc.pos}')}): "
                          f"{text[:80]!r}; {hint}") from None
    if not isinstance(value, dict):
        raise TargetError(f"the reference answer must be a JSON object, got {type(value).__name__}: {text[:80]!r}")
    problem = _structure_problem(value, contract)
    if problem is not None:
        raise TargetError(f"the reference answer breaks the output contract: {problem}")
    if contract.kind == "label":
        label = value[contract.key]
        if label not in _label_set(contract.labels):
            raise TargetError(_unlisted_label(label, contract.labels))
    else:
        extra = sorted(set(value) - set(contract.fields)) if contract.fields else []
        if extra:
            raise TargetError(f"the reference answer uses key(s) {extra} outside `output.fields`; add them there")
    return value


def _unlisted_label(label: str, labels: tuple[str, ...]) -> str:
    """Why a reference label is refused, with the listed label it was probably meant to be: one equal after folding
    is that label to the scorer, so only the answer can change; one equal without separators may be either."""
    folded = label_lookup(labels).get(fold(label))
    if folded is not None and _tidy(folded) != folded:  # the list's spelling is the odd one: fix it there
        return (f"the reference label {spelled_label(label)} is not in `output.labels`, which writes it "
                f"{spelled_label(folded)} (apart {how_apart(label, folded)}); write it in `output.labels` as "
                f"{_tidy(folded)!r}, as the answers should be")
    if folded is not None:
        return (f"the reference label {spelled_label(label)} is not in `output.labels`: did you mean "
                f"{spelled_label(folded)} (apart {how_apart(label, folded)})? Scoring reads them as one label; write "
                f"the answer as {spelled_label(folded)}")
    close = _spelling_lookup(tuple(labels)).get(spelling_key(label))
    if close is not None:
        return (f"the reference label {label!r} is not in `output.labels`: did you mean {close!r}? Write the answer "
                f"as {close!r}, or add {label!r} to `output.labels` if it is another label")
    return f"the reference label {label!r} is not in `output.labels`; add it there or fix the answer"


@lru_cache(maxsize=32)
def _spelling_lookup(labels: tuple[str, ...]) -> Mapping[str, str]:
    return MappingProxyType({spelling_key(label): label for label in labels})


def _find_answer(text: str, contract: OutputContract) -> tuple[dict | None, bool, str | None]:
    """(value, strict, error) for a text contract: the whole output, or the FIRST match of `answer_pattern`.

    First, not last: small models often run on after answering (a new "Question: ..."), and what they meant is
    the first final line; text after it is tolerated like trailing text after a JSON object (strict=False).
    The value is kept even when a numeric answer is not a number, so the error can say what was written.
    """
    if not isinstance(text, str) or not text.strip():
        return None, False, "the output is empty"
    if contract.whole_output:
        answer = text.strip()
        not_a_number = contract.numeric and parse_number(answer) is None
        error = f"the answer {answer[:60]!r} is not a number" if not_a_number else None
        return {"answer": answer, "rationale": ""}, True, error
    match = re.compile(contract.answer_pattern, re.MULTILINE).search(text)
    if match is None or match.group(1) is None or not match.group(1).strip():
        return None, False, f"no final answer matching `{contract.answer_pattern}`: {text.strip()[-60:]!r}"
    answer = match.group(1).strip()
    value = {"answer": answer, "rationale": text[: match.start()].strip()}
    strict = not text[match.end() :].strip()
    if contract.numeric and parse_number(answer) is None:
        return value, strict, f"the final answer {answer!r} is not a number"
    return value, strict, None


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_LEAD = r"(?![0\u0660\u06f0])\d"
"""A group's first digit, never a zero (of Latin or Arabic digits)."""
_GROUPED = re.compile(
    rf"[-+]?(?:{_LEAD}\d{{0,2}}(?:,\d{{3}})+|{_LEAD}\d?(?:,\d{{2}})+,\d{{3}}"
    rf"|{_LEAD}\d{{0,2}}(?:[ \u00a0\u202f\u2009]\d{{3}})+)(?:\.\d*)?"
)
"""Digits grouped by thousands: `1,000,000`, Indian `12,34,567`, or spaces (`1 000`, also no-break and thin ones);
never from a 0 (`0,125` is a decimal comma: an eighth, not 125)."""
_POINTS_GROUPED = re.compile(rf"[-+]?{_LEAD}\d{{0,2}}(?:\.\d{{3}}){{2,}}")
"""Thousands grouped by points, twice or more: `1.000.000`, which no decimal point writes. Once (`1.000`) it stays a
decimal point."""
_GROUP_MARKS = re.compile(r"[, \u00a0\u202f\u2009]")


def parse_number(text: str) -> Decimal | None:
    """A final answer as an exact number, or None: "$1,200" -> 1200, "18.0" -> 18.0 (== 18), "-3." -> -3, "45,50 €"
    -> 45.50, "１２" -> 12.

    Folds the figures (`plain_figures`: full-width forms, Arabic separators, U+2212, currency symbols) and strips
    surrounding whitespace; drops thousands separators where they group digits by thousands (`1,200`, `12,34,567`,
    `1 200`); reads a decimal comma where a comma is not such a grouping (`3,5`, `45,50`, `1.234,56`); a trailing
    "." (end of sentence) is allowed. A comma before exactly three digits is read as grouping, a point as the decimal
    mark (`12,500` is 12500, `12.500` 12.5), as most writers mean them: a suite written the other way round reads
    them wrong. Anything else (units, words, fractions) is not a number. Decimal rather than float: equality is exact.
    """
    if not isinstance(text, str):
        return None
    cleaned = plain_figures(text).strip()
    if _GROUPED.fullmatch(cleaned):
        cleaned = _GROUP_MARKS.sub("", cleaned)
    elif _POINTS_GROUPED.fullmatch(cleaned):
        cleaned = cleaned.replace(".", "")
    elif _COMMA_DECIMAL.fullmatch(cleaned):  # after _GROUPED: `12,500` stays twelve thousand five hundred
        whole, fraction = cleaned.rsplit(",", 1)
        cleaned = re.sub(r"[.\u00a0\u202f\u2009 '\u2019]", "", whole) + "." + fraction
    if not _NUMBER.fullmatch(cleaned):
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def answers_equal(got: str, want: str, contract: OutputContract) -> bool:
    """Final answers of a text contract: equal numbers when `numeric`, else equal after `fold`."""
    if contract.numeric:
        a, b = parse_number(got), parse_number(want)
        return a is not None and b is not None and a == b
    return fold(got) == fold(want)


_FENCE = re.compile(r"```[A-Za-z0-9_+-]*\s*")


def _find_object(text: str) -> tuple[dict | None, bool, str | None]:
    """(object, strict, error): the first JSON object at the start of `text`, after whitespace and a fence."""
    if not isinstance(text, str) or not text.strip():
        return None, False, "the output is empty"
    body = text.strip()
    fence = _FENCE.match(body)
    fenced = fence is not None
    if fenced:
        body = body[fence.end() :]
    if not body.startswith("{"):
        # The message depends only on the output's first characters, so `settled` can stop generation there.
        return None, False, f"the output does not start with a JSON object: {text.strip()[:_SNIPPET]!r}"
    try:
        value, end = decode_json_prefix(body)
    except json.JSONDecodeError as exc:
        return None, False, f"the JSON object does not parse ({json_error(exc, f'char {exc.pos}')})"
    if not isinstance(value, dict):  # raw_decode from "{" always yields a dict; kept for clarity
        return None, False, "the output is not a JSON object"
    return value, (not fenced and not body[end:].strip()), None


def settled(text: str, contract: OutputContract) -> bool:
    """True once no further output can change how `parse_output` reads `text`: its value, whether it complies,
    its error and whether it is strict. Generation stops a row there, so a model that runs on after its answer
    (or never starts one) costs no more tokens, and every score stays what it would have been.

    - JSON contracts: the first object is complete and something other than whitespace follows it (that settles
      `strict`), or the output does not start with an object and the part of it the error quotes is complete.
    - Text contracts with an answer pattern: the first final-answer line is complete and text follows it.
    - Free text (`whole_output`): never; the whole output is the answer.
    """
    if contract.kind == "text":
        if contract.whole_output:
            return False
        match = re.compile(contract.answer_pattern, re.MULTILINE).search(text)
        if match is None:
            return False
        after = text[match.end():]
        newline = after.find("\n")
        return newline >= 0 and bool(after[newline:].strip())
    body = text.strip()
    fence = _FENCE.match(body)
    if fence is not None:
        body = body[fence.end():]
    if not body or (fence is None and "```".startswith(body)):
        return False  # nothing yet, or a fence still being written
    if not body.startswith("{"):
        return len(text.strip()) >= _SNIPPET
    try:
        _, end = decode_json_prefix(body)
    except json.JSONDecodeError:
        return False  # unfinished (or broken, which only the end of the output tells apart)
    return bool(body[end:].strip())


_SNIPPET = 60
"""Characters of a non-compliant output quoted in its error."""


def _structure_problem(value: dict, contract: OutputContract) -> str | None:
    """None when `value` has the contract's structure; otherwise the first problem in words."""
    if contract.kind == "label":
        if contract.key not in value:
            return f'missing key "{contract.key}"'
        if not isinstance(value[contract.key], str):
            return f'"{contract.key}" must be a string, got {type(value[contract.key]).__name__}'
        return None
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(contract.schema).iter_errors(value))
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path)
    return f"schema violation{' at ' + path if path else ''}: {error.message}"
