"""Evaluation suites: a versioned folder with suite.yaml and train/dev/test JSONL splits.

Loading validates everything up front (format, contract, duplicates, contamination between splits) because a
bad split found halfway through a sweep wastes hours and a contaminated one silently inflates every score.
Problems are collected (up to 10) so one run shows the user everything to fix.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
import re
import shlex
import stat
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.config import GateConfig
from harness.core.errors import SuiteError
from harness.core.metric import CORE_SCORERS
from harness.core.paths import bundled
from harness.core.text import apart_by_emoji, fold, near_fold, written_in
from harness.core.typed import build
from harness.core.yamlfile import read_yaml
from harness.data.contract import (
    OutputContract,
    json_error,
    load_json,
    number_values,
    numbers_in,
    parse_target,
    string_values,
)
from harness.data.encodings import legacy_encoding, readings

SPLITS = ("train", "dev", "test")
MAX_PROBLEMS = 10
RESERVED_DIRS = ("general", "_build")
"""Folders under suites/ that hold shared data or build scripts, not task suites."""
SUITE_KEYS = ("name", "version", "task", "description", "instruction", "output", "scorers", "source", "cleaning",
              "gate", "near_duplicates")
TASKS = ("classification", "extraction", "generation")
"""suite.yaml `task:`; shown with results (the contract decides scoring), so a misspelt one is refused, not kept."""
SCORER_CONTRACTS = {
    "format_compliance": ("label", "json", "text"),
    "hallucination_rate": ("label", "json"),
    "task_accuracy": ("label", "json", "text"),
    "field_precision": ("json",),
    "field_recall": ("json",),
    "field_f1": ("json",),
    "rouge_l": ("text",),
}
"""The scorers a suite may list under `scorers:`, with the contract kinds each measures something on (on any other
it scores every example None, n=0); both checked when suite.yaml loads, before any model. harness.data sits below
harness.evaluation and may not import its registry, so they live here, and tests hold them to it: the names to the
registry's (tests/test_suite_input_new_user.py), the kinds to what each registered scorer does
(tests/test_suite_findings_contract.py)."""
SCORER_NAMES = tuple(SCORER_CONTRACTS)
ROW_KEYS = ("input", "output", "instruction", "messages")
"""The keys of a split's JSONL row the harness reads; any other key is ignored, with a warning."""
NEAR_DUPLICATES = ("refuse", "allow")
"""suite.yaml `near_duplicates:`: inputs in two splits that are equal after folding case, whitespace and punctuation
are contamination and refused, unless the suite keeps such pairs knowingly (`allow`). Exact ones are always refused."""


@dataclass(frozen=True)
class Example:
    id: str
    """Stable id: `<split>:<line number>` in the split's JSONL file (1-based)."""
    input: str
    """The text the model sees (the user turn)."""
    target: str
    """The exact reference answer text, e.g. `{"intent": "card_arrival"}`."""
    instruction: str | None = None
    """A per-example instruction from the row (or its system message); None means use the suite's."""


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    task: str
    """`classification` or `extraction` (free text for display; the contract decides scoring)."""
    instruction: str
    """The task statement, used as the system prompt. The contract's description is appended for prompting."""
    contract: OutputContract
    splits: dict[str, tuple[Example, ...]]
    split_sha256: dict[str, str]
    """sha256 of each split file's bytes, stored with every trial."""
    path: Path
    scorers: tuple[str, ...] = ()
    info: dict = field(default_factory=dict)
    """Free-form provenance from suite.yaml (source, license, cleaning report)."""
    gate: GateConfig | None = None
    """The suite's promotion gate (`gate:` in suite.yaml), unless an experiment sets its own."""
    warnings: tuple[str, ...] = ()
    """What loads but is likely a mistake (a row key the harness does not read), for `suite validate` to print."""

    @property
    def setup_sha256(self) -> str:
        """sha256 of what suite.yaml says about prompting and scoring (the instruction, the output contract, the
        scorers), stored with every trial: an instruction reworded under the same version prompts new trials
        otherwise than old ones, whose split files are the same."""
        setup = {"instruction": self.instruction, "output": self.contract.to_dict(), "scorers": sorted(self.scorers)}
        return hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()


SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev", "eval": "dev", "training": "train",
                 "testing": "test", "holdout": "test"}
"""Other common names of a split's file, which a suite would otherwise ignore without a word."""


def differs_from_recorded(suite: Suite, split_sha256: Mapping[str, str], setup_sha256: str | None) -> str | None:
    """What a trial recorded of its suite (its split files' sha256, its set-up) that `suite` does not hold, in words
    ("its test.jsonl"); None where they agree, or the trial recorded nothing to compare."""
    files = [f"{split}.jsonl" for split, sha in split_sha256.items() if suite.split_sha256.get(split) != sha]
    if files:
        return f"its {', '.join(files)}"
    if setup_sha256 not in (None, suite.setup_sha256):
        return "its instruction, `output:` or `scorers:`"
    return None


