"""How text is compared everywhere: answers to references, inputs to inputs, labels to labels."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Unicode NFC, casefold and collapse whitespace, so that case, spacing and how an accent was typed (`é`, or `e`
    and a combining U+0301, as macOS and some exports write it) never make a different answer or example. NFC, not
    NFKC: `²` and `2` stay different answers."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def near_fold(text: str) -> str:
    """`fold`, after Unicode compatibility normalisation and with punctuation read as spacing: how examples are
    compared for near-duplicates, so `auto top-up?` and `Auto top up` (or `Eddie’s` and `Eddie's`) are one input.
    A text of punctuation only (`:)`, `?!`) keeps its punctuation, so such inputs stay apart."""
    spaced = "".join(" " if unicodedata.category(c).startswith("P") else c for c in unicodedata.normalize("NFKC", text))
    return fold(spaced) or fold(text)
