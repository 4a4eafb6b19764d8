"""The payback model: every number a payback uses as one flat record (`PaybackInputs`), and pure arithmetic over it,
so that sensitivity (the tornado) and the timing spread can move one input at a time and read the months again.
`harness.analysis.payback` builds the record from a study and decides with it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from harness.analysis.cost import api_usd_per_query, serving_usd_per_query
from harness.core.errors import HarnessError
from harness.evaluation.stats import interval_of

HORIZON_MONTHS = 12.0
"""The break-even volume is the volume that pays back within this many months, unless the caller names another."""
HOURS_PER_MONTH = 30.44 * 24
"""An average month's hours (a 365.25-day year's twelfth), as `formatting.duration` counts a month."""


@dataclass(frozen=True)
class PaybackInputs:
    """Every number the payback arithmetic uses. Per-query token counts are local-tokenizer tokens."""

    volume: float
    sweep_compute_usd: float
    """The sweep's device time at the table's device prices."""
    candidate_usd_per_hour: float
    candidate_tokens_per_s: float
    candidate_completion_tokens: float
    baseline_kind: str
    baseline_usd_per_hour: float = 0.0
    baseline_tokens_per_s: float = 0.0
    baseline_prompt_tokens: float = 0.0
    baseline_completion_tokens: float = 0.0
    api_input_usd_per_1m: float = 0.0
    api_output_usd_per_1m: float = 0.0
    token_ratio: float = 1.0
    baseline_tokens_measured: bool = False
    """A hosted arm's own tokens, as its endpoint reported them: no ratio converts them, so none is varied."""
    sweep_hosted_usd: float = 0.0
    """The tokens the sweep's hosted arms were billed: API dollars, which device_price_scale leaves as they are."""
    data_prep_hours: float = 0.0
    data_prep_usd_per_hour: float = 0.0
    engineering_hours: float = 0.0
    engineering_usd_per_hour: float = 0.0
    fixed_monthly_usd: float = 0.0
    device_price_scale: float = 1.0
    """Multiplies every device price (the sweep's device time, candidate serving, local baseline serving), never an
    API price; 1 = the table."""
    utilisation: float = 1.0
    """Share of each paid device-hour spent answering; 1 = full batches all the time. Divides local serving cost."""


UNITS = {
    "volume": "queries per month", "sweep_compute_usd": "USD", "sweep_hosted_usd": "USD",
    "candidate_usd_per_hour": "USD per hour",
    "candidate_tokens_per_s": "completion tokens per second", "candidate_completion_tokens": "tokens per query",
    "baseline_usd_per_hour": "USD per hour", "baseline_tokens_per_s": "completion tokens per second",
    "baseline_prompt_tokens": "local tokens per query", "baseline_completion_tokens": "local tokens per query",
    "api_input_usd_per_1m": "USD per 1M input tokens", "api_output_usd_per_1m": "USD per 1M output tokens",
    "token_ratio": "hosted tokens per local token", "data_prep_hours": "hours",
    "data_prep_usd_per_hour": "USD per hour", "engineering_hours": "hours", "engineering_usd_per_hour": "USD per hour",
    "fixed_monthly_usd": "USD per month", "device_price_scale": "x table device prices",
    "utilisation": "fraction of paid device time spent answering",
}  # fmt: skip

FLAGS = {"volume": "--volume", "data_prep_hours": "--data-prep-hours", "data_prep_usd_per_hour": "--data-prep-rate",
         "engineering_hours": "--eng-hours", "engineering_usd_per_hour": "--eng-rate", "fixed_monthly_usd": "--hosting",
         "horizon_months": "--horizon"}
"""The `harness payback` flag of each user figure, so that a refusal names what to change."""

