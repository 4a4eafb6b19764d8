"""Fuzzing (issue 11): the suite loader, `suite init` and the output parsers on arbitrary input. Whatever the bytes,
they either work or raise one of the project's errors (a HarnessError, which the CLI prints as a message); never
another exception, which the CLI would show as a traceback.

Strategies mix plain random text with what breaks JSON readers in practice: lines that are arrays or scalars,
unpaired surrogate escapes, nesting deeper than Python's recursion limit, integers beyond its digit limit, BOMs,
other encodings. Each test stays under about 10 s (no example database: nothing is written to the repository).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.core.errors import HarnessError
from harness.data.contract import OutputContract, answers_equal, parse_number, parse_output, parse_target, settled
from harness.data.suite_init import init_suite
from harness.data.suites import load_suite

FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))

LABEL = {"kind": "label", "key": "sound", "labels": ["bark", "meow", "moo"]}
CONTRACTS = [OutputContract.from_dict(raw, "fuzz") for raw in (
    LABEL,
    {"kind": "json", "fields": ["city", "date"], "grounded": True,
     "schema": {"type": "object", "properties": {"city": {"type": "string"}, "date": {"type": "string"}},
                "additionalProperties": False}},
    {"kind": "text"},
    {"kind": "text", "whole_output": True, "numeric": True},
)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
rows = st.fixed_dictionaries({}, optional={
    "input": json_values | st.text(max_size=20), "output": json_values | st.sampled_from(["bark", "meow"]),
    "instruction": json_values, "messages": json_values,
    "text": st.text(max_size=20), "label": st.sampled_from(["bark", "meow", "moo", ""]) | st.text(max_size=5),
})
nasty = st.sampled_from([
    "[" * 5000 + "]" * 5000,  # deeper than the recursion limit
    '{"input": "x", "output": ' + "9" * 5000 + "}",  # longer than the int digit limit
    '{"input": "x \\ud800", "output": {"sound": "bark"}}',  # an unpaired surrogate escape
    '{"text": "x", "label": "b\\udfff"}',
    '{"input": "x", "output": {"sound": NaN}}',
    "\ufeff" + '{"input": "x", "output": {"sound": "bark"}}',
    '["an", "array"]', "null", "3", '"a string"', "",
])
lines = st.one_of(st.text(max_size=60), rows.map(json.dumps), rows.map(lambda r: json.dumps(r, ensure_ascii=False)),
                  json_values.map(json.dumps), nasty)
valid_lines = st.tuples(st.text(min_size=1, max_size=30), st.sampled_from(["bark", "meow", "moo"])).map(
    lambda pair: json.dumps({"input": pair[0], "output": {"sound": pair[1]}, "text": pair[0], "label": pair[1]},
                            ensure_ascii=False))


def _encode(texts: list[str], encoding: str) -> bytes:
    text = "\n".join(texts)
    return text.encode("utf-8", "surrogatepass") if encoding == "utf-8" else text.encode(encoding, "replace")


files = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.lists(lines, max_size=6), st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"])).map(
        lambda pair: _encode(*pair)),
    st.lists(valid_lines | lines, min_size=1, max_size=8).map(lambda texts: _encode(texts, "utf-8")),
    st.lists(valid_lines, min_size=1, max_size=8).map(lambda texts: _encode(texts, "utf-8")),
)


@pytest.fixture(scope="module")
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="harness-fuzz-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@settings(FUZZ, max_examples=400)
@given(train=files, dev=st.sampled_from([b'{"input": "the cat", "output": {"sound": "meow"}}\n', b""]))
def test_suite_loader_never_crashes(scratch, train, dev):
    folder = scratch / "suite"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "suite.yaml").write_text(yaml.safe_dump({"name": "f", "version": "1", "instruction": "x",
                                                       "output": LABEL}))
    (folder / "train.jsonl").write_bytes(train)
    (folder / "dev.jsonl").write_bytes(dev)
    (folder / "test.jsonl").write_bytes(b'{"input": "the cow", "output": {"sound": "moo"}}\n')
    try:
        suite = load_suite(str(folder))
    except HarnessError:
        event("refused")
        return
    event("loaded")
    assert all(ex.input.strip() and ex.target for ex in suite.splits["train"])


def _csv(cells: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    writer.writerows(cells)
    return out.getvalue().encode("utf-8")


sources = st.one_of(
    st.tuples(st.just(".jsonl"), st.lists(lines, max_size=14).map(lambda texts: _encode(texts, "utf-8"))),
    st.tuples(st.just(".jsonl"), st.lists(valid_lines, min_size=9, max_size=24).map(
        lambda texts: _encode(texts, "utf-8"))),
    st.tuples(st.just(".csv"), st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=3), max_size=14).map(_csv)),
    st.tuples(st.sampled_from([".csv", ".jsonl"]), st.binary(max_size=200)),
)


@settings(FUZZ, max_examples=300)
@given(source=sources, metric=st.sampled_from([None, "exact", "rouge", "final-number"]),
       drop_rare=st.booleans())
def test_suite_init_never_crashes_and_writes_all_or_nothing(scratch, source, metric, drop_rare):
    suffix, data = source
    folder = scratch / "init"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / f"data{suffix}"
    path.write_bytes(data)
    try:
        result = init_suite("new", path, metric=metric, drop_rare_labels=drop_rare, suites_dir=folder / "suites")
    except HarnessError:
        assert not (folder / "suites" / "new").exists()  # nothing written halfway
        event("refused")
        return
    event(f"wrote a {result.path.name} suite")
    load_suite(str(result.path))  # what init writes, the loader accepts


outputs = st.one_of(
    st.text(max_size=80), json_values.map(json.dumps), nasty,
    st.text(max_size=40).map(lambda text: "```json\n{" + text),
    st.text(max_size=40).map(lambda text: "#### " + text),
    st.text(max_size=20).map(lambda text: '{"sound": "' + text),
)


@settings(FUZZ, max_examples=1500)
@given(text=outputs)
def test_output_parsers_never_crash(text):
    """Model outputs are never refused, only judged; a reference answer is refused with a HarnessError."""
    for contract in CONTRACTS:
        parsed = parse_output(text, contract)
        assert parsed.compliant == (parsed.error is None)
        settled(text, contract)
        answers_equal(text, text[::-1], contract)
        try:
            parse_target(text, contract)
        except HarnessError:
            pass
    parse_number(text)