def show_path(path: Path) -> str:
    """A path as the user most likely typed it (relative to the working directory when inside it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, RuntimeError, OSError):  # elsewhere; or a symlink loop, which resolve() cannot follow
        return str(path)


class Problems:
    """Collects problems so the user sees up to MAX_PROBLEMS at once instead of fixing them one per run."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []
        """What does not stop loading but likely is a mistake; grouped like problems, never raised."""

    def add(self, message: str) -> None:
        self.items.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def grouped_warnings(self) -> tuple[str, ...]:
        return tuple(_grouped(self.warnings))

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        grouped = _grouped(self.items)
        kinds = f", in {len(grouped)} group(s)" if len(grouped) < len(self.items) else ""
        lines = [f"{what}: {len(self.items)} problem(s){kinds}:"] + [f"  - {p}" for p in grouped[:MAX_PROBLEMS]]
        if len(grouped) > MAX_PROBLEMS:  # where the rest are, so that one pass can fix them all
            rest: dict[str, list[str]] = {}
            for found in (_LOCATED.match(item) for item in grouped[MAX_PROBLEMS:MAX_PROBLEMS + MORE_LOCATED]):
                if found is not None:
                    rest.setdefault(found["where"], []).append(found["line"])
            listed = "; ".join(f"{where} {_record_unit(where)}s {', '.join(at)}" for where, at in rest.items())
            past = ", ..." if len(grouped) > MAX_PROBLEMS + MORE_LOCATED else ""
            lines.append(f"  and {len(grouped) - MAX_PROBLEMS} more" + (f", at {listed}{past}" if rest else ""))
        raise SuiteError("\n".join(lines))


_LOCATED = re.compile(r"(?P<where>[^\n]*?):(?P<line>\d+): (?P<what>.*)", re.S)
LINES_SHOWN = 5
MORE_LOCATED = 40
"""Past MAX_PROBLEMS, the file and line of this many more problems are listed, without their text."""


def _grouped(items: list[str]) -> list[str]:
    """The problems, one entry per distinct message: the same problem on many lines of a file (every turn with a
    wrong role) is said once with the lines it is on, not twenty times."""
    lines: dict[tuple[str, str], list[str]] = {}
    for item in items:
        found = _LOCATED.fullmatch(item)
        key = (found["where"], found["what"]) if found else ("", item)
        lines.setdefault(key, []).append(found["line"] if found else "")
    out = []
    for (where, what), at in lines.items():
        if not where:
            out += [what] * len(at)
        elif len(at) == 1:
            out.append(f"{where}:{at[0]}: {what}")
        else:
            more = f" and {len(at) - LINES_SHOWN} more" if len(at) > LINES_SHOWN else ""
            out.append(f"{where}: {_record_unit(where)}s {', '.join(at[:LINES_SHOWN])}{more}: {what}")
    return out


def _record_unit(where: str) -> str:
    """What the number after `file:` counts: a Parquet file has rows, not lines (suite init says so up front)."""
    return "row" if where.lower().endswith(".parquet") else "line"


# --------------------------------------------------------------------------------------------- locating


def list_suites(suites_dir: Path | None = None) -> list[str]:
    """Names of the folders under suites/ that are suites (have a suite.yaml); shared-data folders are not."""
    root = suites_dir if suites_dir is not None else bundled("suites")
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and not p.name.startswith((".", "_"))
        and p.name not in RESERVED_DIRS
        and (p / "suite.yaml").is_file()
    )


def resolve_suite_path(name_or_path: str, named_in: Path | None = None) -> Path:
    """An existing directory as given, else ./suites/NAME, else the bundled suites/NAME: relative to the current
    folder, not to `named_in` (the experiment file whose `suite:` named it, for the message when none is found)."""
    given = Path(name_or_path)
    if given.is_file():  # a data file, or a suite's own suite.yaml, given for the folder
        folder = given.parent if given.name == "suite.yaml" else None
        if folder is not None:
            return folder
        raise SuiteError(
            f"{name_or_path} is a file, not a suite: a suite is a folder with a suite.yaml and its split files. "
            f"To make one from this file: harness suite init NAME --from {shlex.quote(name_or_path)} (then "
            f"`harness suite validate NAME`).")
    candidates = [given, Path.cwd() / "suites" / name_or_path, bundled("suites") / name_or_path]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    available = sorted(set(list_suites(Path.cwd() / "suites")) | set(list_suites()))
    named = f"{show_path(named_in)}: `suite: {name_or_path}`: " if named_in is not None else ""
    raise SuiteError(
        f"{named}suite {name_or_path!r} not found (looked for the directory itself, ./suites/{name_or_path} and "
        f"{show_path(candidates[2])}; names and relative paths are looked up from the current folder, "
        f"{Path.cwd()}, not from an experiment file's folder).{_found_elsewhere(given, named_in)} Pass an existing "
        f"suite folder or one of: {', '.join(available) or '(none)'}; create a new one with "
        f"`harness suite init NAME --from FILE`."
    )


