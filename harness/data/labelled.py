"""New labelled examples for a suite that exists (`harness recheck --data`): a file in the suite's own JSONL format,
or any table `harness suite init` reads (.csv, .tsv, .parquet, a .jsonl of other fields), read with the fields the
suite was built from. A team's fresh labels come from the same export as its first ones, so asking them to convert it
to the suite's JSONL first only invited a hand-written converter that writes labels otherwise than init did.

Answers are written as the suite writes its targets and checked against its contract, each problem with its line;
a label spelled otherwise only in case or spacing is read as the suite's spelling, as init merged such spellings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import SuiteError
from harness.core.text import fold
from harness.data.contract import OutputContract
from harness.data.formats import SourceData, read_source
from harness.data.suites import Example, Problems, Suite, TargetCheck, load_examples, show_path


@dataclass(frozen=True)
class FieldNames:
    """The fields a table's rows are read from; None: the suite's recorded field, else a guess from common names."""

    input: str | None = None
    label: str | None = None
    output: str | None = None


def recorded_fields(suite: Suite) -> FieldNames:
    """The input and answer fields `harness suite init` recorded in suite.yaml (`source.fields`), as names to read a
    new file of that export with. A label suite that records none (a bundled one, or one made from chat data) is
    read from a column named as its answers' JSON key (`output.key`); the rest is guessed from common names."""
    source = suite.info.get("source")
    fields = source.get("fields") if isinstance(source, dict) else None
    named = {k: v for k, v in fields.items() if isinstance(v, str) and v.strip()} if isinstance(fields, dict) else {}
    labels = suite.contract.kind == "label"
    answer = named.get("answer") or (suite.contract.key if labels else None)
    return FieldNames(named.get("input"), answer if labels else None, None if labels else answer)


@dataclass(frozen=True)
class Labelled:
    examples: tuple[Example, ...]
    """Each input once, in the file's order."""
    sha256: str
    """Of the file's bytes."""
    repeated: int = 0
    """Rows left out because an earlier row has the same input and answer: a repeat is not more evidence, and
    counted twice it narrowed every interval read from the file."""


def read_labelled(path: Path, suite: Suite, split: str, fields: FieldNames = FieldNames()) -> Labelled:
    """The labelled examples of `path`: in the suite's own format where it is written so (a .jsonl of `input` and
    `output`, or `messages`, and no field named), else as suite init reads a table, from `fields` or the suite's
    recorded ones. Example ids are `<split>:<line>`. SuiteError names every bad line at once, and an input given
    two answers."""
    path = Path(path)
    where = show_path(path)
    try:
        given = any((fields.input, fields.label, fields.output))
        if path.suffix.lower() == ".jsonl" and not given and _suite_format(path):
            examples = load_examples(path, suite.contract, split)[0]
        else:
            recorded = recorded_fields(suite)
            answer = fields if fields.label or fields.output else recorded
            data = read_source(path, fields.input or recorded.input, answer.label, answer.output)
            examples = _examples(data, suite.contract, split, where)
        once = _once(examples, where)
    except SuiteError as exc:  # "add it to `output.labels`": whose? A shared database holds other teams' suites
        raise SuiteError(f"{exc}\n(read against suite {suite.name} {suite.version}, "
                         f"{show_path(suite.path / 'suite.yaml')})") from None
    return Labelled(once, hashlib.sha256(path.read_bytes()).hexdigest(), len(examples) - len(once))


def _once(examples: tuple[Example, ...], where: str) -> tuple[Example, ...]:
    """Each input once; an input given two answers is refused with both lines."""
    first: dict[str, Example] = {}
    problems = Problems()
    for example in examples:
        seen = first.setdefault(example.input, example)
        if seen is not example and _answer(seen) != _answer(example):
            problems.add(f"{where}:{_line(example)}: the input of line {_line(seen)} again, with another answer "
                         f"({example.target} against {seen.target}); keep the right one")
    problems.raise_if_any(where)
    return tuple(first.values())


def _line(example: Example) -> str:
    return example.id.rsplit(":", 1)[-1]


def _answer(example: Example) -> str:
    """The answer as a comparable text (JSON targets with their keys in one order)."""
    try:
        return json.dumps(json.loads(example.target), sort_keys=True)
    except ValueError:
        return example.target


def _suite_format(path: Path) -> bool:
    """Whether the file's first object is a suite row (`input` and `output`, or `messages`); a file that is not read
    so is read as a table instead, whose reader names its problems."""
    try:
        with path.open(encoding="utf-8-sig") as lines:
            first = next((line for line in lines if line.strip()), "")
        row = json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return True  # the suite's reader says what is wrong, with the line
    return isinstance(row, dict) and ({"input", "output"} <= set(row) or "messages" in row)


def _examples(data: SourceData, contract: OutputContract, split: str, where: str) -> tuple[Example, ...]:
    problems, check = Problems(), TargetCheck(contract)
    spelled = {fold(label): label for label in contract.labels}
    examples = []
    for row in data.rows:
        answer = row.answer
        if contract.kind == "label" and isinstance(answer, str):
            target = json.dumps({contract.key: spelled.get(fold(answer), answer)}, ensure_ascii=False)
        else:
            target = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
        if (problem := check(target, row.input)) is not None:
            problems.add(f"{row.at(where)}: {problem}")
            continue
        examples.append(Example(f"{split}:{row.line}", row.input, target, row.instruction))
    problems.raise_if_any(f"{where} ({data.described})")
    return tuple(examples)
