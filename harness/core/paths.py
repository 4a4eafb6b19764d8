"""Where things live: the repository root (bundled suites and data) and the user's cache."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    """The checkout this package runs from (installed editable), which holds suites/ and experiments/."""
    return Path(__file__).resolve().parents[2]
