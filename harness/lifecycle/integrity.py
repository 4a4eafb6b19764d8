"""Whether a trial's stored evidence is still what was scored, for the commands that decide with it (promote's gate,
recheck, audit) and for `harness registry --verify`.

Each finished trial carries a seal (`store/seal.py`). A seal can be recomputed by whoever can write the database,
so a promotion also records the seal of every trial its gate read, in its event, which the registry's hash chain
covers: a trial sealed otherwise than a gate read it was edited and sealed again since. A head hash kept outside the
database (`registry --verify --head`) is what catches a chain rewritten along with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.errors import HarnessError
from harness.core.records import AdapterEvent
from harness.store.database import Store


@dataclass(frozen=True)
class Evidence:
    """What the seals of some trials say, read once."""

    seals: dict[str, str | None]
    """Trial id -> its recorded seal."""
    problems: list[str]
    """Each trial whose evidence was edited since it was scored, or sealed otherwise than a gate read it."""
    sealed_on_upgrade: int
    """How many were sealed by the upgrade that added seals, as they stood then: an edit before it cannot be told."""


def evidence(store: Store, trial_ids: list[str] | None = None) -> Evidence:
    """The seals of `trial_ids` (every trial when None) checked against their rows and against what gates read."""
    checks = store.seals(trial_ids)
    recorded = {check.trial_id: check.recorded for check in checks}
    problems = [check.problem() for check in checks if not check.intact]
    problems += _resealed(store.adapter_events(), recorded)
    return Evidence(recorded, problems, sum(1 for check in checks if check.on_upgrade))


def check_sealed(store: Store, trial_ids: list[str], why: str) -> dict[str, str | None]:
    """Refuse trials whose stored evidence was edited after they were scored, or sealed otherwise than a gate read
    them; returns each one's seal."""
    read = evidence(store, trial_ids)
    if read.problems:
        raise HarnessError(f"{read.problems[0]}: {why}. `harness registry --verify` lists every such trial. Restore "
                           "the results database from a backup, or run the trial's configuration again in a new "
                           "study.")
    return read.seals


def _resealed(events: list[AdapterEvent], recorded: dict[str, str | None]) -> list[str]:
    """The trials of `recorded` sealed otherwise now than when a promotion's gate read them."""
    problems = []
    for event in events:
        for trial_id, sealed in event.gate_seals.items():
            now = recorded.get(trial_id)
            if trial_id in recorded and now != sealed:
                problems.append(f"trial {trial_id} is sealed otherwise than when the gate read it for "
                                f"{event.trial_id}'s move to {event.status}{_when(event)}: sealed {sealed[:12]} "
                                f"then, {now[:12] if now else 'none'} now, so its evidence was edited and sealed "
                                "again since")
    return problems


def _when(event: AdapterEvent) -> str:
    return f" ({event.at:%Y-%m-%d %H:%M} UTC)" if event.at is not None else ""
