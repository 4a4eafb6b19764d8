"""The dashboard's pages, run headless with Streamlit's AppTest on a small demo database built here.

AppTest executes the real page scripts (no browser), so each page's logic is checked in about a second:
that it renders on the demo data, that the filters filter, and that nothing it shows is missing. The demo database
is written through the Store's typed write API, as a sweep writes it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
from harness_dashboards import auth, data  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from harness.core.errors import HarnessError  # noqa: E402
from harness.core.label_report import INVALID, LabelReport, LabelRow  # noqa: E402
from harness.core.metric import NOT_MEASURED, Metric  # noqa: E402
from harness.core.paths import DASHBOARD_DB_ENV  # noqa: E402
from harness.core.records import (  # noqa: E402
    AdapterEvent,
    ExampleRow,
    HostedUsage,
    MetricRow,
    PromptSearch,
    RunRecord,
    StudyRecord,
    Throughput,
    TrainingSummary,
    TrialRecord,
)
from harness.core.text import markdown_literal  # noqa: E402
from harness.store.database import Store  # noqa: E402
from harness.store.seal import seal_warnings  # noqa: E402

APP = REPO / "dashboards" / "app.py"
LABELS = ("card_lost", "card_arrival", "refund")
N = 40
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
E_NOTATION = re.compile(r"(?<![\w/.-])\d+(\.\d+)?e[-+]\d{1,3}\b", re.IGNORECASE)
"""A number as Python or JavaScript print it in scientific notation: 5e-06, 1.2E+05."""
IMPORTANCE = {"lora": {"learning_rate": 0.8, "r": 0.2}}


def _metric_rows(split: str, acc: float, fmt: float, hall: float, n: int, regression: Metric) -> list[MetricRow]:
    def ci(v: float) -> tuple[float, float]:
        return max(0.0, v - 0.1), min(1.0, v + 0.1)

    rows = [MetricRow(split, name, v, *ci(v), n) for name, v in
            (("task_accuracy", acc), ("format_compliance", fmt), ("hallucination_rate", hall))]
    return rows + [MetricRow.of(split, "regression_delta", regression)]


def _examples(acc: float, n: int = N) -> list[ExampleRow]:
    """The first acc x n examples right: a better trial is right wherever a worse one is (a clear paired win)."""
    rows = []
    for split in ("dev", "test"):
        for i in range(n):
            label = LABELS[i % 3]
            right = i < round(acc * n)
            said = label if right else LABELS[(i + 1) % 3]
            rows.append(ExampleRow(split, f"{split}:{i:02d}", f"message {i} about my {label.replace('_', ' ')}",
                                   f'{{"intent": "{label}"}}', f'{{"intent": "{said}"}}', 120 + i, 8, 0.05,
                                   {"task_accuracy": float(right), "format_compliance": 1.0,
                                    "hallucination_rate": 0.0}))
    return rows


def _record(study: str, number: int, method: str, params: dict, acc: float, feasible: bool = True,
            train_s: float = 0.0, eval_s: float = 30.0, regression_checked: bool = True,
            label_reports: dict[str, LabelReport] | None = None, run_id: str = "run-demo",
            hosted: HostedUsage | None = None, prompt_search: PromptSearch | None = None) -> TrialRecord:
    """A complete trial. Prompting and an unchecked adapter have no regression delta: not measured, never 0."""
    trained = method not in ("prompt", "api", "dspy", "api_dspy")
    regression = Metric(0.01, -0.04, 0.06, 100) if trained and regression_checked else NOT_MEASURED
    constraints = {"format_compliance": -0.1 if feasible else 0.2, "hallucination_rate": -0.05,
                   "regression_delta": None if regression.value is None else -0.06}
    return TrialRecord(
        id=f"{study}/{number}", study=study, number=number, run_id=run_id, method=method,
        params={"method": method, **params}, status="complete", trained=trained,
        started_at=T0 + timedelta(minutes=5 * number), finished_at=T0 + timedelta(minutes=5 * number + 4),
        device="hosted" if hosted else "cuda", peak_memory_mb=None if hosted else 900.0, train_seconds=train_s,
        eval_seconds=eval_s, objective=acc, hosted=hosted, prompt_search=prompt_search,
        feasible=feasible, artifact_path=None,
        training=None if not trained else TrainingSummary(
            steps=40, stopped_by="max_steps", examples=320, examples_per_step=8,
            loss_curve=tuple((s, 2.5 / (1 + s / 10)) for s in range(5, 45, 5)), dev_curve=((20, acc - 0.1), (40, acc)),
            step_seconds=0.25),
        shots=tuple(f"train:{i}" for i in range(params.get("shots", 0))), include_contract=True,
        constraints=constraints, label_reports=label_reports or {},
        throughput={s: Throughput(N, eval_s / 2, 8, N * 130, 8 * N) for s in ("dev", "test")},
        provenance={"data": {"suite": "ticket-triage", "suite_version": "1.0.0",
                             "sizes": {"train": 400, "dev": N, "test": N}},
                    "budget": {"max_steps": 40}, "model": {"name": "smollm2-135m"}},
        metrics=_metric_rows("dev", acc, 1.0, 0.05, N, regression)
        + _metric_rows("test", acc - 0.02, 0.98, 0.06, N, regression),
        examples=_examples(acc),
    )


def _study(name: str, kind: str = "sweep", parent: str | None = None, maximize: bool = True,
           objective: str = "task_accuracy") -> StudyRecord:
    experiment = {"name": parent or name, "prices": {"devices": {"H100": {"usd_per_hour": 2.5}}}}  # file's overrides
    return StudyRecord(name=name, experiment_name=parent or name, experiment=experiment, suite="ticket-triage",
                       suite_version="1.0.0", suite_path="suites/ticket-triage", model_name="smollm2-135m",
                       model_sha256="abc123", objective_metric=objective, maximize=maximize, kind=kind,
                       parent=parent)


def _run(run_id: str, study: str) -> RunRecord:
    return RunRecord(run_id, study, 1, "host", "cuda", "NVIDIA H100 80GB HBM3", 16,
                     {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "cpu_count": 16})


def build_demo_db(root: Path) -> Path:
    """Two sweep studies and a follow-up, as a sweep records them:

    - `demo`: 3 prompt and 3 lora trials; demo/3 ran with the forgetting check off; lora's parameter importance.
    - `demo+curve`: its learning curve (kind "curve", parent "demo"), named so it sorts before `intent`.
    - `intent`: a second sweep with two prompting trials and no importance, listed before the follow-up.
    """
    db = root / "harness.duckdb"
    store = Store(db)
    for study in (_study("demo"), _study("demo+curve", "curve", "demo"), _study("intent")):
        store.record_study(study)
    store.record_run(_run("run-demo", "demo"))
    store.record_run(_run("run-intent", "intent"))
    support = {"card_lost": 14, "card_arrival": 13, "refund": 13}  # the 40 test messages, labels in turn
    report = LabelReport(n=40, invalid=3, macro_f1=0.7, macro_labels=3,
                         labels={lab: LabelRow(precision=0.8, recall=0.6, f1=0.69, support=support[lab], predicted=12,
                                               f1_low=0.31, f1_high=0.95) for lab in LABELS},
                         confusion={"card_lost": {"card_lost": 12, "refund": 2}, "refund": {"refund": 13},
                                    "card_arrival": {"card_arrival": 10, INVALID: 3}})
    labels = {"dev": dataclasses.replace(report, macro_f1=0.75), "test": report}
    trials = [
        _record("demo", 0, "prompt", {"shots": 0}, 0.25, feasible=False),
        _record("demo", 1, "prompt", {"shots": 3}, 0.40),
        _record("demo", 2, "lora", {"r": 16, "learning_rate": 1e-3}, 0.85, train_s=120, eval_s=20,
                label_reports=labels),
        _record("demo", 3, "lora", {"r": 8, "learning_rate": 5e-4}, 0.70, train_s=100, eval_s=20,
                regression_checked=False),
        _record("demo", 4, "lora", {"r": 8, "learning_rate": 2e-3}, 0.90, feasible=False, train_s=110, eval_s=20),
        _record("demo", 5, "prompt", {"shots": 5}, 0.42, eval_s=200),
        _record("intent", 0, "prompt", {"shots": 0}, 0.30, run_id="run-intent"),
        _record("intent", 1, "prompt", {"shots": 2}, 0.35, run_id="run-intent"),
    ]
    for number, (size, acc) in enumerate(((50, 0.5), (100, 0.65), (200, 0.8))):
        trials.append(_record("demo+curve", number, "lora", {"r": 16, "learning_rate": 1e-3, "train_examples": size,
                                                              "source_trial": "demo/2"}, acc, train_s=size / 2))
    for t in trials:
        store.record_trial_result(t)
    store.record_importance("demo", IMPORTANCE)
    return db


HOSTED = HostedUsage(endpoint="mini", base_url="https://api.example.test/v1", model="gpt-4o-mini", price="gpt-4o-mini",
                     structured=True, requests=80, cache_hits=0, errors=0, prompt_tokens=80 * 900,
                     completion_tokens=80 * 9, usd=(80 * 900 * 0.15 + 80 * 9 * 0.6) / 1e6)


def build_hosted_db(root: Path) -> Path:
    """A study with the real opponent: a hosted arm beside local prompting and LoRA."""
    db = root / "harness.duckdb"
    store = Store(db)
    store.record_study(_study("ask"))
    store.record_run(_run("run-ask", "ask"))
    for record in (_record("ask", 0, "prompt", {"shots": 3}, 0.40, run_id="run-ask"),
                   _record("ask", 1, "api", {"endpoint": "mini", "shots": 5}, 0.60, eval_s=12.0, run_id="run-ask",
                           hosted=HOSTED),
                   _record("ask", 2, "lora", {"r": 16}, 0.85, train_s=120, eval_s=20, run_id="run-ask")):
        store.record_trial_result(record)
    gate = {"passed": True, "candidate": "ask/2", "reference": "ask/1", "reference_kind": "prompting",
            "rules": [{"name": "task accuracy", "passed": True, "detail": "ask/2 83.0% vs ask/1 58.0%: +25.0 points"}]}
    store.record_adapter_events([AdapterEvent("ask/2", "ticket-triage", "production", "candidate", "promote", "ada",
                                              "beats the hosted arm", gate=gate)])
    return db


@pytest.fixture
def hosted_app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(build_hosted_db(tmp_path)))
    return AppTest.from_file(str(APP), default_timeout=30)


def test_the_hosted_arm_is_the_real_opponent_and_its_spend_is_shown(hosted_app):
    at = _open(hosted_app, "leaderboard")
    assert "fine-tuning beat hosted prompting" in _text(at) and "the real opponent" in _text(at)
    # the report's "how sure" beside the answer: a constraint met at its estimate, its interval past the limit
    how_sure = next(w.value for w in at.warning if "How sure" in w.value)
    assert "ask/2 is judged on its dev constraints by their estimates" in how_sure
    assert "met at its estimate, but its 95% interval reaches past the limit" in how_sure
    hosted_app.query_params["trial"] = "ask/1"
    at = _open(hosted_app, "trial")
    text = _everything(at)
    assert "gpt-4o-mini via endpoint mini" in text and "80 requests sent" in text
    assert "structured output requested" in text
    header = next(m.value for m in at.markdown if "status" in m.value)
    assert "device hosted" in header and "peak memory" not in header  # it ran on the endpoint's hardware


def test_a_searched_prompt_is_drawn_and_its_page_says_how_it_was_chosen(tmp_path, monkeypatch):
    db = build_hosted_db(tmp_path)
    search = PromptSearch("BootstrapFewShotWithRandomSearch (dspy 3.4.1)", "task accuracy", 50, 100, (0.24, 0.22), 8,
                          1104, 264.0)
    Store(db).record_trial_result(_record("ask", 3, "dspy", {"max_demos": 8}, 0.3, run_id="run-ask",
                                          prompt_search=search))
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(db))
    app = AppTest.from_file(str(APP), default_timeout=30)
    assert "ask/3" in _everything(_open(app, "leaderboard"))  # drawn and listed beside the other arms
    app.query_params["trial"] = "ask/3"
    text = _text(_open(app, "trial"))
    assert f"Prompt searched: {search.text()}" in text and "Not trained (prompting)" in text


def test_registry_page_shows_production_and_every_change(hosted_app):
    at = _open(hosted_app, "registry")
    text = _everything(at)
    assert "ticket-triage**: ask/2 (lora) is in production" in text and "approved by ada" in text
    assert "candidate -> production" in text and "beats the hosted arm" in text and "passed" in text
    assert "+25.0 points" in text  # the gate's numbers behind the promotion
    # the approver in their words, and the system account that wrote it, as `registry --history` shows them
    history = next(frame.value for frame in at.dataframe if "by" in frame.value.columns)
    assert "when (UTC)" in history.columns and history["by"].str.contains(r"^ada \(run by .+\)$").all()


def test_cost_page_defaults_to_the_hosted_arm_with_nothing_assumed(hosted_app):
    at = _open(hosted_app, "cost")
    assert at.selectbox(key="cost-baseline").value == "ask/1"
    everything = _everything(at)
    assert "measured in trial ask/1" in everything and "assumed, not measured" not in everything
    assert not E_NOTATION.search(everything)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    return build_demo_db(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(autouse=True)
def _no_password(monkeypatch):
    """A password set in the developer's shell would put every page behind the sign-in form."""
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)


