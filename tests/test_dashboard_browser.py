"""The dashboard end to end in a real headless Chromium: the server users get, the pages they see.

A `streamlit run` server (the launcher's own command line) is started on a free port of 127.0.0.1 against the
demo database of test_dashboard.py, waited for with a bounded loop and always killed. Selenium drives Debian's
chromium through /usr/bin/chromedriver; Selenium Manager is kept offline so nothing is downloaded. Screenshots
go to results/test-artifacts/dashboard/ (or $DASHBOARD_ARTIFACTS), and each test prints where.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(f"browser tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
                "install them with `apt-get install chromium chromium-driver` (.ci/run does)", allow_module_level=True)
pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium: pip install -e '.[test]'")
from harness_dashboards.auth import PASSWORD_ENV  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_dashboard import E_NOTATION, build_demo_db  # noqa: E402

from harness import dashboard  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("DASHBOARD_ARTIFACTS") or REPO / "results" / "test-artifacts" / "dashboard")
START_S, WAIT_S = 45, 25
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,2000")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(root: Path, **env: str):
    """The dashboard server on 127.0.0.1:<free port> (with `env` added to its environment); its log is shown if it
    does not come up."""
    db, port, log = build_demo_db(root), _free_port(), root / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(dashboard.command(port), env={**dashboard.environment(db), **env}, stdout=out,
                                stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not start within {START_S} s (exit {proc.poll()}):\n{log.read_text()}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with _serve(tmp_path_factory.mktemp("dashboard-e2e"), **{PASSWORD_ENV: ""}) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download a driver or a browser
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(WAIT_S)
        try:
            yield driver
        finally:
            driver.quit()


def _wait_text(driver, text: str, timeout: float = WAIT_S, reads: re.Pattern | None = None) -> str:
    """Wait until the page shows `text` (Streamlit renders after load, over a websocket), and matches `reads` when
    given; returns the page text."""
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.25).until(
            lambda d: text in (body := d.find_element(By.TAG_NAME, "body").text)
            and (reads is None or reads.search(body)))
    except TimeoutException:
        _shot(driver, "timeout")
        raise AssertionError(f"{text!r} did not appear in {timeout} s; page text:\n"
                             f"{driver.find_element(By.TAG_NAME, 'body').text[:3000]}") from None
    return driver.find_element(By.TAG_NAME, "body").text


def _settle(driver, timeout: float = WAIT_S) -> None:
    """Wait until the script run is over and every element is drawn (no status widget, no loading skeleton)."""
    WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: not d.find_elements(
        By.CSS_SELECTOR, '[data-testid="stStatusWidget"], [data-testid="stSkeleton"]'))


def _column(driver, column: int, expect: list[str], timeout: float = WAIT_S) -> list[str]:
    """Wait for one column of the page's first table to read `expect` (glide-data-grid draws on a canvas and
    keeps an accessible copy of the cells, filled shortly after the grid appears); returns what it read."""
    script = ("const t = document.querySelector('[data-testid=\"stDataFrame\"]'); return t ? Array.from("
              f"t.querySelectorAll('[data-testid^=\"glide-cell-{column}-\"]')).map(c => c.textContent) : [];")
    seen: list[str] = []

    def read(d) -> bool:
        seen[:] = d.execute_script(script)
        return seen == expect

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.25).until(read)
    except TimeoutException:
        pass
    return seen


def _shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


@pytest.mark.parametrize("path, expect", [
    ("", "Did fine-tuning beat prompting?"),  # the default page, the leaderboard
    ("trial?trial=demo/2", "40 steps on 320 examples"),
    ("compare", "beyond noise"),
    ("cost", "Break-even after"),
])
def test_page_loads(server, browser, path, expect):
    browser.get(f"{server}/{path}")
    _wait_text(browser, expect)
    _settle(browser)
    problems = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"], [data-testid="stDialog"]')
    assert not problems, [p.text for p in problems]
    _shot(browser, path.split("?")[0] or "leaderboard")


def test_method_filter_changes_the_table(server, browser):
    browser.get(server)
    _wait_text(browser, "Showing 6 of 6 trials")
    _settle(browser)
    method = 2  # the column of the leaderboard table
    every = ["lora", "lora", "prompt", "prompt", "lora", "prompt"]  # in rank order
    assert _column(browser, method, every) == every
    pill = browser.find_element(By.XPATH, "//*[@data-testid='stButtonGroup']//button[normalize-space(.)='prompt']")
    pill.click()
    _wait_text(browser, "Showing 3 of 6 trials")
    _settle(browser)
    assert _column(browser, method, ["lora"] * 3) == ["lora"] * 3
    _shot(browser, "leaderboard-lora-only")


def _type(browser, label: str, value: str) -> None:
    box = browser.find_element(By.CSS_SELECTOR, f"input[aria-label='{label}']")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value, Keys.ENTER)


def test_payback_chart_reacts_to_volume(server, browser):
    browser.get(f"{server}/cost")
    _wait_text(browser, "Break-even after")
    # 20 hours at $50 of data preparation (the page starts at none, as the CLI counts it): a payback of months
    _type(browser, "Data preparation (hours)", "20")
    _settle(browser)
    _type(browser, "Data preparation rate (USD/hour)", "50")
    _wait_text(browser, "$1,000")
    # the metrics redraw before the break-even line under them: wait for the line itself to read in months (it read
    # the old "2.1 hours" on a loaded machine)
    before = _months(_wait_text(browser, "Break-even after", reads=re.compile(r"Break-even after [\d.,]+ months")))
    chart = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')[0]
    _settle(browser)
    png_before = chart.screenshot_as_png
    _type(browser, "Queries per month", "400000")
    _wait_text(browser, "at 400,000 queries/month")
    _settle(browser)
    after = _months(browser.find_element(By.TAG_NAME, "body").text)
    assert after < before / 3, (before, after)
    chart = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')[0]
    assert chart.screenshot_as_png != png_before  # the cumulative chart was redrawn for the new volume
    _shot(browser, "cost-volume-400000")


def test_sidebar_lists_sweeps_before_followups(server, browser):
    browser.get(server)
    _wait_text(browser, "Showing 6 of 6 trials")
    _settle(browser)
    browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"]').click()
    options = WebDriverWait(browser, WAIT_S, poll_frequency=0.25).until(
        lambda d: [o.text for o in d.find_elements(By.CSS_SELECTOR, '[role="listbox"] [role="option"]')] or None)
    assert options == ["demo", "intent", "demo+curve (learning curve of demo)"]
    _shot(browser, "sidebar-studies")
    browser.find_element(By.XPATH, "//*[@role='option'][normalize-space(.)='demo+curve (learning curve of demo)']"
                         ).click()
    text = _wait_text(browser, "is a follow-up of demo (learning curve)")
    assert "Showing 3 of 3 trials" in text


def test_leaderboard_draws_importance_from_the_store(server, browser):
    browser.get(server)
    text = _wait_text(browser, "Parameter importance, lora:")
    _settle(browser)
    assert "prompt: no parameter importance (3 completed trial(s), 1 varying parameter(s)" in text
    assert len(browser.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')) == 3
    _shot(browser, "leaderboard-importance")


@pytest.mark.parametrize("trial, regression", [("demo/1", "not trained"), ("demo/3", "not measured"),
                                               ("demo/2", "+1.0%")])
def test_regression_is_not_a_zero_when_not_measured(server, browser, trial, regression):
    browser.get(f"{server}/trial?trial={trial}")
    text = _wait_text(browser, "TEST regression_delta")
    _settle(browser)
    text = browser.find_element(By.TAG_NAME, "body").text
    shown = text.split("TEST regression_delta", 1)[1].strip().splitlines()[0]
    assert shown == regression and "+0.0" not in text


def test_cost_page_dollars_are_never_in_e_notation(server, browser):
    browser.get(f"{server}/cost")
    _wait_text(browser, "Break-even after")
    _settle(browser)
    browser.find_element(By.XPATH, "//*[normalize-space(.)='Every assumption, its unit and its source']").click()
    _settle(browser)
    text = browser.find_element(By.TAG_NAME, "body").text
    assert re.search(r"Per query: fine-tuned \$0\.\d+, baseline \$0\.\d+", text)
    assert not E_NOTATION.search(text), E_NOTATION.search(text)
    _shot(browser, "cost-assumptions")


def _months(text: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith("Break-even after"))
    return float(line.split("Break-even after ")[1].split(" months")[0])


def test_a_password_guards_every_page_and_a_deep_link_opens_after_signing_in(tmp_path, browser):
    """The real sign-in: a visitor sees only the form, even on a deep link; the right password opens that page."""
    with _serve(tmp_path, **{PASSWORD_ENV: "correct horse battery staple"}) as url:
        browser.get(f"{url}/trial?trial=demo/2")
        _wait_text(browser, "Password")
        _settle(browser)
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "demo" not in text and "Database" not in text and "Leaderboard" not in text
        box = browser.find_element(By.CSS_SELECTOR, "input[type='password']")
        box.send_keys("correct horse", Keys.ENTER)
        _wait_text(browser, "Wrong password.")
        _shot(browser, "password-wrong")
        box = browser.find_element(By.CSS_SELECTOR, "input[type='password']")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("correct horse battery staple", Keys.ENTER)
        _wait_text(browser, "40 steps on 320 examples")  # demo/2's detail page: the deep link survived
        assert not browser.find_elements(By.CSS_SELECTOR, "input[type='password']")
        _shot(browser, "password-signed-in")
