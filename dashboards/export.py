"""The payback estimate as files for finance: a flat CSV, and a self-contained HTML page that prints well.

Both are built from a `harness.analysis.payback.PaybackResult` and the tables the Cost page shows, so the files say
exactly what the page said, with every assumption, its unit and its source. The HTML needs no network: no
scripts, the chart is an inline SVG.
"""

from __future__ import annotations

import csv
import html
import io
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from harness.analysis.formatting import duration, queries, saving_text, usd
from harness.analysis.payback import PaybackResult

HEADLINE = ("months_to_payback", "pays_back", "volume", "candidate_usd_per_query", "baseline_usd_per_query",
            "savings_per_query_usd", "monthly_savings_usd", "one_time_usd", "break_even_volume", "horizon_months")


def estimate_csv(result: PaybackResult, cumulative: pd.DataFrame) -> str:
    """section,name,value,unit,source: the result, the one-time breakdown, every assumption, the tornado, months."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "name", "value", "unit", "source"])
    w.writerow(["result", "candidate", result.candidate, "", ""])
    w.writerow(["result", "baseline", result.baseline, "", ""])
    for name in HEADLINE:
        w.writerow(["result", name, getattr(result, name), "", "harness.analysis.payback"])
    w.writerow(["result", "reason", result.reason, "", "harness.analysis.payback"])
    for name, amount in result.one_time_breakdown.items():
        w.writerow(["one_time", name, amount, "USD", "harness.analysis.payback"])
    for name, a in sorted(result.assumptions.items()):
        w.writerow(["assumption", name, a["value"], a["unit"], a["source"]])
    for bar in result.sensitivity.tornado:
        w.writerow(["tornado", f"{bar.assumption} low", bar.months_at_low, "months", f"at {bar.low:g} {bar.unit}"])
        w.writerow(["tornado", f"{bar.assumption} high", bar.months_at_high, "months", f"at {bar.high:g} {bar.unit}"])
    for row in cumulative.itertuples():
        w.writerow(["cumulative", f"month {row.month}: {row.option}", round(row.usd, 6), "USD", "projection"])
    return out.getvalue()


def estimate_html(result: PaybackResult, cumulative: pd.DataFrame, learning: pd.DataFrame, source: str) -> str:
    """A printable report: the answer, the key figures, the cumulative chart, sensitivity and every assumption."""
    e = html.escape
    months = "never (see why)" if result.months_to_payback is None else duration(result.months_to_payback)
    figures = [("Time to payback", months), ("Queries per month", f"{result.volume:,.0f}"),
               ("Cost per query, fine-tuned", usd(result.candidate_usd_per_query)),
               ("Cost per query, baseline", usd(result.baseline_usd_per_query)),
               ("Per month", saving_text(result.monthly_savings_usd)),
               ("One-time cost", f"{usd(result.one_time_usd)} (" + ", ".join(
                   f"{k.replace('_', ' ')} {usd(v)}" for k, v in result.one_time_breakdown.items()) + ")"),
               ("Break-even volume", "-" if result.break_even_volume is None else
                f"{queries(result.break_even_volume)}/month pay back within {result.horizon_months:g} months")]
    tornado = [(b.assumption, f"{quantity(b.low, b.unit)} .. {quantity(b.high, b.unit)}", duration(b.months_at_low),
                duration(b.months_at_high)) for b in result.sensitivity.tornado]
    assumptions = [(k, shown(a["value"], a["unit"]), a["unit"], a["source"])
                   for k, a in sorted(result.assumptions.items())]
    curve = [(str(r["train examples"]), r["split"], r["shown"]) for _, r in learning.iterrows()]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Payback estimate: {e(result.candidate)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #111; }}
table {{ border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; font-size: .9rem; }}
th, td {{ border: 1px solid #bbb; padding: .25rem .5rem; text-align: left; vertical-align: top; }}
th {{ background: #eee; }} .answer {{ font-size: 1.1rem; padding: .75rem; border: 2px solid #333; }}
@media print {{ body {{ margin: 0; max-width: none; }} h2 {{ break-after: avoid; }} table {{ break-inside: auto; }} }}
</style></head><body>
<h1>Does fine-tuning pay? {e(result.candidate)} against {e(result.baseline)}</h1>
<p>Generated {stamp} from {e(source)} by finetune-harness. Every figure below lists its source; figures marked
"user input" or "assumed, not measured" were not measured by the harness.</p>
<p class="answer">{e(result.reason)}</p>
<h2>Key figures</h2>{_table(("figure", "value"), figures)}
<h2>Cumulative cost</h2>{_svg(cumulative, result.months_to_payback)}
<h2>Sensitivity: time to payback with one assumption at each end of its range</h2>
{_table(("assumption", "range", "at low", "at high"), tornado) if tornado else
 "<p>" + e(result.sensitivity.note) + "</p>"}
<p>Quality: {e(result.quality.reason)}.</p>
<h2>Learning curve: would more labelled data pay?</h2>
{_table(("train examples", "split", "task accuracy % [95% CI]"), curve) if curve else "<p>No learning curve.</p>"}
<h2>All assumptions</h2>{_table(("assumption", "value", "unit", "source"), assumptions)}
</body></html>"""


