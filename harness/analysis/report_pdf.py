"""The decision report as a PDF: its Markdown sections typeset by fpdf2, with figures (inline SVG) between them.

Landscape A4, because the report's tables are wide (every trial with its intervals). The fonts travel with the
harness (DejaVu Sans and Sans Mono, `fonts/LICENSE`), so the PDF looks the same on any machine and needs nothing
installed or fetched. Characters those fonts lack (Chinese, Japanese, Korean among them) are named to the caller,
which says so, rather than left as silent blanks.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from importlib.resources import files

from fpdf import FPDF
from fpdf.fonts import TextStyle
from markdown_it import MarkdownIt
from markdown_it.token import Token

FONTS = files("harness.analysis") / "fonts"
FAMILY = "dejavu"
"""The body font, as fpdf2 knows it; `interval_svg(font=FAMILY)` draws a chart's text in it too."""
MONO = "dejavu-mono"
WIDEST_COLUMN = 60
"""Characters: a column's share of a table's width follows its longest cell up to this, then wraps."""
BODY_PT = 8.5
TABLE_PT = 8.5
"""fpdf2 sets tables in the body's size."""
LONGEST_WORD = 30.0
"""Millimetres: a longer word (a commit hash) may break, so that one column does not starve the others."""
KEEP_WITH_NEXT = 40.0
"""Millimetres: a section that starts lower on a page than this above its foot starts on the next page."""
CELL_PADDING = 2.5
"""Millimetres a cell's text needs beyond its width (fpdf2's cell margins)."""

STYLES = {
    "h1": TextStyle(font_size_pt=17, color=(0, 0, 0), b_margin=2),
    "h2": TextStyle(font_size_pt=12.5, color=(31, 78, 156), t_margin=5, b_margin=1),
    "code": TextStyle(font_family=MONO, font_size_pt=8),
    "pre": TextStyle(font_family=MONO, font_size_pt=8),
}


class _Pages(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(orientation="landscape", format="A4")
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FAMILY, size=7)
        self.set_text_color(110)
        self.cell(0, 5, f"{self.footer_text} - page {self.page_no()} of {{nb}}", align="C")


def markdown_pdf(sections: Sequence[tuple[str, str]], figures: Mapping[str, str], footer: str) -> bytes:
    """`sections` as (name, Markdown) in order, each followed by `figures[name]` (an SVG document) where there is one;
    every page says `footer` and its number."""
    logging.getLogger("fpdf").setLevel(logging.ERROR)  # missing glyphs: `missing_glyphs` names them to the caller
    pdf = _Pages(footer)
    pdf.set_title(footer)
    _add_fonts(pdf)
    pdf.set_font(FAMILY, size=BODY_PT)
    pdf.add_page()
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    for name, text in sections:
        if text.startswith("#") and pdf.get_y() > pdf.h - pdf.b_margin - KEEP_WITH_NEXT:
            pdf.add_page()  # a heading near the foot of a page would stand there alone, its table on the next
        if text:
            tokens = markdown.parse(text)
            _size_tables(pdf, tokens)
            pdf.write_html(markdown.renderer.render(tokens, markdown.options, {}), font_family=FAMILY,
                           tag_styles=STYLES, table_line_separators=True)
        if name in figures:
            pdf.ln(2)
            pdf.image(io.BytesIO(figures[name].encode("utf-8")), w=min(pdf.epw, _width_mm(figures[name])))
            pdf.ln(3)
    return bytes(pdf.output())


def _width_mm(svg: str) -> float:
    """The SVG's own width (CSS pixels, 96 to the inch) in millimetres, so its text keeps the size it was drawn at."""
    found = re.search(r'<svg\b[^>]*?\swidth="([0-9.]+)"', svg)
    return float(found.group(1)) * 25.4 / 96 if found else 180.0