@pytest.fixture
def app(demo_db, monkeypatch) -> AppTest:
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(demo_db))
    return AppTest.from_file(str(APP), default_timeout=30)


def _text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def _everything(at: AppTest) -> str:
    """All text of the page: elements, metric values and every dataframe cell."""
    cells = [str(v) for frame in at.dataframe for v in frame.value.astype(str).to_numpy().ravel()]
    metrics = [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join([_text(at), *metrics, *cells])


def _chart_data(chart) -> pd.DataFrame:
    """The data a chart draws (Streamlit ships it beside the spec as Arrow)."""
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_pandas()


def _chart_spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def _open(at: AppTest, page: str) -> AppTest:
    at.run()
    if page != "leaderboard":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_page_says_first_which_trials_evidence_was_edited(demo_db, tmp_path, monkeypatch):
    edited = tmp_path / "edited.duckdb"
    shutil.copy(demo_db, edited)
    with duckdb.connect(str(edited)) as conn:  # a score set by hand, as a skeptic did
        conn.execute("UPDATE examples SET output = 'edited' WHERE trial_id = 'demo/1'")
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(edited))
    for page in ("leaderboard", "cost"):
        at = _open(AppTest.from_file(str(APP), default_timeout=30), page)
        assert [e.value for e in at.error if "Edited evidence" in e.value] == [
            f"**Edited evidence:** {markdown_literal(text)}" for text in seal_warnings(Store(edited).seals())]
        assert "demo/1" in at.error[0].value


