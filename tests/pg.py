"""A throwaway PostgreSQL cluster on 127.0.0.1: initdb and pg_ctl in a temporary folder, stopped afterwards.

Debian's `postgresql` package keeps its programs in /usr/lib/postgresql/VERSION/bin, off PATH. initdb refuses to
run as root, so as root (CI) the cluster runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

REQUIRE_ENV = "HARNESS_REQUIRE_POSTGRES"
"""Set (by .ci/run) where a missing PostgreSQL must fail the tests rather than skip them."""


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """`with Cluster() as pg: pg.url` - a running server with one empty database, `harness`."""

    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (no initdb): `apt-get install postgresql`")
        self.bin = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://harness@127.0.0.1:{self.port}/harness"

    def _run(self, *args: str) -> None:
        subprocess.run(self.as_user + [str(self.bin / args[0]), *args[1:]], check=True, capture_output=True,
                       text=True, timeout=120)

    def __enter__(self) -> Cluster:
        self._run("initdb", "-D", str(self.data), "-U", "harness", "-A", "trust", "--no-sync", "-E", "UTF8")
        # Unix sockets in the cluster's own folder; TCP on loopback only; fsync off: a test database.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "harness", "harness")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
