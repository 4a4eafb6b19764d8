"""`harness payback` as a new user met it on a LoRA trial and two prompting arms: a hosted baseline without its
accuracy read as a worse candidate, a dearer candidate was told a cheaper model that is worse is not a saving, a
payback of 486 months read PAYS BACK against a 12-month horizon, sensitivity rows under an hour read 0.0 / 0.0,
money read `saves -$0.00000671`, and a LoRA trial was taken as the prompting trial (a prompting one as the
candidate).

The arithmetic is test_cost.py's: round-number prices, a candidate at $0.0001 per query, a prompting arm at $0.001
served locally or $0.0021 through `test-api`, and a one-time cost of $2,002 in `api_payback`.
"""

from __future__ import annotations

import pytest
from test_cost import (
    ENVS,
    H100,
    PRICES,
    api_payback,
    candidate,
    flags,
    prompting,
    table_scores,
)

from harness.analysis.cost import load_prices, serving_cost, sweep_cost
from harness.analysis.formatting import saving_text, usd
from harness.analysis.payback import USER, QualityBar, baseline_from_api, baseline_from_trial, payback
from harness.analysis.report import payback_text
from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.records import ExampleRow, MetricRow, RunRecord, StudyRecord, TrialRecord
from harness.store.database import Store


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES)
    return load_prices(path)


@pytest.fixture
def db(tmp_path) -> list[str]:
    """`--db` and `--prices` for study s: prompting s/0 (85 of 100 right) and s/2 (5 of 100), LoRA s/1 (90)."""
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(StudyRecord(
        name="s", experiment_name="s", experiment={"name": "s"}, suite="colours", suite_version="1.0.0",
        suite_path="suites/colours", model_name="tiny", model_sha256="abc", objective_metric="task_accuracy",
        maximize=True))  # fmt: skip
    store.record_run(RunRecord("r1", "s", 1, "host", "cuda", H100.device_name, 16, {}))
    _record(store, prompting(accuracy=(0.85, 0.77, 0.91), objective=0.85), flags(85, 100))
    _record(store, candidate(), flags(90, 100))
    _record(store, prompting(objective=0.05), flags(5, 100), number=2)
    return ["--db", str(store.path), "--prices", str(prices)]


def _record(store: Store, row, right: dict[str, float], number: int | None = None) -> None:
    number = row.number if number is None else number
    metrics = [MetricRow.of(split, name, m) for split, ms in row.metrics.items() for name, m in ms.items()]
    store.record_trial_result(TrialRecord(
        id=f"s/{number}", study="s", number=number, run_id="r1", method=row.method, trained=row.trained,
        status=row.status, device="cuda", train_seconds=row.train_seconds, eval_seconds=row.eval_seconds,
        objective=row.objective, throughput=dict(row.throughput), metrics=metrics,
        examples=[ExampleRow("test", i, f"input {i}", "x", "y", scores={"task_accuracy": v}) for i, v in right.items()],
    ))  # fmt: skip


def said(argv: list[str], capsys, code: int = 0) -> str:
    assert main(["payback", *argv]) == code
    return " ".join("".join(capsys.readouterr()).split())  # the CLI prints its errors on stdout


# -- 1. a hosted model's accuracy left out is a missing input, not a worse candidate -------------------------------


def test_a_hosted_baseline_without_its_accuracy_is_refused_naming_the_flag(prices, db, capsys):
    base = baseline_from_api("test-api", prompting(), prices)  # no accuracy: unknown
    serving, sweep = serving_cost(candidate(), H100, prices), sweep_cost([candidate()], ENVS, prices)
    with pytest.raises(HarnessError, match="--baseline-accuracy, its fraction correct on this suite's test split"):
        payback(candidate(), serving, base, sweep, 100_000, candidate_scores=flags(900, 1000))
    # An absolute bar weighs the candidate alone: nothing is missing
    absolute = payback(candidate(), serving, base, sweep, 100_000, candidate_scores=flags(900, 1000),
                       quality_bar=QualityBar(absolute=0.8))
    assert absolute.pays_back and absolute.quality.decision.outcome == "better"
    out = said(["s/1", "--baseline", "api:test-api", "--volume", "100000", *db], capsys, code=2)
    assert "s/1 against api:test-api's test task_accuracy, which is unknown" in out
    assert "--baseline-accuracy" in out and "assumed, not measured" in out and "not a saving" not in out


