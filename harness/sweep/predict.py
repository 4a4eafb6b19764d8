"""Answer new inputs with a finished trial: its saved adapter or model (or its hosted endpoint), prompted exactly as
in evaluation.

The trial's method rebuilds what it ran (`Method.load`) from the study's stored experiment; the suite comes from the
path the study recorded (so this works from any folder), else by name; the model and the suite must be the ones the
trial was scored with.

`read_inputs` turns `--input` into the texts to answer: the text itself, the rows of a table (read as suite init
reads it, from the column the suite was built from unless `--input-field` names one) or the lines of a .txt file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.config import ExperimentConfig
from harness.core.errors import DeviceError, HarnessError, SuiteError
from harness.core.records import DataProvenance, StudyView, TrialView, ran_with
from harness.core.typed import build
from harness.data.contract import parse_output
from harness.data.csvfile import read_csv
from harness.data.formats import (
    INPUT_GUESSES,
    SUFFIXES,
    TABLE_SUFFIXES,
    guess_field,
    jsonl_records,
    nested_paths,
    parquet_records,
    value_at,
)
from harness.data.labelled import recorded_fields
from harness.data.prompting import Prompter, beyond_context, max_answer_tokens
from harness.data.shots import FixedShots
from harness.data.suites import (
    Example,
    Suite,
    differs_from_recorded,
    encoding_problem,
    load_suite,
    seeded_subset,
    show_path,
)
from harness.evaluation.scorers.hallucination import hallucinated
from harness.models import loading, sources
from harness.models.device import default_dtype, resolve_device
from harness.store.database import Store
from harness.store.weights import missing_weights
from harness.sweep.plan import resolve_endpoints
from harness.sweep.space import method_params
from harness.training.methods import METHODS
from harness.training.methods.base import Candidate, Method, TrialContext

FOLLOW_UP_PARAMS = ("source_trial", "seed", "train_examples")
"""What a follow-up trial adds to its source's parameters (see sweep/followups.py)."""


@dataclass(frozen=True)
class Prediction:
    input: str
    output: str
    parsed: dict | None
    format_compliant: bool
    error: str | None
    hallucinated: bool | None = None
    """Whether the answer states what the contract or the input does not support, as hallucination_rate counts it: a
    label outside the set, a key outside `fields`, a grounded value not in the input. None where that is not
    checked: free text, or an answer that did not parse."""
    at: str | None = None
    """Where the input came from, `new.csv:8` (None for --text): answers are matched to rows by it, not by order."""


@dataclass(frozen=True)
class Given:
    """One input to answer, where it came from, and why it cannot be answered (an empty cell), if so."""

    text: str
    at: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Rebuilt:
    """A finished trial's method, parameters and context, rebuilt from the store before any model loads."""

    trial: TrialView
    suite: Suite
    method: Method
    params: Any
    ctx: TrialContext


def rebuild(store: Store, trial_id: str, device: str = "auto", endpoints: bool = True,
            as_scored: bool = True) -> Rebuilt:
    """What `trial_id` ran, checked against this machine: its suite, the model (by sha256) and its weights.
    `endpoints`: resolve its hosted endpoint too (its key set, the server answering), as answering needs; an export
    of its prompt needs neither. `as_scored`: refuse a suite whose set-up (instruction, contract, scorers), or, for a
    prompting trial, whose train split (its shots), was edited since the trial was scored, under the same version:
    the prompt rebuilt from it is not the one scored. `recheck` re-scores with the suite as it is, naming the edit."""
    trial = store.require_trial(trial_id, complete=True)
    study = store.study(trial.study)
    if study is None:
        raise HarnessError(f"trial {trial.id} has no study record in {store.path}; it cannot be rebuilt.")
    suite = study_suite(study, f"trial {trial.id}", trial.data)
    if as_scored:
        _check_as_scored(trial, suite)
    source = sources.resolve_recorded(study.model_name, f"trial {trial.id}")
    if source.sha256 != study.model_sha256:
        raise HarnessError(f"the model {source.name} on this machine (sha256 {source.sha256[:12]}) is not the one "
                           f"trial {trial.id} used ({study.model_sha256[:12]}).")
    method = METHODS.get(trial.method)
    if (missing := missing_weights(trial, study)) is not None:
        raise HarnessError(missing)
    if trial.trained:  # an adapter made for another base model: refused before anything loads
        loading.check_adapter_base(trial.artifact_path, source, f"trial {trial.id}")
    ctx = _context(store, trial, build(ExperimentConfig, ran_with(trial, study), f"trial {trial.id}"), suite,
                   source, resolve_device(device), endpoints)
    params = method_params({k: v for k, v in trial.params.items() if k not in FOLLOW_UP_PARAMS}, trial.id)
    return Rebuilt(trial, suite, method, params, ctx)


