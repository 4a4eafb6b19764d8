"""How text is compared everywhere: answers to references, inputs to inputs, labels to labels."""

from __future__ import annotations


def fold(text: str) -> str:
    """Casefold and collapse whitespace, so that case and spacing never make a different answer or example."""
    return " ".join(text.casefold().split())
