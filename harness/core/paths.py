"""Where things live: what the harness bundles (suites, experiments), and what the user's project adds.

A user works in their own folder: `./suites/NAME` and `./experiments/NAME.yaml` there come first, then the bundled
ones. The bundle is the repository's top-level `suites/` and `experiments/` in a source checkout; an installed wheel
carries the same folders inside the package as `harness/bundled_suites/` and `harness/bundled_experiments/`
(pyproject.toml maps them with setuptools' package-dir), so the repository's layout never has to change.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.core.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1]
"""The installed `harness` package folder."""

CHECKOUT = PACKAGE.parent
"""In a source checkout, the repository root; in an installed wheel, site-packages (and never used as such)."""

DASHBOARD_DB_ENV = "HARNESS_DASHBOARD_DB"
"""How `harness dashboard` tells the Streamlit app which results database to read."""


STORAGE_ENV = "HARNESS_STORAGE"
"""Where `harness worker` reads the study's storage URL when --storage is not given: a password in the URL then
stays off command lines (`ps`) and shell history."""


def results_folder(path: Path) -> None:
    """Create a results folder where there is none, readable by its owner only: it holds prompts, answers and scores
    (often customer data) and the hosted spend, and on a shared machine the umask usually lets everyone read.
    A folder that exists keeps the permissions it has."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)


def shared_results_warning(path: Path) -> str | None:
    """A warning when an existing results folder lets other users of the machine in (group or other bits set): it
    was made by hand, or by an older release, and the sweep keeps its permissions; None otherwise. A review found a
    `mkdir`-made folder at 755 holding every input and answer, with no word."""
    try:
        mode = Path(path).stat().st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (f"results folder {path} can be read by other users of this machine (mode {mode:o}): it holds every "
            f"prompt, answer and score of the studies, and the adapters. `chmod -R go-rwx {path}` keeps it to you; "
            "leave it as it is only if your team shares it on purpose.")


def probe_writable(folder: Path) -> Path:
    """Write and remove a small file in `folder`, or in its nearest existing parent when it does not exist yet (a
    check creates no folder); return the folder written to. OSError when that is a file or cannot be written."""
    import tempfile

    existing = next(p for p in (folder.resolve(), *folder.resolve().parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(20, f"{existing} is a file, not a folder", str(existing))
    with tempfile.NamedTemporaryFile(dir=existing, prefix=".harness-write-check-") as probe:
        probe.write(b"\0" * 4096)  # a full disk refuses the data, not only the name
        probe.flush()
    return existing


def results_database(given: Path) -> Path:
    """A results database named as its file, or as the results folder that holds its harness.duckdb (`--db results`,
    a worker's folder to merge): every command takes either."""
    return given / "harness.duckdb" if given.is_dir() else given


def bundled(kind: str) -> Path:
    """The bundled `suites` or `experiments` folder: inside the installed package, else the checkout's."""
    if kind not in ("suites", "experiments"):
        raise ValueError(f"nothing bundled is called {kind!r}")
    installed = PACKAGE / f"bundled_{kind}"
    return installed if installed.is_dir() else CHECKOUT / kind


def source_checkout() -> Path | None:
    """The git checkout this package runs from (an editable install), or None for an installed wheel."""
    return CHECKOUT if (CHECKOUT / ".git").exists() and (CHECKOUT / "pyproject.toml").is_file() else None


def git_commit() -> str | None:
    """The harness's own commit when it runs from a checkout (`+dirty` with local changes); None from a wheel."""
    checkout = source_checkout()
    if checkout is None:
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=checkout, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=checkout, capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty else "")


def find_experiment(given: str | Path) -> Path:
    """An experiment file: the path as given, else ./experiments/NAME(.yaml), else the bundled NAME(.yaml)."""
    given = Path(given)
    names = [given.name] if given.suffix in (".yaml", ".yml") else [f"{given.name}.yaml", given.name]
    candidates = [given] + [Path("experiments") / n for n in names] + [bundled("experiments") / n for n in names]
    found = next((c for c in candidates if c.is_file()), None)
    if found is not None:
        return found
    if len(given.parts) > 1 and given.parts[0] != "experiments":  # a real path that is not there: say so plainly
        raise ConfigError(f"{given}: no such experiment file.")
    available = sorted({p.stem for d in (Path("experiments"), bundled("experiments")) for p in d.glob("*.yaml")})
    raise ConfigError(
        f"{given}: no such experiment file (looked for it as given, in ./experiments/ and among the bundled "
        f"experiments). Give a path, or one of: {', '.join(available) or '(none)'}; `harness init` writes one to "
        "edit."
    )
