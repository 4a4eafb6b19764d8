"""What loads but is likely a mistake in a suite: said by `suite validate`, and by the sweep (`--check` and `--dry-run`
too), which a CI step runs rather than validate."""

from __future__ import annotations

from pathlib import Path

from harness.data.reworded import reworded_copies, reworded_text
from harness.data.suites import Suite


def suite_warnings(suite: Suite) -> list[str]:
    """The suite's own load warnings, a folder named otherwise than its suite, and dev or test inputs that reword a
    train input."""
    warnings = list(suite.warnings)
    folder = Path(suite.path).resolve().name  # `validate .` from inside the suite: `.` has no name of its own
    if folder != suite.name:  # a copied folder keeps the name it was copied from
        warnings.append(f"the folder is named {folder} but its suite.yaml names the suite {suite.name}; studies, the "
                        f"registry and its production adapter know it as {suite.name}, so another suite of that name "
                        "would share them. Make `name:` and the folder agree unless this is that suite.")
    if reworded := reworded_copies(suite):
        warnings.append(reworded_text(reworded))
    return warnings
