"""`harness suite init`: turn a user's data file into a validated suite folder.

Reading and format detection live in `formats.py`; this module chooses the output contract, cleans, splits (seeded,
stratified by label) and writes. Every choice made on the user's behalf comes back as a note that says what was
chosen and why, and is kept in suite.yaml under `source.detected`. The contract, first rule that applies:

  --metric exact|rouge|final-number    text, with that metric
  every answer a JSON object           json (grounded when every string value occurs in its input); label instead
                                       when each object is {one key: a value repeated across answers}
  at most half the answers distinct    label; text with exact (compared by value) instead when every answer is a
                                       number and some are too rare to be labels, unless --label-field says labels
  otherwise                            text: final-number when every answer ends `#### <number>`, exact when
                                       answers are short (median <= 5 words), else rouge

Data that would make a silently meaningless suite is refused with the file, the line and what to do instead:
free text in a label field, labels too rare to appear in every split, a one-label classifier, empty turns. Labels
that differ only in case or spacing are merged, and the note says which; labels that differ only in hyphens,
underscores and word breaks or in how a number is written (`top-up`/`top_up`, `get_weather`/`GetWeather`,
`1`/`01`/`1.0`) are kept apart, with a warning. Integer labels are named from --label-names, or warned about: a
prompted model cannot know what `3` means. A JSON contract requires the keys every answer has.

A dev or test split the user already has (--dev-from, --test-from) is kept as it is: read like the --from file,
refused where it shares an input with another file, and left out of the examples-per-label rule, which then counts
only the splits the --from file still fills.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import statistics
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.core.config import MAX_SEED
from harness.core.errors import SuiteError
from harness.core.paths import bundled
from harness.core.text import fold, near_fold
from harness.core.yamlfile import dump_yaml
from harness.data.contract import (
    DEFAULT_ANSWER_PATTERN,
    OutputContract,
    json_error,
    label_clashes,
    load_json,
    parse_number,
    parse_output,
    spelling_key,
)
from harness.data.formats import Row, SourceData, read_source
from harness.data.suites import (
    RESERVED_DIRS,
    SPLITS,
    Problems,
    encoding_problem,
    list_suites,
    load_suite,
    resolve_suite_path,
    show_path,
)

METRICS = ("exact", "rouge", "final-number")
SHORT_ANSWER_WORDS = 5
"""Median answer length (words) up to which a free-text default is `exact`; longer answers rarely match word for
word, so they default to `rouge`."""
MIN_PER_LABEL = len(SPLITS)
"""A label needs one example in each of train, dev and test, or it is never trained on or never evaluated."""
MIN_LABEL_ROWS = 2 * MIN_PER_LABEL
"""The fewest rows a label suite can have: two labels, each in train, dev and test. Below it, a label field with many
distinct values says nothing about free text: the file is simply too small."""
MAX_LISTED = 10
"""How many merged label spellings a note lists before `and N more`."""
LABEL_SCORERS = ["format_compliance", "hallucination_rate", "task_accuracy"]
JSON_SCORERS = LABEL_SCORERS + ["field_precision", "field_recall", "field_f1"]
TEXT_SCORERS = {
    "exact": ["format_compliance", "task_accuracy"],
    "rouge": ["format_compliance", "task_accuracy", "rouge_l"],
    "final-number": ["format_compliance", "task_accuracy", "rouge_l"],
}
_FINAL_NUMBER = OutputContract(kind="text", answer_pattern=DEFAULT_ANSWER_PATTERN, numeric=True)


@dataclass(frozen=True)
class InitResult:
    path: Path
    """The new suite folder."""
    notes: list[str]
    """What was detected or chosen and why, one line each (format, contract, grounding, instruction), as kept in
    suite.yaml; then a warning when the name is also a bundled suite's, which is about this machine, not the data."""
    dropped: dict[str, int]
    """What cleaning left out, by reason (also in suite.yaml's `cleaning` block)."""


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


