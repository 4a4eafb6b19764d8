"""`harness dashboard`: start the Streamlit dashboard (`harness_dashboards/app.py`) on a results database.

The dashboard reads the results and never changes them (a Compare on test records a look at test), so it can run
while a sweep writes to it. It listens on 127.0.0.1 by
default: results and model outputs may be confidential, and exposing them is an explicit choice (--address). On an
address other than loopback it requires a password of at least 12 characters (HARNESS_DASHBOARD_PASSWORD, see
`harness_dashboards/auth.py`, which also limits wrong guesses)
or the explicit statement that a reverse proxy in front authenticates (--behind-proxy), and says which at start.
Usage statistics are off and no browser is opened (headless), so it also runs on a server or over SSH.
"""

from __future__ import annotations

import errno
import importlib.util
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.paths import DASHBOARD_DB_ENV, results_database


def app_path() -> Path:
    """The app's entry script, wherever the `harness_dashboards` package is installed (wheel or checkout)."""
    spec = importlib.util.find_spec("harness_dashboards")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the dashboard package `harness_dashboards` is not installed; reinstall the harness "
                           "(`pip install .` from the repository, or the wheel; `make setup` in a checkout).")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The `streamlit run` command line, shared with the browser tests so they test what users run."""
    # where users point their browsers: named, so that Streamlit never asks checkip.amazonaws.com for this machine's
    # outside address, as it does for a wildcard address when the dashboard runs headless
    shown = socket.gethostname() if address in ("0.0.0.0", "::", "") else address
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--browser.serverAddress", shown,
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer", "--global.developmentMode", "false"]  # fmt: skip


def environment(db: Path) -> dict[str, str]:
    return {**os.environ, DASHBOARD_DB_ENV: str(Path(db).resolve())}


def is_loopback(address: str) -> bool:
    """Only this machine can connect. A host name other than localhost counts as reachable from elsewhere: it may
    resolve to any interface."""
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def access(address: str, behind_proxy: bool = False) -> str:
    """Who may open the dashboard, as said at start; refuses a non-loopback address that nothing protects."""
    from harness_dashboards.auth import MIN_LENGTH, PASSWORD_ENV, password

    secret = password()
    if secret is not None and not is_loopback(address):
        _check_strength(address, secret, PASSWORD_ENV, MIN_LENGTH)
    if secret is not None:
        tls = "" if is_loopback(address) else "; plain HTTP, so on an untrusted network put TLS in front (a proxy)"
        return f"password required (${PASSWORD_ENV}){tls}"
    if is_loopback(address):
        return "this machine only, no password"
    if behind_proxy:
        return (f"NO PASSWORD (--behind-proxy): the reverse proxy in front must authenticate every request; anyone "
                f"who reaches {address} directly sees every result")
    raise HarnessError(
        f"--address {address} is reachable from other machines, and results and per-example outputs may be "
        f"confidential, so the dashboard needs a password there. Either set one in the environment (never as an "
        f"argument, which other users can see; `read -s` keeps it out of the shell history too):\n"
        f"    read -rs {PASSWORD_ENV} && export {PASSWORD_ENV}\n"
        f"or serve it behind a reverse proxy (nginx, Caddy, an SSO proxy such as oauth2-proxy) that authenticates "
        f"users itself, and pass --behind-proxy. With the proxy on this machine, keep the default --address "
        f"127.0.0.1 and point the proxy there. Or just reach it over SSH: ssh -L 8501:127.0.0.1:8501 HOST.")


def _check_strength(address: str, secret: str, variable: str, least: int) -> None:
    """A password anyone on the network may guess at must not be a short word; the password is never shown."""
    length = len(secret.strip())
    if length >= least:
        return
    raise HarnessError(
        f"--address {address} is reachable from other machines, and ${variable} holds only {length} "
        f"character{'' if length == 1 else 's'} (not counting edge spaces); there it must have at least {least}. "
        f"Set a random one, e.g.:\n    export {variable}=$(python -c 'import secrets; "
        "print(secrets.token_urlsafe(18))')\nand share it with the people who may open the dashboard.")


def require_free_port(address: str, port: int) -> None:
    """Refuse a port Streamlit cannot listen on before saying where the dashboard is: out of range, or taken (by
    another dashboard, perhaps), which Streamlit would report only after our "dashboard on ..." line."""
    if not 1 <= port <= 65535:
        raise HarnessError(f"--port {port} is not a TCP port; give one in 1..65535 (default 8501).")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Streamlit binds: TIME_WAIT is no clash
            probe.bind((address.strip("[]"), port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise HarnessError(f"cannot listen on {address}:{port} ({exc.strerror}): --address must be an address of "
                               "this machine (default 127.0.0.1).") from None
        raise HarnessError(f"port {port} on {address} is in use: another program (another dashboard?) holds it. Pick "
                           f"another with --port, e.g. --port {port + 1 if port < 65535 else 8501}.") from None


def launch(db: Path, port: int = 8501, address: str = "127.0.0.1", behind_proxy: bool = False) -> int:
    """Run the dashboard in the foreground until Ctrl-C; returns Streamlit's exit status."""
    db = results_database(Path(db))
    if not db.is_file():
        raise HarnessError(f"no results database at {db}. Run a sweep first (`harness sweep experiments/demo.yaml`) "
                           "or pass the right file with --db PATH.")
    app_path()  # a missing dashboard package is the first thing to fix
    who = access(address, behind_proxy)
    require_free_port(address, port)
    host = f"[{address.strip('[]')}]" if ":" in address else address  # an IPv6 address is bracketed in a URL
    print(f"dashboard on http://{host}:{port} reading {Path(db).resolve()}; {who} (Ctrl-C stops it)", flush=True)
    proc = subprocess.Popen(command(port, address), env=environment(db))
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed launcher stops its server too
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to Streamlit as well; it shuts down by itself
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
