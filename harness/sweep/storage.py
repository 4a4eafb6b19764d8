"""Where the Optuna study lives, and the one lock that lets several workers share it.

Two kinds of storage are supported and tested:
- `journal:PATH` (the default, a file under the results folder): workers on one machine, no server.
- `postgresql://USER:PASSWORD@HOST:PORT/DB`: workers on any number of machines. Optuna's RDB storage with its
  heartbeat, so the trial of a worker that died is failed and retried (once) by the workers that remain.
  A plain `postgresql://` URL is given the psycopg 3 driver SQLAlchemy 2 expects.
`sqlite:///PATH` works too, for workers on one machine. Other engines (MySQL) are refused: the lock below is
PostgreSQL's.

Workers take turns through `StudyStorage.claim()` to decide whether a new trial is still needed and whether
another worker is already running the same configuration; without it three workers asked for 8 trials each
see 7 finished and all start an eighth. PostgreSQL gives that lock to every machine (an advisory lock); the
file storages use a lock file beside the study's file, which is enough because they are one-machine storages.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
import sys
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import ConfigError, HarnessError
from harness.core.paths import STORAGE_ENV, probe_writable, results_folder

if TYPE_CHECKING:
    import optuna

# optuna is imported where a storage is opened, not here: the command line builds --storage's default from this
# module for every command, and most never touch a study

HEARTBEAT_SECONDS = 20
"""How often a running trial tells RDB storage it is alive."""
GRACE_SECONDS = 90
"""A trial silent for this long is failed (and retried once) by the next worker that asks for a trial."""

_SCHEMES = "journal:PATH, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


class EnvironmentStorage(str):
    """A storage URL read from $HARNESS_STORAGE, not given with --storage. It travels as the plain string every
    caller expects; its type only lets messages name where it came from, since a variable left set in a shell
    silently moves every later sweep's study."""


def storage_from_environment() -> EnvironmentStorage | None:
    """--storage's default: $HARNESS_STORAGE, marked as coming from there."""
    value = os.environ.get(STORAGE_ENV)
    return None if value is None else EnvironmentStorage(value)


def from_environment(url: str | None) -> bool:
    return isinstance(url, EnvironmentStorage)


def _given(url: str) -> str:
    """The storage as the user gave it, for the start of a message: the flag or the variable, and the value."""
    return f"${STORAGE_ENV}={redacted(url)!r}" if from_environment(url) else f"--storage {redacted(url)!r}"


def _unset_hint(url: str) -> str:
    return (f" The value came from the environment variable {STORAGE_ENV}, not from --storage: fix it, or "
            f"`unset {STORAGE_ENV}` to keep the study in the results folder." if from_environment(url) else "")


def origin_note(url: str) -> str | None:
    """A note to print when the storage came from $HARNESS_STORAGE, which a user may have forgotten is set."""
    if not from_environment(url):
        return None
    return (f"storage {redacted(url)} comes from ${STORAGE_ENV} (not --storage); `unset {STORAGE_ENV}` to keep the "
            "study in the results folder instead.")


def password_warning(url: str | None) -> str | None:
    """A warning for a password given with --storage: a command line is visible to every user of the machine (`ps`)
    and kept in shell history; $HARNESS_STORAGE is not."""
    if url is None or from_environment(url) or not _passwords(url):
        return None
    return (f"--storage {redacted(url)} carries a password on the command line, where every user of this machine can "
            f"read it (`ps`) and your shell's history keeps it: give the URL in ${STORAGE_ENV} instead (`export "
            f"{STORAGE_ENV}=postgresql://...`, or a password file the driver reads, such as ~/.pgpass).")


def normalise(url: str) -> str:
    """The URL as SQLAlchemy needs it; raises ConfigError for what cannot work, before anything is loaded. A URL
    from $HARNESS_STORAGE stays marked as such."""
    normalised = _normalised(url)
    return EnvironmentStorage(normalised) if from_environment(url) else normalised


def _normalised(url: str) -> str:
    if url.startswith("journal:"):
        if not url.removeprefix("journal:"):
            raise ConfigError(f"{_given(url)}: give the journal file, e.g. journal:results/optuna-journal.log."
                              f"{_unset_hint(url)}")
        return url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in ("postgresql", "postgres"):  # SQLAlchemy 2.1 defaults to psycopg2; we install psycopg 3
        scheme = "postgresql+psycopg"
    if scheme == "postgresql+psycopg":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(f"{_given(url)} is a PostgreSQL URL, but the driver psycopg 3 is not installed: "
                              "`pip install 'psycopg[binary]'`.") from None
        return _readable(url, "postgresql+psycopg://" + url.split("://", 1)[1])
    if scheme == "sqlite":
        return url
    raise ConfigError(f"{_given(url)} is not a storage the harness can use; give {_SCHEMES}.{_unset_hint(url)}")


