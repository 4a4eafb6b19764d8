"""The dashboard as a team lead and a finance partner meet it: a study with hundreds of labels, a study with only a
prompting arm, an under-trained candidate in the registry, a score no test could be run on.

Each page runs for real under Streamlit's AppTest on a database written through the Store's typed write API, as a
sweep writes it (the records come from test_dashboard.py's builders).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
from harness_dashboards import auth, labels  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402
from test_dashboard import APP, _everything, _open, _record, _run, _study  # noqa: E402

from harness.core.label_report import LabelReport, LabelRow  # noqa: E402
from harness.core.paths import DASHBOARD_DB_ENV  # noqa: E402
from harness.core.records import ExampleRow, TrainingSummary  # noqa: E402
from harness.store.database import Store  # noqa: E402

WIDE = [f"intent_{i:03d}" for i in range(236)] + ["café_commande", "東京_配送", "überweisung_fehlt", "naïve_query"]
TOP_PAIR = ("東京_配送", "café_commande", 7)
"""The one confusion seen 7 times; every other wrong pair is seen once or twice."""
LONELY = "x-prompt-only"
"""A study with one prompting trial on another suite, named to sort after `wide` so no default lands on it by
accident."""


def _wide_report() -> LabelReport:
    """A test label report over 240 labels: intent_i has i % 5 + 1 examples, one of them confused with intent_0;
    naïve_query has none at all (undefined F1: None)."""
    confusion: dict[str, dict[str, int]] = {}
    per_label = {}
    for i, name in enumerate(WIDE):
        support = 0 if name == "naïve_query" else i % 5 + 1
        row = {name: support - 1} if support else {}
        if support:
            row["intent_000" if name != "intent_000" else "intent_001"] = 1
        confusion[name] = row
        per_label[name] = LabelRow(precision=0.5, recall=0.25, f1=1 / 3, support=support, predicted=2, f1_low=0.0,
                                   f1_high=0.8)
    true, predicted, count = TOP_PAIR
    confusion[true] = {true: 1, predicted: count}
    per_label[true] = dataclasses.replace(per_label[true], support=count + 1)
    per_label["naïve_query"] = LabelRow(precision=None, recall=None, f1=None, support=0, predicted=0)
    n = sum(sum(row.values()) for row in confusion.values())
    return LabelReport(n=n, invalid=0, macro_f1=0.33, macro_labels=len(WIDE) - 1, labels=per_label,
                       confusion=confusion)


def _no_hallucination_score(rows: list[ExampleRow]) -> list[ExampleRow]:
    """Examples whose hallucination score does not apply (no compliant output scored it), as a scorer records."""
    return [dataclasses.replace(e, scores={**e.scores, "hallucination_rate": None}) for e in rows]


def build_new_user_db(root: Path) -> Path:
    """`wide`: a prompting arm and an under-trained LoRA that kept its weights, 240 labels; LONELY: one prompt."""
    db = root / "harness.duckdb"
    store = Store(db)
    store.record_study(_study("wide"))
    store.record_study(dataclasses.replace(_study(LONELY), suite="other-suite"))
    store.record_run(_run("run-wide", "wide"))
    store.record_run(_run("run-lonely", LONELY))
    report = _wide_report()
    prompt = _record("wide", 0, "prompt", {"shots": 0}, 0.40, run_id="run-wide",
                     label_reports={"dev": report, "test": report})
    lora = _record("wide", 1, "lora", {"r": 8}, 0.60, run_id="run-wide", train_s=50,
                   label_reports={"dev": report, "test": report})
    lora = dataclasses.replace(lora, artifact_path=root / "adapters" / "wide-1", training=TrainingSummary(
        steps=6, stopped_by="time budget", examples=320, examples_per_step=8, loss_curve=((2, 2.0), (6, 1.5)),
        planned_steps=40))
    for record in (prompt, lora):
        store.record_trial_result(dataclasses.replace(record, examples=_no_hallucination_score(record.examples)))
    store.record_trial_result(_record(LONELY, 0, "prompt", {"shots": 2}, 0.30, run_id="run-lonely"))
    return db


@pytest.fixture(scope="module")
def new_user_db(tmp_path_factory) -> Path:
    return build_new_user_db(tmp_path_factory.mktemp("dashboard-new-user"))


@pytest.fixture
def app(new_user_db, monkeypatch) -> AppTest:
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(new_user_db))
    return AppTest.from_file(str(APP), default_timeout=30)


def _frame_with(at: AppTest, column: str):
    return next(f.value for f in at.dataframe if column in f.value.columns)


def test_hundreds_of_labels_list_the_commonest_confusions_instead_of_an_unreadable_matrix(app):
    app.query_params["trial"] = "wide/1"
    at = _open(app, "trial")
    assert len(at.get("vega_lite_chart")) == 1  # the loss curve; no 240 x 240 matrix at 12 px a label
    pairs = _frame_with(at, "share %")
    true, predicted, count = TOP_PAIR
    top = pairs.iloc[0]
    assert (top["true"], top["predicted"], top["count"]) == (true, predicted, count)
    assert top["of true label's n"] == count + 1
    assert top["share %"] == pytest.approx(100 * count / (count + 1), abs=0.05)
    assert len(pairs) == labels.TOP_PAIRS and list(pairs["count"]) == sorted(pairs["count"], reverse=True)
    caption = next(c.value for c in at.caption if "Commonest confusions" in c.value)
    assert f"{len(WIDE)} labels are too many" in caption


def test_per_label_f1_is_in_percent_with_its_interval_commonest_first_none_where_undefined(app):
    app.query_params["trial"] = "wide/1"
    at = _open(app, "trial")
    per_label = _frame_with(at, "f1_low")
    assert list(per_label.columns[:4]) == ["label", "f1", "f1_low", "f1_high"]
    first = per_label.iloc[0]
    assert first["label"] == TOP_PAIR[0] and first["support"] == TOP_PAIR[2] + 1  # the commonest label leads
    assert (first["f1"], first["f1_low"], first["f1_high"], first["recall"]) == (33.3, 0.0, 80.0, 25.0)
    assert list(per_label["support"]) == sorted(per_label["support"], reverse=True)
    last = per_label.iloc[-1]
    assert last["label"] == "naïve_query" and last["support"] == 0 and last[["f1", "precision"]].isna().all()
    assert "Values in %" in _everything(at)


def test_a_prompting_only_study_opens_on_its_own_trial_and_compare_picks_no_other_suite(app):
    app.session_state["study"] = LONELY
    at = _open(app, "trial")
    assert at.selectbox(key="trial_id").value == f"{LONELY}/0"  # not wide/0, the database's first trial
    assert at.selectbox(key="trial_id").options[0] == f"{LONELY}/0"  # the selected study's trials lead the list
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert at.selectbox(key="compare-a").value == f"{LONELY}/0"
    text = _everything(at)
    assert f"Study {LONELY} has only one complete trial" in text and "different tasks" not in text
    assert not at.error


def test_compare_prints_no_p_value_for_a_score_no_test_could_run_on(app):
    app.session_state["study"] = "wide"
    at = _open(app, "compare")
    assert (at.selectbox(key="compare-a").value, at.selectbox(key="compare-b").value) == ("wide/1", "wide/0")
    paired = _frame_with(at, "Holm p").set_index("score")
    row = paired.loc["hallucination_rate"]
    assert row["test"] == "none" and row["p"] == "-" and row["pairs"] == 0
    assert paired.loc["task_accuracy (primary)", "p"] != "-"


def test_cost_page_shows_no_stray_source_text(app):
    app.session_state["study"] = "wide"
    at = _open(app, "cost")
    text = _everything(at)
    assert "Cost & payback: wide" in text and "starting figures" not in text


def test_registry_says_a_candidate_is_under_trained(app):
    at = _open(app, "registry")
    frame = _frame_with(at, "trial result").set_index("trial")
    assert frame.loc["wide/1", "status"] == "candidate"
    assert frame.loc["wide/1", "trial result"].startswith("under-trained (6 of 40 steps, 15%)")


def test_label_tables_from_a_report_written_before_intervals_and_an_empty_matrix():
    stored = {"n": 2, "invalid": 0, "macro_f1": 2 / 3, "macro_labels": 1, "confusion": {"a": {"a": 1}},  # no f1_low
              "labels": {"a": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1}}}
    frame = labels.per_label_frame(LabelReport.from_json(stored))
    assert list(frame.columns) == ["label", "f1", "precision", "recall", "support", "predicted"]
    assert frame.iloc[0]["f1"] == 66.7
    assert labels.confusion_pairs_frame({"a": {"a": 3}}).empty and labels.wrong_pairs({"a": {"a": 3}}) == (0, 0)



def test_cost_page_of_a_prompting_only_study_says_so_before_asking_for_any_figure(app):
    app.session_state["study"] = LONELY
    at = _open(app, "cost")
    assert f"No payback estimate for {LONELY}: it has no complete fine-tuned trial, only 1 complete" in _everything(at)
    assert len(at.number_input) == 0  # no volume, price or horizon to type for nothing


def test_trial_page_says_why_a_trial_has_no_scores_or_does_not_count(tmp_path, monkeypatch):
    db = build_new_user_db(tmp_path)  # its own database: a failed trial here would change the other tests' defaults
    store = Store(db)
    failed = dataclasses.replace(_record("wide", 2, "lora", {"r": 4}, 0.5, run_id="run-wide"), metrics=[],
                                 examples=[], throughput={}, training=None)
    store.record_trial_start(failed)
    store.mark_trial_failed("wide/2", "RuntimeError: CUDA out of memory")
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(db))
    app = AppTest.from_file(str(APP), default_timeout=30)
    app.query_params["trial"] = "wide/2"
    at = _open(app, "trial")
    assert [w.value for w in at.warning] == ["This trial failed: RuntimeError: CUDA out of memory. It has no scores; "
                                             "the verdict and the gate leave it out."]
    at.selectbox(key="trial_id").set_value("wide/1").run()
    assert at.warning[0].value.startswith("Under-trained (6 of 40 steps, 15%): its time cap")
    at.selectbox(key="trial_id").set_value("wide/0").run()
    assert not at.warning  # a complete, fully trained or prompting trial needs no notice
