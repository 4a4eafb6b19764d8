"""Which legacy encoding a file that is not UTF-8 is written in, so the `iconv` a refusal suggests gives back the
text and not mojibake: Japanese read as Windows-1252 became `”z‘—` for 配送, Korean read as GB18030 became `券阂阑`,
Polish read as Windows-1252 `pieniêdzy`, and a suite of each was written without a word.

Single-byte Western text has its few non-ASCII letters alone inside words; every other script fills whole words with
them. The first is Windows-1252 (or Latin-1) unless a letter in the middle of a word reads as a symbol there and as a
letter in Windows-1250 (Central European). Of the second, Japanese tells itself apart (Shift_JIS has a byte pattern of
its own; EUC-JP text holds kana). Cyrillic, Greek, Chinese and Korean do not: each legacy encoding decodes the others'
bytes into letters of its own script. For those a refusal shows a line as each would read it, for the user to pick
the one that reads right.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Legacy:
    codec: str
    """The name iconv and Python both take."""
    described: str


OTHERS = (("cp1251", "Cyrillic"), ("cp1253", "Greek"), ("gb18030", "Simplified Chinese"),
          ("big5", "Traditional Chinese"), ("cp949", "Korean"))
"""Encodings a file of runs beyond ASCII may be in, when it is not Japanese: offered with a line read in each."""


def legacy_encoding(data: bytes, undecodable: list[int]) -> Legacy | None:
    """The encoding `data` is most likely written in, or None where its bytes cannot tell (`readings` then shows
    the candidates). `undecodable`: the bytes UTF-8 could not read (the file may hold some valid UTF-8 as well)."""
    if _western(data):
        return _western_codec(data, undecodable)
    for codec, described in (("cp932", "Shift_JIS (Japanese Excel's default on Windows)"),
                             ("euc_jp", "EUC-JP (Japanese)")):
        try:
            wide = [c for c in data.decode(codec) if ord(c) > 0x7F]
        except UnicodeDecodeError:
            continue
        japanese = sum(1 for c in wide if "\u3000" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff"
                       or "\uff01" <= c <= "\uff5e")
        # EUC-JP decodes Chinese and Korean files into kanji: only Japanese text holds kana as well
        kana = codec == "cp932" or sum("\u3041" <= c <= "\u30ff" for c in wide) >= 0.1 * len(wide)
        if wide and japanese >= 0.9 * len(wide) and kana:
            return Legacy(codec, described)
    return None


def readings(data: bytes, size: int = 40) -> list[tuple[str, str, str]]:
    """(codec, language, the first line beyond ASCII as it reads there) for each of OTHERS that decodes that line."""
    line = next((raw for raw in data.splitlines() if any(b > 0x7F for b in raw)), b"")
    out = []
    for codec, language in OTHERS:
        try:
            text = line.decode(codec).strip()
        except UnicodeDecodeError:
            continue
        out.append((codec, language, text if len(text) <= size else text[:size] + "..."))
    return out


def _western(data: bytes) -> bool:
    """Whether `data` read as Windows-1252 looks like Western text: its characters beyond ASCII mostly stand alone
    between ASCII ones (`ü` in a word, a curly quote or `€` beside one), where other scripts, a word of them or two
    bytes a character, read as runs (`ÎÒµÄ°ü¹ü`, `Ïðèâåò`)."""
    text = data.decode("cp1252", "replace")
    wide = [i for i, c in enumerate(text) if ord(c) > 0x7F]
    beside = {i for i in wide if i + 1 in wide or i - 1 in wide}
    return len(beside) <= 0.5 * len(wide)


def _western_codec(data: bytes, undecodable: list[int]) -> Legacy:
    """Windows-1252 (curly quotes, dashes and `€` at 0x80-0x9F, where Latin-1 has control characters) or Latin-1;
    Windows-1250 where fewer letters inside words read as symbols in it (`mo¿e`, `z³oty` for `może`, `złoty`)."""
    central = _symbols_inside_words(data.decode("cp1250", "replace"))
    if central < _symbols_inside_words(data.decode("cp1252", "replace")):
        return Legacy("cp1250", "Windows-1250 (Central European: Polish, Czech, Hungarian, ...)")
    if any(0x80 <= b <= 0x9F for b in undecodable):
        return Legacy("cp1252", "Windows-1252 (Excel's default on Windows)")
    return Legacy("latin1", "Latin-1")


def _symbols_inside_words(text: str) -> int:
    """Characters beyond ASCII that are not letters, with a letter on each side."""
    return sum(1 for i in range(1, len(text) - 1)
               if ord(text[i]) > 0x7F and not text[i].isalpha() and text[i - 1].isalpha() and text[i + 1].isalpha())