def missing_glyphs(text: str) -> list[str]:
    """The characters of `text` the PDF's fonts cannot draw, each once, in the order they appear."""
    from fontTools.ttLib import TTFont

    with (FONTS / "DejaVuSans.ttf").open("rb") as handle:
        drawable = set(TTFont(handle, lazy=True).getBestCmap())
    seen: dict[str, None] = {}
    for char in text:
        if char.isprintable() and not char.isspace() and ord(char) not in drawable:
            seen.setdefault(char)
    return list(seen)


def right_to_left(text: str) -> list[str]:
    """The words of `text` written right to left (Arabic, Hebrew, ...), each once: the PDF draws them left to right
    with Arabic letters unjoined (it shapes no text), so they read reversed there, though its font has them."""
    words, word = [], []
    for c in text + " ":
        if unicodedata.bidirectional(c) in ("R", "AL", "NSM"):  # NSM: Arabic vowel marks, within a word
            word.append(c)
        elif word:
            words.append("".join(word))
            word = []
    return list(dict.fromkeys(w for w in words if any(unicodedata.bidirectional(c) != "NSM" for c in w)))


def _add_fonts(pdf: FPDF) -> None:
    regular, bold = str(FONTS / "DejaVuSans.ttf"), str(FONTS / "DejaVuSans-Bold.ttf")
    # Markdown emphasis (rare in a report) is drawn upright rather than carrying two more font files.
    for style, path in (("", regular), ("B", bold), ("I", regular), ("BI", bold)):
        pdf.add_font(FAMILY, style, path)
    mono = str(FONTS / "DejaVuSansMono.ttf")
    for style in ("", "B", "I", "BI"):
        pdf.add_font(MONO, style, mono)


def _size_tables(pdf: FPDF, tokens: list[Token]) -> None:
    """Give each table's columns widths that follow their content (fpdf2 otherwise splits a table evenly, and a
    one-word column takes as much as the parameters column), and align cells left rather than justified."""
    start = None
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            start = i
        elif token.type == "table_close" and start is not None:
            _size_table(pdf, tokens[start:i])
            start = None


def _size_table(pdf: FPDF, tokens: list[Token]) -> None:
    """Each column gets at least its longest word (up to LONGEST_WORD), then what its longest cell (up to
    WIDEST_COLUMN characters) wants more, as far as the page's width goes (`_fill`)."""
    least: dict[int, float] = {}
    wanted: dict[int, float] = {}
    heads: list[tuple[int, Token]] = []
    column = 0
    for i, token in enumerate(tokens):
        if token.type == "tr_open":
            column = 0
        elif token.type in ("th_open", "td_open"):
            text = tokens[i + 1].content if tokens[i + 1].type == "inline" else ""
            pdf.set_font(FAMILY, "B" if token.type == "th_open" else "", TABLE_PT)
            words = min(max((pdf.get_string_width(word) for word in text.split()), default=0.0), LONGEST_WORD)
            words += CELL_PADDING
            whole = pdf.get_string_width(text[:WIDEST_COLUMN]) + CELL_PADDING
            least[column] = max(least.get(column, 0.0), words)
            wanted[column] = max(wanted.get(column, 0.0), whole)
            token.attrSet("align", "LEFT")
            if token.type == "th_open":
                heads.append((column, token))
            column += 1
    pdf.set_font(FAMILY, "", BODY_PT)
    given = _fill(least, {c: wanted[c] - least[c] for c in least}, pdf.epw - sum(least.values()))
    for column, head in heads:
        head.attrSet("width", f"{given[column]:.2f}")


def _fill(least: dict[int, float], extra: dict[int, float], spare: float) -> dict[int, float]:
    """Share `spare` width out smallest need first: a column that wants a little more (an interval that would wrap)
    gets all of it, and the columns that want most (parameters, failure reasons) share what is left equally."""
    given = dict(least)
    needs = sorted(extra, key=extra.get)
    for left, column in enumerate(needs):
        portion = min(extra[column], max(0.0, spare) / (len(needs) - left))
        given[column] += portion
        spare -= portion
    return given
