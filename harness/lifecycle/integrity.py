"""What `harness registry --verify` checks beyond the registry's chain: every trial's seal (`store/seal.py`), and
that each trial a gate read is sealed as it was then. A score edited and resealed after a promotion leaves every
seal intact; the promotion's event, under the chain, still holds the seal the gate read."""

from __future__ import annotations

from harness.core.records import AdapterEvent
from harness.lifecycle.promote import SEALS
from harness.store.database import Store


def evidence_problems(store: Store) -> list[str]:
    """Every trial whose recorded scores were edited since it was scored, or resealed since a gate read them."""
    checks = store.seals()
    problems = [check.problem() for check in checks if not check.intact]
    recorded = {check.trial_id: check.recorded for check in checks}
    for event in store.adapter_events():
        read = (event.detail or {}).get(SEALS) or {}
        for trial_id, sealed in read.items():
            now = recorded.get(trial_id)
            if sealed and now != sealed:
                problems.append(f"trial {trial_id} is sealed otherwise than when the gate read it for "
                                f"{event.trial_id}'s move to {event.status}{_when(event)}: sealed {sealed[:12]} "
                                f"then, {now[:12] if now else 'none'} now, so its scores were edited and sealed again "
                                "since")
    return problems


def _when(event: AdapterEvent) -> str:
    return f" ({event.at:%Y-%m-%d %H:%M} UTC)" if event.at is not None else ""