# -- 2. the reason says the case the rule decided -------------------------------------------------------------------


def test_a_dearer_candidate_is_told_it_costs_more_not_that_it_is_worse(prices, db, capsys):
    """At 1 completion token per second the candidate's 20 tokens take 20 s: $0.02 a query against the prompting
    arm's $0.001. The two disagree on 20 of 200 examples, so the candidate is not shown to be within 2 points
    either, but what rules out any payback is that it saves nothing."""
    cand_scores, base_scores = table_scores(160, 10, 10, 20)
    base = baseline_from_trial(prompting(), H100, prices, base_scores)
    dear = serving_cost(candidate(), H100, prices, throughput=1.0)
    result = payback(candidate(), dear, base, sweep_cost([candidate()], ENVS, prices), 100_000,
                     candidate_scores=cand_scores)
    assert not result.pays_back and result.quality.decision.outcome == "not shown"
    assert result.reason.startswith("no payback: s/1 costs $0.0200 per query, $0.0190 more than s/0's $0.00100, so "
                                    "there is no saving to pay back the one-time cost of $2.00.")
    assert "It also fails the quality bar (task_accuracy vs s/0: +0.0 points" in result.reason
    assert "not a saving" not in result.reason and "worse is" not in result.reason
    cheap = load_prices(prices.origin, overrides={"apis": {"test-api": {"input_usd_per_1m": 0.01,
                                                                        "output_usd_per_1m": 0.01}}})
    passing = api_payback(cheap)  # passes the bar, yet the API costs $0.00002025 a query against $0.0001
    more = usd(passing.candidate_usd_per_query - passing.baseline_usd_per_query)
    assert f"costs $0.000100 per query, {more} more than api:test-api's $0.0000203" in passing.reason
    assert "It passes the quality bar" in passing.reason
    out = said(["s/1", "--baseline", "s/0", "--serving-throughput", "1", "--volume", "100000", *db], capsys)
    assert "s/1 costs $0.0200 per query, $0.0190 more than s/0's $0.00100" in out and "not a saving" not in out


def test_a_cheaper_candidate_not_shown_as_good_is_not_called_worse(prices):
    cand_scores, base_scores = table_scores(160, 10, 10, 20)  # +0.0 points, about +-6.8: not shown
    result = payback(candidate(), serving_cost(candidate(), H100, prices),
                     baseline_from_trial(prompting(), H100, prices, base_scores),
                     sweep_cost([candidate()], ENVS, prices), 100_000, candidate_scores=cand_scores)
    assert "A cheaper model that is not shown to be as good is not a saving." in result.reason


# -- 3. a payback beyond the horizon does not pay back -----------------------------------------------------------


def test_a_payback_beyond_the_horizon_does_not_read_as_paying_back(prices):
    slow = api_payback(prices, fixed_monthly_usd=100)  # $2,002 / ($200 - $100) a month = 20.02 months
    assert slow.months_to_payback == pytest.approx(20.02) and not slow.pays_back
    assert slow.reason.startswith("no payback within the 12-month horizon at 100,000 queries/month: s/1 saves "
                                  "$0.00200 per query against api:test-api ($100/month), so the $2,002 it cost once "
                                  "takes 20.0 months to repay; from 133,417 queries a month it pays back within")
    assert slow.headline() == "DOES NOT PAY BACK within the 12-month horizon (it would take 20.0 months)."
    assert "PAYS BACK" not in payback_text(slow)
    longer = api_payback(prices, fixed_monthly_usd=100, horizon_months=24)
    assert longer.pays_back and longer.headline() == "PAYS BACK in 20.0 months."
    never = api_payback(prices, volume=40_000, fixed_monthly_usd=100)  # $80 saved < $100 hosting
    assert never.headline() == "NO PAYBACK FIGURE." and never.months_to_payback is None