def _found_elsewhere(given: Path, named_in: Path | None) -> str:
    """Where a suite of this name is, seen from the project folders nearby: beside the experiment file, above the
    current folder, or in a project folder just below it (run from the project's parent). The usual cause of a
    suite not found is running from another folder than the project's."""
    if given.is_absolute():
        return ""
    cwd = Path.cwd()
    nearby = [*(() if named_in is None else (named_in.parent, named_in.parent.parent)), *cwd.parents[:2],
              *_folders_in(cwd)]
    found: dict[Path, Path] = {}
    for project in nearby:
        for candidate in (project / given, project / "suites" / given):
            if _is_file(candidate / "suite.yaml"):
                found.setdefault(candidate.resolve(), project)
    if not found:
        return ""
    suite, project = next(iter(found.items()))
    return (f" A suite of that name is at {show_path(suite)}: run from {show_path(project)} "
            f"(`cd {shlex.quote(show_path(project))}`), or give its full path (`suite: {suite}`).")


def _folders_in(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:  # an unreadable folder only means no hint from it
        return []


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # permission denied on the way: not a suite this user can load anyway
        return False


# ----------------------------------------------------------------------------------------------- loading


def load_suite(name_or_path: str, named_in: Path | None = None) -> Suite:
    """Load and validate a suite; raise one SuiteError listing every problem found (up to 10 shown). `named_in`: the
    experiment file whose `suite:` named it, which a suite not found names."""
    path = resolve_suite_path(str(name_or_path), named_in)
    yaml_path = path / "suite.yaml"
    if path.name in RESERVED_DIRS or not yaml_path.is_file():
        raise SuiteError(
            f"{show_path(path)} is not a suite: it has no suite.yaml. Pick a suite folder (one of: "
            f"{', '.join(list_suites()) or '(none)'}) or create one with `harness suite init NAME --from FILE`."
        )
    meta = _load_meta(yaml_path)
    problems = Problems()
    problems.warnings.extend(meta["warnings"])
    splits: dict[str, tuple[Example, ...]] = {}
    shas: dict[str, str] = {}
    for split in SPLITS:
        loaded = _load_split(path / f"{split}.jsonl", split, meta["contract"], problems)
        if loaded is not None:
            splits[split], shas[split] = loaded
    for stray in sorted(p for p in path.glob("*.jsonl") if p.stem.lower() in SPLIT_ALIASES):  # a split, misnamed
        problems.warn(f"{show_path(stray)}: not read; a suite's splits are {', '.join(SPLITS)} (rename it "
                      f"{SPLIT_ALIASES[stray.stem.lower()]}.jsonl if it is that split).")
    _check_duplicates(path, splits, problems, near=meta["near_duplicates"] == "refuse")
    if meta["near_duplicates"] == "refuse":  # `allow` keeps such pairs knowingly
        _warn_numbers_apart(path, splits, problems)
    problems.raise_if_any(show_path(path))
    return Suite(
        name=meta["name"],
        version=meta["version"],
        task=meta["task"],
        instruction=meta["instruction"],
        contract=meta["contract"],
        splits=splits,
        split_sha256=shas,
        path=path,
        scorers=meta["scorers"],
        info=meta["info"],
        gate=meta["gate"],
        warnings=problems.grouped_warnings(),
    )


def _unfit_name(name: str) -> str | None:
    """Why a suite's name cannot name it: commands find a suite by name, as the folder suites/NAME."""
    if "/" in name or "\\" in name or name.startswith("."):
        return "reads as a path"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds a control character (a line break or tab)"
    return None


def _kind_of(path: Path) -> str:
    mode = path.stat().st_mode
    return ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "not a plain file")


