"""The registry's events as a hash chain: each event's hash covers its own fields and the hash of the event before it.

The results database is the registry's trust anchor, and its owner can edit any row. The chain makes an edit
visible: changing, deleting or reordering an event breaks the hash of every event after it, and `harness registry
--verify` names the first that no longer matches. Someone who rewrites the whole chain can hide an edit from the
database alone, so a head hash kept outside it (printed by promote, rollback and retire, written into audit packs)
is what `--verify --head` checks the chain against: a chain rewritten since no longer holds that head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from harness.store.canonical import canonical, plain, rows

GENESIS = "0" * 64
"""The hash before the first event."""

LINKED_FIELDS = ("id", "trial_id", "suite", "status", "previous", "action", "actor", "note", "forced", "gate",
                 "detail", "recorded_at")
"""Every column of an adapter event that a reader reads, with its id (so a deleted event leaves a gap the chain
sees): all of them are under the hash."""

HEAD_CHARS = 16
"""How much of a head hash is printed for a person to keep; `--verify --head` accepts any prefix of 12 or more."""


def link(previous: str, event: Mapping[str, Any]) -> str:
    """The hash of `event` (a row of adapter_events as read back from the database) chained to `previous`."""
    text = canonical({name: plain(event[name], name in JSON_FIELDS) for name in LINKED_FIELDS})
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()


JSON_FIELDS = frozenset({"gate", "detail"})


@dataclass(frozen=True)
class ChainCheck:
    events: int
    """How many events the chain holds."""
    head: str
    """The last event's recorded hash (GENESIS with no event)."""
    broken_at: int | None = None
    """The id of the first event whose recorded hash does not match its fields and the event before it."""
    unlinked: int = 0
    """Events with no hash at all (written by a release before the chain, and not yet upgraded): a broken chain."""
    heads: frozenset[str] = frozenset()
    """Every hash the chain holds, for a head kept elsewhere to be looked up in."""

    @property
    def intact(self) -> bool:
        return self.broken_at is None and not self.unlinked

    def holds(self, head: str) -> bool:
        """Whether the chain still holds `head` (a full hash or a prefix of 12 or more characters)."""
        head = head.strip().lower()
        return len(head) >= 12 and any(h.startswith(head) for h in self.heads)


def check_chain(rows: Iterable[Mapping[str, Any]]) -> ChainCheck:
    """Recompute the chain over `rows` (every adapter event, in id order, with its `chain_sha256`)."""
    previous, count, broken, unlinked, heads = GENESIS, 0, None, 0, set()
    for row in rows:
        count += 1
        recorded = row.get("chain_sha256")
        if recorded is None:
            unlinked += 1
        elif broken is None and recorded != link(previous, row):
            broken = row["id"]
        if recorded is not None:
            heads.add(recorded)
        previous = recorded or link(previous, row)
    return ChainCheck(count, previous, broken, unlinked, frozenset(heads))


def relink(conn: duckdb.DuckDBPyConnection) -> None:
    """Hash every adapter event again, in id order, as they stand (the upgrade that added the chain does this)."""
    previous = GENESIS
    for row in rows(conn.execute("SELECT * FROM adapter_events ORDER BY id")):
        previous = link(previous, row)
        conn.execute("UPDATE adapter_events SET chain_sha256 = ? WHERE id = ?", [previous, row["id"]])
