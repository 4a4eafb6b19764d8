"""`harness dashboard`: start the Streamlit dashboard (`harness_dashboards/app.py`) on a results database.

The dashboard only reads the database, so it can run while a sweep writes to it. It listens on 127.0.0.1 by
default: results and model outputs may be confidential, and exposing them is an explicit choice (--address).
Usage statistics are off and no browser is opened (headless), so it also runs on a server or over SSH.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.paths import DASHBOARD_DB_ENV


def app_path() -> Path:
    """The app's entry script, wherever the `harness_dashboards` package is installed (wheel or checkout)."""
    spec = importlib.util.find_spec("harness_dashboards")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the dashboard package `harness_dashboards` is not installed; reinstall the harness "
                           "(`pip install .` from the repository, or the wheel; `make setup` in a checkout).")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The `streamlit run` command line, shared with the browser tests so they test what users run."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer", "--global.developmentMode", "false"]  # fmt: skip


def environment(db: Path) -> dict[str, str]:
    return {**os.environ, DASHBOARD_DB_ENV: str(Path(db).resolve())}


def launch(db: Path, port: int = 8501, address: str = "127.0.0.1") -> int:
    """Run the dashboard in the foreground until Ctrl-C; returns Streamlit's exit status."""
    if not Path(db).is_file():
        raise HarnessError(f"no results database at {db}. Run a sweep first (`harness sweep experiments/demo.yaml`) "
                           "or pass the right file with --db PATH.")
    print(f"dashboard on http://{address}:{port} reading {Path(db).resolve()} (Ctrl-C stops it)", flush=True)
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