def _load_meta(yaml_path: Path) -> dict[str, Any]:
    where = show_path(yaml_path)
    raw = read_yaml(yaml_path, SuiteError, where)
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: must be a YAML mapping with name, version, instruction and output.")
    problems = Problems()
    unknown = sorted(set(raw) - set(SUITE_KEYS))
    if unknown:
        problems.add(f"{where}: unknown key(s) {unknown}; allowed keys are {list(SUITE_KEYS)} (check the spelling).")
    for key in ("name", "instruction"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            problems.add(f"{where}: `{key}` must be a non-empty string.")
    if isinstance(raw.get("name"), str) and (why := _unfit_name(raw["name"].strip())):
        # studies, the registry and `rollback NAME` find a suite by name, as suites/NAME
        problems.add(f"{where}: `name` {raw['name']!r} {why}; a suite's name is a plain word of letters, digits, '.', "
                     f"'_' or '-', usually its folder's name ({yaml_path.parent.name!r}).")
    version = raw.get("version")
    if not isinstance(version, str) or not version.strip():
        problems.add(f'{where}: `version` must be a quoted string, e.g. version: "1.0.0" (got {version!r}).')
    task = raw.get("task", "")
    _check_task(raw, where, problems)
    scorers = raw.get("scorers", [])
    _check_scorers(scorers, where, problems)
    near = raw.get("near_duplicates", "refuse")
    if near not in NEAR_DUPLICATES:
        problems.add(f"{where}: `near_duplicates` must be one of {', '.join(NEAR_DUPLICATES)}; got {near!r}.")
    problems.raise_if_any(where)
    contract = OutputContract.from_dict(raw.get("output"), where)
    warnings = _check_scorers_apply(scorers, contract, where)
    if task == "classification" and contract.kind != "label":  # `task` only describes; the contract scores
        warnings.append(f"{where}: `task: classification`, but `output.kind` is {contract.kind}: the per-label report, "
                        "macro-F1, decoding constrained to the label set and the majority-label floor need `kind: "
                        "label`. If every answer is one label, write `output: {kind: label, key: KEY, labels: [...]}` "
                        "(`harness suite init` infers it); else set the task that fits.")
    gate = None if raw.get("gate") is None else build(GateConfig, raw["gate"], where, prefix="gate.")
    info = {k: raw[k] for k in ("description", "source", "cleaning", "near_duplicates") if k in raw}
    return {
        "name": raw["name"].strip(),
        "version": version.strip(),
        "task": task,
        "instruction": raw["instruction"].strip(),
        "contract": contract,
        "scorers": tuple(scorers),
        "info": info,
        "gate": gate,
        "near_duplicates": near,
        "warnings": warnings,
    }


def _check_task(raw: dict, where: str, problems: Problems) -> None:
    if "task" in raw and raw["task"] not in TASKS:
        problems.add(f"{where}: `task`: unknown task {raw['task']!r}.{_did_you_mean(raw['task'], TASKS)} Choose "
                     f"one of {', '.join(TASKS)}.")


def _check_scorers(scorers: Any, where: str, problems: Problems) -> None:
    """Every name must be a known scorer: a typo found here costs nothing, found by the first trial it costs a
    model load, and every trial of the sweep fails the same way."""
    if not isinstance(scorers, list) or not all(isinstance(s, str) and s for s in scorers):
        problems.add(f"{where}: `scorers` must be a list of scorer names, e.g. [format_compliance, task_accuracy].")
        return
    for i, name in enumerate(scorers):
        if name not in SCORER_NAMES:
            problems.add(f"{where}: `scorers[{i}]`: unknown scorer {name!r}.{_did_you_mean(name, SCORER_NAMES)} "
                         f"Known scorers: {', '.join(SCORER_NAMES)}.")


def _check_scorers_apply(scorers: list[str], contract: OutputContract, where: str) -> list[str]:
    """Refuse a listed scorer that measures nothing on this contract (`rouge_l` on a JSON contract, `field_f1` on
    labels or text): it would be reported with n=0 on every split, which reads as a metric that was measured.
    Returns warnings for the always-run ones, which a suite may list without effect."""
    problems = Problems()
    for i, name in enumerate(scorers):
        if contract.kind in SCORER_CONTRACTS[name]:
            continue
        said = f"{where}: `scorers[{i}]`: {name} measures nothing on a {contract.kind} contract ({_SCORER_NEEDS[name]})"
        if name in CORE_SCORERS:  # run on every suite whatever it lists, so listing it changes nothing
            problems.warn(f"{said}, so it is n=0 on every split (it runs on every suite); remove it from `scorers`.")
        else:
            problems.add(f"{said}, so it would be n=0 on every split; remove it from `scorers`.")
    problems.raise_if_any(where)
    return problems.warnings


_SCORER_NEEDS = {
    "hallucination_rate": "it checks labels against the label set and JSON values against the input; free text has "
                          "neither",
    "field_precision": "it compares the fields of JSON answers",
    "field_recall": "it compares the fields of JSON answers",
    "field_f1": "it compares the fields of JSON answers",
    "rouge_l": "it compares free text; use task_accuracy for labels and field_f1 for partial credit on JSON",
}


def _did_you_mean(given: Any, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(given), known, n=1)
    return f" Did you mean {close[0]}?" if close else ""


def _load_split(
    path: Path, split: str, contract: OutputContract, problems: Problems
) -> tuple[tuple[Example, ...], str] | None:
    where = show_path(path)
    if path.exists() and not path.is_file():  # a folder, a pipe or a device would read as absent, or hang
        problems.add(f"{where}: not a regular file ({_kind_of(path)}); each split is a JSONL file. Put the file itself "
                     "there.")
        return None
    if not path.is_file():
        problems.add(f"{where}: missing; every suite needs {', '.join(s + '.jsonl' for s in SPLITS)}.")
        return None
    data = path.read_bytes()
    problem = encoding_problem(data, path.name)
    if problem:
        problems.add(f"{where}:{problem}")
        return None
    text = data.decode("utf-8")
    examples = []
    check = TargetCheck(contract)
    # split on "\n" only: str.splitlines would also break on U+2028 etc., which are legal inside JSON strings
    for number, line in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        if not line.strip():
            continue
        at = f"{where}:{number}"
        row = _parse_row(line, at, problems)
        if row is None:
            continue
        instruction, input_text, target = row
        problem = check(target, input_text)
        if problem:
            problems.add(f"{at}: {problem}")
            continue
        examples.append(Example(id=f"{split}:{number}", input=input_text, target=target, instruction=instruction))
    if not examples and not any(p.startswith(where) for p in problems.items):
        problems.add(f"{where}: empty; add at least one example (one JSON object per line).")
    return tuple(examples), hashlib.sha256(data).hexdigest()


def encoding_problem(data: bytes, name: str) -> str | None:
    """`LINE: what is wrong and the fix` when `data` is not UTF-8 text (a UTF-8 BOM is fine), else None. The fix
    re-saves the file `name` as UTF-8 beside it, with its own suffix."""
    fixed = f"fixed{Path(name).suffix.lower() or '.txt'}"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return (f"1: UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8; re-save it as UTF-8, e.g. "
                f"`iconv -f utf-16 -t utf-8 {name} > {fixed}`.")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        return (f"{line}: holds NUL bytes, so it is UTF-16 or binary, not UTF-8 text; re-save it as UTF-8, e.g. "
                f"`iconv -f utf-16 -t utf-8 {name} > {fixed}`.")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        # the bytes UTF-8 cannot read (surrogateescape keeps them) tell Windows-1252 from Latin-1: Windows-1252
        # prints curly quotes, dashes and the euro sign at 0x80-0x9F, where Latin-1 has control characters. They are
        # listed in the order the file holds them (a sorted set showed `\xff\xfe` as 0xfe, 0xff), and only the
        # escaped bytes U+DC80-U+DCFF: a character above them (an emoji) is text that decoded fine.
        undecodable = list(dict.fromkeys(
            ord(c) - 0xDC00 for c in data.decode("utf-8", "surrogateescape") if "\udc80" <= c <= "\udcff"))
        shown = ", ".join(f"0x{b:02x}" for b in undecodable[:5]) + (", ..." if len(undecodable) > 5 else "")
        legacy = legacy_encoding(data, undecodable)
        if legacy is None:
            shown_as = "; ".join(f"`-f {codec}` ({language}): {text!r}" for codec, language, text in readings(data))
            return (f"{line}: not UTF-8 (bytes {shown}), and not Western or Japanese text. Its first line beyond "
                    f"ASCII reads, in the encodings it may be in: {shown_as or 'none of them'}. Re-save it as UTF-8 "
                    "from the program that wrote it (Excel: Save As, CSV UTF-8), or convert it with the encoding "
                    f"whose line reads right, e.g. `iconv -f cp1251 -t utf-8 {name} > {fixed}`.")
        return (f"{line}: not UTF-8 (bytes {shown}), likely {legacy.described}; re-save it as UTF-8, e.g. "
                f"`iconv -f {legacy.codec} -t utf-8 {name} > {fixed}`.")
    return None


def _parse_row(line: str, at: str, problems: Problems) -> tuple[str | None, str, str] | None:
    """(instruction, input, target) from one JSONL line in either accepted format, or None after a problem."""
    try:
        row = load_json(line)
    except json.JSONDecodeError as exc:
        problems.add(f"{at}: malformed JSON ({json_error(exc, f'column {exc.colno}')}); write one JSON object per "
                     "line.")
        return None
    if not isinstance(row, dict):
        problems.add(f"{at}: expected a JSON object, got {_json_type(row)}; write one object per line, e.g. "
                     f'{{"input": "...", "output": ...}}.')
        return None
    _warn_unread_keys(row, at, problems)
    parsed = _parse_messages(row, at, problems) if "messages" in row else _parse_fields(row, at, problems)
    if parsed is not None and not all(_encodable(text) for text in parsed if text is not None):
        problems.add(f"{at}: a text holds an unpaired surrogate escape (such as \\ud800), which is not a character; "
                     "fix or remove the escape.")
        return None
    return parsed


def _warn_unread_keys(row: dict, at: str, problems: Problems) -> None:
    """A key the harness does not read is ignored. Often that is an id or a note, kept on purpose, so it is a warning;
    but a misspelt optional key (`instrucion`) would drop the row's instruction without a word."""
    for key in row:
        if key not in ROW_KEYS:
            problems.warn(f"{at}: key `{key}` is not read, so it is ignored.{_did_you_mean(key, ROW_KEYS)} A row "
                          "holds `input`, `output` and optionally `instruction`, or `messages`.")


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
            type(None): "null"}.get(type(value), type(value).__name__)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_fields(row: dict, at: str, problems: Problems) -> tuple[str | None, str, str] | None:
    missing = [k for k in ("input", "output") if k not in row]
    if missing:
        problems.add(
            f"{at}: missing field(s) {missing}; each line needs `input` and `output` (and optionally "
            f"`instruction`), or `messages`."
        )
        return None
    instruction, input_text, output = row.get("instruction"), row["input"], row["output"]
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        problems.add(f"{at}: `instruction` must be a non-empty string when present; remove it or fill it in.")
        return None
    if not isinstance(input_text, str) or not input_text.strip():
        problems.add(f"{at}: `input` must be a non-empty string.")
        return None
    if isinstance(output, dict):
        output = json.dumps(output, ensure_ascii=False)
    if not isinstance(output, str) or not output.strip():
        problems.add(f"{at}: `output` must be a JSON object or a non-empty string holding one.")
        return None
    return instruction, input_text, output