def num(value: float) -> str:
    """100,000 rather than 1e+05; small values keep four significant digits, never in e-notation."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return np.format_float_positional(value, precision=4, unique=False, fractional=False, trim="-")


def shown(value, unit: str) -> str:
    """An assumption's value as people read it: dollars via `usd` when its unit is USD, numbers via `num`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return usd(value) if unit.startswith("USD") else num(value)


def quantity(value: float, unit: str) -> str:
    """A value with its unit: `$2.50 per hour`, `100,000 queries per month`."""
    return f"{usd(value)}{unit[3:]}" if unit.startswith("USD") else f"{num(value)} {unit}"


def _table(head: tuple[str, ...], rows: list[tuple]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr>{cells}</table>"


def _svg(frame: pd.DataFrame, months: float | None, width: int = 640, height: int = 260) -> str:
    """Both cumulative lines as an inline SVG polyline chart, the break-even month dashed (or, beyond the chart,
    named at its right edge)."""
    top, last = max(frame["usd"].max(), 1e-9), max(frame["month"].max(), 1)

    def xy(m: float, usd: float) -> str:
        return f"{40 + m / last * (width - 60):.1f},{height - 30 - usd / top * (height - 50):.1f}"

    parts = [f'<line x1="40" y1="{height - 30}" x2="{width - 20}" y2="{height - 30}" stroke="#333"/>',
             f'<line x1="40" y1="20" x2="40" y2="{height - 30}" stroke="#333"/>',
             f'<text x="4" y="16" font-size="11">{usd(top)}</text>',
             f'<text x="{width - 90}" y="{height - 8}" font-size="11">month {last}</text>']
    for i, ((option, rows), colour) in enumerate(zip(frame.groupby("option", sort=False), ("#1f77b4", "#7f7f7f"))):
        points = " ".join(xy(m, u) for m, u in zip(rows["month"], rows["usd"]))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
                     f'<text x="50" y="{34 + 16 * i}" fill="{colour}" font-size="12">{html.escape(str(option))}</text>')
    if months is not None and months <= last:
        x = xy(months, 0).split(",")[0]
        parts.append(f'<line x1="{x}" y1="20" x2="{x}" y2="{height - 30}" stroke="black" stroke-dasharray="5,4"/>'
                     f'<text x="{float(x) + 4}" y="32" font-size="12">break-even {months:.1f} months</text>')
    elif months is not None:
        parts.append(f'<text x="{width - 20}" y="14" font-size="12" text-anchor="end">break-even at month '
                     f'{months:,.1f}, beyond the chart &#8594;</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{"".join(parts)}</svg>'