def test_leaderboard_answers_the_questions(app):
    at = _open(app, "leaderboard")
    assert not [e for e in at.error if "Edited evidence" in e.value]  # no seal broken
    text = _text(at)
    assert "Did fine-tuning beat prompting?" in text and "YES - fine-tuning beat local prompting" in text
    assert at.success and "YES" in at.success[0].value  # the verdict box is green only when it is ready
    assert "Best adapter within the constraints" in text and "demo/2" in text  # demo/4 scores higher but is infeasible
    assert "What the sweep cost" in text
    frame = at.dataframe[0].value
    assert list(frame["rank"]) == [1, 2, 3, 4, 5, 6]
    assert {"DEV task_accuracy", "TEST task_accuracy", "TEST format_compliance", "TEST hallucination_rate",
            "TEST regression_delta"} <= set(frame.columns)
    assert "[" in frame["TEST task_accuracy"].iloc[0]  # value with its 95% interval
    assert len(at.get("vega_lite_chart")) == 3  # Pareto plot, optimisation history, parameter importance of lora
    assert [b.proto.label for b in at.get("download_button")] == ["Download the decision report (Markdown)",
                                                                   "Download it as a PDF"]


def test_leaderboard_regression_is_never_a_zero_for_unmeasured_trials(app):
    frame = _open(app, "leaderboard").dataframe[0].value
    regression = dict(zip(frame["trial"].str.removeprefix("trial?trial="), frame["TEST regression_delta"]))
    assert {regression[t] for t in ("demo/0", "demo/1", "demo/5")} == {"not trained"}
    assert regression["demo/3"] == "not measured"  # trained, forgetting check off
    assert regression["demo/2"].startswith("+1.0 points, 95% CI [")  # measured: signed points, with its interval
    assert not any("+0.0" in cell for cell in frame["TEST regression_delta"].tolist() + frame["DEV regression_delta"]
                   .tolist())


