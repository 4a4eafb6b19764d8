"""`harness suite init`: turn a user's data file into a validated suite folder.

Reading and format detection live in `formats.py`, the choice of output contract in `contract_choice.py` (labels in
`suite_labels.py`, JSON schemas in `schema_inference.py`); this module is the flow: it cleans, chooses the contract,
splits (seeded, stratified by label) and writes. Every choice made on the user's behalf comes back as a note that
says what was chosen and why, and is kept in suite.yaml under `source.detected`. The contract, first rule that applies:

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

import contextlib
import hashlib
import json
import random
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.core.config import MAX_SEED
from harness.core.errors import SuiteError
from harness.core.paths import bundled
from harness.core.text import apart_by_emoji, fold, near_fold
from harness.core.yamlfile import dump_yaml
from harness.data.contract_choice import METRICS, Contract, choose_contract
from harness.data.formats import Row, read_source
from harness.data.init_messages import MAX_LISTED, few_inputs_text, given_text, shown_answer
from harness.data.suite_labels import name_labels, read_label_names
from harness.data.suites import (
    RESERVED_DIRS,
    SPLITS,
    Problems,
    Suite,
    list_suites,
    load_suite,
    resolve_suite_path,
    show_path,
)


@dataclass(frozen=True)
class InitResult:
    path: Path
    """The new suite folder."""
    notes: list[str]
    """What was detected or chosen and why, one line each (format, contract, grounding, instruction), as kept in
    suite.yaml; then a warning when the name is also a bundled suite's, which is about this machine, not the data."""
    dropped: dict[str, int]
    """What cleaning left out, by reason (also in suite.yaml's `cleaning` block)."""
    suite: Suite
    """The suite as written and loaded."""


def init_suite(
    name: str,
    source: Path,
    input_field: str | None = None,
    label_field: str | None = None,
    output_field: str | None = None,
    *,
    metric: str | None = None,
    drop_rare_labels: bool = False,
    merge_label_variants: bool = False,
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

    rows, cleaning, conflicts, _ = _dedupe(data.rows)
    repeated = [f"warning: {few_inputs_text(data, len(rows), where)}"] if len(data.rows) > 2 * len(rows) else []
    notes_read = [*repeated, *data.notes, *_conflict_note(conflicts, where)]
    empty_rows = data.empty_rows
    for split, path in given.items():
        part = read_source(path, read_like=(where, data))  # the --from file's format and fields
        kept, counts, part_conflicts, repeats = _dedupe(part.rows)
        rows += [replace(r, split=split, file=show_path(path)) for r in kept]
        cleaning = {key: cleaning[key] + counts[key] for key in cleaning}
        notes_read += [*part.notes, *_conflict_note(part_conflicts, show_path(path))]
        if repeats:  # the agreed split is not quite the file: its figures must say so
            lines = ", ".join(str(r.line) for r in repeats[:MAX_LISTED])
            more = f" and {len(repeats) - MAX_LISTED} more" if len(repeats) > MAX_LISTED else ""
            notes_read.append(f"duplicates: {show_path(path)} repeats {len(repeats)} input(s), dropped (lines "
                              f"{lines}{more}; the first copy kept): its {split} split holds {len(kept)} examples of "
                              f"its {len(part.rows)} rows.")
        empty_rows += part.empty_rows
    if names is not None:
        rows, naming_note = name_labels(rows, names, label_names, where)
        notes_read.append(naming_note)
    carved = [split for split in SPLITS[1:] if split not in given]
    free = sum(1 for r in rows if r.split is None)
    if free < 1 + len(carved):
        from_others = f" ({given_text(given)})" if given else ""
        raise SuiteError(f"{where}: only {free} distinct example(s) after de-duplication; need at least "
                         f"{1 + len(carved)}, one for each split it gives{from_others}.")
    if given:  # one file was de-duplicated already, with the same comparison
        _check_overlap(rows, where)
    contract, rows = choose_contract(rows, data, metric, drop_rare_labels, where, given, named=names is not None,
                                     merge_variants=merge_label_variants)
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
    suite = _publish(dest, files)
    return InitResult(dest, notes + _name_clash(name, dest), dropped, suite)


def _destination(name: str, suites_dir: Path) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in RESERVED_DIRS:
        raise SuiteError(
            f"suite name {name!r} is not allowed; use ASCII letters (a-z, A-Z), digits, '.', '_' or '-' (not starting "
            f"with '.' or '_', and not {' or '.join(RESERVED_DIRS)})."
        )
    blocker = next((folder for folder in (suites_dir, *suites_dir.parents) if folder.exists()), None)
    if blocker is not None and not blocker.is_dir():  # found before the data is read, not after
        raise SuiteError(f"--suites-dir {show_path(suites_dir)}: {show_path(blocker)} is a file, not a folder, so no "
                         "suite can be written there. Give --suites-dir a folder (the default is suites/ here), or "
                         "move the file aside.")
    dest = suites_dir / name
    if dest.exists():
        raise SuiteError(
            f"{show_path(dest)} already exists; refusing to overwrite it. Choose another name or delete the folder."
        )
    return dest


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


# ----------------------------------------------------------------------------------------------------- cleaning


def _dedupe(rows: list[Row]) -> tuple[list[Row], dict[str, int], list[tuple[Row, Row]], list[Row]]:
    """The rows minus repeated inputs (compared as the suite validator compares splits for near-duplicates: after
    folding case, whitespace and punctuation; the first is kept), counts of what was dropped (all duplicates, and
    those whose answer or instruction differed from the kept row's), each (kept, dropped) pair whose answers
    differ, so the note can name their lines, and the rows dropped."""
    kept, seen, conflicts, dropped = [], {}, [], []
    counts = {"duplicates": 0, "duplicates_with_a_different_answer": 0, "duplicates_with_a_different_instruction": 0}
    for row in rows:
        key = near_fold(row.input)  # once per row: it is most of init's time on a large file
        first = seen.get(key)
        if first is None or apart_by_emoji((first.input, _answer_key(first.answer)),
                                           (row.input, _answer_key(row.answer))):
            seen.setdefault(key, row)
            kept.append(row)
            continue
        counts["duplicates"] += 1
        dropped.append(row)
        if _answer_key(first.answer) != _answer_key(row.answer):
            counts["duplicates_with_a_different_answer"] += 1
            conflicts.append((first, row))
        other_instruction = fold(first.instruction or "") != fold(row.instruction or "")
        counts["duplicates_with_a_different_instruction"] += other_instruction
    return kept, counts, conflicts, dropped


def _answer_key(answer: str | dict) -> str:
    return fold(answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True, ensure_ascii=False))