_MESSAGES_FIX = (
    'use [{"role": "system", "content": ...} (optional), {"role": "user", "content": ...}, '
    '{"role": "assistant", "content": ...}]'
)


def _parse_messages(row: dict, at: str, problems: Problems) -> tuple[str | None, str, str] | None:
    messages = row["messages"]
    ok = isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), (str, dict))
        for m in messages
    )
    roles = [m["role"] for m in messages] if ok else []
    if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
        got = roles if ok else "not a list of {role, content} objects"
        problems.add(f"{at}: bad `messages` format (roles {got}); {_MESSAGES_FIX}.")
        return None
    system = messages[0]["content"] if roles[0] == "system" else None
    user, assistant = messages[-2]["content"], messages[-1]["content"]
    if isinstance(assistant, dict):
        assistant = json.dumps(assistant, ensure_ascii=False)
    if not all(isinstance(c, str) and c.strip() for c in (user, assistant)) or (
        system is not None and (not isinstance(system, str) or not system.strip())
    ):
        problems.add(f"{at}: bad `messages` format (empty or non-string content); {_MESSAGES_FIX}.")
        return None
    return system, user, assistant


class TargetCheck:
    """Checks a reference answer against the contract: parse_target plus grounding for grounded contracts."""

    def __init__(self, contract: OutputContract) -> None:
        self.contract = contract
        self.parse = parse_target

    def __call__(self, target: str, input_text: str) -> str | None:
        try:
            value = self.parse(target, self.contract)
        except ValueError as exc:
            return str(exc)
        # a correct reference that is not grounded would be scored as a hallucination: every string at any depth
        # of a grounded key, as the hallucination scorer reads an answer (`string_values`)
        folded, listed = fold(input_text), bool(self.contract.grounded_keys)
        grounded = list(self.contract.grounded_items(value))
        for key, item in grounded:
            for s in string_values(item):
                if not written_in(fold(s), folded):  # as the hallucination scorer reads it
                    return (f"value {s!r} of {key!r} does not appear in the input, but the contract grounds "
                            f"{'it' if listed else 'every value'}; copy the value from the input, or "
                            + (f"take {key!r} out of `output.grounded`." if listed else
                               "set `output.grounded: false` (or list the keys whose values are copied, "
                               "`output.grounded: [KEY, ...]`)."))
        if self.contract.grounded_numbers:
            written = numbers_in(input_text)
            for key, item in grounded:
                for number in number_values(item):
                    if number not in written:
                        return (f"number {number} of {key!r} is not written in the input, but the contract grounds "
                                "numbers; copy it from the input or set `output.grounded_numbers: false`.")
        return None


