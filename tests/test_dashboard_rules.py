"""The dashboard's Trial page says when a trial's intervals come from older rules than this release's, and marks
them in its metrics table; a trial scored by this release's rules gets neither."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
from harness_dashboards import auth  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402
from test_report_rules import write_rules_db  # noqa: E402

from harness.analysis.formatting import OLDER_RULES_CAPTION, OLDER_RULES_MARK  # noqa: E402
from harness.core.paths import DASHBOARD_DB_ENV  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"


@pytest.fixture(scope="module")
def rules_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "harness.duckdb"
    write_rules_db(path)
    return path


@pytest.fixture
def trial_page(rules_db, monkeypatch):
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(rules_db))

    def open_trial(trial: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=30)
        at.query_params["trial"] = trial
        at.run()
        at.switch_page("views/trial.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.selectbox(key="trial_id").value == trial
        return at

    return open_trial


def test_an_old_trials_page_says_which_rules_and_marks_their_intervals(trial_page):
    at = trial_page("s/1")
    notes = [i.value for i in at.info if "older rules" in i.value]
    assert len(notes) == 1 and notes[0].startswith(f"{OLDER_RULES_MARK} Intervals scored before rule versions")
    assert "McNemar" in notes[0] and "--study NEW_NAME" in notes[0]
    metrics = at.dataframe[0].value.set_index("metric")
    assert metrics.loc["rouge_l", "test"] == f"0.410 [0.350, 0.470]{OLDER_RULES_MARK} n=40"  # a score, not a rate
    assert metrics.loc["regression_delta", "test"] == f"-1.5 points, 95% CI [-9.5, +5.8]{OLDER_RULES_MARK} n=200"
    assert metrics.loc["task_accuracy", "test"] == "60.0% [50.0, 70.0] n=40"  # Wilson under every version


def test_a_current_trials_page_says_nothing_about_rules(trial_page):
    at = trial_page("s/0")
    assert not [i.value for i in at.info if "older rules" in i.value]
    assert not any(OLDER_RULES_MARK in str(cell) for cell in at.dataframe[0].value.to_numpy().ravel())


def test_the_leaderboard_marks_an_old_trials_intervals_and_says_what_the_mark_means(rules_db, monkeypatch):
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(rules_db))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    board = at.dataframe[0].value.set_index("trial")
    old, new = (next(i for i in board.index if i.endswith(t)) for t in ("s/1", "s/0"))
    assert board.loc[old, "TEST regression_delta"].endswith(f"]{OLDER_RULES_MARK} n=200")
    assert OLDER_RULES_MARK not in board.loc[old, "TEST task_accuracy"]  # Wilson under every version
    assert not any(OLDER_RULES_MARK in str(cell) for cell in board.loc[new])
    assert OLDER_RULES_CAPTION in [c.value for c in at.caption]