# -- 4. and 5. what the text prints ------------------------------------------------------------------------------


def test_sensitivity_rows_under_a_month_read_in_hours_or_days_as_the_headline_does(prices):
    fast = api_payback(prices, volume=100_000_000)  # $200,000 a month repays $2,002 in 0.01 months, 7.3 hours
    text = payback_text(fast)
    assert "PAYS BACK in 7.3 hours." in text
    rows = text.split("sensitivity (time to payback")[1].split("assumptions:")[0]
    assert " 0.0 " not in rows and "hours" in rows
    volume = next(line for line in rows.splitlines() if line.strip().startswith("volume"))
    assert "14.6 hours / 3.7 hours" in " ".join(volume.split())  # half and twice the volume


def test_money_the_candidate_loses_reads_as_costing_more(prices):
    dear = payback(candidate(), serving_cost(candidate(), H100, prices, throughput=1.0),
                   baseline_from_trial(prompting(), H100, prices, flags(900, 1000)),
                   sweep_cost([candidate()], ENVS, prices), 100_000, candidate_scores=flags(900, 1000))
    head = payback_text(dear).split("assumptions:")[0]
    assert "(costs $0.0190 more)" in head and "per month: costs $1,900 more;" in head and "-$" not in head
    assert (saving_text(-0.671), saving_text(1.89), saving_text(0.0)) == ("costs $0.671 more", "saves $1.89",
                                                                          "saves $0")


def test_an_absolute_bar_left_unset_reads_in_words(prices):
    result = api_payback(prices)
    assert result.assumptions["quality_bar.absolute"] == {
        "value": "not set", "unit": "rule parameter", "source": "the bar is relative to the baseline"}
    assert "None" not in payback_text(result)
    assert api_payback(prices, quality_bar=QualityBar(absolute=0.8)).assumptions["quality_bar.absolute"]["value"] == 0.8


# -- 6. each trial in its role ----------------------------------------------------------------------------------


def test_a_fine_tuned_trial_is_refused_as_the_prompting_trial(db, capsys):
    out = said(["s/1", "--baseline", "api:test-api", "--prompt-trial", "s/1", "--baseline-accuracy", "0.8",
                "--volume", "100000", *db], capsys, code=2)
    assert "--prompt-trial s/1 is a lora trial (fine-tuned), not a local prompting trial" in out
    assert "e.g. s/0, the default when --prompt-trial is left out" in out and "PAYS BACK" not in out


@pytest.mark.parametrize("given", ["s/2", "s/0"])  # s/0 is also the default baseline
def test_a_prompting_trial_is_refused_as_the_fine_tuned_candidate(db, capsys, given):
    out = said([given, "--volume", "100000", *db], capsys, code=2)
    assert f"{given} is a prompting trial, not a fine-tuned trial" in out
    assert "Give a fine-tuned trial of study s as TRIAL, e.g. s/1" in out and f"--baseline {given}" in out


def test_hours_without_their_rate_or_a_rate_without_hours_are_refused(db, capsys):
    """Either alone would price the one-time cost at $0 and read as paying back sooner."""
    out = said(["s/1", "--volume", "100000", "--eng-hours", "40", *db], capsys, code=2)
    assert "--eng-hours 40 needs --eng-rate too, above 0" in out and "would count as $0" in out
    out = said(["s/1", "--volume", "100000", "--data-prep-rate", "60", *db], capsys, code=2)
    assert "--data-prep-rate 60 needs --data-prep-hours too" in out
    out = said(["s/1", "--volume", "100000", "--eng-hours", "0", "--eng-rate", "5", *db], capsys, code=2)
    assert "--eng-rate 5 needs --eng-hours too, above 0" in out  # a typed 0 prices nothing either
    out = said(["s/1", "--volume", "100000", "--eng-hours", "40", "--eng-rate", "100", *db], capsys)
    assert "engineering $4,000" in out
    sensitivity = out.split("sensitivity", 1)[1].split("assumptions:", 1)[0]
    for name in ("volume", "engineering_hours", "engineering_usd_per_hour", "utilisation", "device_price_scale"):
        assert f" {name} " in sensitivity, name  # every row `harness report` shows, not the first six


