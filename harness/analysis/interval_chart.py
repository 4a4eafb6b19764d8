"""A forest plot as inline SVG: one row per trial, its score as a dot and its 95% interval as a bar, on a 0-100% axis,
so overlapping intervals read as the noise they are; each label says the n behind its interval. No scripts and no
fonts fetched: it prints as it shows."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.metric import Metric

ROW = 22
LABEL = 260
PLOT = 420
TOP = 34
BOTTOM = 30


@dataclass(frozen=True)
class IntervalRow:
    label: str
    metric: Metric | None
    """A share in [0, 1] with its interval; None, or a value of None, draws the row as "not measured"."""
    highlight: bool = False
    """Drawn darker: the two trials the verdict weighs."""


def interval_svg(rows: Sequence[IntervalRow], title: str, font: str = "sans-serif") -> str:
    """`font`: the family its text is drawn in (a PDF passes the font it embeds)."""
    height = TOP + ROW * len(rows) + BOTTOM
    width = LABEL + PLOT + 20
    parts = [f'<text x="0" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    for tick in range(0, 101, 20):
        x = _x(tick / 100)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height - BOTTOM + 4}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{tick}%</text>')
    for i, row in enumerate(rows):
        y = TOP + ROW * i + ROW / 2
        colour = "#1f4e9c" if row.highlight else "#777"
        weight = ' font-weight="bold"' if row.highlight else ""
        metric = row.metric
        parts.append(f'<text x="{LABEL - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end"{weight}>'
                     f"{html.escape(_labelled(row))}</text>")
        if metric is None or metric.value is None:
            parts.append(f'<text x="{LABEL + 4}" y="{y + 4:.1f}" font-size="11" fill="#777">not measured</text>')
            continue
        if metric.low is not None and metric.high is not None:
            parts.append(f'<line x1="{_x(metric.low):.1f}" y1="{y:.1f}" x2="{_x(metric.high):.1f}" y2="{y:.1f}" '
                         f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<circle cx="{_x(metric.value):.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}" '
            f'font-family="{html.escape(font)}">{"".join(parts)}</svg>')


def _labelled(row: IntervalRow) -> str:
    """The row's label with the n behind its interval (`lead/3 (lora), n=40`): an interval reads only with its n,
    and trials of one chart may differ in it (a hosted arm's refused requests are left out)."""
    metric = row.metric
    return row.label if metric is None or metric.value is None else f"{row.label}, n={metric.n}"


def _x(share: float) -> float:
    return LABEL + PLOT * min(1.0, max(0.0, share))
