"""How sure a timed speed is: the spread of the generate calls behind a local model's completion tokens per second.

The fallback prices a query from the harness's own generation of the test split, one pass of a few dozen batches.
Its batches differ (other prompts, other answer lengths, a moment when the machine was busy), so the pass's speed is
bootstrapped over them: an interval on the speed, and through it on every cost built from the speed. It covers the
batches of that pass; a machine busier during one pass than another shows in `Throughput.others_cpu_share`, which
the text beside it states.
"""

from __future__ import annotations

import numpy as np

from harness.core.metric import Metric
from harness.core.records import Throughput
from harness.evaluation.stats import interval_of, ratio_draws

MIN_TIMED_BATCHES = 5
"""Below this many timed generate calls, a bootstrap over them says little about the speed: no interval."""

BUSY_SHARE = 0.25
"""Others' share of the machine's CPU from which a timed speed reads as the busy machine's, and is cautioned."""

RESAMPLES = 2000


def _usable(t: Throughput) -> list[tuple[int, float]]:
    batches = [(tokens, seconds) for tokens, seconds in t.batches if seconds > 0]
    return batches if len(batches) >= MIN_TIMED_BATCHES and sum(tokens for tokens, _ in batches) > 0 else []


def timed_batches(t: Throughput) -> int:
    """The timed batches a speed is bootstrapped over (the n of its interval); 0 where it has no interval."""
    return len(_usable(t))


def speed_draws(t: Throughput, seed: int = 0) -> np.ndarray | None:
    """Bootstrap draws of the split's completion tokens per second over its generate calls, centred on the split's
    own figure (which also counts the work between calls, the shared prefix's encoding); None with fewer than
    MIN_TIMED_BATCHES calls recorded (a trial recorded before they were kept, a small split, a hosted arm). Give
    two speeds different seeds: their draws must be independent."""
    batches = _usable(t)
    if not batches:
        return None
    tokens, seconds = zip(*batches)
    draws = ratio_draws(tokens, seconds, seed, RESAMPLES)
    return draws * (t.completion_tokens_per_s / (sum(tokens) / sum(seconds)))


def speed_interval(t: Throughput) -> Metric:
    """The split's completion tokens per second with its 95% interval over its timed batches (n = batches); no
    interval (n = 0) where `speed_draws` has none."""
    draws = speed_draws(t)
    if draws is None:
        return Metric(t.completion_tokens_per_s, None, None, 0)
    n = timed_batches(t)
    low, high = interval_of(draws, n)
    return Metric(t.completion_tokens_per_s, low, high, n)


def timing_text(t: Throughput) -> str:
    """'412 completion tokens/s [380, 440] over 20 timed batches; other processes used 3% of the machine's CPU
    meanwhile', or what is missing."""
    speed = speed_interval(t)
    if speed.n:
        text = f"{speed.value:.1f} completion tokens/s [{speed.low:.1f}, {speed.high:.1f}] over {speed.n} timed batches"
    elif t.batches:
        text = (f"{speed.value:.1f} completion tokens/s, no interval ({len(t.batches)} timed batches, fewer than "
                f"{MIN_TIMED_BATCHES})")
    else:
        text = f"{speed.value:.1f} completion tokens/s, one figure without an interval (recorded before batch timings)"
    return text + "; " + load_text(t)


def load_text(t: Throughput) -> str:
    if t.others_cpu_share is None:
        return "no record of the machine's load then"
    return f"other processes used {t.others_cpu_share:.0%} of the machine's CPU meanwhile"


def busy(t: Throughput | None) -> bool:
    """Whether other processes took enough of the machine while `t` was timed that its speed is the busy machine's."""
    return t is not None and t.others_cpu_share is not None and t.others_cpu_share >= BUSY_SHARE