def test_leaderboard_importance_comes_from_the_store(app):
    at = _open(app, "leaderboard")
    text = _text(at)
    assert "Parameter importance, lora:" in text
    assert "prompt: no parameter importance (3 completed trial(s), 1 varying parameter(s)" in text
    drawn = _chart_data(at.get("vega_lite_chart")[2])
    assert dict(zip(drawn["parameter"], drawn["importance"])) == IMPORTANCE["lora"]  # the stored shares


def test_leaderboard_method_filter_changes_the_table(app):
    at = _open(app, "leaderboard")
    assert len(at.dataframe[0].value) == 6
    at.pills[0].set_value(["lora"]).run()
    frame = at.dataframe[0].value
    assert len(frame) == 3 and set(frame["method"]) == {"lora"}
    assert "Showing 3 of 6 trials" in _text(at)


def test_sidebar_lists_sweeps_before_followups(app):
    at = _open(app, "leaderboard")
    study = at.sidebar.selectbox[0]
    assert study.options == ["demo", "intent", "demo+curve (learning curve of demo)"]
    assert study.value == "demo"


def test_followup_study_has_no_search_history(app):
    at = _open(app, "leaderboard")
    at.sidebar.selectbox[0].set_value("demo+curve").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 3
    text = _text(at)
    assert "demo+curve is a follow-up of demo (learning curve)" in text and "no optimisation history" in text
    # a learning curve has no prompting trial: the page gives its sweep's answer and says so, not "No verdict yet"
    assert "is a follow-up of the sweep **demo**" in at.info[0].value and "answered on demo" in at.info[0].value
    assert "YES - fine-tuning beat local prompting" in text and "No verdict yet" not in text
    assert "Best adapter within the constraints** (ranked on dev): [demo/2]" in text  # the sweep's, not a retrain


def test_second_sweep_without_adapters(app):
    at = _open(app, "leaderboard")
    at.sidebar.selectbox[0].set_value("intent").run()
    assert not at.exception and len(at.dataframe[0].value) == 2
    text = _text(at)
    assert "no completed fine-tuned trial" in text and not at.success
    assert "prompt: no parameter importance (2 completed trial(s)" in text