def _check_duplicates(path: Path, splits: dict[str, tuple[Example, ...]], problems: Problems, near: bool) -> None:
    """Duplicates inflate a split's weight; overlap between splits is contamination and is refused: exact (after
    folding case and whitespace) always, near (also after folding punctuation) unless the suite allows it."""
    first: dict[str, dict[str, Example]] = {}
    near_first: dict[str, dict[str, Example]] = {}
    for split, examples in splits.items():
        seen: dict[str, Example] = {}
        near_seen: dict[str, Example] = {}
        twins: list[tuple[Example, Example]] = []
        for ex in examples:
            key = fold(ex.input)
            if key in seen:
                other = seen[key]
                problems.add(
                    f"{show_path(path / f'{split}.jsonl')}:{_line(ex)}: duplicate input (same as line {_line(other)} "
                    "after folding case/whitespace)" + _other_answer(ex, other, "; remove one of them.")
                )
            else:
                seen[key] = ex
                twin = near_seen.get(near_fold(ex.input))
                # `Why?` and `Why!!`: one example counted twice in the split's n (`👍` and `👎` with their own
                # answers are two, as between splits)
                if twin is not None and not apart_by_emoji((twin.input, fold(twin.target)),
                                                           (ex.input, fold(ex.target))):
                    twins.append((ex, twin))
            near_seen.setdefault(near_fold(ex.input), ex)
        first[split], near_first[split] = seen, near_seen
        if twins:
            problems.warn(f"{show_path(path / f'{split}.jsonl')}: {len(twins)} input(s) equal another input of the "
                          f"same split but for punctuation ({pairs_text(twins)}): each such example is counted twice "
                          "in the split's n. Remove one of each pair unless they differ on purpose.")
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        if a not in first or b not in first:
            continue
        for key, ex in first[b].items():
            if key in first[a]:
                problems.add(
                    f"{show_path(path / f'{b}.jsonl')}:{_line(ex)}: input also in {a}.jsonl:{_line(first[a][key])} "
                    f"(contamination between splits)" + _other_answer(ex, first[a][key],
                                                                      "; remove it from one of them.")
                )
        kept = 0
        for key, ex in near_first[b].items():
            other = near_first[a].get(key)
            if other is not None and fold(other.input) != fold(ex.input) and not apart_by_emoji(
                    (other.input, fold(other.target)), (ex.input, fold(ex.target))):
                if not near:  # `near_duplicates: allow`: kept knowingly, and counted where a report can say it
                    kept += 1
                    continue
                problems.add(
                    f"{show_path(path / f'{b}.jsonl')}:{_line(ex)}: input is a near-duplicate of "
                    f"{show_path(path / f'{a}.jsonl')}:{_line(other)} (equal after folding case, "
                    f"whitespace and punctuation: {' and '.join(snippets_apart(ex.input, other.input))}), which is "
                    f"contamination between splits; remove it from one of them, or keep such pairs knowingly with "
                    f"`near_duplicates: allow` in suite.yaml."
                )
        if kept:
            harm = ("a model trained on them is scored on them from memory" if a == "train" else
                    "the trials chosen on them are then reported on them again")
            problems.warn(f"{show_path(path)}: {kept} {b} input(s) equal a {a} input after folding case, whitespace "
                          f"and punctuation, kept by `near_duplicates: allow`: {harm}.")


