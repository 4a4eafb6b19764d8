"""How text is compared everywhere: answers to references, inputs to inputs, labels to labels."""

from __future__ import annotations

import re
import unicodedata


def fold(text: str) -> str:
    """Unicode NFC, casefold and collapse whitespace, so that case, spacing and how an accent was typed (`é`, or `e`
    and a combining U+0301, as macOS and some exports write it) never make a different answer or example. NFC, not
    NFKC: `²` and `2` stay different answers."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


class _PunctuationAsSpace(dict):
    """`str.translate` table: every punctuation code point (Unicode category P*) to a space, others to themselves.
    Filled as code points are met, so each costs one category lookup per process, not one per occurrence."""

    def __missing__(self, code: int) -> str | int:
        mapped = " " if unicodedata.category(chr(code)).startswith("P") else code
        self[code] = mapped
        return mapped


_PUNCTUATION_AS_SPACE = _PunctuationAsSpace()


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK) characters two, combining marks none, so columns of labels line up
    in any script."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def padded(text: str, width: int) -> str:
    """`text` padded with spaces to `width` terminal columns (`:<width` counts characters, not columns)."""
    return text + " " * max(0, width - display_width(text))


def near_fold(text: str) -> str:
    """`fold`, after Unicode compatibility normalisation and with punctuation read as spacing: how examples are
    compared for near-duplicates, so `auto top-up?` and `Auto top up` (or `Eddie’s` and `Eddie's`) are one input.
    A text of punctuation only (`:)`, `?!`) keeps its punctuation, so such inputs stay apart."""
    spaced = unicodedata.normalize("NFKC", text).translate(_PUNCTUATION_AS_SPACE)
    return fold(spaced) or fold(text)


_DIGITS = re.compile(r"(\d+)")


def id_order(example_id: str) -> tuple[str | int, ...]:
    """Sort key for showing example ids: digit runs read as numbers, so `test:102` comes before `test:1008` (as text
    it would not). Text and numbers alternate in every key, so any two ids compare."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(example_id)))