def test_trial_detail_curves_labels_and_searchable_examples(app):
    app.query_params["trial"] = "demo/2"
    at = _open(app, "trial")
    assert at.selectbox(key="trial_id").value == "demo/2"
    assert at.metric[0].value == "83.0%" and "95% CI [73.0, 93.0] n=40" in _text(at)
    assert at.metric[3].value == "+1.0%"  # the regression delta, measured
    assert "40 steps on 320 examples (8 per step, 0.25 s a step)" in _text(at)
    assert "test: 40 examples in 10 s at batch 8" in _text(at)
    assert len(at.get("vega_lite_chart")) == 3  # loss curve, dev curve, confusion matrix
    per_label, examples = at.dataframe[1].value, at.dataframe[2].value
    assert set(per_label["label"]) == set(LABELS) and at.radio(key="label-split").value == "test"
    assert list(per_label.columns[:4]) == ["label", "f1", "f1_low", "f1_high"]  # each F1 beside its interval
    assert "macro-F1 70.0% n=40 over 3 labels" in _text(at)
    assert len(examples) == N and {"pass", "fail"} == set(examples["task_accuracy"])
    at.text_input(key="example-search").input("message 38").run()
    assert list(at.dataframe[2].value["example_id"]) == ["test:38"]
    at.text_input(key="example-search").input("").run()
    at.checkbox(key="only-failing").check().run()
    assert (at.dataframe[2].value["task_accuracy"] == "fail").all()


def test_trial_detail_of_a_prompting_trial_has_no_curve(app):
    app.query_params["trial"] = "demo/1"
    at = _open(app, "trial")
    assert "Not trained (prompting)" in _text(at)
    assert not at.get("vega_lite_chart")
    assert at.metric[3].value == "not trained"
    assert "+0.0" not in _everything(at)


def test_trial_detail_of_an_unchecked_adapter_says_not_measured(app):
    app.query_params["trial"] = "demo/3"
    at = _open(app, "trial")
    assert at.metric[3].value == "not measured"
    metrics = at.dataframe[0].value
    assert metrics.loc[metrics["metric"] == "regression_delta", "test"].item() == "not measured"
    assert "+0.0" not in _everything(at)


def test_compare_runs_the_paired_test(app, demo_db):
    at = _open(app, "compare")
    assert "dev" in _text(at) and Store(demo_db).looks(kind="compare") == []  # opening the page looks at no test
    at.radio(key="compare-split").set_value("test").run()
    text = _text(at)
    assert "demo/2 is better than demo/5 on task_accuracy, beyond noise" in text
    paired = at.dataframe[0].value
    assert paired.loc[paired["score"] == "task_accuracy (primary)", "test"].item() == "mcnemar-exact"
    # a compare on test is a look at test, recorded once however often the page reruns
    looks = Store(demo_db).looks(kind="compare")
    assert [(look.candidate, look.reference) for look in looks] == [("demo/2", "demo/5")]
    side = at.dataframe[-1].value
    regression = side[side["metric"] == "regression_delta"]
    assert set(regression["B"]) == {"not trained"} and "+0.0" not in " ".join(regression["A - B (points)"])
    at.run()
    assert len(Store(demo_db).looks(kind="compare")) == 1
    at.selectbox(key="compare-b").set_value("demo/2").run()
    assert "same trial" in _text(at)


def _months(shown: str) -> float:
    """The Cost page's time to payback (`6.4 months`, `3.5 days`, `5.2 hours`) in months."""
    value, unit = shown.replace(",", "").split()
    return float(value) / {"months": 1, "days": 30.44, "hours": 30.44 * 24}[unit]


def _with_data_preparation(at):
    """20 hours at $50 of data preparation: a one-time cost that takes months to repay at these volumes (the page
    starts at none, as the CLI counts it)."""
    at.number_input(key="keep-prep-h").set_value(20.0).run()
    return at.number_input(key="keep-prep-rate").set_value(50.0).run()


def test_cost_page_payback_reacts_to_volume(app):
    at = _with_data_preparation(_open(app, "cost"))
    text = _text(at)
    assert "pays back in" in text and "Break-even after" in text
    assert at.number_input(key="keep-price-devices|H100|usd_per_hour").value == 2.5  # the experiment's price
    months = _months(at.metric[0].value)
    at.number_input(key="keep-volume").set_value(400_000.0).run()
    assert _months(at.metric[0].value) < months / 3  # four times the volume: savings x4, payback well under a third
    assert len(at.get("vega_lite_chart")) == 3  # cumulative cost, tornado, learning curve
    assert "demo+curve" in _text(at)  # found as the follow-up of kind "curve", not by its name
    assert [b.proto.label for b in at.get("download_button")] == [
        "Download estimate (CSV)", "Download report for finance (HTML, printable)"]


