"""The dashboard's pages, run headless with Streamlit's AppTest on a small demo database built here.

AppTest executes the real page scripts (no browser), so each page's logic is checked in about a second:
that it renders on the demo data, that the filters filter, and that nothing it shows is missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import optuna
import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
from harness_dashboards import data  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from harness.core.paths import DASHBOARD_DB_ENV  # noqa: E402
from harness.store.database import ExampleRow, MetricRow, Store, TrialRecord  # noqa: E402

APP = REPO / "dashboards" / "app.py"
LABELS = ("card_lost", "card_arrival", "refund")
N = 40
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def _metric_rows(split: str, acc: float, fmt: float, hall: float, n: int, regression: float | None) -> list:
    def ci(v: float) -> tuple[float, float]:
        return max(0.0, v - 0.1), min(1.0, v + 0.1)

    rows = [MetricRow(split, name, v, *ci(v), n) for name, v in
            (("task_accuracy", acc), ("format_compliance", fmt), ("hallucination_rate", hall))]
    if regression is None:  # prompting: weights unchanged, not measured
        rows.append(MetricRow(split, "regression_delta", 0.0, None, None, 0))
    else:
        rows.append(MetricRow(split, "regression_delta", regression, regression - 0.05, regression + 0.05, 100))
    return rows


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
            train_s: float = 0.0, eval_s: float = 30.0, details: dict | None = None) -> TrialRecord:
    trained = method != "prompt"
    return TrialRecord(
        id=f"{study}/{number}", study=study, number=number, run_id="run-demo", method=method,
        params={"method": method, **params}, status="complete", trained=trained,
        started_at=T0 + timedelta(minutes=5 * number), finished_at=T0 + timedelta(minutes=5 * number + 4),
        device="cuda", peak_memory_mb=900.0, train_seconds=train_s, eval_seconds=eval_s, objective=acc,
        feasible=feasible, details={
            "data": {"suite": "ticket-triage", "suite_version": "1.0.0", "sizes": {"train": 400, "dev": N, "test": N}},
            "evaluation": {s: {"examples": N, "seconds": eval_s / 2, "batch_size": 8, "prompt_tokens": N * 130,
                               "completion_tokens": 8 * N, "completion_tokens_per_s": 8 * N / (eval_s / 2)}
                           for s in ("dev", "test")},
            "training": None if not trained else {
                "steps": 40, "stopped_by": "max_steps", "examples": 320,
                "loss_curve": [[s, 2.5 / (1 + s / 10)] for s in range(5, 45, 5)],
                "dev_curve": [[20, acc - 0.1], [40, acc]]},
            **(details or {}),
        },
        metrics=_metric_rows("dev", acc, 1.0, 0.05, N, 0.01 if trained else None)
        + _metric_rows("test", acc - 0.02, 0.98, 0.06, N, 0.01 if trained else None),
        examples=_examples(acc),
    )


def build_demo_db(root: Path) -> Path:
    """A study `demo` (3 prompt, 3 lora trials), its `demo+curve` follow-up, a run, and an Optuna journal."""
    db = root / "harness.duckdb"
    store = Store(db)
    experiment = {"name": "demo", "prices": {"devices": {"H100": {"usd_per_hour": 2.5}}}}  # the file's overrides
    store.record_study("demo", "demo", experiment, "ticket-triage", "1.0.0", "smollm2-135m", "abc123")
    store.record_run("run-demo", "demo", 1, "host",
                     {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "cpu_count": 16})
    report = {"n": 12, "invalid": 1, "macro_f1": 0.7, "macro_labels": 3,
              "labels": {lab: {"precision": 0.8, "recall": 0.6, "f1": 0.69, "support": 4, "predicted": 3}
                         for lab in LABELS},
              "confusion": {"card_lost": {"card_lost": 3, "refund": 1}, "refund": {"refund": 4},
                            "card_arrival": {"card_arrival": 2, "(invalid)": 2}}}  # as harness.evaluation.labels.label_report
    labels = {"dev": {**report, "macro_f1": 0.75}, "test": report}
    trials = [
        _record("demo", 0, "prompt", {"shots": 0}, 0.25, feasible=False),
        _record("demo", 1, "prompt", {"shots": 3}, 0.40),
        _record("demo", 2, "lora", {"r": 16, "learning_rate": 1e-3}, 0.85, train_s=120, eval_s=20,
                details={"labels": labels}),
        _record("demo", 3, "lora", {"r": 8, "learning_rate": 5e-4}, 0.70, train_s=100, eval_s=20),
        _record("demo", 4, "lora", {"r": 8, "learning_rate": 2e-3}, 0.90, feasible=False, train_s=110, eval_s=20),
        _record("demo", 5, "prompt", {"shots": 5}, 0.42, eval_s=200),
    ]
    for size, acc in ((50, 0.5), (100, 0.65), (200, 0.8)):
        n = len([t for t in trials if t.study == "demo+curve"])
        trials.append(_record("demo+curve", n, "lora", {"r": 16, "learning_rate": 1e-3, "train_examples": size,
                                                          "source_trial": "demo/2"}, acc, train_s=size / 2))
    for t in trials:
        store.record_trial_result(t)
    _write_journal(root / data.JOURNAL, [t for t in trials if t.study == "demo"])
    return db


def _write_journal(path: Path, trials: list[TrialRecord]) -> None:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="demo", storage=storage, direction="maximize")
    method = optuna.distributions.CategoricalDistribution(["prompt", "lora"])
    for t in trials:
        params = {"method": t.method}
        dists = {"method": method}
        if t.method == "lora":
            params.update({"lora.r": t.params["r"], "lora.learning_rate": t.params["learning_rate"]})
            dists.update({"lora.r": optuna.distributions.CategoricalDistribution([8, 16]),
                          "lora.learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
        else:
            params["prompt.shots"] = t.params["shots"]
            dists["prompt.shots"] = optuna.distributions.CategoricalDistribution([0, 3, 5])
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=t.objective,
                                                  system_attrs={"constraints": [0.0 if t.feasible else 0.5]}))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    return build_demo_db(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture
def app(demo_db, monkeypatch) -> AppTest:
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(demo_db))
    return AppTest.from_file(str(APP), default_timeout=30)


def _text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def _open(at: AppTest, page: str) -> AppTest:
    at.run()
    if page != "leaderboard":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_leaderboard_answers_the_questions(app):
    at = _open(app, "leaderboard")
    text = _text(at)
    assert "Did fine-tuning beat prompting?" in text and "YES - fine-tuning beat prompting" in text
    assert "Best adapter within the constraints" in text and "demo/2" in text  # demo/4 scores higher but is infeasible
    assert "What the sweep cost" in text
    frame = at.dataframe[0].value
    assert list(frame["rank"]) == [1, 2, 3, 4, 5, 6]
    assert {"DEV task_accuracy", "TEST task_accuracy", "TEST format_compliance", "TEST hallucination_rate",
            "TEST regression_delta"} <= set(frame.columns)
    assert "[" in frame["TEST task_accuracy"].iloc[0]  # value with its 95% interval
    assert len(at.get("vega_lite_chart")) == 3  # Pareto plot, Optuna history, parameter importance of lora
    assert "Parameter importance, lora:" in text and "prompt: no parameter importance" in text


def test_leaderboard_method_filter_changes_the_table(app):
    at = _open(app, "leaderboard")
    assert len(at.dataframe[0].value) == 6
    at.pills[0].set_value(["lora"]).run()
    frame = at.dataframe[0].value
    assert len(frame) == 3 and set(frame["method"]) == {"lora"}
    assert "Showing 3 of 6 trials" in _text(at)


def test_leaderboard_study_filter_and_missing_journal_note(app):
    at = _open(app, "leaderboard")
    at.sidebar.selectbox[0].set_value("demo+curve").run()
    assert len(at.dataframe[0].value) == 3
    assert "is not in the Optuna journal" in _text(at)


def test_trial_detail_curves_labels_and_searchable_examples(app):
    app.query_params["trial"] = "demo/2"
    at = _open(app, "trial")
    assert at.selectbox(key="trial_id").value == "demo/2"
    assert at.metric[0].value == "83.0%" and "95% CI [73.0, 93.0] n=40" in _text(at)
    assert "40 steps on 320 examples" in _text(at)
    assert len(at.get("vega_lite_chart")) == 3  # loss curve, dev curve, confusion matrix
    per_label, examples = at.dataframe[1].value, at.dataframe[2].value
    assert set(per_label["label"]) == set(LABELS) and at.radio(key="label-split").value == "test"
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


def test_compare_runs_the_paired_test(app):
    at = _open(app, "compare")
    text = _text(at)
    assert "demo/2 is better than demo/5 on task accuracy, beyond noise" in text
    paired = at.dataframe[0].value
    assert paired.loc[paired["score"] == "task_accuracy", "test"].item() == "mcnemar-exact"
    at.selectbox(key="compare-b").set_value("demo/2").run()
    assert "same trial" in _text(at)


def test_cost_page_payback_reacts_to_volume(app):
    at = _open(app, "cost")
    text = _text(at)
    assert "pays back in" in text and "Break-even after" in text
    assert at.number_input(key="keep-price-devices|H100|usd_per_hour").value == 2.5  # the experiment's price
    months = float(at.metric[0].value)
    at.number_input(key="keep-volume").set_value(400_000.0).run()
    assert float(at.metric[0].value) < months / 3  # four times the volume: savings x4, payback well under a third
    assert len(at.get("vega_lite_chart")) == 3  # cumulative cost, tornado, learning curve
    assert [b.proto.label for b in at.get("download_button")] == [
        "Download estimate (CSV)", "Download report for finance (HTML, printable)"]


def test_cost_page_edited_price_is_user_input_and_kept_across_pages(app):
    at = _open(app, "cost")
    at.number_input(key="keep-price-devices|H100|usd_per_hour").set_value(6.0).run()
    frame = at.dataframe[0].value
    row = frame[frame["assumption"] == "candidate.price.H100"]
    assert row["value"].item() == "6.0" and row["source"].item() == "user input"
    at.switch_page("views/leaderboard.py").run()
    assert "the Cost page's price changes" in _text(at)
    at.switch_page("views/cost.py").run()
    assert at.number_input(key="keep-price-devices|H100|usd_per_hour").value == 6.0


def test_cost_page_hosted_baseline_without_accuracy_gives_no_payback(app):
    at = _open(app, "cost")
    at.selectbox(key="cost-baseline").set_value("api:gpt-4o-mini").run()
    assert "fails the quality bar" in at.warning[0].value  # unknown hosted accuracy: no payback claimed
    at.number_input(key="cost-api-accuracy").set_value(60.0).run()
    assert "assumed, not measured" in at.dataframe[0].value["source"].tolist()


def test_exports_carry_every_assumption(demo_db):
    from harness_dashboards import costing, export

    from harness.analysis.payback import payback_from_store

    result = payback_from_store(Store(demo_db), "demo/2", "demo/5", 100_000, data_prep_hours=20,
                                data_prep_usd_per_hour=50)
    frame = costing.cumulative(result, 12)
    csv_text = export.estimate_csv(result, frame)
    assert csv_text.startswith("section,name,value,unit,source")
    assert "assumption,volume,100000" in csv_text and "tornado," in csv_text
    page = export.estimate_html(result, frame, costing.learning_curve(Store(demo_db).list_trials("demo+curve")),
                                str(demo_db))
    assert "<svg" in page and "break-even" in page and "<script" not in page
    assert all(name in page for name in result.assumptions)


def test_empty_database_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(tmp_path / "none.duckdb"))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert "No trials in" in at.info[0].value and not (tmp_path / "none.duckdb").exists()


def test_pareto_front_keeps_only_undominated_trials():
    import pandas as pd

    frame = pd.DataFrame({"cost": [1.0, 2.0, 3.0, 2.0, 1.5], "accuracy": [50.0, 70.0, 60.0, 70.0, 99.0],
                          "feasible": [True, True, True, True, False]})
    assert data.pareto_mask(frame) == [True, True, False, True, False]  # the infeasible best never wins


def test_launcher_binds_to_localhost_headless_without_telemetry(tmp_path):
    from harness import dashboard

    cmd = dashboard.command(8600)
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]) == APP
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8600"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert dashboard.environment(tmp_path / "x.duckdb")[DASHBOARD_DB_ENV] == str((tmp_path / "x.duckdb").resolve())


def test_journal_notes_when_missing_or_too_small(tmp_path):
    from harness_dashboards import journal

    missing = tmp_path / "optuna-journal.log"
    assert "No Optuna journal" in journal.load(missing, "demo")["note"] and not missing.exists()  # never created
    _write_journal(missing, [_record("demo", 0, "prompt", {"shots": 0}, 0.2),
                             _record("demo", 1, "lora", {"r": 8, "learning_rate": 1e-3}, 0.5)])
    found = journal.load(missing, "demo")
    assert len(found["history"]) == 2 and not found["importance"]
    assert any("at least 3 completed trials" in note for note in found["notes"])
