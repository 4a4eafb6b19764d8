"""How the command speaks: results on standard output, flagged lines (errors, warnings, notes) on standard
error, output a locale cannot encode, and the signals that stop a command cleanly."""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text

from harness.core.errors import Terminated

FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
"""What a write fails with on a full disk or quota (`harness trials > /dev/full`): said in one line, not a traceback."""


class ResultConsole(Console):
    """rich's console, whose output to a closed pipe (`harness trials | head`) stops the command as JSON's does: rich
    would exit 1 on its own, without a word, where a pipeline expects a reader's early close to read as SIGPIPE."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe")


def full_disk(exc: BaseException) -> OSError | None:
    """The full-disk error `exc` is, or was raised while handling, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL_DISK:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def replace_what_output_cannot_encode() -> None:
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


FLAG_STYLES = {"error": "bold red", "refused": "bold red", "mismatch": "bold red", "warning": "bold yellow",
               "note": "bold yellow"}


def warn_broken_seals(console: Console, checks: list) -> None:
    """Before a command's numbers: which of them were changed after they were scored (`store.seal`)."""
    from harness.store.seal import seal_warnings

    for text in seal_warnings(checks):
        print_flagged(console, "warning", text)


def print_flagged(console: Console, word: str, text: str) -> None:
    """`word: text` on standard error: warnings, notes, errors and refusals are not the command's result, and a
    pipeline that reads standard output (a table, JSON, the verdict) must get the result alone."""
    Console(stderr=True, soft_wrap=True, markup=False, width=console.width).print(flagged(word, text), highlight=False)


def saying(console: Console) -> Callable[[str], None]:
    """An `echo` for library code whose lines mix progress with notices (the calibration, the sweep, the estimate):
    a line `warning: ...`, `note: ...` or `error: ...` goes to standard error as `print_flagged` puts it, the rest to
    standard output. A CI job that read the sweep's standard output found its warnings there, among the verdict."""
    def say(text: str) -> None:
        for line in str(text).split("\n"):
            word, _, rest = line.partition(": ")
            if word in FLAG_STYLES and rest:
                print_flagged(console, word, rest)
            else:
                console.print(line, highlight=False)

    return say


def flagged(word: str, text: str) -> Text:
    """`word:` in its colour, then `text` exactly as written. The consoles read no markup: text from data and from
    users (a label `ok[/bold]`, an approver `alice [bob]`, a worker's log) crashed `harness show` and `registry` with a
    MarkupError, or lost its bracketed words, when rich read it as markup."""
    return Text.assemble((f"{word}:", FLAG_STYLES[word]), " ", text)


@contextmanager
def command_signals(resumable: bool) -> Iterator[None]:
    """The signals a command stops on (`stop_cleanly_on_term`, and Ctrl-C for a `resumable` sweep or worker), for
    the command's run only: `harness.cli.main` called from a notebook left its SIGTERM handler in the kernel."""
    saved = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    if resumable:
        hear_ctrl_c()
    stop_cleanly_on_term()
    try:
        yield
    finally:
        for number, handler in saved.items():
            if handler is not None:  # None: set outside Python, which Python cannot put back
                signal.signal(number, handler)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def hear_ctrl_c() -> None:
    """A sweep must stop on Ctrl-C (SIGINT) and record the trial it interrupts as interrupted. A process started in
    the background of a non-interactive shell (or by a scheduler, or a test runner that was) inherits SIGINT as
    ignored, and Python then never raises KeyboardInterrupt: the trial trains on to its time cap and is recorded as
    complete. So sweeps and workers take SIGINT back."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_cleanly_on_term() -> None:
    """SIGTERM (a scheduler's stop, `kill`, a CI timeout) and SIGHUP (a closed terminal) stop every command as Ctrl-C
    does, so its cleanups run: the default handler ended the process on the spot, and `suite init` left its
    half-built folder behind, a sweep its trial running. A SIGHUP that `nohup` ignores stays ignored."""
    signal.signal(signal.SIGTERM, _terminated)
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _terminated)


def _terminated(signum, frame) -> None:
    raise Terminated()
