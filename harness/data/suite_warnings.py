"""What loads but is likely a mistake in a suite: said by `suite validate`, and by the sweep (`--check` and `--dry-run`
too), which a CI step runs rather than validate."""

from __future__ import annotations

from pathlib import Path

from harness.data.reworded import reworded_copies, reworded_text
from harness.data.suites import Suite, labels_not_in_train


def suite_warnings(suite: Suite) -> list[str]:
    """The suite's own load warnings, a folder named otherwise than its suite, dev or test inputs that reword a train
    input, and labels dev or test score that train has no example of."""
    warnings = list(suite.warnings)
    folder = Path(suite.path).resolve().name  # `validate .` from inside the suite: `.` has no name of its own
    if folder != suite.name:  # a copied folder keeps the name it was copied from
        warnings.append(f"the folder is named {folder} but its suite.yaml names the suite {suite.name}; studies, the "
                        f"registry and its production adapter know it as {suite.name}, so another suite of that name "
                        "would share them. Make `name:` and the folder agree unless this is that suite.")
    if reworded := reworded_copies(suite):
        warnings.append(reworded_text(reworded))
    if unlearnable := ", ".join(f"`{label}` ({n})" for label, n in labels_not_in_train(suite).items()):
        warnings.append(f"label(s) scored in dev or test with no train example: {unlearnable}. No adapter can learn "
                        "them and no shot can show them, so every arm is scored wrong on them; add train examples, or "
                        "remove them from dev, test and `output.labels` (and bump `version`).")
    return warnings