def _conflict_note(conflicts: list[tuple[Row, Row]], where: str) -> list[str]:
    """A note, as a one-line list, naming the repeated inputs whose answers disagree: only the first answer is
    kept, so a mislabelled first copy would otherwise become the suite's answer unseen."""
    if not conflicts:
        return []
    listed = ", ".join(f"line {row.line} ({shown_answer(row.answer)}) dropped for line {first.line} "
                       f"({shown_answer(first.answer)})" for first, row in conflicts[:MAX_LISTED])
    more = f" and {len(conflicts) - MAX_LISTED} more" if len(conflicts) > MAX_LISTED else ""
    return [f"duplicates: {len(conflicts)} repeated input(s) in {where} had a different answer than the copy kept "
            f"(the first): {listed}{more}. If the first answer is wrong, fix or remove it in the data."]


def _check_overlap(rows: list[Row], where: str) -> None:
    """Refuse an input that is in two of the files (compared as the suite validator compares splits: after folding
    case, whitespace and punctuation), naming both lines: in a given test split it would be contamination."""
    first: dict[str, Row] = {}
    problems = Problems()
    for row in rows:
        key = near_fold(row.input)
        other = first.setdefault(key, row)
        if other is not row and other.file != row.file and not apart_by_emoji(
                (other.input, _answer_key(other.answer)), (row.input, _answer_key(row.answer))):
            problems.add(
                f"{row.at(where)}: input also in {other.at(where)} (equal after folding case, whitespace and "
                f"punctuation), which is contamination between splits; remove it from {other.file or where}."
            )
    problems.raise_if_any(where)


# ------------------------------------------------------------------------------------------ instruction, splits


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


# ------------------------------------------------------------------------------------------------------ writing


def _file_record(path: Path) -> dict[str, str]:
    """A data file as suite.yaml's `source` records it: its name and the sha256 of its bytes."""
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _jsonl_line(row: Row, contract: Contract) -> str:
    output = {contract.output["key"]: row.answer} if contract.output["kind"] == "label" else row.answer
    line = {"instruction": row.instruction} if row.instruction else {}
    return json.dumps({**line, "input": row.input, "output": output}, ensure_ascii=False)


def _publish(dest: Path, files: dict[str, str]) -> Suite:
    """Write into a temp dir next to `dest`, validate it as a suite, then rename: all or nothing. Returns the suite
    as it loaded, so that nothing after the rename can be interrupted into reading as a failure. A --suites-dir it
    had to make is removed again when it fails."""
    made = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the published folder should not be
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        suite = load_suite(str(tmp))  # never publish a suite that would not load
        tmp.rename(dest)
        return replace(suite, path=dest)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:  # deepest first; only those this init made, and only if empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError):
            raise SuiteError(f"cannot write the suite to {show_path(dest)} ({exc.strerror}: {exc.filename}); give "
                             "--suites-dir a folder you can write to.") from None
        raise


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


_SUITE_HEADER = """\
# Generated by `harness suite init`. Edit `description` and `instruction` (the system prompt for every method;
# the output contract below is appended for prompting, so do not repeat the labels there). Bump `version`
# whenever you change the data or the contract: it is stored with every score. `source.detected` says what init
# chose and why.
"""
