"""Helpers shared by the bundled-suite build scripts (stdlib + yaml only, so they run without the harness).

Each script rebuilds its folder from scratch in a temp dir and swaps it in, so an interrupted build never
leaves a mix of old and new files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the harness package, when not installed
from harness.core.text import near_fold as normalize  # noqa: E402,F401  (the loader's near-duplicate key)
from harness.core.yamlfile import Flow, dump_yaml  # noqa: E402,F401  (re-exported for the build scripts)

REPO = Path(__file__).resolve().parents[2]
SEED = 0


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO.parent / "shared" / "datasets",
        help="folder holding the raw datasets (default: ../shared/datasets relative to the repo root)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "suites", help="suites folder to write into")
    return parser.parse_args()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_folder(dest: Path, files: dict[str, str | bytes]) -> None:
    """Write `files` (name -> content) as the whole of `dest`, replacing any previous build atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the published folder should not be
        for name, content in files.items():
            target = tmp / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        tmp.rename(dest)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