def _readable(given: str, url: str) -> str:
    """`url` (`given` with the driver named) when SQLAlchemy reads it as it was meant; a ConfigError, without the
    password, when it cannot."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        host = make_url(url).host or ""
    except (ArgumentError, ValueError) as exc:  # a port that is not a number says only "invalid literal for int()"
        # the parser's own words quote the URL, password and all (`p@ss:w0rd` read as a port): never shown
        why = ("what follows the last `:` before the host is not a port number" if "int()" in str(exc)
               else "its parts do not read as scheme://USER:PASSWORD@HOST:PORT/DATABASE")
        raise ConfigError(f"{_given(given)} cannot be read as a URL ({why}; a `:`, `@` or `/` inside the user name or "
                          f"password must be percent-encoded, e.g. {PERCENT_ENCODE}); give {_SCHEMES}, with PORT a "
                          f"number.{_unset_hint(given)}") from None
    if "@" in host:  # SQLAlchemy ends the password at its first "@": the rest would be tried as a host name
        raise ConfigError(f"{_given(given)}: the user name or password holds an `@`, which a URL must "
                          f"spell %40 (and `:` %3A, `/` %2F, `%` %25). Percent-encode it, e.g. "
                          f"{PERCENT_ENCODE}, and set ${STORAGE_ENV} to the URL so it stays off the command line.")
    return url


PERCENT_ENCODE = """python -c 'import getpass, urllib.parse; print(urllib.parse.quote(getpass.getpass(), safe=""))'"""
"""Prints a password typed at the prompt as a URL must spell it; the password never reaches the shell's history."""


def is_shared(url: str) -> bool:
    """Whether workers on other machines can reach this storage."""
    return url.startswith("postgresql")


@dataclass
class StudyStorage:
    """An Optuna storage and the lock its workers take turns with."""

    storage: Any
    lock_path: Path | None
    """The lock file of a one-machine storage; None for a server storage (an advisory lock there)."""

    @contextlib.contextmanager
    def claim(self, study: str) -> Iterator[None]:
        """Hold the study's lock: one worker at a time counts, checks and marks its trial."""
        if self.lock_path is not None:
            with self.lock_path.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        from sqlalchemy import text

        key = zlib.crc32(f"harness-claim:{study}".encode())  # a stable 32-bit key per study
        with self.storage.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()


def check_reachable(url: str) -> None:
    """Connect to a server storage and leave again, writing nothing: a wrong host, port, user or database is
    refused at plan time, before any model loads (the storage itself is opened, and written, only afterwards). A
    file storage's folder is checked as the results folder is."""
    if url.startswith(("journal:", "sqlite:///")):
        _check_file_storage(url)
        return
    if not is_shared(url):
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise HarnessError(f"cannot reach the study storage {redacted(url)}: {_scrubbed(_first_line(exc), url)}. Is "
                           "the server running, and are the host, port, user, password and database right? A "
                           "password's `@ : / %` must be percent-encoded in the URL.") from None
    finally:
        engine.dispose()


def _check_file_storage(url: str) -> None:
    """Write and remove a small file in the nearest existing folder of a journal or SQLite file, creating none (the
    dry run leaves no trace): a folder that cannot be made or written to fails here, not after the first trial."""
    path = Path(url.removeprefix("journal:").removeprefix("sqlite:///")).resolve()
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "a folder, not a file")
        probe_writable(path.parent)
    except OSError as exc:
        raise ConfigError(f"{_given(url)}: cannot write the study's file {path} ({exc.strerror or exc}); give a "
                          f"path in a writable folder.{_unset_hint(url)}") from None


