"""The harness from Python: what the `harness` commands do, for a notebook or a pipeline, with typed results.

    import harness.api as harness

    run = harness.sweep("experiments/demo.yaml", overrides={"budget.trials": 4})
    print(run.verdict.text)                               # the answer, as `harness sweep` prints it

    results = harness.open_results("results")             # a results folder, or its harness.duckdb
    rows = results.metric_rows()                          # one row per trial, split and metric: pandas.DataFrame(rows)
    comparison = results.compare("demo/1", "demo/0")      # paired tests; on test, recorded as a look at test

A sweep here is the command's sweep: the machine is calibrated first (cached), `training.precision: auto` is decided
by it, a plan that would cut its trials short is refused, and every warning the command prints is passed to `echo`.
The records it returns (`TrialView`, `ExampleView`, `Verdict`, `Comparison`) are the typed views every command
reads; their fields are documented where they are defined (`harness.core.records`, `harness.analysis`). Errors are
`harness.core.errors.HarnessError` (`ConfigError`, `SuiteError`, ...), each naming what to fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis.compare import Comparison, compare_trials, comparison_look
from harness.analysis.verdict import Verdict, study_verdict
from harness.core.errors import HarnessError
from harness.core.identity import os_account
from harness.core.offline import offline
from harness.core.paths import results_database, results_folder
from harness.core.records import ExampleView, StudyView, TrialView
from harness.store.database import Store

if TYPE_CHECKING:
    from harness.sweep.run import SweepOutcome

__all__ = ["Results", "SweepResult", "open_results", "sweep"]

SPLITS = ("train", "dev", "test")

Overrides = Mapping[str, Any] | Iterable[str]
"""`{"budget.trials": 4, "space.lora.r": [8, 16]}`, or `["budget.trials=4"]` as `--set` takes them."""


@dataclass(frozen=True)
class SweepResult:
    """What `sweep` ran: the study's every trial (this run's and earlier ones'), its verdict, and the run's counts."""

    study: str
    outcome: SweepOutcome
    """This run's counts: trials started, failed, duplicates not re-run, why it stopped short (if it did)."""
    trials: list[TrialView]
    """Every trial of the study, as `harness trials --study` lists them."""
    verdict: Verdict
    """The answer, on test, with its decision (`verdict.decision`: difference, 95% interval, p, n) and `text`."""
    database: Path
    failure: str | None = None
    """Why this run has no answer (every trial it started failed, or its engine went away), said as `harness sweep`
    says it before exiting 1; None otherwise."""


def sweep(experiment: str | os.PathLike, overrides: Overrides = (), *, study: str | None = None,
          trials: int | None = None, storage: str | None = None, db: str | os.PathLike | None = None,
          allow_under_trained: bool = False, recalibrate: bool = False,
          echo: Callable[[str], None] = print) -> SweepResult:
    """Run (or resume) a sweep as `harness sweep EXPERIMENT` does, and return what it found.

    `overrides` are the command's `--set` items; `study`, `trials`, `storage` and `db` its flags of those names
    (`storage`: default $HARNESS_STORAGE, else the journal in the results folder; `db`: a results folder or its
    harness.duckdb, default the experiment's `results_dir`). Warnings, notes and the calibration's lines go to `echo`.
    A plan whose trials cannot finish their step budget in their time cap raises, as the command refuses, unless
    `allow_under_trained`."""
    if not callable(echo):
        raise HarnessError(f"echo={echo!r}: give a function that takes one line of text, such as print.")
    with offline():  # for the sweep only: a notebook's own downloads afterwards are its own business
        return _sweep(experiment, overrides, study, trials, storage, db, allow_under_trained, recalibrate, echo)