def test_a_candidate_that_breaks_its_constraints_says_so_in_the_headline_itself(prices):
    import dataclasses

    from test_cost import ENVS, H100, candidate, flags, prompting

    broken = dataclasses.replace(candidate(), constraints={"format_compliance": 0.9})  # 0% where 90% is the floor
    result = payback(broken, serving_cost(broken, H100, prices), baseline_from_api("test-api", prompting(), prices,
                                                                                  accuracy=0.80),
                     sweep_cost([broken], ENVS, prices), 100_000, candidate_scores=flags(900, 1000))
    assert result.pays_back and result.headline().startswith("PAYS BACK in ")
    assert result.headline().endswith(", if it could be served: it breaks the dev constraint(s) format_compliance.")
    assert api_payback(prices).headline().startswith("PAYS BACK in 10.0 months, with its serving machine paid only "
                                                     "while busy")  # a feasible one: no "if it could be served"


def test_a_serving_machine_mostly_idle_is_cautioned_with_what_a_machine_of_its_own_would_change(prices):
    """Finance read "PAYS BACK in under an hour" against gpt-4o-mini for an adapter whose 100,000 queries a month kept
    a CPU busy 6 hours: each query was priced by its busy seconds, and on a machine of its own, paid all month, it
    would not pay back. The headline says so, the caution gives the --hosting figure, and that figure's answer."""
    from harness.analysis.formatting import duration
    from harness.analysis.payback import IDLE_SHARE
    from harness.analysis.payback_model import HOURS_PER_MONTH, candidate_paid_hours

    result = api_payback(prices)
    paid = candidate_paid_hours(result.inputs)
    assert 0 < paid / HOURS_PER_MONTH < IDLE_SHARE and result.busy_share == pytest.approx(paid / HOURS_PER_MONTH)
    assert f"({result.busy_share:.1%} of the month; see the caution)" in result.headline()
    idle = result.inputs.candidate_usd_per_hour * (HOURS_PER_MONTH - paid)
    own = api_payback(prices, fixed_monthly_usd=round(idle, 2))  # what the caution says to try
    outcome = ("it would not pay back" if own.months_to_payback is None
               else f"it would take {duration(own.months_to_payback)} to pay back")
    assert f"(--hosting {idle:.2f}); with that, {outcome}" in result.reason
    assert own.busy_share is None and "paid only while it answers" not in own.reason  # hosting given: no caution
    assert api_payback(prices, utilisation=0.5).busy_share is None  # nor with a utilisation the user chose
    # `--hosting 0` says the machine costs nothing beyond its busy seconds (shared, per-second billing): no caution,
    # and the assumptions tell the 0 typed from one left out
    typed = api_payback(prices, fixed_monthly_usd=0.0)
    assert typed.busy_share is None and "paid only while it answers" not in typed.reason
    assert typed.assumptions["fixed_monthly_usd"]["source"] == USER
    assert result.assumptions["fixed_monthly_usd"]["source"] == "0: not given (--hosting)"
    assert api_payback(prices, utilisation=1.0).busy_share is None
    full = api_payback(prices, volume=100_000 * HOURS_PER_MONTH / paid)  # a volume that keeps the machine busy
    assert full.busy_share is None and "paid only while it answers" not in full.reason


@pytest.mark.parametrize("volume", ["1e300", "1e13", "1e-320", "0.0001"])
def test_a_volume_no_service_has_is_refused_naming_the_unit(prices, db, capsys, volume):
    with pytest.raises(SystemExit):
        main(["payback", "s/1", "--baseline", "s/0", "--volume", volume, *db])
    assert "queries a month" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="give queries per month"):
        api_payback(prices, volume=float(volume))
