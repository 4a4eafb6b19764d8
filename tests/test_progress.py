"""Progress bars redraw in place on a terminal, and rarely in a log file or pipe (one `\\r` line per redraw there)."""

from __future__ import annotations

import io
import itertools
import os

import pytest
from tqdm import tqdm

from harness.core.progress import INTERVAL_ENV, LOG_INTERVAL_S, bar_options


@pytest.fixture
def pipe():
    read, write = os.pipe()
    with os.fdopen(read, "r") as reader, os.fdopen(write, "w") as writer:
        yield reader, writer


def test_a_terminal_keeps_tqdms_default_and_a_pipe_redraws_rarely(monkeypatch, pipe):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    primary, secondary = os.openpty()  # a real pseudo-terminal, as a user's shell gives
    try:
        with os.fdopen(secondary, "w", closefd=False) as terminal:
            assert bar_options(terminal) == {"leave": True}
            assert bar_options(terminal, transient=True) == {"leave": False}  # a trial's bar vanishes when done
    finally:
        os.close(primary)
        os.close(secondary)
    assert bar_options(pipe[1]) == {"mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S, "leave": True,
                                    "ascii": True}  # a CI viewer under TERM=dumb showed block characters
    assert bar_options(pipe[1], transient=True) == bar_options(pipe[1])  # in a log it stays, drawn at its end
    assert bar_options(io.StringIO()) == bar_options(pipe[1])  # no isatty answer: treated as a log


def test_a_250_step_trial_leaves_a_line_every_30_s_in_a_log_not_one_per_step(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)

    def redraws(**options) -> int:
        log = io.StringIO()
        with tqdm(total=250, desc="train", file=log, **options) as bar:
            clock = itertools.count(bar.last_print_t + 1)  # a step a second, as on a 2-core CPU
            bar._time = lambda: float(next(clock))  # tqdm reads its clock here; the updates themselves are real
            for _ in range(250):
                bar.update(1)
        return log.getvalue().count("\r")

    assert redraws() >= 250  # tqdm's default: every step is a line in the log
    assert redraws(**bar_options(io.StringIO())) <= 250 // LOG_INTERVAL_S + 3


@pytest.mark.parametrize("given, expected", [("0", (0.0, 10.0)), ("2.5", (2.5, 10.0)), ("60", (60.0, 60.0))])
def test_the_interval_can_be_set(monkeypatch, pipe, given, expected):
    monkeypatch.setenv(INTERVAL_ENV, given)
    assert bar_options(pipe[1]) == {**dict(zip(("mininterval", "maxinterval"), expected)), "leave": True,
                                    "ascii": True}


def test_bars_can_be_turned_off_for_a_log_that_wants_results_and_notices_only(monkeypatch, pipe):
    from harness.core.progress import PROGRESS_ENV

    monkeypatch.setenv(PROGRESS_ENV, "off")
    assert bar_options(pipe[1]) == bar_options(pipe[1], transient=True) == {"disable": True}
    log = io.StringIO()
    with tqdm(total=5, desc="train", file=log, **bar_options(log)) as bar:
        bar.update(5)
    assert log.getvalue() == ""


@pytest.mark.parametrize("given", ["soon", "-1", "nan"])
def test_an_unreadable_interval_is_said_once_and_ignored(monkeypatch, pipe, given, capsys):
    """It was a Python warning, printed with its source line; under PYTHONWARNINGS=error it stopped the sweep."""
    import warnings

    from harness.core import progress

    monkeypatch.setenv(INTERVAL_ENV, given)
    monkeypatch.setattr(progress, "_SAID", [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bar_options(pipe[1])["mininterval"] == LOG_INTERVAL_S
        assert bar_options(pipe[1])["mininterval"] == LOG_INTERVAL_S
    said = capsys.readouterr().err
    assert said == f"note: {INTERVAL_ENV}={given!r} is not a number of seconds (0 or more); it is ignored.\n"


def test_a_transient_bar_in_a_log_ends_on_its_last_step_not_its_last_timed_redraw(monkeypatch):
    """In a log, a trial's bar last redrawn at 85 of 150 steps read as training stopped there: it ends drawn at 150."""
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    log = io.StringIO()
    with tqdm(total=150, desc="train", file=log, **bar_options(log, transient=True)) as bar:
        clock = itertools.count(bar.last_print_t + 1)
        bar._time = lambda: float(next(clock))  # a step a second: the last timed redraw is at step 120
        for _ in range(150):
            bar.update(1)
    assert log.getvalue().rstrip().rsplit("\r", 1)[-1].startswith("train: 100%") and "150/150" in log.getvalue()