def _check_as_scored(trial: TrialView, suite: Suite) -> None:
    """Refuse a suite edited, under the version the trial recorded, where the edit changes the trial's prompt."""
    shown = not trial.trained and (trial.shots or int(trial.params.get("shots") or 0) > 0)  # shots from train
    recorded = {k: v for k, v in trial.data.split_sha256.items() if k == "train" and shown}
    if edited := differs_from_recorded(suite, recorded, trial.data.suite_setup_sha256):
        raise HarnessError(
            f"suite {suite.name} {suite.version} at {show_path(suite.path)} is not what trial {trial.id} was scored "
            f"with: {edited} changed since, under the same version, so the prompt rebuilt from it now may not be the "
            "one scored. Put the suite's files back as they were, byte for byte (version control keeps them; a file "
            "saved again with other line endings or key order reads as changed too), or give the edit a new "
            "`version:` and run the sweep again to score it. (`harness recheck` re-scores with the suite as it is.)")


def load_candidate(store: Store, trial_id: str, device: str = "auto",
                   as_scored: bool = True) -> tuple[Candidate, Suite, int]:
    """Rebuild the trial's answerer; returns it, the suite, and the answer cap. `as_scored`: see `rebuild`."""
    rebuilt = rebuild(store, trial_id, device, as_scored=as_scored)
    candidate = rebuilt.method.load(rebuilt.ctx, rebuilt.params, rebuilt.trial.artifact_path)
    check_shots(rebuilt, candidate.prompter)
    return candidate, rebuilt.suite, rebuilt.ctx.max_new_tokens


def check_shots(rebuilt: Rebuilt, prompter: Prompter) -> None:
    """Refuse a prompt whose shots are no longer those the trial recorded: its suite's train split has changed."""
    trial, shots = rebuilt.trial, prompter.shots
    if trial.shots and (not isinstance(shots, FixedShots) or tuple(ex.id for ex in shots.examples) != trial.shots):
        raise HarnessError(f"trial {trial.id} was prompted with shots {list(trial.shots)[:3]}..., which suite "
                           f"{rebuilt.suite.name} at {rebuilt.suite.path} no longer gives; its train split has "
                           "changed.")


def study_suite(study: StudyView, who: str, scored: DataProvenance | None = None) -> Suite:
    """The suite `who` (a trial of `study`) was scored on: from the path the study recorded, else by name; refused
    when its version has moved on, since its prompt and labels may then differ, and, found by name, when it is not
    the suite `scored` (what the trial recorded) says: another project's suite of the same name and version."""
    recorded = study.suite_path and Path(study.suite_path).is_dir()
    try:
        suite = load_suite(study.suite_path if recorded else study.suite)
    except SuiteError:
        if recorded or not study.suite_path:  # a suite that is there but broken says so itself
            raise
        raise SuiteError(f"{who} was scored on suite {study.suite} at {study.suite_path}, which is not there any more "
                         f"(nor is ./suites/{study.suite}). Put the suite folder back at that path, or run from a "
                         f"folder whose suites/{study.suite} holds it.") from None
    if suite.version != study.suite_version:
        raise HarnessError(f"{who} was scored on suite {suite.name} {study.suite_version}, but the suite found at "
                           f"{suite.path} is {suite.version}; its prompt and labels may differ.")
    if not recorded and scored is not None and (other := differs_from_recorded(
            suite, {k: v for k, v in scored.split_sha256.items() if k == "test"}, scored.suite_setup_sha256)):
        # a recheck run from another team's folder had scored one team's adapter on the other's test data
        raise HarnessError(f"{who} was scored on suite {study.suite} {study.suite_version} at "
                           f"{study.suite_path or '(not recorded)'}, which is not there any more; the suite of that "
                           f"name found here ({show_path(suite.path)}) is not it: {other} differ. Run this from the "
                           "project that holds the suite the trial was scored on, or put that folder back.")
    return suite