def test_cost_page_keeps_the_idle_machine_caution_until_hosting_is_typed(app):
    """The page passed hosting = 0 as if typed, which turned off payback's caution that the serving machine is paid
    only while busy (a machine paid all month would never pay back), and showed the reason without the headline's
    caveats: a green "pays back in 2.1 hours" where `harness payback` said more."""
    at = _open(app, "cost")
    assert at.number_input(key="keep-hosting").value is None  # not given, as --hosting left out
    shown = _text(at)
    assert "paid only while busy" in shown and "no people cost in it" in shown
    at.number_input(key="keep-hosting").set_value(0.0).run()  # the user's 0: their statement of how it is paid
    assert "paid only while busy" not in _text(at)


def test_cost_page_charts_say_a_payback_of_hours_in_hours(app):
    """The payback was 2.1 hours; the cumulative chart marked "break-even: 0.0 months" (and each sensitivity bar read
    "0.0": its labels now print as the headline does, `duration`)."""
    import pandas as pd
    from harness_dashboards import charts

    frame = pd.DataFrame({"option": ["fine-tuned", "baseline"] * 2, "month": [0, 0, 12, 12], "usd": [1, 0, 2, 3],
                          "cost": ["$1", "$0", "$2", "$3"]})
    drawn = json.dumps(charts.cumulative(frame, 2.1 / (24 * 30.44)).to_dict())  # 2.1 hours, in months
    assert "break-even: 2.1 hours" in drawn and "0.0 months" not in drawn


def test_cost_page_dollars_are_never_in_e_notation(app):
    at = _open(app, "cost")
    at.selectbox(key="cost-baseline").set_value("api:gpt-4o-mini").run()  # fractions of a cent per query
    at.number_input(key="cost-api-accuracy").set_value(30.0).run()
    shown = _everything(at)
    assert "Per query: fine-tuned $0.000" in shown
    assert not E_NOTATION.search(shown), E_NOTATION.search(shown)


def test_cost_page_gives_no_payback_figure_for_a_candidate_that_fails_the_bar(app):
    at = _open(app, "cost")
    at.selectbox(key="cost-baseline").set_value("api:gpt-4o-mini").run()
    at.number_input(key="cost-api-accuracy").set_value(99.0).run()  # far above the adapter: it fails the bar
    assert at.metric[0].value == "no figure: fails the bar" and "fails" in at.metric[0].proto.help


def test_cost_page_marks_a_break_even_beyond_the_horizon(app):
    at = _with_data_preparation(_open(app, "cost"))
    at.number_input(key="keep-volume").set_value(1_000.0).run()
    months = _months(at.metric[0].value)
    assert months > 12 * 1.25
    spec = _chart_spec(at.get("vega_lite_chart")[0])
    assert spec["title"]["text"] == f"break-even at month {months:,.1f}, beyond the chart \u2192"
    assert spec["title"]["anchor"] == "end"  # at the right edge
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 12]  # the chart ends at the horizon, the CLI's 12 months


def test_cost_page_of_a_followup_prices_its_sweep(app):
    at = _open(app, "leaderboard")
    at.sidebar.selectbox[0].set_value("demo+curve").run()
    at.switch_page("views/cost.py").run()
    assert not at.exception
    assert at.title[0].value == "Cost & payback: demo" and "pays back in" in _text(at)


def test_cost_page_says_when_hours_without_a_rate_count_for_nothing(app):
    """The CLI refuses --eng-hours without --eng-rate; the page took 40 hours at $0 without a word."""
    at = _open(app, "cost")
    # no people cost yet: a break-even under a month reads as the metric above reads it, not "0.0 months"
    assert any(c.value.startswith("Break-even after ") and " hours (" in c.value for c in at.caption), \
        [c.value for c in at.caption]
    at.number_input(key="keep-eng-h").set_value(40.0).run()
    said = [w.value for w in at.warning]
    assert "40 engineering hours at $0 an hour add nothing to the one-time cost: enter their rate." in said
    at.number_input(key="keep-eng-rate").set_value(120.0).run()
    assert not any("add nothing" in w.value for w in at.warning)


def test_cost_page_edited_price_is_user_input_and_kept_across_pages(app):
    at = _open(app, "cost")
    at.number_input(key="keep-price-devices|H100|usd_per_hour").set_value(6.0).run()
    frame = at.dataframe[0].value
    row = frame[frame["assumption"] == "candidate.price.H100"]
    assert row["value"].item() == "$6.00" and row["source"].item() == "user input"
    at.switch_page("views/leaderboard.py").run()
    assert "the Cost page's price changes" in _text(at)
    at.switch_page("views/cost.py").run()
    assert at.number_input(key="keep-price-devices|H100|usd_per_hour").value == 6.0


def test_cost_page_hosted_baseline_without_accuracy_asks_for_it(app):
    at = _open(app, "cost")
    at.selectbox(key="cost-baseline").set_value("api:gpt-4o-mini").run()
    assert not at.error and "Enter gpt-4o-mini's test accuracy above" in at.info[0].value  # asked, not "worse"
    at.number_input(key="cost-api-accuracy").set_value(60.0).run()
    assert "assumed, not measured" in at.dataframe[0].value["source"].tolist()


