"""What a study's arms have spent on one endpoint, shared by every process that writes to the same results folder.

The budget of an endpoint (`budget_tokens`, `budget_usd`) is the study's: every trial, retry, follow-up and worker
shares it. Counting it from the results database at the start of an arm is not enough: two workers running api arms
at once would each see the whole remainder, and a worker killed mid-arm never records what it spent. So every
request goes through this ledger, an append-only JSONL file per study and endpoint, under an exclusive lock:

    {"hold": ID, "tokens": WORST}                       before the request is sent: its worst case is held
    {"settle": ID, "prompt": P, "completion": C}        answered: what it used (the worst case when unreported)
    {"release": ID}                                     never billed (refused with an error status, or never sent)
    {"carried": true, "prompt": P, "completion": C}     first line: what the results database counted before

A hold that is never settled or released (its worker was killed) stays spent at its worst case: the budget is never
crossed unseen. Workers on other machines write to their own results folders, so there the budget holds per folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Spent:
    """Tokens settled by answered requests, and tokens held by requests in flight (or lost with their worker)."""

    prompt: int = 0
    completion: int = 0
    held: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt + self.completion + self.held

    def usd(self, price: tuple[float, float]) -> float:
        """Dollars at (input, output) per 1M tokens; a held token at the dearer of the two."""
        return (self.prompt * price[0] + self.completion * price[1] + self.held * max(price)) / 1e6


class SpendLedger:
    def __init__(self, path: Path, carried: Callable[[], tuple[int, int]] = lambda: (0, 0)) -> None:
        """`carried`: (prompt, completion) tokens the results database counted before this ledger existed; read
        once, when the ledger is created."""
        self.path = Path(path)
        self._carried = carried
        self._offset = 0
        self._prompt = self._completion = 0
        self._holds: dict[str, int] = {}
        self._cut = False

    def hold(self, tokens: int, refuse: Callable[[Spent], str | None]) -> tuple[str | None, str | None]:
        """Hold `tokens`, a request's worst case, unless `refuse` (shown what would be spent with them held) names
        a reason: (the hold's id, None), or (None, the reason)."""
        with self._locked() as handle:
            spent = self._read(handle)
            reason = refuse(Spent(spent.prompt, spent.completion, spent.held + tokens))
            if reason is not None:
                return None, reason
            hold = uuid.uuid4().hex
            self._append(handle, {"hold": hold, "tokens": tokens})
            return hold, None

    def settle(self, hold: str, prompt: int, completion: int) -> None:
        with self._locked() as handle:
            self._read(handle)
            self._append(handle, {"settle": hold, "prompt": prompt, "completion": completion})

    def release(self, hold: str) -> None:
        with self._locked() as handle:
            self._read(handle)
            self._append(handle, {"release": hold})

    def spent(self) -> Spent:
        with self._locked() as handle:
            return self._read(handle)

    @contextmanager
    def _locked(self) -> Iterator:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as handle:  # bytes: offsets are positions, as `_read` keeps them
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if handle.seek(0, os.SEEK_END) == 0:  # a new ledger starts from what the database counted
                    prompt, completion = self._carried()
                    self._append(handle, {"carried": True, "prompt": prompt, "completion": completion})
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, handle) -> Spent:
        """Fold in the lines written since the last read (by any process), and return the totals."""
        handle.seek(self._offset)
        self._cut = False
        for line in handle:
            if not line.endswith(b"\n"):  # cut by a crash mid-write: the next append ends it, and it is skipped
                self._cut = True
                break
            self._offset += len(line)
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # a cut hold was never sent; a cut settlement leaves its hold spent at the worst case
        return Spent(self._prompt, self._completion, sum(self._holds.values()))

    def _apply(self, entry: dict) -> None:
        if "hold" in entry:
            self._holds[str(entry["hold"])] = int(entry["tokens"])
        elif "release" in entry:
            self._holds.pop(str(entry["release"]), None)
        else:  # a settlement, or the carried line: read whole before anything changes
            prompt, completion = int(entry["prompt"]), int(entry["completion"])
            self._holds.pop(str(entry.get("settle")), None)
            self._prompt += prompt
            self._completion += completion

    def _append(self, handle, entry: dict) -> None:
        handle.seek(0, os.SEEK_END)
        handle.write((b"\n" if self._cut else b"") + json.dumps(entry).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
        self._read(handle)