def _context(store: Store, trial: TrialView, config: ExperimentConfig, suite: Suite, source,
             device: str, ask_endpoints: bool = True) -> TrialContext:
    seed = int(trial.params.get("seed", config.seed))  # repeated seeds change the seed, hence the shots
    train = seeded_subset(suite.splits["train"], config.data.train_limit, config.seed)
    endpoint = trial.params.get("endpoint")
    endpoints = resolve_endpoints(config, [endpoint], f"study {trial.study}", store.path.parent / "cache" / "hosted") \
        if endpoint and ask_endpoints else {}
    tokenizer = loading.load_tokenizer(source)
    # the cap the trial was scored with: derived from train's answers, it would move with an edit of train
    cap = trial.max_new_tokens or config.generation.max_new_tokens or max_answer_tokens(
        tokenizer, suite.contract, [ex.target for ex in train])
    # the precision the machine's calibration chose for the trial, not the experiment's `auto`: on a GPU where it
    # chose fp32, `auto` would load bf16 weights and answer otherwise than the recorded scores
    precision = trial.precision or config.training.precision
    return TrialContext(config=dataclasses.replace(config, seed=seed), suite=suite, train_examples=train,
                        source=source, device=device, dtype=default_dtype(device, precision),
                        seed=seed, endpoints=endpoints, max_new_tokens=cap, recorded_shots=trial.shots,
                        recorded_instruction=trial.prompt_search.instruction if trial.prompt_search else None)


def predict(store: Store, trial_id: str, inputs: Sequence[Given | str], device: str = "auto",
            batch_size: int = 16) -> list[Prediction]:
    """Answer every input that holds text, in order; one that cannot be answered (`Given.problem`) gets a line with
    that error instead, so a batch of new e-mails is answered whole around an empty one."""
    given = [g if isinstance(g, Given) else Given(g) for g in inputs]
    try:  # before anything loads; resolve_device's own advice names the experiment's `device:`, not this flag
        device = resolve_device(device)
    except DeviceError:
        raise DeviceError(f"--device {device}: torch sees no CUDA GPU on this machine. Answer on the CPU with --device "
                          "cpu (or --device auto, which takes a GPU when there is one), or install a CUDA build of "
                          "torch on a GPU machine.") from None
    candidate, suite, cap = load_candidate(store, trial_id, device)
    answerable = [g for g in given if g.problem is None]
    examples = [Example(id=f"input:{i + 1}", input=g.text, target="") for i, g in enumerate(answerable)]
    too_long, context = beyond_window(candidate, examples, cap)
    for i, ex in enumerate(examples, 1):  # the first in the order given
        if ex in too_long:
            raise HarnessError(f"--input: input {i} ({len(ex.input):,} characters) makes a {too_long[ex]:,}-token "
                               f"prompt; with {cap} tokens for the answer it does not fit the model's context window "
                               f"of {context:,} tokens. Shorten it (nothing was answered).")
    answered = {}
    for g, gen in zip(answerable, candidate.answer(examples, cap, batch_size, desc="predict") if examples else ()):
        parsed = parse_output(gen.output, suite.contract)
        checked = parsed.compliant and suite.contract.kind != "text"
        answered[id(g)] = Prediction(g.text, gen.output, parsed.value, parsed.compliant, gen.error or parsed.error,
                                     hallucinated(parsed.value, g.text, suite.contract) if checked else None, g.at)
    return [answered[id(g)] if g.problem is None else Prediction(g.text, "", None, False, g.problem, None, g.at)
            for g in given]


def beyond_window(candidate: Candidate, examples: list[Example], cap: int) -> tuple[dict[Example, int], int | None]:
    """({example: its prompt's tokens} for the inputs whose prompt and answer do not fit a local model's context
    window, the window): past it, a model answers from a garbled position encoding (or fails), and the answer would
    look like any other, so `predict` and `recheck` refuse them. Empty for a hosted endpoint, whose window is its
    own."""
    model, prompter = getattr(candidate, "model", None), candidate.prompter
    if candidate.hosted is not None or model is None or prompter.tokenizer is None:
        return {}, None
    context = loading.window_of(model.config, prompter.tokenizer)  # in the config it was loaded with
    return ({} if context is None else dict(beyond_context(prompter, examples, cap, context))), context


# -- `--input`: the text itself, or a file of inputs -----------------------------------------------------------