def open_storage(url: str, retry: Any = None) -> StudyStorage:
    """Open (creating on first use) the storage at the normalised `url`, as it is: a sweep mends a journal a failed
    write left cut short before it opens it (`repair_storage`, from `run.check_store_matches_storage`).

    `retry` is Optuna's callback for a trial whose heartbeat stopped (RDB storages only)."""
    import optuna

    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        _writable_parent(path)
        # an absolute path, so that Optuna's lock (a link to it) points at the journal wherever it is read from
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path.absolute())))
        return StudyStorage(storage, path.with_name(path.name + ".claim"))
    if url.startswith("sqlite:///"):
        _writable_parent(Path(url.removeprefix("sqlite:///")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = _rdb_storage(url, retry)
    lock = None if is_shared(url) else Path(url.removeprefix("sqlite:///") + ".claim")
    return StudyStorage(storage, lock)


def repair_storage(url: str) -> str | None:
    """`repair_journal` for a journal storage (a server storage's writes are transactions); the note, if it mended."""
    return repair_journal(Path(url.removeprefix("journal:"))) if url.startswith("journal:") else None


RECORD_START = b'{"op_code":'
"""How every record of an Optuna journal begins (`JournalFileBackend` writes `json.dumps(log, separators=(",", ":"))`
of a dict whose first key is op_code), one record a line."""


LOCK_SUFFIX = ".lock"
"""Optuna's `JournalFileSymlinkLock`: a symbolic link, at the journal's path plus this, to the journal, made around
each append and removed after it."""
LEFT_LOCK_S = 30.0
"""How long a journal lock that points at no file must stay unchanged before it is removed as left behind. Optuna
removes a lock left 30 s by a writer that died mid-append, judging by the mtime of the file it points at; a link that
points at no file (made from a relative path, as this harness once did, or copied from another machine) it waits on
forever, at full CPU, so the sweep hung at its first write. An append holds the lock for milliseconds."""


def repair_journal(path: Path) -> str | None:
    """Mend a journal a failed write (a full disk, a lost mount) left cut short, under the lock Optuna's writers take,
    so that no write is under way; returns a note saying what was removed, or None when the journal is whole. A lock
    left behind that no Optuna writer could take again is removed first (`_remove_left_lock`).

    A record cut short at the end is removed: Optuna reads past it, but the next record appended to it would join
    it on one line that no reader can decode, and every later command would fail on it (what a resume after a full
    disk did). A line already joined so (by a release without this repair) keeps its last whole record. The journal
    as it was is kept beside it. A journal that is a symbolic link is mended where it points, so that every worker
    reaching it by either path reads the one file."""
    import optuna

    left = _remove_left_lock(path)
    target = path.resolve()
    if not target.is_file() or target.stat().st_size == 0 or _mended(target.read_bytes()) is None:
        return left  # whole, as nearly always: read without the lock, which a write in progress would hold
    with _journal_lock(optuna, path):  # torn, or a write was under way: read again, now that none can be
        data = target.read_bytes()
        kept = _mended(data, where=target)
        if kept is None:
            return left
        before = target.with_name(f"{target.name}.before-repair")
        before.write_bytes(data)
        mended = target.with_name(f".{target.name}.repairing")
        mended.write_bytes(kept)
        shutil.copymode(target, mended)  # a journal kept read-only by its owner stays so
        os.replace(mended, target)
    cut = (f"{path} held a record cut short by a write that failed (a full disk?): removed it "
           f"({len(data) - len(kept):,} bytes), so that the study reads and resumes; the file as it was is in "
           f"{before.name}. A trial it was running is marked failed and runs again.")
    return f"{left} {cut}" if left else cut


def _remove_left_lock(path: Path) -> str | None:
    """Remove the journal's lock when it points at no file and stays as it is for LEFT_LOCK_S (a writer holding it
    replaces or removes it in milliseconds); a note saying so, or None when there is no such lock. A lock that points
    at the journal is Optuna's to judge, as it does."""
    lock = Path(f"{path.absolute()}{LOCK_SUFFIX}")
    seen = _dangling(lock)
    if seen is None:
        return None
    print(f"waiting up to {LEFT_LOCK_S:.0f} s on the lock {lock}, which points at no file: an Optuna writer holds "
          "it for a moment, and one left behind by a process that stopped is removed then.", file=sys.stderr,
          flush=True)
    deadline = time.monotonic() + LEFT_LOCK_S
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = _dangling(lock)
        if now is None:
            return None  # released by the writer that held it
        if now != seen:  # taken again: a writer is at work
            seen, deadline = now, time.monotonic() + LEFT_LOCK_S
    lock.unlink(missing_ok=True)
    return (f"removed {lock}, a lock of the study's journal left behind (it pointed at no file, and stayed "
            f"{LEFT_LOCK_S:.0f} s): Optuna would have waited on it forever.")


def _dangling(lock: Path) -> tuple[int, int] | None:
    """The identity (inode, mtime) of `lock` when it is a symbolic link to no file; None otherwise."""
    try:
        found = os.lstat(lock)
    except FileNotFoundError:
        return None
    if not stat.S_ISLNK(found.st_mode) or lock.exists():
        return None
    return found.st_ino, found.st_mtime_ns


def _mended(data: bytes, where: Path | None = None) -> bytes | None:
    """The journal `data` with each record a failed write cut short removed; None when there is none. `where`: the
    file, to name in the error for a line that is no record at all (only checked when it is given)."""
    kept, cut = [], False
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):  # the last line, cut short
            cut = True
        elif _whole(line):
            kept.append(line)
        elif (start := line.rfind(RECORD_START)) > 0 and _decodes(line[start:]):
            kept.append(line[start:])
            cut = True
        elif where is not None:
            raise HarnessError(f"{where}:{number}: not a record of an Optuna journal ({line[:60]!r}...), and not one "
                               "cut short by a failed write that could be mended. Restore the file from a backup, or "
                               "pass --study NEW_NAME with a new results folder.")
        else:
            cut = True  # said under the lock, where it is read again
    return b"".join(kept) if cut else None


def _whole(line: bytes) -> bool:
    """Whether a line of the journal is one whole record: by its shape where that is plain (one record's start, and
    its end), else by decoding it, so that a study's long journal is read quickly each time it opens."""
    if line.startswith(RECORD_START) and line.endswith(b"}\n") and line.count(RECORD_START) == 1:
        return True
    return _decodes(line)


def _decodes(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def _journal_lock(optuna: Any, path: Path) -> Iterator[None]:
    """The lock every Optuna writer of the journal at `path` takes around an append."""
    lock = optuna.storages.journal.JournalFileSymlinkLock(str(path.absolute()))
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def stored_study(url: str, study: str) -> optuna.Study | None:
    """The study as the storage at `url` holds it, read as it is (`repair_storage` mends it first where a command may
    write); None when the study (or a file storage itself) does not exist yet, which is then not created."""
    import optuna

    for prefix in ("journal:", "sqlite:///"):
        if url.startswith(prefix) and not Path(url.removeprefix(prefix)).exists():
            return None
    try:
        return optuna.load_study(study_name=study, storage=open_storage(url).storage)
    except KeyError:  # Optuna's answer for a study the storage does not hold
        return None
    except ValueError as exc:  # a journal record no reader can decode (json's errors are ValueErrors)
        if not url.startswith("journal:"):
            raise
        raise HarnessError(f"{url.removeprefix('journal:')}: a record of the study's journal cannot be read ({exc}): "
                           "a write that failed (a full disk?) cut it short. Run the sweep itself (without --check or "
                           "--dry-run), which mends the file, keeping a copy as it was.") from None


def _rdb_storage(url: str, retry: Any) -> Any:
    # Workers started together on a fresh database all try to create Optuna's tables; the losers of that race
    # get an integrity or "already exists" error. The tables exist by then, so try again a few times.
    import optuna

    last: Exception | None = None
    for attempt in range(8):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS, heartbeat_stale_trial_callback=retry)
        except Exception as exc:  # sqlalchemy's errors, without importing sqlalchemy's internals here
            last = exc
            time.sleep(0.2 * (attempt + 1))
    raise HarnessError(f"cannot open the study storage {redacted(url)}: {_scrubbed(_first_line(last), url)}") from None


def _writable_parent(path: Path) -> None:
    try:
        results_folder(path.parent)
    except OSError as exc:
        raise HarnessError(f"cannot create the folder for the study storage {path}: {exc.strerror}. Choose "
                           "another results_dir or --storage.") from None


def redacted(url: str) -> str:
    """The URL without its password (in the credentials or a `password=` parameter), for messages and logs."""
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def _scrubbed(message: str, url: str) -> str:
    """A driver's message without the password of `url`, which some drivers quote back (in a DSN or a host name)."""
    for value in _passwords(url):
        if len(value) >= 8:  # no word holds it by chance: every occurrence goes
            message = message.replace(value, "***")
            continue
        # a short one as a whole token: a password `p` had masked every p ("***syco***g"), telling it by the gaps
        left = r"(?<![A-Za-z0-9])" if value[0].isalnum() else ""
        right = r"(?![A-Za-z0-9])" if value[-1].isalnum() else ""
        message = re.sub(f"{left}{re.escape(value)}{right}", "***", message)
    return message


def _passwords(url: str) -> list[str]:
    """The passwords `url` carries (`user:PASS@` and `?password=`), empty ones left out; none where it cannot be
    read, since this runs in error paths and warnings and must not raise (normalise() refuses such a URL)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return []
    found = []
    for secret in (parsed.password, parsed.query.get("password")):
        found += [str(value) for value in ([secret] if isinstance(secret, str) else list(secret or ())) if value]
    return found


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__


