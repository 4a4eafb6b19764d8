"""Which output contract a new suite gets from its answers (label, json or text), and the notes that say why."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.core.errors import SuiteError
from harness.core.text import fold, written_in
from harness.data.contract import (
    DEFAULT_ANSWER_PATTERN,
    OutputContract,
    number_values,
    numbers_in,
    parse_number,
    parse_output,
    string_values,
)
from harness.data.formats import Row, SourceData
from harness.data.init_messages import MAX_LISTED, few_inputs_text, row_line, shown_answer
from harness.data.schema_inference import dates_note, few_values_note, infer_schema, required_note
from harness.data.suite_labels import (
    MIN_PER_LABEL,
    check_labels,
    label_ids_note,
    label_variants_text,
    merge_label_variants,
    not_labels_message,
    rare_numbers,
    spell_labels,
    unseen_labels_note,
)
from harness.data.suites import Problems

METRICS = ("exact", "rouge", "final-number")
SHORT_ANSWER_WORDS = 5
"""Median answer length (words) up to which a free-text default is `exact`; longer answers rarely match word for
word, so they default to `rouge`."""
LABEL_SCORERS = ["format_compliance", "hallucination_rate", "task_accuracy"]
JSON_SCORERS = LABEL_SCORERS + ["field_precision", "field_recall", "field_f1"]
TEXT_SCORERS = {
    "exact": ["format_compliance", "task_accuracy"],
    "rouge": ["format_compliance", "task_accuracy", "rouge_l"],
    "final-number": ["format_compliance", "task_accuracy", "rouge_l"],
}
_FINAL_NUMBER = OutputContract(kind="text", answer_pattern=DEFAULT_ANSWER_PATTERN, numeric=True)


@dataclass(frozen=True)
class Contract:
    output: dict[str, Any]
    """The `output:` block of suite.yaml."""
    task: str
    scorers: list[str]
    instruction: str
    """The default suite instruction for this kind, used when the data has no common one."""
    notes: list[str]
    rare_labels: dict[str, int] = field(default_factory=dict)
    """Labels left out by --drop-rare-labels, with their example counts."""


def choose_contract(
    rows: list[Row], data: SourceData, metric: str | None, drop_rare: bool, where: str,
    given: Mapping[str, Path], named: bool, merge_variants: bool = False,
) -> tuple[Contract, list[Row]]:
    """The contract for these answers (see `suite_init`'s module docstring), and the rows as that contract reads them.
    `given`: the splits that came from their own files; `named`: whether --label-names named the labels;
    `merge_variants`: labels that are probably one label spelled several ways become one (`merge_label_variants`)."""
    objects = _all_objects(rows, where)
    column = data.fields.answer  # None for chat and alpaca
    if objects and data.fields.labels_expected:
        raise SuiteError(f"{where}: `{column}` holds JSON objects, not labels; pass --output-field {column} instead.")
    if objects and metric:
        raise SuiteError(f"{where}: the answers are JSON objects; --metric {metric} needs text answers. Drop --metric.")
    if metric:
        return _text_contract(rows, metric, f"--metric {metric}", where), rows
    if objects:
        key = _single_key(rows)
        if key is None:
            return _json_contract(rows), rows
        rows = [replace(r, answer=r.answer[key].strip()) for r in rows]
        why = f"every answer is {{{key!r}: ...}} with few distinct values"
        return _label_contract(rows, key, why, where, drop_rare=drop_rare, given=given, named=named,
                               merge_variants=merge_variants)
    distinct = len({fold(r.answer) for r in rows})
    counted = f"{distinct} distinct values in {len(rows)} answers"
    if data.fields.labels_expected and distinct > len(rows) / 2:
        message = not_labels_message(rows, len(data.rows), distinct, column, where)
        if len(data.rows) > 2 * len(rows):  # most rows repeated an input: the counts above are of what is left
            message += " " + few_inputs_text(data, len(rows), where)
        raise SuiteError(message)
    if distinct <= len(rows) / 2:
        rare = rare_numbers(rows)
        if rare and not data.fields.labels_expected:  # a numeric answer (a count, an amount), not a class
            why = (f"{counted}, every one a number and {rare} of them too rare to be a label (fewer than "
                   f"{MIN_PER_LABEL} examples), so a numeric answer, compared by value; pass --label-field to make "
                   "them labels instead")
            return _text_contract(rows, "exact", why, where), rows
        return _label_contract(rows, column or "label", counted, where, drop_rare=drop_rare, given=given, named=named,
                               merge_variants=merge_variants)
    metric, why = _default_metric([r.answer for r in rows])
    return _text_contract(rows, metric, f"{counted}, so free text; {why}", where), rows


def _all_objects(rows: list[Row], where: str) -> bool:
    """Whether the answers are JSON objects (True) or text (False); refuses a file that mixes the two."""
    first = isinstance(rows[0].answer, dict)
    odd = next((r for r in rows if isinstance(r.answer, dict) != first), None)
    if odd is not None:
        kinds = ("text", "a JSON object") if first else ("a JSON object", "text")
        raise SuiteError(
            f"{odd.at(where)}: the answer is {kinds[0]}, but the answer on {row_line(rows[0])} is {kinds[1]}; "
            f"make every answer a JSON object or every answer text."
        )
    return first


def _single_key(rows: list[Row]) -> str | None:
    """The key when every answer is {that key: a string} and the strings repeat like labels (this harness's own
    label format, e.g. `{"intent": "card_arrival"}`); None otherwise."""
    keys = {tuple(r.answer) for r in rows}
    if len(keys) != 1 or len(next(iter(keys))) != 1:
        return None
    (key,) = next(iter(keys))
    values = [r.answer[key] for r in rows]
    if not all(isinstance(v, str) and v.strip() for v in values) or len({fold(v) for v in values}) > len(rows) / 2:
        return None
    return key


# -------------------------------------------------------------------------------------------------------- label


def _label_contract(
    rows: list[Row], key: str, why: str, where: str, *, drop_rare: bool, given: Mapping[str, Path], named: bool,
    merge_variants: bool = False,
) -> tuple[Contract, list[Row]]:
    rows, spelling_notes = spell_labels(rows)
    if merge_variants:
        rows, merged = merge_label_variants(rows)
        spelling_notes += merged
    rows, rare = check_labels(rows, where, drop_rare, given)
    counts = Counter(r.answer for r in rows)
    labels = sorted(counts)
    variants = label_variants_text(counts)
    variant_notes = [
        f"warning: labels in {where} that differ only in hyphens and underscores, case and spacing, a plural s, or in "
        f"how a number is written are kept as different labels: {variants}. If each group is one label, write it one "
        f"way in the data, or run init again with --merge-label-variants; if they are different labels, ignore this."
    ] if variants else []
    contract = Contract(
        output={"kind": "label", "key": key, "labels": labels},
        task="classification",
        scorers=LABEL_SCORERS,
        instruction=f"Read the input and classify it: name its {key}.",
        notes=[f'contract: label, answered as {{"{key}": LABEL}}, {len(labels)} labels ({why}); pass --metric '
               f"for free text instead.", *spelling_notes, *variant_notes, *unseen_labels_note(rows, where),
               *([] if named else label_ids_note(labels))],
        rare_labels=rare,
    )
    return contract, rows


# --------------------------------------------------------------------------------------------------------- json


def _json_contract(rows: list[Row]) -> Contract:
    answers = [r.answer for r in rows]
    miss = next(((r, s) for r in rows for s in string_values(r.answer) if not written_in(fold(s), fold(r.input))),
                None)  # as the suite's check and the hallucination scorer read it
    has_strings = any(list(string_values(a)) for a in answers)
    grounded: bool | list[str] = miss is None and has_strings  # with no strings at all there is nothing to ground
    if grounded:
        why = "every string value in the answers occurs in its input, so a value a model invents counts as hallucinated"
    elif miss is None:
        why = "the answers hold no string values to look for in the input"
    else:
        row, value = miss
        copied = _copied_keys(rows)
        why = (f"{row_line(row)}: {value!r} does not occur in its input, so "
               + (f"only the values of {', '.join(copied)}, each written in its input in every answer, are checked "
                  "against it (a value a model invents there counts as hallucinated); "
                  if copied else "values cannot be checked against the input; ")
               + "if answers should be copied from the input, fix that line, then set `output.grounded: true`")
        grounded = copied or False
    numbers, numbers_why = _grounded_numbers(rows) if grounded is True else (False, "")
    output = {"kind": "json", **infer_schema(answers), "grounded": grounded,
              **({"grounded_numbers": True} if numbers else {})}
    said = f"[{', '.join(grounded)}]" if isinstance(grounded, list) else str(grounded).lower()
    return Contract(
        output=output,
        task="extraction",
        scorers=JSON_SCORERS,
        instruction="Read the input and extract the requested fields as a JSON object.",
        notes=["contract: json (every answer is a JSON object)", f"grounded: {said}: {why}.",
               *([numbers_why] if numbers_why else []), required_note(output["schema"], len(answers)),
               *filter(None, [dates_note(output["schema"]), few_values_note(answers)])],
    )


def _copied_keys(rows: list[Row]) -> list[str]:
    """The keys whose string values are written in their input in every answer that gives one (and some answer
    does): what a contract can ground when not every key is copied from the input."""
    seen: dict[str, bool] = {}
    for row in rows:
        text = fold(row.input)
        for key, item in row.answer.items():
            for value in string_values(item):
                seen[key] = seen.get(key, True) and written_in(fold(value), text)
    return [key for key, copied in seen.items() if copied]


def _grounded_numbers(rows: list[Row]) -> tuple[bool, str]:
    """Whether every number value of the answers is written in its input (an amount copied from the input), so an
    invented number can count as hallucinated too; with why, in words. Answers that compute a number (a sum, a
    count) leave it off."""
    if not any(next(number_values(r.answer), None) is not None for r in rows):
        return False, ""
    miss = next(((r, n) for r in rows for n in number_values(r.answer) if n not in numbers_in(r.input)), None)
    if miss is None:
        return True, ("grounded_numbers: true: every number value in the answers is written in its input, so a "
                      "number a model invents counts as hallucinated too.")
    row, number = miss
    return False, (f"grounded_numbers: false: {row_line(row)}: the number {number} is not written in its input (the "
                   "answers compute numbers), so only string values are checked against the input.")


# --------------------------------------------------------------------------------------------------------- text


def _text_contract(rows: list[Row], metric: str, why: str, where: str) -> Contract:
    notes = [f"contract: text, metric {metric} ({why})."]
    if metric == "final-number":
        if all(parse_output(r.answer, _FINAL_NUMBER).value is None for r in rows):
            numbers = all(parse_number(r.answer) is not None for r in rows)
            raise SuiteError(
                f"{where}: no answer has a `#### <number>` line ({row_line(rows[0])} ends "
                f"{rows[0].answer[-40:]!r}), which --metric final-number reads the answer from. "
                + ("Every answer is a bare number: pass --metric exact, which compares them by value."
                   if numbers else "Pass --metric exact or --metric rouge, or end each answer with `#### <number>`. "
                   "Where the number sits inside a sentence (`... so the answer is 10.`), build the suite with "
                   "--metric exact, then in its suite.yaml replace `output.whole_output: true` with "
                   "`answer_pattern:`, a regular expression whose one group captures the number (e.g. "
                   "'answer is\\s*(-?[\\d,.]+)'), and set `output.numeric: true`."))
        problems = Problems()
        for row in rows:
            problem = _final_number_problem(row.answer)
            if problem:
                problems.add(
                    f"{row.at(where)}: not a final-number answer: {problem} (ends {row.answer[-40:]!r}); end it "
                    f"with `#### <number>`, or pass --metric exact or --metric rouge."
                )
        problems.raise_if_any(where)
        output = {"kind": "text", "answer_pattern": DEFAULT_ANSWER_PATTERN, "numeric": True}
        notes.append("scoring: task_accuracy compares the number on the `#### <number>` line, rouge_l the steps.")
    else:
        # a suite of numeric answers compares them by value ("18.0" == "18"), not as strings
        not_numbers = [r for r in rows if parse_number(r.answer) is None]
        output = {"kind": "text", "whole_output": True, "numeric": not not_numbers}
        compared = "as a number" if not not_numbers else "after folding case and whitespace"
        notes.append(f"scoring: task_accuracy compares the whole answer {compared}.")
        notes.extend(_mostly_numbers_note(rows, not_numbers, where))
    if metric == "rouge":
        notes.append(
            "scoring: rouge_l gives partial credit for the whole answer; set `objective.metric: rouge_l` in the "
            "experiment to choose trials by it instead of exact match."
        )
    return Contract(output, "generation", TEXT_SCORERS[metric], "Read the input and answer it.", notes)


def _default_metric(answers: list[str]) -> tuple[str, str]:
    """The text metric these answers suggest, and why."""
    if all(_final_number_problem(a) is None for a in answers):
        return "final-number", "every answer ends with a `#### <number>` line"
    words = statistics.median(word_count(a) for a in answers)
    median = f"median {words:g} word{'' if words == 1 else 's'}"
    if words <= SHORT_ANSWER_WORDS:
        return "exact", f"answers are short ({median}), so the whole answer must match"
    return "rouge", f"answers are long ({median}), so exact match would score near zero"


_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f"
_WORDS = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")


def word_count(text: str) -> int:
    """Words as a reader counts them, each Chinese or Japanese character one (those scripts put no space between
    words): a 35-character Japanese summary had counted one word, so init took it for a short answer to match
    whole, and left ROUGE-L out. (Thai also runs its words together; a character each overcounts, but no longer
    reads a paragraph as one word.)"""
    return len(_WORDS.findall(text))


def _final_number_problem(answer: str) -> str | None:
    """Why an answer does not fit --metric final-number (the checks of `parse_target`, in init's words), or None."""
    parsed = parse_output(answer, _FINAL_NUMBER)
    if parsed.value is None:
        return "it has no `#### <number>` line"
    if parsed.error:
        return parsed.error
    return None if parsed.strict else "it has text after its `#### <number>` line"


def _mostly_numbers_note(rows: list[Row], not_numbers: list[Row], where: str) -> list[str]:
    """A note, as a one-line list, when most answers are numbers but some are not: then every answer is compared as
    text, so `1,000` no longer matches `1000`, and the user should learn which lines caused it."""
    if not not_numbers or len(not_numbers) * 2 > len(rows):
        return []
    listed = ", ".join(f"{row_line(r)} ({shown_answer(r.answer)})" for r in not_numbers[:MAX_LISTED])
    more = f" and {len(not_numbers) - MAX_LISTED} more" if len(not_numbers) > MAX_LISTED else ""
    numbers = len(rows) - len(not_numbers)
    return [f"scoring: {numbers} of {len(rows)} answers are numbers, but in {where} {listed}{more} "
            f"{'is' if len(not_numbers) == 1 else 'are'} not, so every answer is compared as text (`1,000` would not "
            f"match `1000`). To compare by value, write those answers as plain numbers (a decimal point, not a "
            f"comma; no units) and run init again."]