def _sweep(experiment, overrides, study, trials, storage, db, allow_under_trained, recalibrate, echo) -> SweepResult:
    from harness.analysis.report import estimate_text
    from harness.sweep.machine import finished_trials, plan_for_machine, study_precision
    from harness.sweep.notices import before_trials, calibration_note, estimate_warning, run_failed
    from harness.sweep.plan import plan_sweep
    from harness.sweep.run import check_store_matches_storage, run_sweep
    from harness.sweep.storage import storage_from_environment

    storage = storage if storage is not None else storage_from_environment()  # $HARNESS_STORAGE, as the command
    plan = plan_sweep(_path(experiment, "experiment"), _override_items(overrides), study, storage,
                      _count(trials, "trials"))
    for word, text in before_trials(plan, storage):
        echo(f"{word}: {text}")
    results_folder(plan.results_dir)  # owner-only before anything writes in it
    store = Store(results_database(Path(db)) if db is not None else plan.results_dir / "harness.duckdb")
    for note in check_store_matches_storage(plan, store):
        echo(f"note: {note}")
    here = plan_for_machine(plan, echo, allow_under_trained, recalibrate=recalibrate,
                            finished=finished_trials(store, plan.study), trained_in=study_precision(store, plan.study))
    if here.estimate is not None:  # what the trials should take here
        echo(estimate_text(here.estimate))
    if (warning := estimate_warning(here, store)) is not None:
        echo(f"warning: {warning}")
    outcome = run_sweep(here.plan, store, echo=echo, prepared=here.data)
    ran = store.trials(outcome.study)
    if note := here.lowered_note():  # what the verdict must be read with: fit_minutes lowered the step budget
        echo(note)
    if note := calibration_note(here, store, outcome):
        echo(note)
    if (failed := run_failed(outcome, ran)) is not None:
        echo(f"error: {failed}")
    return SweepResult(outcome.study, outcome, ran, study_verdict(store, outcome.study), store.path, failed)


def open_results(db: str | os.PathLike = "results") -> Results:
    """The results a sweep wrote: a results folder, or its harness.duckdb (refused, naming it, where there is none)."""
    path = results_database(Path(_path(db, "db")))
    if not path.is_file():
        raise HarnessError(f"no results database at {path}: give the results folder a sweep wrote (its "
                           "`results_dir`, `results` by default) or the harness.duckdb in it.")
    return Results(Store(path))


class Results:
    """Read a results database through the typed views every command reads. Unknown studies, trials, splits and
    metrics raise a HarnessError that names the known ones, rather than reading as an empty result."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def path(self) -> Path:
        return self.store.path

    def studies(self) -> list[StudyView]:
        return self.store.studies()

    def trials(self, study: str | None = None) -> list[TrialView]:
        """Every trial, or one study's, in the order they ran. Pruned duplicates (`status == "pruned"`, a
        configuration a completed trial had run) are among them: filter on `status` before plotting."""
        if study is not None:
            self._require_study(study)
        return self.store.trials(study)

    def trial(self, trial_id: str) -> TrialView:
        """The trial STUDY/NUMBER (or NUMBER where the database holds one study)."""
        return self.store.require_trial(_trial_id(trial_id))

    def examples(self, trial_id: str, split: str | None = None) -> list[ExampleView]:
        """The trial's scored answers, each with its input, reference, output and per-example scores."""
        if split is not None and split not in SPLITS:
            raise HarnessError(f"split {split!r}: give one of {', '.join(SPLITS)}, or None for every split.")
        return self.store.examples(self.trial(trial_id).id, split)

    def verdict(self, study: str) -> Verdict:
        """The study's answer, as the sweep printed it: `head` (YES, NO, NOT SHOWN, NOT READY, No verdict), `ready`,
        `decision` and `text`."""
        self._require_study(study)
        return study_verdict(self.store, study)

    def compare(self, a: str | TrialView, b: str | TrialView, *, split: str = "test", metric: str | None = None,
                margin: float = 0.0, actor: str | None = None) -> Comparison:
        """A against B as `harness compare` weighs them: paired on the same examples, every score with its 95%
        interval and p, the primary metric (default: A's study's objective) decided by the decision rule. A compare
        on test is recorded as a look at test, by `actor` (default: this process's account), as the command's is."""
        if split not in ("dev", "test"):
            raise HarnessError(f"split {split!r}: compare reads dev or test.")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)):
            raise HarnessError(f"margin={margin!r}: give a number, a share of accuracy such as 0.02 for 2 points.")
        first, second = self.trial(_trial_id(a)), self.trial(_trial_id(b))
        result = compare_trials(self.store, first.id, second.id, split=split, metric=metric, margin=margin)
        if result.decision is None:  # not scored per example on both (regression_delta, a name neither has)
            known = sorted(s.metric for s in result.scores)
            raise HarnessError(f"metric {result.primary!r}: not scored example by example on {split} for both "
                               f"trials, so no paired test can decide on it; give one of {', '.join(known)}, or None "
                               "for the objective.")
        if split == "test":
            self.store.record_look(comparison_look(self.store, result, actor or os_account()))
        return result

    def metric_rows(self, study: str | None = None) -> list[dict[str, Any]]:
        """One row per trial, split and metric, for a table (`pandas.DataFrame(rows)`): the trial's id, study, method,
        status, whether it is under-trained or feasible, its parameters as `param.NAME`, then split, metric, value,
        low, high and n (the 95% interval and the examples behind it)."""
        rows = []
        for t in self.trials(study):
            head = {"trial": t.id, "study": t.study, "method": t.method, "status": t.status,
                    "under_trained": t.under_trained, "feasible": t.feasible,
                    **{f"param.{name}": _cell(value) for name, value in t.params.items()}}
            for split, metrics in t.metrics.items():
                rows += [{**head, "split": split, "metric": name, **metric.to_dict()}
                         for name, metric in sorted(metrics.items())]
        return rows

    def _require_study(self, study: str) -> None:
        known = sorted({s.name for s in self.store.studies()} | {t.study for t in self.store.trials()})
        if study not in known:
            raise HarnessError(f"no study {study!r} in {self.store.path}; its studies: "
                               f"{', '.join(known) or 'none yet'}.")


