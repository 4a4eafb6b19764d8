"""`harness sweep`, `harness worker` and `harness merge`: run a study, alone or as one of many workers, and bring
the workers' results together."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from rich.console import Console
from rich.text import Text

from harness.cli.console import print_flagged, saying
from harness.cli.options import database_path, db_option, named, open_store, worker_index
from harness.cli.parsing import Help, examples_block
from harness.core.errors import HarnessError
from harness.core.paths import STORAGE_ENV, bundled, results_folder


def add_commands(sub) -> None:
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
    study_options(sweep)
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the plan, the machine's timings and an estimate of every trial; run no trial")
    sweep.add_argument("--check", action="store_true",
                       help="check the experiment, its --set items, the suite (splits, labels, contamination) and "
                            "the results database in seconds, loading no model and sending no request (for CI); "
                            "exit 2 naming what to fix")
    sweep.add_argument("--workers", type=int, default=1, metavar="N",
                       help="run N worker processes on this one study (default 1); with GPUs, worker i uses GPU i. "
                            "For workers on several machines, see `harness worker`")
    db_option(sweep)
    sweep.set_defaults(run=_sweep, resumable=True)

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
    study_options(worker)
    worker.add_argument("--results", metavar="DIR", help="results folder of this worker: its database, adapters and "
                                                         "caches (default: the experiment's results_dir); --db moves "
                                                         "only the database, and wins for it when both are given")
    worker.add_argument("--index", type=worker_index, default=None,
                        help="this worker's number; it offsets the sampler's seed so workers explore different "
                             "configurations (default: derived from the process id)")
    db_option(worker)
    worker.set_defaults(run=_worker, resumable=True)

    merge = sub.add_parser(
        "merge", help="load other workers' results databases into this one",
        description="Workers on other machines write their own results folder (`harness worker --results DIR`). Copy "
                    "those folders here (rsync, scp), then merge each: its finished trials, with their metrics, "
                    "examples and adapter folders, join this database, so `harness trials`, the dashboard and "
                    "promotion see every worker's trials. Merging twice adds nothing.")
    merge.add_argument("sources", nargs="+", type=Path, metavar="SOURCE",
                       help="a worker's results folder, or its harness.duckdb")
    db_option(merge)
    merge.epilog = examples_block(("harness merge /data/results-b /data/results-c", "into ./results/harness.duckdb"),
                                  ("harness merge results-b --db /data/results", "into another results folder"))
    merge.formatter_class = Help
    merge.set_defaults(run=_merge)


SWEEP_EPILOG = """\
examples:
  harness sweep experiments/first-sweep.yaml --dry-run       the plan, this machine's timings, every trial's estimate
  harness sweep demo --trials 6                               a bundled experiment by name; 6 trials in all (resumes)
  harness sweep my.yaml --set data.train_limit=200 --set budget.max_steps=20     a quick, small run
  harness sweep my.yaml --set space.full=null --study short   leave a method the file lists out (a new study)
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


def study_options(parser: argparse.ArgumentParser) -> None:
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


def _checked(plan, store, console: Console) -> int:
    """`sweep --check`: every check that needs no model passed; say what was checked and what was not."""
    import tempfile

    from harness.data.suites import show_path
    from harness.sweep.run import check_store_matches_storage

    with tempfile.TemporaryDirectory(prefix="harness-check-") as scratch:
        given, store = store, store.read_as_upgraded(Path(scratch))  # --check writes nothing where it can
        if store is not given:
            print_flagged(console, "note",
                          f"{given.path} was written by an older release: checked against an upgraded copy "
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
            print_flagged(console, "note", as_given(note))
    for method, why in plan.space.unavailable.items():  # the sweep would run without it: a CI step should see it too
        print_flagged(console, "note", f"{method} is skipped on this machine: {why}")
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
    from harness.sweep.machine import finished_trials, plan_for_machine, study_precision
    from harness.sweep.notices import before_trials, calibration_note, estimate_warning, run_failed
    from harness.sweep.plan import plan_sweep
    from harness.sweep.run import check_store_matches_storage, run_sweep
    from harness.sweep.storage import redacted
    from harness.sweep.workers import as_one_worker, worker_threads

    plan = plan_sweep(args.experiment, args.overrides, args.study, args.storage, args.trials)
    for word, text in before_trials(plan, args.storage):
        print_flagged(console, word, text)
    _check_workers(args.workers, plan)  # before calibration, which takes minutes, and in the dry run
    if args.check:
        return _checked(plan, open_store(args.db, plan.config.results_dir), console)
    if not args.dry_run:  # owner-only before anything writes in it (the hosted cache, the forgetting check's)
        results_folder(plan.results_dir)
    store = open_store(args.db, plan.config.results_dir)
    # before calibration, and in the dry run, which writes nothing and so reads the study's journal as it is
    for note in check_store_matches_storage(plan, store, repair=not args.dry_run):
        print_flagged(console, "note", note)
    with as_one_worker(plan.device, args.workers):  # workers then read this calibration, not time it again
        here = plan_for_machine(plan, saying(console), args.allow_under_trained, pull_missing=not args.dry_run,
                                recalibrate=args.recalibrate, finished=finished_trials(store, plan.study),
                                refuse=not args.dry_run, trained_in=study_precision(store, plan.study))
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
        saying(console)("\n".join(plan.describe()))
        if here.data is not None and here.data.prompt_sizes:
            console.print(here.data.prompt_sizes, highlight=False)
    if expected is not None:  # at the sweep's start too: what the trials below should take here
        saying(console)(report.estimate_text(expected))
    if (warning := estimate_warning(here, store)) is not None:
        print_flagged(console, "warning", warning)
    if args.dry_run:
        if here.refusal is not None:  # after the plan and estimate it is about: they show what to change
            raise HarnessError(f"the sweep would not start here: {here.refusal}")
        return 0
    decided = [*args.overrides, *here.decided()]  # every worker runs the trials planned here
    if args.workers > 1 and _run_workers(plan, decided, store, args.workers, console):
        return 1
    outcome = run_sweep(plan, store, echo=saying(console), prepared=here.data)  # with workers: the follow-ups
    trials = store.trials(outcome.study)
    console.print(report.ranking_table(trials, plan.config.objective.metric))
    verdict = study_verdict(store, outcome.study)
    console.print(verdict.text, highlight=False)
    if here.lowered_note():
        saying(console)(here.lowered_note())
    if (note := calibration_note(here, store, outcome)) is not None:
        saying(console)(note)
    followups = store.followups(outcome.study)
    for extra in (report.seed_spread_table(trials, store.trials(followups["seeds"].name) if "seeds" in followups
                                           else []),
                  report.learning_curve_table(store.trials(followups["curve"].name) if "curve" in followups else [])):
        if extra is not None:
            console.print(extra)
    if (failed := run_failed(outcome, trials)) is not None:
        print_flagged(console, "error", failed)
        return 1
    db = "" if store.path == Path("results/harness.duckdb") else f" --db {shlex.quote(str(store.path.parent))}"
    console.print(f"next: `harness report --study {outcome.study}{db}` writes this answer with its evidence and "
                  "cautions as one document; add --volume QUERIES_PER_MONTH for the payback.", highlight=False)
    if verdict.head == "NO" and verdict.prompting:  # prompting won: its prompt is what goes to production
        console.print(f"`harness export {verdict.prompting} --out prompt/{db}` writes the winning prompt (its shots "
                      "and decoding) as a service sends it.", highlight=False)
    return 0


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
                              echo=saying(console))
    bad = [e for e in exits if e.returncode != 0]
    for e in bad:
        console.print(Text.assemble((f"worker {e.index} exited with {e.returncode}", "bold red"),
                                    f"; the end of {e.log}:\n{log_tail(e.log)}"), highlight=False)
    return bool(bad) and len(bad) == len(exits)