_DIGIT_RUN = re.compile(r"\d+")


def _warn_numbers_apart(path: Path, splits: dict[str, tuple[Example, ...]], problems: Problems) -> None:
    """Inputs of two splits equal but for their numbers (a ticket number, an order id, a date): the commonest copy in
    support data, which the folds above keep apart, since `order 5 items` and `order 6 items` can be two tasks. A
    warning, with the first pairs to look at: 10 test tickets copied into train with their reference number changed
    passed validation as clean."""
    def key(ex: Example) -> str:
        return _DIGIT_RUN.sub("0", near_fold(ex.input))

    train = {key(ex): ex for ex in splits.get("train", ()) if _DIGIT_RUN.search(ex.input)}
    for split in ("dev", "test"):
        pairs = [(ex, train[key(ex)]) for ex in splits.get(split, ()) if _DIGIT_RUN.search(ex.input)
                 and key(ex) in train and near_fold(train[key(ex)].input) != near_fold(ex.input)]
        if pairs:
            problems.warn(f"{show_path(path)}: {len(pairs)} {split} input(s) equal a train input but for their "
                          f"numbers ({pairs_text(pairs)}): an id, order number or date that differs can make a copy "
                          "of the same text. If they are copies, remove them from one split: a model that saw them "
                          "in training is scored on memory.")


def pairs_text(pairs: Sequence[tuple[Example, Example]], shown: int = 3) -> str:
    """The first pairs of a warning, each input quoted with its file and line: `test.jsonl:1 'a' and train.jsonl:4
    'b'; ...`."""
    text = "; ".join(f"{example_at(ex)} {snippet(ex.input)} and {example_at(other)} {snippet(other.input)}"
                     for ex, other in pairs[:shown])
    return text + ("; ..." if len(pairs) > shown else "")


def snippet(text: str, size: int = 60) -> str:
    """A text as a warning quotes it: its first `size` characters, quoted."""
    return repr(text if len(text) <= size else text[:size] + "...")


def snippets_apart(a: str, b: str, size: int = 60) -> tuple[str, str]:
    """Two texts that differ past `size` characters, quoted around where they first differ: cut at the start, the
    two quotes of a near-duplicate read the same."""
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if at < size - 10:
        return snippet(a, size), snippet(b, size)
    start, end = at - size // 2, at + size // 2

    def around(text: str) -> str:
        return repr("..." + text[start:end] + ("..." if len(text) > end else ""))

    return around(a), around(b)


