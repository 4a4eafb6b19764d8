"""Answers kept on disk, so a re-run of a sweep sends no request it already made and costs nothing.

The key is the sha256 of everything that decides an answer: the endpoint's URL, the model, the full messages and
every request parameter. Different models, prompts or parameters can therefore never share an entry. Entries are
written whole (to a temporary file, then renamed), so an interrupted run leaves no half-written answer, and the
answers received before an interruption are kept. No entry holds the API key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def request_key(base_url: str, model: str, request: dict[str, Any]) -> str:
    body = {"base_url": base_url.rstrip("/"), "model": model, "request": request}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):  # damaged by hand: ask again rather than trust it
            return None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as fh:
            json.dump(entry, fh, ensure_ascii=False)
        os.replace(fh.name, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json")) if self.folder.is_dir() else 0
