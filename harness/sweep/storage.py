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
import re
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from harness.core.errors import ConfigError, HarnessError
from harness.core.paths import STORAGE_ENV, results_folder

HEARTBEAT_SECONDS = 20
"""How often a running trial tells RDB storage it is alive."""
GRACE_SECONDS = 90
"""A trial silent for this long is failed (and retried once) by the next worker that asks for a trial."""

_SCHEMES = "journal:PATH, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def normalise(url: str) -> str:
    """The URL as SQLAlchemy needs it; raises ConfigError for what cannot work, before anything is loaded."""
    if url.startswith("journal:"):
        if not url.removeprefix("journal:"):
            raise ConfigError(f"--storage {url!r}: give the journal file, e.g. journal:results/optuna-journal.log")
        return url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in ("postgresql", "postgres"):  # SQLAlchemy 2.1 defaults to psycopg2; we install psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
        scheme = "postgresql+psycopg"
    if scheme == "postgresql+psycopg":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError("--storage is a PostgreSQL URL, but the driver psycopg 3 is not installed: "
                              "`pip install 'psycopg[binary]'`.") from None
        return _readable(url)
    if scheme == "sqlite":
        return url
    raise ConfigError(f"--storage {redacted(url)!r} is not a storage the harness can use; give {_SCHEMES}.")


def _readable(url: str) -> str:
    """`url` when SQLAlchemy reads it as it was meant; a ConfigError, without the password, when it cannot."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        host = make_url(url).host or ""
    except (ArgumentError, ValueError) as exc:  # a port that is not a number says only "invalid literal for int()"
        raise ConfigError(f"--storage {redacted(url)!r} cannot be read as a URL ({_first_line(exc)}); give "
                          f"{_SCHEMES}, with PORT a number.") from None
    if "@" in host:  # SQLAlchemy ends the password at its first "@": the rest would be tried as a host name
        raise ConfigError(f"--storage {redacted(url)!r}: the user name or password holds an `@`, which a URL must "
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
    refused at plan time, before any model loads (the storage itself is opened, and written, only afterwards)."""
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


def open_storage(url: str, retry: Any = None) -> StudyStorage:
    """Open (creating on first use) the storage at the normalised `url`.

    `retry` is Optuna's callback for a trial whose heartbeat stopped (RDB storages only)."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        _writable_parent(path)
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        return StudyStorage(storage, path.with_name(path.name + ".claim"))
    if url.startswith("sqlite:///"):
        _writable_parent(Path(url.removeprefix("sqlite:///")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = _rdb_storage(url, retry)
    lock = None if is_shared(url) else Path(url.removeprefix("sqlite:///") + ".claim")
    return StudyStorage(storage, lock)


def stored_trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    """The trials the storage at `url` holds for `study`: none when the study (or a file storage itself) does not
    exist yet, which is then not created."""
    for prefix in ("journal:", "sqlite:///"):
        if url.startswith(prefix) and not Path(url.removeprefix(prefix)).exists():
            return []
    try:
        loaded = optuna.load_study(study_name=study, storage=open_storage(url).storage)
    except KeyError:  # Optuna's answer for a study the storage does not hold
        return []
    return loaded.get_trials(deepcopy=False)


def _rdb_storage(url: str, retry: Any) -> Any:
    # Workers started together on a fresh database all try to create Optuna's tables; the losers of that race
    # get an integrity or "already exists" error. The tables exist by then, so try again a few times.
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
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # normalise() has read it already; nothing here may raise in an error path
        return message
    for secret in (parsed.password, parsed.query.get("password")):
        for value in ([secret] if isinstance(secret, str) else list(secret or ())):
            if value:
                message = message.replace(str(value), "***")
    return message


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__