def test_exports_carry_every_assumption(demo_db):
    from harness_dashboards import costing, export

    from harness.analysis.formatting import duration
    from harness.analysis.payback import payback_from_store

    result = payback_from_store(Store(demo_db), "demo/2", "demo/5", 100_000, data_prep_hours=20,
                                data_prep_usd_per_hour=50)
    frame = costing.cumulative(result, 12)
    csv_text = export.estimate_csv(result, frame)
    assert csv_text.startswith("section,name,value,unit,source")
    assert "assumption,volume,100000" in csv_text and "tornado," in csv_text
    page = export.estimate_html(result, frame, costing.learning_curve(Store(demo_db).trials("demo+curve")),
                                str(demo_db))
    assert "<svg" in page and "break-even" in page and "<script" not in page
    assert all(name in page for name in result.assumptions)
    assert "$" in page and not E_NOTATION.search(page)
    assert f"<td>Time to payback</td><td>{duration(result.months_to_payback)}</td>" in page  # days, not "0.0 months"
    assert all(f"<td>{duration(bar.months_at_low)}</td>" in page for bar in result.sensitivity.tornado)


def test_export_names_a_break_even_beyond_the_chart(demo_db):
    from harness_dashboards import costing, export

    from harness.analysis.payback import payback_from_store

    result = payback_from_store(Store(demo_db), "demo/2", "demo/5", 1_000, data_prep_hours=20,
                                data_prep_usd_per_hour=50)
    assert result.months_to_payback > 12
    page = export.estimate_html(result, costing.cumulative(result, 12), costing.learning_curve([]), str(demo_db))
    assert f"break-even at month {result.months_to_payback:,.1f}, beyond the chart" in page


def test_empty_database_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(tmp_path / "none.duckdb"))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert "No trials in" in at.info[0].value and not (tmp_path / "none.duckdb").exists()


def test_pareto_front_keeps_only_undominated_trials():
    frame = pd.DataFrame({"cost": [1.0, 2.0, 3.0, 2.0, 1.5], "accuracy": [50.0, 70.0, 60.0, 70.0, 99.0],
                          "feasible": [True, True, True, True, False]})
    assert data.pareto_mask(frame) == [True, True, False, True, False]  # the infeasible best never wins


def test_history_tracks_the_best_feasible_in_the_study_direction(tmp_path):
    """A study that minimises: the best-so-far line goes down, and skips the infeasible trial."""
    store = Store(tmp_path / "h.duckdb")
    store.record_study(_study("low", maximize=False, objective="hallucination_rate"))
    for number, value, feasible in ((0, 0.30, True), (1, 0.10, False), (2, 0.20, True), (3, 0.25, True)):
        store.record_trial_result(_record("low", number, "lora", {"r": 8}, value, feasible=feasible))
    frame = data.history_frame(store.trials("low"))
    assert list(frame["trial"]) == [0, 1, 2, 3]
    assert [round(v) for v in frame["best feasible so far"]] == [30, 30, 20, 20]


def test_importance_notes_count_trials_and_varying_parameters(demo_db):
    rows = Store(demo_db).trials("demo")
    assert data.varying_parameters([t for t in rows if t.method == "lora"]) == ["learning_rate", "r"]
    assert data.importance_notes(rows, IMPORTANCE) == [
        "prompt: no parameter importance (3 completed trial(s), 1 varying parameter(s); it needs at least 3 trials "
        "and 2 parameters that vary)."]
    notes = data.importance_notes(rows, {})
    assert any(note.startswith("lora: no parameter importance (the sweep stored none") for note in notes)


def test_launcher_binds_to_localhost_headless_without_telemetry(tmp_path):
    from harness import dashboard

    cmd = dashboard.command(8600)
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]) == APP
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8600"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert dashboard.environment(tmp_path / "x.duckdb")[DASHBOARD_DB_ENV] == str((tmp_path / "x.duckdb").resolve())
    # on every interface, the address users point their browsers at is named: Streamlit otherwise asked
    # checkip.amazonaws.com for this machine's outside address
    wide = dashboard.command(8600, "0.0.0.0")
    assert dict(zip(wide[5::2], wide[6::2]))["--browser.serverAddress"] == socket.gethostname()


PASSWORD = "correct horse battery staple"


