"""Whether a trial's stored evidence is still what was scored, for the commands that decide with it (promote's gate,
recheck, audit) and for `harness registry --verify`.

Each finished trial carries a seal (`store/seal.py`). A seal can be recomputed by whoever can write the database,
so a promotion also records the seal of every trial its gate read, in its event, which the registry's hash chain
covers: a trial sealed otherwise than a gate read it was edited and sealed again since. A head hash kept outside the
database (`registry --verify --head`) is what catches a chain rewritten along with it.
"""

from __future__ import annotations

from harness.core.errors import HarnessError
from harness.core.records import AdapterEvent
from harness.store.database import Store

SEALS = "seals"
"""Key of a promotion's detail: the seal of each trial the gate read, which the registry's chain covers."""


def check_sealed(store: Store, trial_ids: list[str], why: str) -> dict[str, str | None]:
    """Refuse trials whose stored evidence was edited after they were scored, or sealed otherwise than a gate read
    them; returns each one's seal."""
    checks = store.seals(trial_ids)
    problems = [check.problem() for check in checks if not check.intact]
    recorded = {check.trial_id: check.recorded for check in checks}
    problems += _resealed(store.adapter_events(), recorded, set(trial_ids))
    if problems:
        raise HarnessError(f"{problems[0]}: {why}. `harness registry --verify` lists every such trial. Restore the "
                           "results database from a backup, or run the trial's configuration again in a new study.")
    return recorded


def evidence_problems(store: Store) -> list[str]:
    """Every trial whose stored evidence was edited since it was scored, or resealed since a gate read it."""
    checks = store.seals()
    problems = [check.problem() for check in checks if not check.intact]
    recorded = {check.trial_id: check.recorded for check in checks}
    return problems + _resealed(store.adapter_events(), recorded, set(recorded))


def sealed_on_upgrade(store: Store) -> int:
    """Trials sealed by the upgrade that added seals, as they stood then: an edit made before it cannot be told."""
    return sum(1 for check in store.seals() if check.on_upgrade)


def _resealed(events: list[AdapterEvent], recorded: dict[str, str | None], trial_ids: set[str]) -> list[str]:
    problems = []
    for event in events:
        for trial_id, sealed in ((event.detail or {}).get(SEALS) or {}).items():
            now = recorded.get(trial_id)
            if trial_id in trial_ids and sealed and now != sealed:
                problems.append(f"trial {trial_id} is sealed otherwise than when the gate read it for "
                                f"{event.trial_id}'s move to {event.status}{_when(event)}: sealed {sealed[:12]} "
                                f"then, {now[:12] if now else 'none'} now, so its evidence was edited and sealed "
                                "again since")
    return problems


def _when(event: AdapterEvent) -> str:
    return f" ({event.at:%Y-%m-%d %H:%M} UTC)" if event.at is not None else ""