LINE_SUFFIXES = (".txt", "")
"""Files read one input per line: a .txt file, or one with no suffix at all. Tables are the files suite init reads
(formats.SUFFIXES); any other file is refused, since its raw lines (a header, a markup, the bytes of a sheet) would
be answered as if they were inputs."""
INPUT_FILE_SUFFIXES = (*SUFFIXES, ".json", ".txt")
"""What `--input` takes for a file name rather than text to answer, when no such file exists."""
_CONVERSIONS = dict.fromkeys((".xlsx", ".xlsm", ".xls", ".ods", ".numbers"), "save the sheet as CSV (UTF-8) and "
                             "pass that") | dict.fromkeys((".gz", ".bz2", ".xz", ".zip"), "unpack it first")
"""The fix for a file type that is not read, where renaming it to .txt is not the fix."""


def read_inputs(given: str, input_field: str | None = None,
                suite_field: Callable[[], str | None] = lambda: None) -> list[str]:
    """The texts `read_input_rows` finds to answer, in order (rows that cannot be answered left out)."""
    return [row.text for row in read_input_rows(given, input_field, suite_field) if row.problem is None]


def read_input_rows(given: str, input_field: str | None = None,
                    suite_field: Callable[[], str | None] = lambda: None) -> list[Given]:
    """`--input`: the text to answer, or the inputs of a file, each with where it came from.

    A table, one of the files suite init reads and read as it reads them (.jsonl one object per line; .csv or .tsv
    with a header row; .parquet), gives one input per row: from `input_field` (`--input-field`; a dotted path
    reaches into JSONL objects), else from the field the trial's suite was built from (`suite_field`, asked only
    for a table), else `input` or the first of INPUT_GUESSES (the names suite init reads inputs from), else its only
    field. A .txt file, or one with no suffix, gives one input per non-blank line. Any other file is refused with the
    conversion to make, and so is a name that looks like a file and is not there: answering the file name, or the raw
    lines of a table, would look like success. Each input carries its file and line (`Given.at`), so blank lines and
    empty rows are skipped, and a row whose text cell is empty is kept with its problem: its line of output says so."""
    if not given.strip():
        raise HarnessError("--input is empty: give the text to answer, or a file of inputs (.jsonl, .csv, .tsv, "
                           ".parquet or .txt).")
    path = Path(given)
    if not _is_file(path):
        if _looks_like_a_path(given) or _is_dir(path):  # `results` as much as `results/`
            what = "a folder, not a file" if _is_dir(path) else f"no such file (looked in {Path.cwd()})"
            raise HarnessError(f"--input {given}: {what}. Give an existing file of inputs (.jsonl, .csv, .tsv, "
                               ".parquet or .txt), or the text to answer itself (--text answers text that looks like a "
                               "file name as it is).")
        if input_field:
            raise HarnessError(f"--input-field {input_field} names the column of a file of inputs, but --input "
                               f"{given!r} is no file here (looked in {Path.cwd()}); give the file's path, or drop "
                               "--input-field to answer that text.")
        return [Given(given)]
    where, suffix = show_path(path), path.suffix.lower()
    _refuse_unread(path, where, suffix)
    if suffix in LINE_SUFFIXES:
        if input_field:
            raise HarnessError(f"--input-field {input_field}: {where} is read one input per line and has no columns; "
                               "drop --input-field, or give a table (.jsonl, .csv, .tsv or .parquet).")
        inputs = _line_inputs(_text(path, where), where)
    else:
        inputs = _table_inputs(path, where, suffix, input_field, suite_field)
    if not any(row.problem is None for row in inputs):
        raise HarnessError(f"--input {where}: the file holds no inputs"
                           + (f" ({inputs[0].at}: {inputs[0].problem})." if inputs else "."))
    return inputs


def suite_input_field(store: Store, trial_id: str) -> str | None:
    """The input field the trial's suite was built from, as `harness suite init` records it in suite.yaml
    (`source.fields.input`); None for a suite that records none (a bundled one, or one made from chat or alpaca)."""
    trial = store.require_trial(trial_id)
    study = store.study(trial.study)
    if study is None:
        return None  # load_candidate refuses such a trial, with its reason
    return recorded_fields(study_suite(study, f"trial {trial.id}")).input


