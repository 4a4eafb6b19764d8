"""The dashboard's "what the sweep cost" line: the device seconds `harness payback` prices (its sweep_seconds), and
the dollars split into device time and hosted-API tokens. A hosted arm's time waiting on its endpoint is no device
time, and its tokens are no device dollars."""

from __future__ import annotations

import pytest
from test_cost import ENVS, PRICES, candidate
from test_payback_hosted_usage import hosted_arm
from views import run_view, trial_view

from harness.analysis.cost import load_prices, sweep_cost

pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
from harness_dashboards import costing  # noqa: E402


@pytest.fixture
def prices(tmp_path):
    (path := tmp_path / "prices.yaml").write_text(PRICES)
    return load_prices(path)


def test_the_sweep_line_counts_device_seconds_as_payback_does_and_splits_the_dollars(prices):
    """LoRA: 1,000 s training + 1,000 s evaluation on the H100 ($2.00); the hosted arm waited 160 s on its endpoint
    and was billed 100,000 + 2,000 tokens at $1 / $4 per 1M ($0.108)."""
    rows = [candidate(), hosted_arm()]
    swept = sweep_cost(rows, ENVS, prices)
    text = costing.spend_text(rows, swept)
    assert text == ("$2.11 for 2 trials: $2.00 of device time (2,000 s: 1,000 s training, 1,000 s evaluation) and "
                    "$0.108 of hosted-API tokens (1 hosted arm; its 160 s waiting on the endpoint is not device time)")
    assert f"{swept.seconds:,.0f} s" in text  # payback's sweep_seconds, not 2,160


def test_the_sweep_line_names_a_prompt_search_and_wall_time_and_has_no_api_part_without_hosted_arms(prices):
    from datetime import datetime, timezone

    from harness.core.records import PromptSearch

    search = PromptSearch("BootstrapFewShotWithRandomSearch (dspy 3.4.1)", "task accuracy", 50, 100, (0.3,), 4, 10,
                          600.0)
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    rows = [trial_view(0, method="dspy", device="cpu", trained=False, train_seconds=0.0, eval_seconds=600.0,
                       prompt_search=search),
            trial_view(1, status="failed", device="cpu", started_at=t0, finished_at=t0.replace(minute=10))]
    swept = sweep_cost(rows, {"r1": run_view("cpu", "cpu", 2)}, prices)
    # 600 + 600 + 600 s = 1,800 s x 2 cores x $0.10 per core-hour = $0.10
    assert costing.spend_text(rows, swept) == ("$0.100 for 2 trials: $0.100 of device time (1,800 s: 0 s training, "
                                               "600 s prompt search, 600 s evaluation, 600 s wall time of trials "
                                               "without timings)")