def init_suite(
    name: str,
    source: Path,
    input_field: str | None = None,
    label_field: str | None = None,
    output_field: str | None = None,
    *,
    metric: str | None = None,
    drop_rare_labels: bool = False,
    seed: int = 0,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    suites_dir: Path = Path("suites"),
    label_names: Path | None = None,
    dev_from: Path | None = None,
    test_from: Path | None = None,
) -> InitResult:
    """Build suites/NAME from a data file: read, dedupe, choose the contract, split, write, validate.

    `label_names`: a file naming integer label ids (see `read_label_names`). `dev_from`, `test_from`: files that are
    the dev or test split as they are (an agreed test set), read with the fields of `source`, which then gives only
    the other splits; the contract is chosen from every file's answers.

    The folder appears complete or not at all (built in a temp dir, validated, then renamed), so a failed init
    never leaves a half-written suite that a later run would pick up.
    """
    source = Path(source)
    dest = _destination(name, Path(suites_dir))
    if not (0 < dev_fraction < 1 and 0 < test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise SuiteError(f"dev/test fractions {dev_fraction}/{test_fraction} must be in (0, 1) and sum below 1.")
    if metric is not None and metric not in METRICS:
        raise SuiteError(f"--metric {metric!r} is not one of {', '.join(METRICS)}.")
    if metric and label_field:
        raise SuiteError("--metric builds a free-text suite and --label-field a label suite; pass one of them.")
    if metric and label_names:
        raise SuiteError("--metric builds a free-text suite and --label-names names the labels of a label suite; pass "
                         "one of them.")
    if not 0 <= seed <= MAX_SEED:  # the bounds of an experiment's `seed`, so one number serves both
        raise SuiteError(f"--seed must be at least 0 and at most {MAX_SEED}; got {seed}. Pass a seed in that range "
                         f"(the default is 0).")
    given = {split: Path(path) for split, path in (("dev", dev_from), ("test", test_from)) if path is not None}
    _check_split_files(source, given)
    names = read_label_names(Path(label_names)) if label_names is not None else None
    data = read_source(source, input_field, label_field, output_field)
    where = show_path(source)
    if data.fields.input is not None and data.fields.input == data.fields.answer:
        raise SuiteError(f"{where}: `{data.fields.input}` would be both the input and the answer, so every answer "
                         "would copy its input and any model would solve the suite. Name the answer's own field with "
                         "--label-field or --output-field, or the input's with --input-field.")

    rows, cleaning, conflicts = _dedupe(data.rows)
    repeated = [f"warning: {_few_inputs(data, len(rows), where)}"] if len(data.rows) > 2 * len(rows) else []
    notes_read = [*repeated, *data.notes, *_conflict_note(conflicts, where)]
    empty_rows = data.empty_rows
    for split, path in given.items():
        part = read_source(path, read_like=(where, data))  # the --from file's format and fields
        kept, counts, part_conflicts = _dedupe(part.rows)
        rows += [replace(r, split=split, file=show_path(path)) for r in kept]
        cleaning = {key: cleaning[key] + counts[key] for key in cleaning}
        notes_read += [*part.notes, *_conflict_note(part_conflicts, show_path(path))]
        empty_rows += part.empty_rows
    if names is not None:
        rows, naming_note = _name_labels(rows, names, label_names, where)
        notes_read.append(naming_note)
    carved = [split for split in SPLITS[1:] if split not in given]
    free = sum(1 for r in rows if r.split is None)
    if free < 1 + len(carved):
        from_others = f" ({_given_text(given)})" if given else ""
        raise SuiteError(f"{where}: only {free} distinct example(s) after de-duplication; need at least "
                         f"{1 + len(carved)}, one for each split it gives{from_others}.")
    if given:  # one file was de-duplicated already, with the same comparison
        _check_overlap(rows, where)
    contract, rows = _choose_contract(rows, data, metric, drop_rare_labels, where, given, named=names is not None)
    dropped = {"duplicates": cleaning.pop("duplicates")}
    if empty_rows:
        dropped["empty_rows"] = empty_rows  # CSV rows of empty cells, such as a sheet's formatted blank rows
    if contract.rare_labels:
        dropped["rare_labels"] = sum(contract.rare_labels.values())
        cleaning["rare_labels_dropped"] = contract.rare_labels
    instruction, rows, instruction_note = _suite_instruction(rows, data.format, contract.instruction)
    notes = [f"format: {data.described}", *contract.notes, instruction_note, *notes_read]

    fractions = {split: {"dev": dev_fraction, "test": test_fraction}[split] for split in carved}
    train, dev, test = _split(rows, seed, fractions, stratify=contract.output["kind"] == "label")
    meta = {
        "name": name,
        "version": "1.0.0",
        "task": contract.task,
        "description": f"Built from {source.name} by `harness suite init`; edit this description.",
        "instruction": instruction,
        "output": contract.output,
        "scorers": contract.scorers,
        "source": {
            **_file_record(source),
            "format": data.format,
            **({"fields": {"input": data.fields.input, "answer": data.fields.answer}} if data.fields.input else {}),
            **{f"{split}_from": _file_record(path) for split, path in given.items()},
            **({"label_names": _file_record(Path(label_names))} if label_names is not None else {}),
            "seed": seed,
            "fractions": fractions,
            "detected": notes,
        },
        "cleaning": {
            "dropped": dropped,
            **cleaning,
            "note": "inputs and answers stripped; duplicates compare inputs after folding case, whitespace and "
                    "punctuation; first kept",
        },
    }
    files = {"suite.yaml": _SUITE_HEADER + dump_yaml(meta)}
    for split, part in zip(SPLITS, (train, dev, test)):
        files[f"{split}.jsonl"] = "".join(_jsonl_line(r, contract) + "\n" for r in part)
    _publish(dest, files)
    return InitResult(dest, notes + _name_clash(name, dest), dropped)


def _file_record(path: Path) -> dict[str, str]:
    """A data file as suite.yaml's `source` records it: its name and the sha256 of its bytes."""
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _listed(words: list[str]) -> str:
    """`train, dev and test`."""
    return " and ".join(filter(None, [", ".join(words[:-1]), words[-1]]))


def _given_text(given: Mapping[str, Path]) -> str:
    """`test comes from test.csv`, for messages about what the --from file must still supply."""
    return " and ".join(f"{split} comes from {show_path(path)}" for split, path in given.items())


def _destination(name: str, suites_dir: Path) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in RESERVED_DIRS:
        raise SuiteError(
            f"suite name {name!r} is not allowed; use letters, digits, '.', '_' or '-' (not starting with '.' or "
            f"'_', and not {' or '.join(RESERVED_DIRS)})."
        )
    dest = suites_dir / name
    if dest.exists():
        raise SuiteError(
            f"{show_path(dest)} already exists; refusing to overwrite it. Choose another name or delete the folder."
        )
    return dest


def _name_clash(name: str, dest: Path) -> list[str]:
    """A warning, as a one-line list, when a bundled suite has this name: a suite named in an experiment is looked up
    in ./suites before the bundled ones, so one of the two silently stands in for the other."""
    if name not in list_suites():
        return []
    theirs = bundled("suites") / name
    found = resolve_suite_path(name).resolve()  # what an experiment's `suite: NAME` loads from here
    if found == dest.resolve():
        means = (f"this new suite, not the bundled one; unless you mean that, delete {show_path(dest)} and choose "
                 f"another name")
    elif found == theirs.resolve():
        means = f"the bundled suite, not this one; name this one by its path, {show_path(dest)}"
    else:
        means = f"{show_path(found)}; name this one by its path, {show_path(dest)}"
    return [f"warning: a bundled suite is also called {name!r} ({show_path(theirs)}); from this directory "
            f"`suite: {name}` means {means}."]


def _jsonl_line(row: Row, contract: Contract) -> str:
    output = {contract.output["key"]: row.answer} if contract.output["kind"] == "label" else row.answer
    line = {"instruction": row.instruction} if row.instruction else {}
    return json.dumps({**line, "input": row.input, "output": output}, ensure_ascii=False)


# ------------------------------------------------------------------------------------ given splits, label names


def _check_split_files(source: Path, given: Mapping[str, Path]) -> None:
    """Each file at most once: a split given twice, or the --from file given as a split, is contamination by
    construction."""
    seen = {source.resolve(): "--from"}
    for split, path in given.items():
        flag = f"--{split}-from"
        if path.resolve() in seen:
            raise SuiteError(f"{flag} {show_path(path)} is also {seen[path.resolve()]}; every split would share its "
                             f"examples. Give each split its own file.")
        seen[path.resolve()] = flag


def _check_overlap(rows: list[Row], where: str) -> None:
    """Refuse an input that is in two of the files (compared as the suite validator compares splits: after folding
    case, whitespace and punctuation), naming both lines: in a given test split it would be contamination."""
    first: dict[str, Row] = {}
    problems = Problems()
    for row in rows:
        key = near_fold(row.input)
        other = first.setdefault(key, row)
        if other is not row and other.file != row.file:
            problems.add(
                f"{row.at(where)}: input also in {other.at(where)} (equal after folding case, whitespace and "
                f"punctuation), which is contamination between splits; remove it from {other.file or where}."
            )
    problems.raise_if_any(where)


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


def _name_labels(rows: list[Row], names: Mapping[int, str], names_file: Path, where: str) -> tuple[list[Row], str]:
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
    return _listed([str(i) for i in ids])


# ---------------------------------------------------------------------------------------------- contract


def _choose_contract(
    rows: list[Row], data: SourceData, metric: str | None, drop_rare: bool, where: str,
    given: Mapping[str, Path], named: bool,
) -> tuple[Contract, list[Row]]:
    """The contract for these answers (see the module docstring), and the rows as that contract reads them.
    `given`: the splits that came from their own files; `named`: whether --label-names named the labels."""
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
        return _label_contract(rows, key, why, where, drop_rare=drop_rare, given=given, named=named)
    distinct = len({fold(r.answer) for r in rows})
    counted = f"{distinct} distinct values in {len(rows)} answers"
    if data.fields.labels_expected and distinct > len(rows) / 2:
        message = _not_labels(rows, len(data.rows), distinct, column, where)
        if len(data.rows) > 2 * len(rows):  # most rows repeated an input: the counts above are of what is left
            message += " " + _few_inputs(data, len(rows), where)
        raise SuiteError(message)
    if distinct <= len(rows) / 2:
        rare = _rare_numbers(rows)
        if rare and not data.fields.labels_expected:  # a numeric answer (a count, an amount), not a class
            why = (f"{counted}, every one a number and {rare} of them too rare to be a label (fewer than "
                   f"{MIN_PER_LABEL} examples), so a numeric answer, compared by value; pass --label-field to make "
                   "them labels instead")
            return _text_contract(rows, "exact", why, where), rows
        return _label_contract(rows, column or "label", counted, where, drop_rare=drop_rare, given=given, named=named)
    metric, why = _default_metric([r.answer for r in rows])
    return _text_contract(rows, metric, f"{counted}, so free text; {why}", where), rows


def _few_inputs(data: SourceData, kept: int, where: str) -> str:
    """Most rows dropped as repeats of an input: a file of repeated inputs, or an input field naming the wrong column
    (a label column), which leaves a few rows whose counts read as nonsense in any later message."""
    field = f"`{data.fields.input}`" if data.fields.input else "the input"
    return (f"{where}: {len(data.rows) - kept} of {len(data.rows)} rows dropped as repeated inputs: {field} holds "
            f"only {kept} distinct values. If that is not the column with the inputs, pass --input-field with the "
            "right one.")


def _rare_numbers(rows: list[Row]) -> int:
    """How many distinct answers are too rare to be labels, when every answer is a number; 0 otherwise."""
    if any(parse_number(r.answer) is None for r in rows):
        return 0
    return sum(1 for n in Counter(r.answer for r in rows).values() if n < MIN_PER_LABEL)


def _not_labels(rows: list[Row], read: int, distinct: int, column: str | None, where: str) -> str:
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


def _all_objects(rows: list[Row], where: str) -> bool:
    """Whether the answers are JSON objects (True) or text (False); refuses a file that mixes the two."""
    first = isinstance(rows[0].answer, dict)
    odd = next((r for r in rows if isinstance(r.answer, dict) != first), None)
    if odd is not None:
        kinds = ("text", "a JSON object") if first else ("a JSON object", "text")
        raise SuiteError(
            f"{odd.at(where)}: the answer is {kinds[0]}, but the answer on {_line(rows[0])} is {kinds[1]}; "
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


def _label_contract(
    rows: list[Row], key: str, why: str, where: str, *, drop_rare: bool, given: Mapping[str, Path], named: bool
) -> tuple[Contract, list[Row]]:
    rows, spelling_notes = _spell_labels(rows)
    rows, rare = _check_labels(rows, where, drop_rare, given)
    counts = Counter(r.answer for r in rows)
    labels = sorted(counts)
    variants = label_variants_text(counts)
    variant_notes = [
        f"warning: labels in {where} that differ only in hyphens and underscores, case and spacing, or in how a "
        f"number is written are kept as different labels: {variants}. If each group is one label, write it one way "
        f"in the data and run init again; if they are different labels, ignore this."
    ] if variants else []
    contract = Contract(
        output={"kind": "label", "key": key, "labels": labels},
        task="classification",
        scorers=LABEL_SCORERS,
        instruction=f"Read the input and classify it: name its {key}.",
        notes=[f'contract: label, answered as {{"{key}": LABEL}}, {len(labels)} labels ({why}); pass --metric '
               f"for free text instead.", *spelling_notes, *variant_notes, *_unseen_labels_note(rows, where),
               *([] if named else _label_ids_note(labels))],
        rare_labels=rare,
    )
    return contract, rows


def _label_ids_note(labels: list[str]) -> list[str]:
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


def _unseen_labels_note(rows: list[Row], where: str) -> list[str]:
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


def _json_contract(rows: list[Row]) -> Contract:
    answers = [r.answer for r in rows]
    miss = next(((r, s) for r in rows for s in _strings(r.answer) if fold(s) not in fold(r.input)), None)
    has_strings = any(list(_strings(a)) for a in answers)
    grounded = miss is None and has_strings  # with no strings at all there is nothing to ground
    if grounded:
        why = "every string value in the answers occurs in its input, so a value a model invents counts as hallucinated"
    elif miss is None:
        why = "the answers hold no string values to look for in the input"
    else:
        row, value = miss
        why = (
            f"{_line(row)}: {value!r} does not occur in its input, so values cannot be checked against the input; "
            f"if answers should be copied from the input, fix that line, then set `output.grounded: true`"
        )
    output = {"kind": "json", **_infer_schema(answers), "grounded": grounded}
    return Contract(
        output=output,
        task="extraction",
        scorers=JSON_SCORERS,
        instruction="Read the input and extract the requested fields as a JSON object.",
        notes=["contract: json (every answer is a JSON object)", f"grounded: {str(grounded).lower()}: {why}.",
               _required_note(output["schema"], len(answers))],
    )


def _required_note(schema: dict[str, Any], answers: int) -> str:
    """What the inferred schema requires, in init's words: a required key missing makes an answer non-compliant."""
    required = schema.get("required", [])
    if not required:
        return ("schema: no key is in every answer, so none is required and `{}` is a compliant answer; list the keys "
                "every answer must have under `output.schema.required` if some must.")
    listed = ", ".join(f"`{key}`" for key in required)
    return (f"schema: {listed} {'is' if len(required) == 1 else 'are'} in all {answers} answers, so required: an "
            f"answer without {'it' if len(required) == 1 else 'one of them'} is not format-compliant. If answers "
            f"may leave one out, remove it from `output.schema.required`.")


def _strings(value: Any) -> Iterator[str]:
    """Every string value inside a JSON value (keys excluded), as the hallucination scorer reads them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


def _default_metric(answers: list[str]) -> tuple[str, str]:
    """The text metric these answers suggest, and why."""
    if all(_final_number_problem(a) is None for a in answers):
        return "final-number", "every answer ends with a `#### <number>` line"
    words = statistics.median(len(a.split()) for a in answers)
    median = f"median {words:g} word{'' if words == 1 else 's'}"
    if words <= SHORT_ANSWER_WORDS:
        return "exact", f"answers are short ({median}), so the whole answer must match"
    return "rouge", f"answers are long ({median}), so exact match would score near zero"


def _final_number_problem(answer: str) -> str | None:
    """Why an answer does not fit --metric final-number (the checks of `parse_target`, in init's words), or None."""
    parsed = parse_output(answer, _FINAL_NUMBER)
    if parsed.value is None:
        return "it has no `#### <number>` line"
    if parsed.error:
        return parsed.error
    return None if parsed.strict else "it has text after its `#### <number>` line"


def _text_contract(rows: list[Row], metric: str, why: str, where: str) -> Contract:
    notes = [f"contract: text, metric {metric} ({why})."]
    if metric == "final-number":
        if all(parse_output(r.answer, _FINAL_NUMBER).value is None for r in rows):
            numbers = all(parse_number(r.answer) is not None for r in rows)
            raise SuiteError(
                f"{where}: no answer has a `#### <number>` line ({_line(rows[0])} ends "
                f"{rows[0].answer[-40:]!r}), which --metric final-number reads the answer from. "
                + ("Every answer is a bare number: pass --metric exact, which compares them by value."
                   if numbers else "Pass --metric exact or --metric rouge, or end each answer with `#### <number>`."))
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


def _mostly_numbers_note(rows: list[Row], not_numbers: list[Row], where: str) -> list[str]:
    """A note, as a one-line list, when most answers are numbers but some are not: then every answer is compared as
    text, so `1,000` no longer matches `1000`, and the user should learn which lines caused it."""
    if not not_numbers or len(not_numbers) * 2 > len(rows):
        return []
    listed = ", ".join(f"{_line(r)} ({_shown(r.answer)})" for r in not_numbers[:MAX_LISTED])
    more = f" and {len(not_numbers) - MAX_LISTED} more" if len(not_numbers) > MAX_LISTED else ""
    numbers = len(rows) - len(not_numbers)
    return [f"scoring: {numbers} of {len(rows)} answers are numbers, but in {where} {listed}{more} "
            f"{'is' if len(not_numbers) == 1 else 'are'} not, so every answer is compared as text (`1,000` would not "
            f"match `1000`). To compare by value, write those answers as plain numbers (a decimal point, not a "
            f"comma; no units) and run init again."]


def _infer_schema(objects: list[dict]) -> dict[str, Any]:
    """A schema of what every answer shows: every key seen, with the JSON types seen for it; the keys present in
    every answer required, so that `{}` is not a compliant answer; and an array's item type when all its items
    share one, so that objects where the answers hold strings are not compliant either."""
    types: dict[str, set[str]] = {}
    item_types: dict[str, set[str]] = {}
    present: Counter[str] = Counter()
    for obj in objects:
        present.update(obj.keys())
        for key, value in obj.items():
            types.setdefault(key, set()).add(_json_type(value))
            if isinstance(value, list):
                item_types.setdefault(key, set()).update(_json_type(item) for item in value)
    properties = {}
    for key, kinds in types.items():
        properties[key] = {"type": _type_value(kinds)}
        items = item_types.get(key, set())
        if kinds == {"array"} and items and len(_number_merged(items)) == 1:
            properties[key]["items"] = {"type": _type_value(items)}
    required = [key for key in types if present[key] == len(objects)]
    schema = {"type": "object", "properties": properties, **({"required": required} if required else {})}
    return {"schema": schema, "fields": list(types)}


def _json_type(value: Any) -> str:
    return next(name for py, name in _JSON_TYPES if isinstance(value, py))


def _number_merged(kinds: set[str]) -> set[str]:
    """`integer` is a `number` in JSON Schema, so answers holding both need only `number`."""
    return kinds - {"integer"} if {"integer", "number"} <= kinds else kinds


def _type_value(kinds: set[str]) -> str | list[str]:
    ordered = sorted(_number_merged(kinds))
    return ordered[0] if len(ordered) == 1 else ordered


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"), (type(None), "null"))


# ------------------------------------------------------------------------------------------- labels, rows


def _spell_labels(rows: list[Row]) -> tuple[list[Row], list[str]]:
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
    listed = ", ".join(f"`{spelling}` ({n}) -> `{label}`" for spelling, n, label in merged[:MAX_LISTED])
    more = f" and {len(merged) - MAX_LISTED} more" if len(merged) > MAX_LISTED else ""
    note = (
        f"labels: respelled {len(merged)} variant{'' if len(merged) == 1 else 's'} as {groups} "
        f"label{'' if groups == 1 else 's'} (case and spacing ignored; each label keeps its most frequent "
        f"spelling): {listed}{more}. If some are different labels, rename them in the data."
    )
    return [replace(r, answer=chosen[fold(r.answer)]) for r in rows], [note]


def label_variants_text(counts: Mapping[str, int]) -> str | None:
    """The groups of labels that are probably one label spelled several ways, each label with its example count
    (`top up failed` (17), `top_up_failed` (16); `1` (8), `01` (6)), or None when there are none.

    Labels are grouped by `spelling_key` (case, spaces, hyphens and underscores removed, so `get_weather` meets
    `GetWeather` and `Play Music` meets `PlayMusic`), or by their numeric value, in one pass: cheap on any label set.
    Nothing is merged, since `1` and `1.0` may be different codes on purpose.
    """
    groups: dict[object, list[str]] = {}
    for label in counts:
        number = parse_number(label)
        groups.setdefault(spelling_key(label) if number is None else number, []).append(label)
    found = sorted(sorted(group) for group in groups.values() if len(group) > 1)
    if not found:
        return None
    listed = "; ".join(", ".join(f"`{label}` ({counts[label]})" for label in group) for group in found[:MAX_LISTED])
    return listed + (f"; and {len(found) - MAX_LISTED} more groups" if len(found) > MAX_LISTED else "")


def _check_labels(
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
        from_others = f" ({_given_text(given)})" if given else ""
        raise SuiteError(
            f"{where}: {len(rare)} label(s) with fewer than {needed} examples, too few to put one in each of "
            f"{_listed(filled)}{from_others}: {listed}{more}. Merge them into related labels, add examples, or "
            f"pass --drop-rare-labels to leave them out (the count is recorded in suite.yaml)."
            + (" Every answer is a number: if they are amounts or counts rather than classes, pass --output-field "
               "with --metric exact instead, which compares answers by value."
               if _rare_numbers(rows) else "")
        )
    rows = [r for r in rows if r.split is not None or r.answer not in rare]
    if len(counts) - len(rare) < 2:
        kept = ", ".join(repr(label) for label in counts if label not in rare) or "none"
        raise SuiteError(
            f"{where}: labels left with enough examples: {kept}; a classifier needs at least two, or it is always "
            f"right. Add examples of other labels, or use --metric for free-text answers."
        )
    return rows, rare


def _suite_instruction(rows: list[Row], fmt: str, default: str) -> tuple[str, list[Row], str]:
    """The suite's instruction: the rows' own when every row has the same one (then not repeated per row), else
    the contract's default, with differing ones kept per row."""
    what = {"chat": "system message", "alpaca": "`instruction`"}.get(fmt, "instruction")
    own = [r for r in rows if r.instruction]
    if own and len(own) == len(rows) and len({fold(r.instruction) for r in own}) == 1:
        rows = [replace(r, instruction=None) for r in rows]
        return own[0].instruction, rows, f"instruction: every line has the same {what}; it is the suite's instruction."
    if own:
        return default, rows, (
            f"instruction: {len(own)} of {len(rows)} lines have their own {what}, kept per example; the others use "
            f"the suite's instruction, a default to edit in suite.yaml."
        )
    return default, rows, "instruction: none in the data; suite.yaml has a default to edit."


def _dedupe(rows: list[Row]) -> tuple[list[Row], dict[str, int], list[tuple[Row, Row]]]:
    """The rows minus repeated inputs (compared as the suite validator compares splits for near-duplicates: after
    folding case, whitespace and punctuation; the first is kept), counts of what was dropped (all duplicates, and
    those whose answer or instruction differed from the kept row's), and each (kept, dropped) pair whose answers
    differ, so the note can name their lines."""
    kept, seen, conflicts = [], {}, []
    counts = {"duplicates": 0, "duplicates_with_a_different_answer": 0, "duplicates_with_a_different_instruction": 0}
    for row in rows:
        key = near_fold(row.input)  # once per row: it is most of init's time on a large file
        first = seen.get(key)
        if first is None:
            seen[key] = row
            kept.append(row)
            continue
        counts["duplicates"] += 1
        if _answer_key(first.answer) != _answer_key(row.answer):
            counts["duplicates_with_a_different_answer"] += 1
            conflicts.append((first, row))
        other_instruction = fold(first.instruction or "") != fold(row.instruction or "")
        counts["duplicates_with_a_different_instruction"] += other_instruction
    return kept, counts, conflicts


def _conflict_note(conflicts: list[tuple[Row, Row]], where: str) -> list[str]:
    """A note, as a one-line list, naming the repeated inputs whose answers disagree: only the first answer is
    kept, so a mislabelled first copy would otherwise become the suite's answer unseen."""
    if not conflicts:
        return []
    listed = ", ".join(f"line {row.line} ({_shown(row.answer)}) dropped for line {first.line} ({_shown(first.answer)})"
                       for first, row in conflicts[:MAX_LISTED])
    more = f" and {len(conflicts) - MAX_LISTED} more" if len(conflicts) > MAX_LISTED else ""
    return [f"duplicates: {len(conflicts)} repeated input(s) in {where} had a different answer than the copy kept "
            f"(the first): {listed}{more}. If the first answer is wrong, fix or remove it in the data."]


def _line(row: Row) -> str:
    """`line 12` of the --from file a message already names, or `test.csv:12` of a split given as its own file."""
    return row.at("") if row.file else f"line {row.line}"


def _shown(answer: str | dict) -> str:
    return f"`{answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)}`"


def _answer_key(answer: str | dict) -> str:
    return fold(answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True, ensure_ascii=False))


def _split(rows: list[Row], seed: int, fractions: Mapping[str, float], stratify: bool):
    """Seeded (train, dev, test), each in source order; per-label carving keeps label proportions. `fractions`: the
    share of each split carved from the rows (dev, test or both); a row that came with its split (`Row.split`, from
    --dev-from/--test-from) stays in it.

    Every group (a label, or all rows) gives at least one row to each carved split and keeps one for train, so a
    small label is still evaluated; callers guarantee enough rows per group.
    """
    rng = random.Random(seed)
    carved = [split for split in ("test", "dev") if split in fractions]
    groups: dict[Any, list[Row]] = {}
    for row in rows:
        if row.split is None:
            groups.setdefault(row.answer if stratify else None, []).append(row)
    chosen: dict[int, str] = {id(r): r.split for r in rows if r.split is not None}
    for label in sorted(groups, key=str):
        group = list(groups[label])
        rng.shuffle(group)
        taken = 0
        for i, split in enumerate(carved):
            later = len(carved) - i - 1  # the splits still to carve, one row each, and one row kept for train
            n = max(1, min(round(len(group) * fractions[split]), len(group) - taken - later - 1))
            chosen.update({id(r): split for r in group[taken : taken + n]})
            taken += n
    return tuple([r for r in rows if chosen.get(id(r), "train") == split] for split in SPLITS)


# ------------------------------------------------------------------------------------------------ writing


def _publish(dest: Path, files: dict[str, str]) -> None:
    """Write into a temp dir next to `dest`, validate it as a suite, then rename: all or nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the published folder should not be
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        load_suite(str(tmp))  # never publish a suite that would not load
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_SUITE_HEADER = """\
# Generated by `harness suite init`. Edit `description` and `instruction` (the system prompt for every method;
# the output contract below is appended for prompting, so do not repeat the labels there). Bump `version`
# whenever you change the data or the contract: it is stored with every score. `source.detected` says what init
# chose and why.
"""
