"""The labels of a new label suite: naming integer ids, spelling variants, and the checks and notes on them."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from harness.core.errors import SuiteError
from harness.core.text import fold, listed_with_and
from harness.data.contract import (
    how_apart,
    json_error,
    label_clashes,
    load_json,
    parse_number,
    spelled_label,
    spelling_key,
)
from harness.data.formats import Row
from harness.data.init_messages import MAX_LISTED, given_text
from harness.data.suites import SPLITS, Problems, encoding_problem, show_path

MIN_PER_LABEL = len(SPLITS)
"""A label needs one example in each of train, dev and test, or it is never trained on or never evaluated."""
MIN_LABEL_ROWS = 2 * MIN_PER_LABEL
"""The fewest rows a label suite can have: two labels, each in train, dev and test. Below it, a label field with many
distinct values says nothing about free text: the file is simply too small."""


# ------------------------------------------------------------------------------------------- naming integer ids


def read_label_names(path: Path) -> dict[int, str]:
    """The names of integer label ids, from a JSON list (the name of id i at index i, as a Hugging Face `ClassLabel`
    lists them; `{"names": [...]}` too), a JSON object {"id": name}, or a text file with one name per line (line 1
    names id 0). Names must be distinct after folding case and spacing, as scoring compares labels."""
    where = show_path(path)
    layouts = ('a JSON list of names in id order (["billing", "refund"]), a JSON object {"0": "billing", ...}, or a '
               "text file with one name per line, id 0 first")
    if not path.is_file():
        raise SuiteError(f"{where}: file not found; --label-names takes {layouts}.")
    data = path.read_bytes()
    problem = encoding_problem(data, path.name)
    if problem is not None:
        raise SuiteError(f"{where}:{problem}")
    text = data.decode("utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            raw = load_json(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{where}: malformed JSON ({json_error(exc, f'line {exc.lineno}')}); --label-names "
                             f"takes {layouts}.") from None
        if isinstance(raw, dict) and list(raw) == ["names"]:
            raw = raw["names"]
        if isinstance(raw, list):
            names = dict(enumerate(raw))
        elif isinstance(raw, dict) and all(_INTEGER.fullmatch(str(k)) for k in raw):
            names = {int(k): v for k, v in raw.items()}
        else:
            got = "an object whose keys are not all integer ids" if isinstance(raw, dict) else "another JSON value"
            raise SuiteError(f"{where}: expected {layouts}; got {got}.")
    else:
        lines = text.rstrip("\r\n").split("\n")
        names = {i: line.strip() for i, line in enumerate(lines)}
    bad = [i for i, name in names.items() if not isinstance(name, str) or not name.strip()]
    if bad:
        where_bad = ", ".join(f"line {i + 1}" if path.suffix.lower() != ".json" else f"id {i}" for i in bad[:5])
        raise SuiteError(f"{where}: {where_bad}: a label name must be non-empty text; fill it in.")
    names = {i: name.strip() for i, name in names.items()}
    clashes = label_clashes(names.values())
    if clashes:
        listed = "; ".join(", ".join(repr(name) for name in group) for group in clashes)
        raise SuiteError(f"{where}: names equal once case and spacing are folded, which scoring reads as one label: "
                         f"{listed}; give each id a distinct name.")
    return names


_INTEGER = re.compile(r"[-+]?\d+")


def name_labels(rows: list[Row], names: Mapping[int, str], names_file: Path, where: str) -> tuple[list[Row], str]:
    """Each integer label replaced by its name; a label that is not an id the file names is refused with its line.
    Returns the rows and a note saying what was named."""
    shown = show_path(Path(names_file))
    problems = Problems()
    named = []
    for row in rows:
        if isinstance(row.answer, dict):
            raise SuiteError(f"{row.at(where)}: the answer is a JSON object; --label-names names integer labels. "
                             f"Drop --label-names.")
        if not _INTEGER.fullmatch(row.answer):
            problems.add(f"{row.at(where)}: the label {row.answer!r} is not an integer id, which --label-names "
                         f"({shown}) names; write every label as an id or drop --label-names.")
        elif int(row.answer) not in names:
            problems.add(f"{row.at(where)}: label id {row.answer} has no name in {shown} (it names ids "
                         f"{_id_range(names)}); add its name there or fix the label.")
        else:
            named.append(replace(row, answer=names[int(row.answer)]))
    problems.raise_if_any(where)
    used = sorted({int(r.answer) for r in rows})
    listed = ", ".join(f"{i} -> `{names[i]}`" for i in used[:MAX_LISTED])
    more = f" and {len(used) - MAX_LISTED} more" if len(used) > MAX_LISTED else ""
    return named, f"labels: named from {shown}: {listed}{more}."


def _id_range(names: Mapping[int, str]) -> str:
    ids = sorted(names)
    if len(ids) > 2 and ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]} to {ids[-1]}"
    return listed_with_and([str(i) for i in ids])


def label_ids_note(labels: list[str]) -> list[str]:
    """A warning, as a one-line list, when every label is an integer: prompting trials are asked for an id that means
    nothing to a model that never trained on the data, so fine-tuning would win the comparison by construction."""
    if not all(_INTEGER.fullmatch(label) for label in labels):
        return []
    shown = ", ".join(labels[:MAX_LISTED]) + (", ..." if len(labels) > MAX_LISTED else "")
    return [f"warning: every label is an integer ({shown}), so prompting trials are asked to answer with an id that "
            f"tells a model nothing, and fine-tuning wins the comparison by construction. If the ids stand for "
            f"classes, give their names with --label-names FILE (a JSON list of names in id order, a JSON object "
            f'{{"0": "name", ...}}, or one name per line) and run init again; if the numbers mean something as they '
            f"are (a 1-5 rating), say what in suite.yaml's `instruction`."]


# ----------------------------------------------------------------------------------------------------- spelling


def spell_labels(rows: list[Row]) -> tuple[list[Row], list[str]]:
    """Each label spelled one way: labels equal after folding case and spacing are one label, written as its most
    frequent spelling (the first seen of equally frequent ones), since `Billing` and `billing ` name one queue.

    Returns the rows and a note listing the merged spellings (none when nothing was merged).
    """
    spellings: dict[str, Counter[str]] = {}
    for row in rows:
        spellings.setdefault(fold(row.answer), Counter())[row.answer] += 1
    chosen = {folded: counts.most_common(1)[0][0] for folded, counts in spellings.items()}
    merged = [(spelling, n, chosen[folded]) for folded, counts in spellings.items() if len(counts) > 1
              for spelling, n in counts.items() if spelling != chosen[folded]]
    if not merged:
        return rows, []
    groups = sum(len(counts) > 1 for counts in spellings.values())
    listed = ", ".join(f"{spelled_label(spelling)} ({n}) -> {spelled_label(label)} (apart {how_apart(spelling, label)})"
                       for spelling, n, label in merged[:MAX_LISTED])
    more = f" and {len(merged) - MAX_LISTED} more" if len(merged) > MAX_LISTED else ""
    note = (
        f"labels: respelled {len(merged)} variant{'' if len(merged) == 1 else 's'} as {groups} "
        f"label{'' if groups == 1 else 's'} (case, spacing and how accents are written ignored; each label keeps its "
        "most frequent "
        f"spelling): {listed}{more}. If some are different labels, rename them in the data."
    )
    return [replace(r, answer=chosen[fold(r.answer)]) for r in rows], [note]


def _singular(key: str) -> str:
    """`claims` -> `claim`: a plural s is the commonest slip of hand-tagged labels (`Claim` (31) beside `Claims` (90)
    made two classes of one). `ss` stays (`address`)."""
    return key[:-1] if len(key) > 3 and key.endswith("s") and not key.endswith("ss") else key


def merge_label_variants(rows: list[Row]) -> tuple[list[Row], list[str]]:
    """Each group `label_variants_text` finds made one label, written as its most frequent member (`suite init
    --merge-label-variants`): a support team's export wrote one intent `card_arrival` (93) and `Card Arrival` (61),
    which otherwise stay two labels, and a right answer on either reads wrong. Returns the rows and a note naming
    every merge (none when nothing was merged)."""
    counts = Counter(r.answer for r in rows)
    into = {}
    for group in _variant_groups(counts):
        kept = max(group, key=lambda label: (counts[label], -group.index(label)))
        into.update({label: kept for label in group if label != kept})
    if not into:
        return rows, []
    listed = ", ".join(f"`{label}` ({counts[label]}) -> `{kept}`" for label, kept in list(into.items())[:MAX_LISTED])
    more = f" and {len(into) - MAX_LISTED} more" if len(into) > MAX_LISTED else ""
    note = (f"labels: merged {len(into)} variant{'' if len(into) == 1 else 's'} into the most frequent spelling of "
            f"each group (--merge-label-variants): {listed}{more}.")
    return [replace(r, answer=into.get(r.answer, r.answer)) for r in rows], [note]


def _variant_groups(counts: Mapping[str, int]) -> list[list[str]]:
    """The groups of labels that are probably one label spelled several ways, each sorted (see
    `label_variants_text`)."""
    groups: dict[object, list[str]] = {}
    for label in counts:
        number = parse_number(label)
        groups.setdefault(_singular(spelling_key(label)) if number is None else number, []).append(label)
    return sorted(sorted(group) for group in groups.values() if len(group) > 1)


def label_variants_text(counts: Mapping[str, int]) -> str | None:
    """The groups of labels that are probably one label spelled several ways, each label with its example count
    (`top up failed` (17), `top_up_failed` (16); `1` (8), `01` (6)), or None when there are none.

    Labels are grouped by `spelling_key` (case, spaces, hyphens and underscores removed, so `get_weather` meets
    `GetWeather` and `Play Music` meets `PlayMusic`) with a plural s dropped (`Claims` meets `Claim`), or by their
    numeric value, in one pass: cheap on any label set.
    Nothing is merged unless asked (`merge_label_variants`), since `1` and `1.0` may be different codes on purpose.
    """
    found = _variant_groups(counts)
    if not found:
        return None
    listed = "; ".join(", ".join(f"`{label}` ({counts[label]})" for label in group) for group in found[:MAX_LISTED])
    return listed + (f"; and {len(found) - MAX_LISTED} more groups" if len(found) > MAX_LISTED else "")


# ------------------------------------------------------------------------------------------------------- checks


def check_labels(
    rows: list[Row], where: str, drop_rare: bool, given: Mapping[str, Path]
) -> tuple[list[Row], dict[str, int]]:
    """No label of the --from file too rare to split, and at least two left. A split given as its own file takes
    nothing from the --from file, so a label there needs one example fewer; the given files themselves are kept as
    they are (a label seen once in an agreed test set is still scored).

    Returns the rows and the rare labels dropped from the --from file (with --drop-rare-labels), by label and count.
    """
    counts = Counter(r.answer for r in rows if r.split is None)
    filled = [split for split in SPLITS if split not in given]  # the splits the --from file fills
    needed = len(filled)
    rare = {label: n for label, n in sorted(counts.items()) if n < needed}
    if rare and not drop_rare:
        listed = ", ".join(f"{label!r} ({n})" for label, n in list(rare.items())[:MAX_LISTED])
        more = (f" and {len(rare) - MAX_LISTED} more (with --drop-rare-labels, suite.yaml's "
                f"`cleaning.rare_labels_dropped` names every one)") if len(rare) > MAX_LISTED else ""
        from_others = f" ({given_text(given)})" if given else ""
        raise SuiteError(
            f"{where}: {len(rare)} label(s) with fewer than {needed} examples, too few to put one in each of "
            f"{listed_with_and(filled)}{from_others}: {listed}{more}. Merge them into related labels, add examples, or "
            f"pass --drop-rare-labels to leave them out (the count is recorded in suite.yaml)."
            + (" Every answer is a number: if they are amounts or counts rather than classes, pass --output-field "
               "with --metric exact instead, which compares answers by value."
               if rare_numbers(rows) else "")
        )
    rows = [r for r in rows if r.split is not None or r.answer not in rare]
    if len(counts) - len(rare) < 2:
        kept = ", ".join(repr(label) for label in counts if label not in rare) or "none"
        raise SuiteError(
            f"{where}: labels left with enough examples: {kept}; a classifier needs at least two, or it is always "
            f"right. Add examples of other labels, or use --metric for free-text answers."
        )
    return rows, rare


def rare_numbers(rows: list[Row]) -> int:
    """How many distinct answers are too rare to be labels, when every answer is a number; 0 otherwise."""
    if any(parse_number(r.answer) is None for r in rows):
        return 0
    return sum(1 for n in Counter(r.answer for r in rows).values() if n < MIN_PER_LABEL)


def not_labels_message(rows: list[Row], read: int, distinct: int, column: str | None, where: str) -> str:
    """Why a label field with more than half its values distinct cannot make a label suite: too few rows when no
    label suite could fit the file, else free text (with the rows those values would need, if a value repeats)."""
    needed = f"{MIN_PER_LABEL} examples of each label (one for each of train, dev and test)"
    if len(rows) < MIN_LABEL_ROWS:
        counted = f"{len(rows)} row{'' if len(rows) == 1 else 's'}"
        if read > len(rows):
            counted += f" after de-duplication ({read} read)"
        return (
            f"{where}: {counted}, too few for a label suite: it needs {needed}, so at least "
            f"{MIN_PER_LABEL * max(distinct, 2)} rows for the {distinct} labels in `{column}`. Add examples; if "
            f"`{column}` holds free text, not labels, pass --metric exact or --metric rouge instead."
        )
    message = (
        f"{where}: {distinct} distinct values in {len(rows)} answers of `{column}`: that is free text, not a label. "
        f"Build a text suite instead: --metric exact (the whole answer must match), --metric rouge (partial credit "
        f"for long answers) or --metric final-number (answers ending `#### <number>`)."
    )
    if distinct < len(rows):  # a value repeats, so these may be labels in a file too small for them
        message += (f" If they are labels, there are too few rows: a label suite needs {needed}, so at least "
                    f"{MIN_PER_LABEL * distinct} rows for {distinct} labels.")
    return message


def unseen_labels_note(rows: list[Row], where: str) -> list[str]:
    """A warning, as a one-line list, naming labels that only a given dev or test file has: no adapter can learn
    them and no shot can show them, so they are scored but never taught."""
    taught = {r.answer for r in rows if r.split is None}
    unseen = Counter(r.answer for r in rows if r.answer not in taught)
    if not unseen:
        return []
    listed = ", ".join(f"`{label}` ({n})" for label, n in sorted(unseen.items())[:MAX_LISTED])
    more = f" and {len(unseen) - MAX_LISTED} more" if len(unseen) > MAX_LISTED else ""
    return [f"warning: label(s) with no example in {where}, so none in train: {listed}{more}. They are scored but "
            f"no adapter can learn them and no shot can show them; add examples to {where} if you can."]