def _override_items(overrides: Overrides) -> list[str]:
    """`--set` items from a mapping (each value written as YAML reads it) or from `key=value` strings."""
    if isinstance(overrides, (str, bytes)):
        raise HarnessError(f"overrides {overrides!r}: give a mapping such as {{'budget.trials': 4}}, or a list of "
                           "'key=value' strings, not one string.")
    if isinstance(overrides, Mapping):  # JSON is YAML: 4, true, [8, 16]
        return [f"{key}={json.dumps(value)}" for key, value in _dotted(overrides)]
    items = list(overrides)
    if not all(isinstance(item, str) for item in items):
        raise HarnessError(f"overrides {items!r}: each item is a 'key=value' string, as --set takes it.")
    return items


RANGE_KEYS = frozenset({"low", "high", "log", "step"})
"""The keys of a range in `space:` ({low: 1e-4, high: 1e-3, log: true}): a value, not a block to merge into."""


def _dotted(overrides: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """`{"budget": {"trials": 2}}` as `budget.trials=2`, merged into the experiment's `budget:` as a notebook user
    meant it; `--set budget={...}` replaced the whole block, and its max_steps fell back to the default. A range
    (`RANGE_KEYS`) and an empty mapping are values."""
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not set(value) <= RANGE_KEYS:
            yield from _dotted(value, f"{name}.")
        else:
            yield name, value


def _path(value: Any, name: str) -> str | os.PathLike:
    if not isinstance(value, (str, os.PathLike)):
        raise HarnessError(f"{name}: give a path (str or pathlib.Path), not {type(value).__name__}.")
    return value


def _count(value: Any, name: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise HarnessError(f"{name}={value!r}: give a whole number, or None for the experiment's own.")
    return value


def _trial_id(given: str | TrialView) -> str:
    if isinstance(given, TrialView):
        return given.id
    if not isinstance(given, str):
        raise HarnessError(f"trial {given!r}: give its id STUDY/NUMBER (a str) or the TrialView itself.")
    return given


def _cell(value: Any) -> Any:
    """A parameter as a table cell: numbers and text as they are, anything else as its JSON."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value)
