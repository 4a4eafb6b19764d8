"""Flag values checked as argparse reads them (a one-line error, exit 2), and the results database every reading
command takes with --db."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.paths import results_database


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


def db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None,
                        help="the results database, or the results folder that holds its harness.duckdb (default: "
                             "results/harness.duckdb here; for sweep and worker, in the experiment's results_dir)")


DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
"""Files a user may pass to --db by mistake (a suite's or predict's data): DuckDB opens them as no database at all."""


def database_path(given: Path, flag: str = "--db") -> Path:
    """The results database `given` names (its file, or the results folder holding it); a data file is refused."""
    path = results_database(given)
    if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
        example = " (e.g. --db results)" if flag == "--db" else ""
        raise HarnessError(f"{flag} {given}: a {path.suffix} data file, not a results database. Give the "
                           f"harness.duckdb a sweep wrote, or the results folder that holds it{example}.")
    return path


def open_store(db: Path | None, results_dir: str = "results"):
    from harness.store.database import Store

    return Store(database_path(db) if db is not None else Path(results_dir) / "harness.duckdb")


def given_db_exists(given: Path | None, store) -> None:
    """A mistyped --db is not "nothing yet": a cron job whose `registry --db` had a typo exited 0 with "no adapters",
    and what it fed downstream read as no production adapter."""
    if given is not None and not store.path.exists():
        raise HarnessError(f"--db {given}: no results database there. Give the harness.duckdb a sweep wrote, or the "
                           "results folder that holds it.")