# Default low/high of each assumption for the tornado, as factors of its value. Override with absolute values:
# payback(..., ranges={"volume": (10_000, 1_000_000)}).
DEFAULT_RANGES = {
    "volume": (0.5, 2.0), "device_price_scale": (0.5, 1.5), "candidate_tokens_per_s": (0.5, 1.5),
    "baseline_tokens_per_s": (0.5, 1.5), "api_input_usd_per_1m": (0.5, 1.5), "api_output_usd_per_1m": (0.5, 1.5),
    "token_ratio": (0.8, 1.25), "data_prep_hours": (0.5, 2.0), "data_prep_usd_per_hour": (0.75, 1.5),
    "engineering_hours": (0.5, 2.0), "engineering_usd_per_hour": (0.75, 1.5), "fixed_monthly_usd": (0.5, 2.0),
    "utilisation": (0.5, 1.0),
}  # fmt: skip


def candidate_usd_per_query(x: PaybackInputs) -> float:
    return serving_usd_per_query(x.candidate_usd_per_hour * x.device_price_scale, x.candidate_tokens_per_s,
                                 x.candidate_completion_tokens) / x.utilisation


def baseline_usd_per_query(x: PaybackInputs) -> float:
    if x.baseline_kind == "api":
        return api_usd_per_query(x.api_input_usd_per_1m, x.api_output_usd_per_1m, x.baseline_prompt_tokens,
                                 x.baseline_completion_tokens, x.token_ratio)
    return serving_usd_per_query(x.baseline_usd_per_hour * x.device_price_scale, x.baseline_tokens_per_s,
                                 x.baseline_completion_tokens) / x.utilisation


def candidate_paid_hours(x: PaybackInputs) -> float:
    """Device hours a month that serving `x.volume` queries on the candidate pays for: the seconds its answers take at
    the measured speed, over the utilisation."""
    return x.volume * x.candidate_completion_tokens / x.candidate_tokens_per_s / 3600 / x.utilisation


def one_time_usd(x: PaybackInputs) -> float:
    return (x.sweep_compute_usd * x.device_price_scale + x.sweep_hosted_usd
            + x.data_prep_hours * x.data_prep_usd_per_hour + x.engineering_hours * x.engineering_usd_per_hour)


def savings_per_query_usd(x: PaybackInputs) -> float:
    """What a query costs less on the candidate than on the baseline (negative where it costs more)."""
    return baseline_usd_per_query(x) - candidate_usd_per_query(x)


def monthly_savings_usd(x: PaybackInputs) -> float:
    return savings_per_query_usd(x) * x.volume - x.fixed_monthly_usd


def months_to_payback(x: PaybackInputs) -> float | None:
    """One-time cost / monthly savings; None when nothing is saved (it never pays back)."""
    savings = monthly_savings_usd(x)
    return one_time_usd(x) / savings if savings > 0 else None


def break_even_volume(x: PaybackInputs, horizon_months: float = HORIZON_MONTHS) -> float | None:
    """Queries per month that pay back within `horizon_months`; None when the candidate is not cheaper."""
    per_query = savings_per_query_usd(x)
    return (one_time_usd(x) / horizon_months + x.fixed_monthly_usd) / per_query if per_query > 0 else None


def min_volume_for_savings(x: PaybackInputs) -> float | None:
    """Queries per month above which the per-query saving covers fixed hosting; None when the candidate is not
    cheaper."""
    per_query = savings_per_query_usd(x)
    return x.fixed_monthly_usd / per_query if per_query > 0 else None


class TornadoBar(NamedTuple):
    assumption: str
    months_at_low: float | None
    """None: never pays back at that end."""
    months_at_high: float | None
    low: float
    high: float
    unit: str


