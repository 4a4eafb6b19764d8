"""How often the harness's own progress bars redraw.

On a terminal a bar redraws in place, so tqdm's default (at most every 0.1 s) costs nothing. Written to a log file
or a pipe (`make demo > demo.log`, nohup, CI), every redraw is another `\\r` line: a 250-step trial leaves 250 of
them per bar. There the bars redraw at most every LOG_INTERVAL_S, which still shows that work goes on.
`HARNESS_PROGRESS_INTERVAL` (seconds) overrides both, e.g. for a test that waits on a bar's first step;
`HARNESS_PROGRESS=off` draws none."""

from __future__ import annotations

import math
import os
import sys
from typing import Any

INTERVAL_ENV = "HARNESS_PROGRESS_INTERVAL"
PROGRESS_ENV = "HARNESS_PROGRESS"
"""`off` for no progress bar at all (a CI log that wants the results and notices only)."""
_SAID: list[str] = []
"""A bad INTERVAL_ENV, once said."""
LOG_INTERVAL_S = 30.0
TQDM_MAXINTERVAL_S = 10.0


def bar_options(stream: Any = None, transient: bool = False) -> dict[str, Any]:
    """tqdm keyword arguments for a bar written to `stream` (default stderr, where tqdm writes). A `transient` bar
    (one trial's training or scoring) vanishes from a terminal when done; in a log it stays, drawn at its end, since
    its last timed redraw ("train: 57% 85/150") would otherwise read as where the work stopped. In a log it is drawn
    in ASCII (a CI viewer under TERM=dumb showed block characters); `HARNESS_PROGRESS=off` draws no bar at all."""
    if os.environ.get(PROGRESS_ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return {"disable": True}
    terminal = _is_terminal(sys.stderr if stream is None else stream)
    leave = {"leave": not (transient and terminal), **({} if terminal else {"ascii": True})}
    given = os.environ.get(INTERVAL_ENV, "").strip()
    if given:
        try:
            interval = float(given)
        except ValueError:
            interval = math.nan
        if math.isfinite(interval) and interval >= 0:
            return {**_every(interval), **leave}
        # a display setting is not worth stopping a sweep for: said once, then the default applies (a Python
        # warning printed its source line, and under PYTHONWARNINGS=error stopped the sweep)
        if not _SAID:
            _SAID.append(given)
            sys.stderr.write(f"note: {INTERVAL_ENV}={given!r} is not a number of seconds (0 or more); it is "
                             "ignored.\n")
    return leave if terminal else {**_every(LOG_INTERVAL_S), **leave}


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(getattr(stream, "isatty", lambda: False)())
    except (OSError, ValueError):  # a closed stream
        return False


def _every(seconds: float) -> dict[str, float]:
    # tqdm's monitor thread also redraws a bar that has not drawn for `maxinterval` (10 s by default)
    return {"mininterval": seconds, "maxinterval": max(seconds, TQDM_MAXINTERVAL_S)}