def test_with_a_password_set_every_page_waits_behind_the_form(app, monkeypatch):
    monkeypatch.setenv(auth.PASSWORD_ENV, PASSWORD)
    at = app.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Password"] and not at.dataframe and not at.sidebar.selectbox
    assert "Leaderboard" not in _everything(at) and str(data.db_path()) not in _everything(at)
    at.text_input[0].input("correct horse")  # a form sends its fields with the click
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password." and not at.dataframe and auth.SIGNED_IN not in at.session_state
    at.text_input[0].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception and not at.text_input
    assert "Did fine-tuning beat prompting?" in _text(at) and at.dataframe
    at.query_params["trial"] = "demo/2"
    at.switch_page("views/trial.py").run()  # signed in for the session: other pages open without asking again
    assert not at.exception and "Password" not in [t.label for t in at.text_input]
    assert at.selectbox(key="trial_id").value == "demo/2"


def test_without_a_password_the_dashboard_opens_directly(app):
    at = _open(app, "leaderboard")
    assert not at.text_input and at.dataframe


class _NoServer:
    def __init__(self, *args, **kwargs):
        raise AssertionError("a server was started")


def test_launcher_refuses_an_open_address_without_a_password(tmp_path, monkeypatch, capsys):
    from harness import dashboard

    db = tmp_path / "x.duckdb"
    db.touch()
    monkeypatch.setattr(dashboard.subprocess, "Popen", _NoServer)
    for address in ("0.0.0.0", "192.168.1.20", "::", "dashboard.example.com"):
        with pytest.raises(HarnessError) as refused:
            dashboard.launch(db, 8600, address)
        text = str(refused.value)
        assert f"--address {address} is reachable from other machines" in text
        assert f"export {auth.PASSWORD_ENV}" in text and "--behind-proxy" in text and "reverse proxy" in text
    assert capsys.readouterr().out == ""
    monkeypatch.setenv(auth.PASSWORD_ENV, "")  # empty is unset
    with pytest.raises(HarnessError):
        dashboard.launch(db, 8600, "0.0.0.0")


class _FakeServer:
    started: list[tuple[list[str], dict]] = []

    def __init__(self, cmd, env):
        self.started.append((cmd, env))

    def wait(self, timeout=None):
        return 0

    def poll(self):
        return 0


@pytest.mark.parametrize("address, behind_proxy, password, says", [
    ("0.0.0.0", False, PASSWORD, f"password required (${auth.PASSWORD_ENV}); plain HTTP"),
    ("0.0.0.0", True, None, "NO PASSWORD (--behind-proxy): the reverse proxy in front must authenticate"),
    ("127.0.0.1", False, None, "this machine only, no password"),
    ("localhost", False, PASSWORD, f"password required (${auth.PASSWORD_ENV}) (Ctrl-C"),
    ("::1", False, None, "this machine only"),
])
def test_launcher_says_who_may_open_it(tmp_path, monkeypatch, capsys, address, behind_proxy, password, says):
    from harness import dashboard

    db = tmp_path / "x.duckdb"
    db.touch()
    if password is not None:
        monkeypatch.setenv(auth.PASSWORD_ENV, password)
    monkeypatch.setattr(dashboard.subprocess, "Popen", _FakeServer)
    _FakeServer.started.clear()
    assert dashboard.launch(db, 8600, address, behind_proxy=behind_proxy) == 0
    out = capsys.readouterr().out
    assert says in out and PASSWORD not in out  # the password is never printed
    [(cmd, env)] = _FakeServer.started
    assert cmd[cmd.index("--server.address") + 1] == address and PASSWORD not in " ".join(cmd)  # nor an argument
    assert env.get(auth.PASSWORD_ENV) == password  # the app reads it from its environment


def test_text_from_users_shows_as_written_never_as_markdown(tmp_path, monkeypatch):
    """An approver or a failure reason is the user's or the data's text: markdown in it drew an outside image on the
    Registry page, fetched by every browser that opened it, and a link of the approver's choosing."""
    from markdown_it import MarkdownIt

    db = build_hosted_db(tmp_path)
    planted = "![x](http://127.0.0.1:9/pixel.png) [sign in again](http://127.0.0.1:9/login) :red[**alert**] $x$"
    gate = {"passed": False, "rules": [{"name": "task accuracy", "passed": False, "detail": planted}]}
    Store(db).record_adapter_events([AdapterEvent("ask/2", "ticket-triage", "production", "production", "promote",
                                                  planted, "again", forced=True, gate=gate)])
    failed = dataclasses.replace(_record("ask", 4, "lora", {"r": 8}, 0.0, run_id="run-ask"), status="failed",
                                 failure_reason=planted)
    Store(db).record_trial_result(failed)
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(db))
    app = AppTest.from_file(str(APP), default_timeout=30)
    shown = [_text(_open(app, "registry"))]
    app.query_params["trial"] = "ask/4"
    shown.append(_text(_open(app, "trial")))
    for text in shown:
        rendered = MarkdownIt("commonmark").render(text)
        assert "![x](http" in rendered and "<img" not in rendered and "127.0.0.1:9/login\"" not in rendered
        assert ":red[**alert**] $x$" in rendered and "<strong>alert" not in rendered
