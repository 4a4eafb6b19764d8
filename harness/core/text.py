"""How text is compared everywhere: answers to references, inputs to inputs, labels to labels."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence


def fold(text: str) -> str:
    """Unicode NFC, casefold and collapse whitespace, so that case, spacing and how an accent was typed (`é`, or `e`
    and a combining U+0301, as macOS and some exports write it) never make a different answer or example. NFC, not
    NFKC: `²` and `2` stay different answers."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


_DECORATION = ("So", "Sk", "Cf")
"""Unicode categories read as spacing beside punctuation when inputs are compared: other symbols (emoji, ©), modifier
symbols (emoji skin tones) and format characters (the zero-width joiner of emoji sequences); not currency or maths
symbols, which can make another input (`$5`, `2+3`)."""
_VARIATION_SELECTORS = (0xFE0E, 0xFE0F)
"""Text or emoji presentation of the character before (`❤️`): combining marks, but no part of a word."""


class _AsSpace(dict):
    """`str.translate` table: every punctuation code point (Unicode category P*), and with `decoration` emoji and the
    like (`_DECORATION`), to a space, others to themselves. Filled as code points are met, so each costs one category
    lookup per process, not one per occurrence."""

    def __init__(self, decoration: bool):
        super().__init__()
        self.decoration = decoration

    def __missing__(self, code: int) -> str | int:
        category = unicodedata.category(chr(code))
        decoration = category in _DECORATION or code in _VARIATION_SELECTORS
        mapped = " " if category.startswith("P") or (self.decoration and decoration) else code
        self[code] = mapped
        return mapped


_PUNCTUATION_AS_SPACE = _AsSpace(decoration=True)
_ONLY_PUNCTUATION_AS_SPACE = _AsSpace(decoration=False)


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK) characters two, combining marks none, so columns of labels line up
    in any script."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def padded(text: str, width: int) -> str:
    """`text` padded with spaces to `width` terminal columns (`:<width` counts characters, not columns)."""
    return text + " " * max(0, width - display_width(text))


def near_fold(text: str) -> str:
    """`fold`, after Unicode compatibility normalisation and with punctuation and emoji read as spacing: how examples
    are compared for near-duplicates, so `auto top-up?` and `Auto top up` (or `Eddie’s` and `Eddie's`, or `kam nie an
    😡` and `kam nie an`) are one input. A text of punctuation or emoji only (`:)`, `?!`) keeps them, so such inputs
    stay apart."""
    spaced = unicodedata.normalize("NFKC", text).translate(_PUNCTUATION_AS_SPACE)
    return fold(spaced) or fold(text)


def apart_by_emoji(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Whether two (input, answer) pairs that `near_fold` reads as one input are two after all: their inputs differ in
    emoji (or other decoration) and their answers differ, so the emoji carries the answer (`Service 👍` positive,
    `Service 👎` negative). With one answer, an emoji more or less is the same input: a leak across splits."""
    keep = [fold(unicodedata.normalize("NFKC", text).translate(_ONLY_PUNCTUATION_AS_SPACE)) for text, _ in (a, b)]
    return keep[0] != keep[1] and a[1] != b[1]


UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003134f]"
)
"""Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, CJK ideographs): each character
is a token, as Chinese and Japanese ROUGE is usually computed, since a whole sentence would otherwise be one word."""


def unicode_words(text: str) -> list[str]:
    """The word tokens of `text`: NFC, casefolded, runs of letters, digits and combining marks, and one token per
    character in a script written without spaces (`UNSPACED`); punctuation, symbols and spacing separate them. ROUGE
    scores with them (stemmed), and similar shots are searched with them."""
    tokens: list[str] = []
    word: list[str] = []
    for char in unicodedata.normalize("NFC", text).casefold():
        unspaced = UNSPACED.match(char) is not None
        if not unspaced and unicodedata.category(char)[0] in "LNM":
            word.append(char)
            continue
        if word:
            tokens.append("".join(word))
            word = []
        if unspaced:
            tokens.append(char)
    if word:
        tokens.append("".join(word))
    return tokens


_DIGITS = re.compile(r"(\d+)")


def id_order(example_id: str) -> tuple[str | int, ...]:
    """Sort key for showing example ids: digit runs read as numbers, so `test:102` comes before `test:1008` (as text
    it would not). Text and numbers alternate in every key, so any two ids compare."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(example_id)))