def _refuse_unread(path: Path, where: str, suffix: str) -> None:
    """Refuse a file that is neither a table nor a .txt file, with the conversion to make."""
    if suffix == ".json":
        raise HarnessError(f"--input {where}: a .json file is not read; give one input per line as .jsonl (a JSON "
                           f"array converts with `jq -c '.[]' {path.name} > inputs.jsonl`), .csv or .txt.")
    if suffix in SUFFIXES or suffix in LINE_SUFFIXES:
        return
    fix = _CONVERSIONS.get(suffix, f"if each line is one input, rename it to {path.stem}.txt; else convert it to "
                                   ".jsonl or .csv")
    raise HarnessError(f"--input {where}: a {suffix} file is not read. predict reads a table (.jsonl, .csv, .tsv or "
                       f".parquet: one input per row) or a .txt file (one input per line); {fix}.")


def _text(path: Path, where: str) -> str:
    data = path.read_bytes()
    if (problem := encoding_problem(data, path.name)) is not None:  # UTF-16, Windows-1252 or Latin-1: the iconv
        raise HarnessError(f"--input {where}:{problem}")
    return data.decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM


def _line_inputs(text: str, where: str) -> list[Given]:
    """One input per non-blank line; each answer names its line, so a blank one shifts nothing."""
    return [Given(line, f"{where}:{n}") for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _table_inputs(path: Path, where: str, suffix: str, input_field: str | None,
                  suite_field: Callable[[], str | None]) -> list[Given]:
    """One input per row of a table, read as suite init reads it: an empty row is skipped, as init skips it, and a
    row whose text cell is empty or missing is kept with that problem (a batch of new e-mails stopped at one)."""
    paths: list[str] = []
    if suffix == ".parquet":
        records, columns = parquet_records(path, where)
    elif suffix == ".jsonl":
        records, columns = jsonl_records(_text(path, where), where)
        paths = nested_paths(records, columns)
    else:  # the reader suite init uses: the delimiter found, every row's width checked; empty rows kept (and
        # refused below), so that answers stay in line with rows
        table = read_csv(_text(path, where).rstrip("\r\n") + "\n", where, preferred=TABLE_SUFFIXES[suffix],
                         keep_empty=True)
        records, columns = table.records, table.columns
    field = _input_field(columns, paths, where, "field" if suffix == ".jsonl" else "column", input_field, suite_field)
    inputs = []
    for line, record in records:
        value = value_at(record, field)
        if isinstance(value, str) and value.strip():
            inputs.append(Given(value, f"{where}:{line}"))
        elif any(bool(v.strip()) if isinstance(v, str) else v is not None for v in record.values()):  # not blank
            what = "missing" if value is None else "empty" if isinstance(value, str) else "not text"
            inputs.append(Given("", f"{where}:{line}", f"`{field}` is {what} on this row: nothing was answered"))
    return inputs


def _is_dir(path: Path) -> bool:
    """Whether `path` names a folder; a text too long to be a file name does not."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    """Whether `path` names a file; a text too long to be a file name (the OS refuses to look it up) does not."""
    try:
        return path.is_file()
    except OSError:
        return False


def _looks_like_a_path(text: str) -> bool:
    """A file name (by its suffix) or a path (a separator and no spaces), not a sentence or a URL."""
    if "\n" in text or "://" in text:
        return False
    if Path(text).suffix.lower() in INPUT_FILE_SUFFIXES:
        return True
    return not any(c.isspace() for c in text) and ("/" in text or os.sep in text)


def _input_field(columns: list[str], paths: list[str], where: str, noun: str, given: str | None,
                 suite_field: Callable[[], str | None]) -> str:
    """The field of the inputs: `--input-field`, else the one the suite was built from, else `input` or the first
    guess suite init makes, else the only field. `paths`: dotted paths into nested JSONL objects, which only a name
    reaches."""
    if given:
        if given not in columns + paths:
            raise HarnessError(f"{where}: no {noun} {given!r}; --input-field must name one of {columns + paths}.")
        return given
    recorded = suite_field()
    guessed = guess_field(((recorded.lower(),) if recorded else ()) + ("input", *INPUT_GUESSES), columns + paths)
    if guessed is not None:
        return guessed
    if len(columns) == 1:
        return columns[0]
    built = f" (the trial's suite was built from {noun} `{recorded}`, which it lacks)" if recorded else ""
    raise HarnessError(f"{where}: which {noun} holds the inputs? It has {columns}{built}; pass --input-field NAME, "
                       f"name that {noun} `input` (or one of {', '.join(INPUT_GUESSES)}), or keep only that {noun}.")