def _line(ex: Example) -> str:
    """The line of its split file an example was read from (its id is `test:12`)."""
    return ex.id.split(":", 1)[1]


def _other_answer(ex: Example, other: Example, otherwise: str) -> str:
    """The end of a duplicate's problem: what to do, and first that the two answer otherwise where they do."""
    if fold(ex.target) == fold(other.target):
        return otherwise
    return (f" with another answer ({snippet(ex.target)} here, {snippet(other.target)} there): decide which answer is "
            "right and remove the other line.")


def example_at(ex: Example) -> str:
    """`test.jsonl:12`: the file and line an example of a suite split was read from (its id is `test:12`)."""
    split, line = ex.id.split(":", 1)
    return f"{split}.jsonl:{line}"


def load_examples(path: Path, contract: OutputContract, split: str) -> tuple[tuple[Example, ...], str]:
    """Labelled examples from one JSONL file in a suite's format, checked against `contract` like a split; returns
    them with the file's sha256. Every problem, with its line, is one SuiteError."""
    problems = Problems()
    loaded = _load_split(Path(path), split, contract, problems)
    problems.raise_if_any(show_path(Path(path)))
    return loaded


def seeded_subset(examples: tuple[Example, ...], limit: int | None, seed: int) -> tuple[Example, ...]:
    """A seeded subset that keeps the split's order, so the same limit and seed always pick the same examples."""
    if limit is None or limit >= len(examples):
        return tuple(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return tuple(examples[i] for i in keep)


# ------------------------------------------------------------------------------------------------- stats


def suite_stats(suite: Suite) -> dict[str, dict[str, Any]]:
    """Per split: size, input/target lengths in chars, and the label distribution (label), key counts (json) or
    answer lengths and distinct answers (text)."""
    stats: dict[str, dict[str, Any]] = {}
    for split, examples in suite.splits.items():
        values = [parse_target(ex.target, suite.contract) for ex in examples]
        entry: dict[str, Any] = {
            "n": len(examples),
            "input_chars": _lengths([len(ex.input) for ex in examples]),
            "target_chars": _lengths([len(ex.target) for ex in examples]),
        }
        if suite.contract.kind == "label":
            counts = Counter(v[suite.contract.key] for v in values)
            entry["labels"] = {label: counts.get(label, 0) for label in suite.contract.labels}
            entry["labels_missing"] = [label for label in suite.contract.labels if not counts.get(label)]
        elif suite.contract.kind == "text":
            entry.update(_text_answer_stats(values, suite.contract))
        else:
            # a key counts where an answer gives it a value: null or empty is absent, as the scorers read it
            entry["keys"] = dict(Counter(k for v in values for k, item in v.items()
                                         if item is not None and item not in ("", [], {})).most_common())
            entry["empty_objects"] = sum(1 for v in values if not v)
        stats[split] = entry
    return stats


def label_counts(examples: Sequence[Example], contract: OutputContract) -> Counter:
    """How many of `examples` have each label; empty for a suite without labels."""
    if contract.kind != "label":
        return Counter()
    return Counter(parse_target(ex.target, contract)[contract.key] for ex in examples)


def labels_left_out(train: Sequence[Example], scored: Sequence[Example], contract: OutputContract) -> dict[str, int]:
    """The labels of `scored` examples (dev and test) that no `train` example has, with how many scored examples
    have each: no adapter can learn them and no shot can show them."""
    taught = label_counts(train, contract)
    return {label: n for label, n in sorted(label_counts(scored, contract).items()) if not taught[label]}


def labels_not_in_train(suite: Suite) -> dict[str, int]:
    """`labels_left_out` of the suite's whole splits."""
    return labels_left_out(suite.splits["train"], (*suite.splits["dev"], *suite.splits["test"]), suite.contract)


def _text_answer_stats(values: list[dict], contract: OutputContract) -> dict[str, Any]:
    """A text suite's final answers: their length in words (what makes exact match fair or hopeless) and how many are
    distinct (few means a constant answer scores well without reading the input); the worked steps' length too,
    when answers have them. The parsed {answer, rationale} record itself is no statistic."""
    answers = [v["answer"] for v in values]
    entry: dict[str, Any] = {
        "answer_words": _lengths([len(a.split()) for a in answers]),
        "distinct_answers": len({fold(a) for a in answers}),
    }
    if contract.whole_output:
        return entry
    entry["rationale_words"] = _lengths([len(v["rationale"].split()) for v in values])
    return entry


def _lengths(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": min(values), "mean": round(statistics.fmean(values), 1), "max": max(values)}