_INLINE = re.compile(r"([\\`*_\[\]<>~$])")
"""Characters that open inline markdown anywhere in a line: emphasis, code, links and images (`[`; `![x](...)` is
nothing without it), autolinks and HTML (`<`), strikethrough, Streamlit's LaTeX (`$`) and colours (`:red[...]`).
CommonMark shows any ASCII punctuation literally after a backslash."""
_BLOCK = re.compile(r"(?m)^(\s*)([#>+=-]|\d+(?=[.)]))")
"""What opens a block at the start of a line (a heading, a quote, a list item); after an ordered list's number the
backslash goes before its `.` or `)`."""


def markdown_literal(text: object) -> str:
    """`text` escaped for markdown, so that it shows as written: text from users and data (an approver, a note, a
    failure reason, a gate's detail) where the dashboard renders markdown, which no one reads raw. An approver written
    as `![x](http://host/pixel.png)` drew an outside image on the Registry page, fetched by every browser that opened
    it. Documents read raw as well as rendered take `markdown_inert`."""
    escaped = _INLINE.sub(r"\\\1", str(text))
    return _BLOCK.sub(lambda m: m.group(1) + (m.group(2) + "\\" if m.group(2)[0].isdigit() else "\\" + m.group(2)),
                      escaped)


_LINK_CLOSER = re.compile(r"(?<!\\)\](?=[(\[:])")
"""The `]` that makes a link (`[x](url)`), an image (`![x](url)`), a reference (`[x][r]`) or a reference definition
(`[x]: url`) of the bracket before it, however the brackets nest."""
_TAG_OPENER = re.compile(r"<(?=[A-Za-z/!?])")
"""A `<` that opens HTML (`<img src=...>`, which GitHub draws) or an autolink (`<http://...>`)."""


def markdown_inert(text: object) -> str:
    """`text` with what could fetch or link made literal, the rest left as written: for a markdown document that
    people read raw as well as rendered (the decision report and its HTML and PDF, a model card), where escaping
    every mark would bury intervals and names in backslashes. A link in a failure reason stopped the report's PDF
    (fpdf2 draws no link inside a table cell). The dashboard, read only rendered, takes `markdown_literal`."""
    return _TAG_OPENER.sub(r"\\<", _LINK_CLOSER.sub(r"\\]", str(text)))


def written_in(value: str, text: str) -> bool:
    """Whether `value` occurs in `text` reaching at least one edge of a word, never wholly inside one: `ea` is not in
    `heart`, `a` is not in `playlist`, `now to my` is in `digging now to my playlist`. One edge, not both: real data
    glues words (SNIPS writes `one pmnear Vatican` and `Live In L.aJoseph Meyer`, and their references `one pm`, `near`
    and `Joseph Meyer` are the input's), so a prefix or suffix of a written word (`art` of `heart`) still counts.
    Letters of scripts written without spaces (Chinese, Japanese, Thai, ...) have no word edge, so there a value may
    sit anywhere."""
    start = text.find(value)
    while start != -1:
        end = start + len(value)
        if (not value or start == 0 or end == len(text) or not _joins(text[start - 1], value[0])
                or not _joins(value[-1], text[end])):
            return True
        start = text.find(value, start + 1)
    return False


_UNSPACED = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3040, 0x30FF), (0x3400, 0x4DBF),
             (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
"""Thai and Lao, Myanmar, Khmer, kana, and the CJK ideographs: scripts written without spaces between words."""


def _joins(a: str, b: str) -> bool:
    """Two neighbouring characters of one word: both letters or digits of scripts written with spaces."""
    return all(c.isalnum() and not any(low <= ord(c) <= high for low, high in _UNSPACED) for c in (a, b))


def listed_with_and(words: Sequence[str]) -> str:
    """`train, dev and test`; `` for none."""
    return " and ".join(filter(None, [", ".join(words[:-1]), *words[-1:]]))


def with_article(word: str) -> str:
    """`a lora`, `an api`: a method's name in a sentence ("is a api trial" read as a slip)."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