def tornado(x: PaybackInputs, ranges: Mapping[str, tuple[float, float]] | None = None) -> list[TornadoBar]:
    """Payback months with one assumption at its low, then high end; widest swing first ("never" is widest).

    Defaults are DEFAULT_RANGES factors of each value (skipped when the value is 0 or does not apply to the
    baseline: see `_applies`); `ranges` gives absolute (low, high) for any numeric field of PaybackInputs.
    """
    numeric = [f.name for f in dataclasses.fields(x) if f.name not in NOT_NUMERIC]
    unknown = [k for k in (ranges or {}) if k not in numeric]
    if unknown:
        raise HarnessError(f"no assumption `{unknown[0]}` to vary. Known: {', '.join(numeric)}.")
    chosen = {name: (getattr(x, name) * lo, getattr(x, name) * hi) for name, (lo, hi) in DEFAULT_RANGES.items()
              if getattr(x, name) and _applies(name, x)}
    chosen.update({k: (float(lo), float(hi)) for k, (lo, hi) in (ranges or {}).items()})
    chosen = {k: ends for k, ends in chosen.items() if all(map(math.isfinite, ends))}  # 2 x a huge figure: no end
    bars = [TornadoBar(name, _finite_months(dataclasses.replace(x, **{name: lo})),
                       _finite_months(dataclasses.replace(x, **{name: hi})), lo, hi, UNITS[name])
            for name, (lo, hi) in chosen.items()]
    return sorted(bars, key=lambda b: (-_swing(b), b.assumption))


def _finite_months(x: PaybackInputs) -> float | None:
    """Months to payback, None (never) where they overflow: JSON has no infinity, and finance no use for one."""
    months = months_to_payback(x)
    return months if months is not None and math.isfinite(months) else None


NOT_NUMERIC = ("baseline_kind", "baseline_tokens_measured")


def _applies(name: str, x: PaybackInputs) -> bool:
    """API prices vary for a hosted baseline only, the token ratio only where it converts local tokens (a hosted
    arm's tokens are its endpoint's own), a baseline's throughput for a local baseline only."""
    if name == "token_ratio":
        return x.baseline_kind == "api" and not x.baseline_tokens_measured
    if name in ("api_input_usd_per_1m", "api_output_usd_per_1m"):
        return x.baseline_kind == "api"
    return name != "baseline_tokens_per_s" or x.baseline_kind == "trial"


def _swing(bar: TornadoBar) -> float:
    a, b = bar.months_at_low, bar.months_at_high
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return float("inf")
    return abs(a - b)


@dataclass(frozen=True)
class TimingSpread:
    """How far the saving and the payback move over the spread of the timed speeds behind them: each speed the
    harness's own generate measured, bootstrapped over its batches (`speed.speed_draws`), the two independently,
    every other input held. 95% intervals."""

    n: int
    """Timed batches behind the speed with the fewest (the interval's n)."""
    savings_per_query_usd: tuple[float, float]
    months_to_payback: tuple[float | None, float | None]
    """None at an end where it never pays back (no saving there)."""


def timing_spread(x: PaybackInputs, candidate_speeds: np.ndarray | None, baseline_speeds: np.ndarray | None,
                  n: int) -> TimingSpread | None:
    """The saving per query and the months to payback over paired draws of the candidate's and the baseline's speed
    (completion tokens per second); a speed without draws is held at its figure. None when neither has draws."""
    if candidate_speeds is None and baseline_speeds is None:
        return None
    size = len(candidate_speeds if candidate_speeds is not None else baseline_speeds)
    candidate = candidate_speeds if candidate_speeds is not None else np.full(size, x.candidate_tokens_per_s)
    baseline = baseline_speeds if baseline_speeds is not None else np.full(size, x.baseline_tokens_per_s)
    drawn = [dataclasses.replace(x, candidate_tokens_per_s=float(c), baseline_tokens_per_s=float(b))
             for c, b in zip(candidate, baseline)]
    savings = np.array([savings_per_query_usd(d) for d in drawn])
    months = np.array([m if (m := months_to_payback(d)) is not None else math.inf for d in drawn])
    low, high = interval_of(months, n, method="nearest")  # no interpolation: an end may be never (inf)
    return TimingSpread(n, interval_of(savings, n), tuple(m if math.isfinite(m) else None for m in (low, high)))