def _worker(args, console: Console) -> int:
    from harness.core.config import FlagOverride
    from harness.sweep.machine import finished_trials, plan_for_machine, study_precision
    from harness.sweep.notices import before_trials, calibration_note, run_failed
    from harness.sweep.plan import plan_sweep
    from harness.sweep.run import check_store_matches_storage, run_sweep

    results = [FlagOverride(f"results_dir={args.results}", f"--results {args.results}")] if args.results else []
    overrides = args.overrides + results
    plan = plan_sweep(args.experiment, overrides, args.study, args.storage, args.trials)
    index = args.index if args.index is not None else os.getpid() % 9973 + 1
    for word, text in before_trials(plan, args.storage):
        print_flagged(console, word, text)
    if args.storage is None:  # neither --storage nor $HARNESS_STORAGE: workers share a study only through it
        print_flagged(console, "note",
                      f"worker {index} keeps study {plan.study} in {plan.storage}, the default "
                      "storage of its results folder: only workers on this machine with the same --results share it; "
                      f"a worker elsewhere runs a study of its own. Give every worker the same --storage (or "
                      f"{STORAGE_ENV}) to share one study across machines.")
    results_folder(plan.results_dir)  # owner-only before anything writes in it
    store = open_store(args.db, plan.config.results_dir)
    for note in check_store_matches_storage(plan, store):  # before calibration: another setup costs minutes there
        print_flagged(console, "note", note)
    here = plan_for_machine(plan, saying(console), args.allow_under_trained, recalibrate=args.recalibrate,
                            finished=finished_trials(store, plan.study), trained_in=study_precision(store, plan.study))
    outcome = run_sweep(here.plan, store, echo=saying(console), worker=index, followups=False, prepared=here.data)
    if (note := calibration_note(here, store, outcome)) is not None:
        saying(console)(note)
    console.print(f"worker {index}: ran {outcome.ran} trial(s) of study {plan.study}, {outcome.failed} failed"
                  + (f", {outcome.duplicates} duplicate(s) not re-run" if outcome.duplicates else "") + ".")
    if (failed := run_failed(outcome, (), who="worker")) is not None:
        print_flagged(console, "error", failed)
        return 1
    return 0


def _merge(args, console: Console) -> int:
    import shutil

    from harness.store.database import Store
    from harness.sweep import retention

    target = open_store(args.db)
    for given in args.sources:
        source = Store(database_path(given, "SOURCE"))
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
            print_flagged(console, "warning",
                          f"{there} was not copied: {link} is a symbolic link (to "
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
            print_flagged(console, "warning",
                          f"{source.path} also holds {report.events_left} registry event(s) "
                          f"and {report.looks_left} look(s) at test of the merged trials, which merge does not carry: "
                          "a merged trial arrives as a candidate with no history here. Promote, retire and gate in "
                          f"one database; `harness registry --history --db {source.path}` lists what stays there.")
        if missing:  # a database copied without its artifacts/ folder: the trials are here, their weights are not
            print_flagged(console, "warning",
                          f"{len(missing)} merged trial(s) kept weights that are not in "
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
