"""A security reviewer's attacks on the safe defaults, on real files and a real app: YAML built to exhaust memory or
the stack, `export --out` through a symbolic link, and a dashboard exposed to the network with a guessable password
or to unlimited guessing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import ConfigError, HarnessError
from harness.core.yamlfile import MAX_DEPTH, MAX_YAML_BYTES, read_yaml

REPO = Path(__file__).resolve().parents[1]

BILLION_LAUGHS = "\n".join(
    ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
) + "\n"
"""Nine levels of nine aliases each: 9**9 (387 million) strings once expanded, from a file of 600 bytes."""


def _experiment(tmp_path: Path, tail: str) -> Path:
    """The bundled demo experiment with `tail` appended: everything else in it is valid."""
    path = tmp_path / "exp.yaml"
    path.write_text((REPO / "experiments/demo.yaml").read_text(encoding="utf-8") + tail, encoding="utf-8")
    return path


def _refused(path: Path) -> str:
    with pytest.raises(ConfigError) as refused:
        read_yaml(path, ConfigError)
    return str(refused.value)


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    message = _refused(path)
    assert message.startswith(f"{path}:") and "aliases expand to more than 1,000,000 values" in message
    assert "use fewer aliases" in message


def test_yaml_nested_too_deep_for_the_parser_is_an_error_naming_the_line_not_a_recursion_traceback(tmp_path, capsys):
    flow = _experiment(tmp_path, "enqueue: " + "[" * 3000 + "]" * 3000 + "\n")
    line = flow.read_text().count("\n")  # the appended last line
    assert main(["sweep", str(flow), "--dry-run"]) == 2
    said = "".join(capsys.readouterr())
    assert f"{flow}:{line}: nested more than {MAX_DEPTH} levels deep" in said
    assert "Traceback" not in said and "RecursionError" not in said


def test_depth_reached_through_aliases_counts(tmp_path):
    """Each anchor is shallow, but an alias of an alias nests one inside the other."""
    lines = ["a0: &a0 " + "[" * 40 + "]" * 40] + [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 4)]
    path = tmp_path / "deep.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert f"nested more than {MAX_DEPTH} levels deep" in _refused(path)


@pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a {b: *a}\n"])
def test_a_value_that_contains_itself_is_refused(tmp_path, text):
    """PyYAML builds such a structure without complaint; every reader after it (json.dumps, the config check)
    would recurse forever."""
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    assert "the alias *a is inside its own anchor &a" in _refused(path)


def test_ordinary_aliases_and_merge_keys_still_load(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1, y: [1, 2]}\nc:\n  <<: *b\n  y: 3\nd: *b\n")
    assert read_yaml(path, ConfigError) == {"base": {"x": 1, "y": [1, 2]}, "c": {"x": 1, "y": 3},
                                            "d": {"x": 1, "y": [1, 2]}}


def test_a_huge_yaml_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.truncate(MAX_YAML_BYTES + 1)  # sparse: nothing is written, the size is all that is checked
    message = _refused(path)
    assert f"{MAX_YAML_BYTES + 1:,} bytes is too large for a settings file" in message and "JSONL or CSV" in message


def test_a_python_object_tag_is_refused_with_the_fix(tmp_path):
    marker = tmp_path / "ran"
    path = _experiment(tmp_path, f'endpoints: !!python/object/apply:os.system ["touch {marker}"]\n')
    message = _refused(path)
    assert "never tags that build objects" in message and "delete the tag" in message
    assert not marker.exists()


def test_every_bundled_yaml_file_passes_the_shape_check():
    from harness.core.yamlfile import check_shape

    files = [p for p in REPO.glob("*/**/*.yaml") if ".venv" not in p.parts]
    assert len(files) >= 5
    for path in files:
        check_shape(path.read_text(encoding="utf-8"))


# --- export --out through a link ------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["an empty folder", "nothing"])
def test_export_refuses_an_out_that_is_a_symbolic_link_before_anything_loads(tmp_path, capsys, target):
    """An empty folder behind a link used to load the model, then fail with a NotADirectoryError traceback."""
    db = tmp_path / "harness.duckdb"
    elsewhere = tmp_path / "elsewhere"
    if target == "an empty folder":
        elsewhere.mkdir()
    link = tmp_path / "out"
    link.symlink_to(elsewhere)
    assert main(["export", "demo/1", "--out", str(link), "--db", str(db)]) == 2
    said = "".join(capsys.readouterr())
    assert f"--out {link} is a symbolic link (to {elsewhere})" in said and "Traceback" not in said
    assert link.is_symlink() and (not elsewhere.exists() or not any(elsewhere.iterdir()))
    assert not list(tmp_path.glob(".*export-tmp"))


# --- the dashboard's password -----------------------------------------------------------------------------------

streamlit = pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
from harness_dashboards import auth  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from harness import dashboard  # noqa: E402

STRONG = "correct horse battery staple"


@pytest.mark.parametrize("weak", ["x7Q", " " * 20, "Zq-pass-91"])
def test_an_exposed_dashboard_refuses_a_guessable_password(tmp_path, monkeypatch, capsys, weak):
    monkeypatch.setenv(auth.PASSWORD_ENV, weak)
    with pytest.raises(HarnessError) as refused:
        dashboard.access("0.0.0.0")
    message = str(refused.value)
    assert f"there it must have at least {auth.MIN_LENGTH}" in message and "secrets.token_urlsafe" in message
    assert weak.strip() == "" or weak not in message  # the password itself is never shown
    assert dashboard.access("127.0.0.1").startswith("password required")  # loopback: the user's own choice
    monkeypatch.setenv(auth.PASSWORD_ENV, STRONG)
    assert dashboard.access("0.0.0.0").startswith("password required")


@pytest.fixture
def fresh_failures():
    auth._failures.clear()
    yield
    auth._failures.clear()  # the count is process-wide: other tests' sign-ins must not find it spent


def _sign_in(at: AppTest, given: str) -> AppTest:
    at.text_input[0].input(given)
    at.button[0].click().run()
    return at


def test_wrong_passwords_are_limited_across_sessions_and_then_even_the_right_one_waits(tmp_path, monkeypatch,
                                                                                       fresh_failures):
    monkeypatch.setenv(auth.PASSWORD_ENV, STRONG)
    monkeypatch.setenv("HARNESS_DASHBOARD_DB", str(tmp_path / "never-read.duckdb"))
    app = REPO / "dashboards" / "app.py"
    for guess in range(auth.MAX_FAILURES):  # a new session per guess, as a script guessing would
        at = _sign_in(AppTest.from_file(str(app), default_timeout=30).run(), f"guess {guess}")
        assert at.error[0].value == "Wrong password."
    at = _sign_in(AppTest.from_file(str(app), default_timeout=30).run(), STRONG)
    assert "wrong passwords within 60 s; wait a minute" in at.error[0].value
    assert auth.SIGNED_IN not in at.session_state and [t.label for t in at.text_input] == ["Password"]
    assert not auth.locked_out(auth._failures()[-1] + auth.FAILURE_WINDOW_S)  # a minute later it is open again
    auth._failures.clear()
    at = _sign_in(AppTest.from_file(str(app), default_timeout=30).run(), STRONG)
    assert not at.error and at.session_state[auth.SIGNED_IN] is True



def test_a_new_results_folder_is_readable_by_its_owner_only(tmp_path):
    """It holds prompts, answers (often customer data) and the hosted spend; the umask would let everyone read."""
    import stat

    from harness.store.database import Store
    from harness.sweep.storage import open_storage

    Store(tmp_path / "results" / "harness.duckdb").record_importance("s", {})
    assert stat.S_IMODE((tmp_path / "results").stat().st_mode) == 0o700
    open_storage(f"journal:{tmp_path / 'other' / 'optuna-journal.log'}")
    assert stat.S_IMODE((tmp_path / "other").stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    Store(shared / "harness.duckdb").record_importance("s", {})
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # a folder that exists keeps its permissions


def test_a_sweep_into_a_results_folder_others_can_read_says_so(tmp_path, toy_suite, tiny_model_dir, capsys,
                                                               no_model_loads):
    """A `mkdir`-made folder at 755 kept every input and answer readable by every user, with no word."""
    from test_bad_input import experiment

    shared = tmp_path / "results"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)  # whatever the umask
    path = experiment(tmp_path, toy_suite, model=str(tiny_model_dir))
    assert main(["sweep", str(path), "--dry-run", "--workers", "0"]) == 2  # refused after the plan, before any load
    said = " ".join(capsys.readouterr().err.split())
    assert f"warning: results folder {shared} can be read by other users of this machine (mode 755)" in said
    assert f"`chmod -R go-rwx {shared}`" in said
    shared.chmod(0o700)
    assert main(["sweep", str(path), "--dry-run", "--workers", "0"]) == 2
    assert "can be read by other users" not in capsys.readouterr().err


def test_sweep_with_workers_makes_its_results_folder_owner_only_too(tmp_path, tiny_model_dir, toy_suite):
    """`sweep --workers 2` made the folder for its workers' logs first, with the umask's permissions (world-readable),
    before anything made it owner-only."""
    import stat

    from harness.store.database import Store
    from harness.sweep.plan import plan_sweep
    from harness.sweep.workers import run_local_workers

    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"name: toy\nmodel: {tiny_model_dir}\nsuite: {toy_suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nspace:\n  prompt: {shots: 0}\n")
    plan = plan_sweep(experiment, [])
    assert run_local_workers(plan, [], Store(tmp_path / "r" / "harness.duckdb"), 0, 0, lambda line: None) == []
    assert stat.S_IMODE((tmp_path / "r").stat().st_mode) == 0o700 and (tmp_path / "r" / "logs").is_dir()


def test_a_sweep_makes_its_results_folder_owner_only_before_its_first_cache(tmp_path, tiny_model_dir, toy_suite):
    """A new user's first sweep left results/ at 755 and harness.duckdb readable by all: the forgetting check's cache
    made results/cache (and with it results/) before the store made the folder owner-only."""
    import os
    import stat

    from harness.cli import main

    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"name: toy\nmodel: {tiny_model_dir}\nsuite: {toy_suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "data: {train_limit: 16, dev_limit: 2, test_limit: 2}\nregression: {limit: 2}\n"
                          "budget: {trials: 1, max_steps: 1}\nspace:\n  lora: {r: 8}\n")
    old = os.umask(0o022)
    try:
        assert main(["sweep", str(experiment)]) == 0
    finally:
        os.umask(old)
    assert list((tmp_path / "r" / "cache").glob("regression-base-*"))  # the cache that came first is there
    assert stat.S_IMODE((tmp_path / "r").stat().st_mode) == 0o700


def test_a_storage_password_on_the_command_line_is_warned_about_and_one_from_the_environment_is_not():
    """`ps` shows every command line to every user of the machine; $HARNESS_STORAGE keeps the password off it."""
    from harness.sweep.storage import EnvironmentStorage, password_warning

    said = password_warning("postgresql://ana:pgSECRET789@db.example:5432/studies")
    assert said is not None and "carries a password on the command line" in said and "pgSECRET789" not in said
    assert "HARNESS_STORAGE" in said
    assert password_warning("postgresql://ana@db.example:5432/studies?password=pgSECRET789") is not None
    assert password_warning(EnvironmentStorage("postgresql://ana:pgSECRET789@db.example:5432/studies")) is None
    assert password_warning("postgresql://ana@db.example:5432/studies") is None and password_warning(None) is None


def test_a_short_storage_password_is_masked_as_a_token_not_inside_every_word():
    """With postgresql://u:p@..., the driver's message read "(***syco***g.O***erationalError) ... ***ort 1
    failed": unreadable, and it told the password by where the stars were."""
    from harness.sweep.storage import _scrubbed

    message = "(psycopg.OperationalError) connection to port 1 failed: password=p user=u"
    said = _scrubbed(message, "postgresql://u:p@127.0.0.1:1/db")
    assert said == "(psycopg.OperationalError) connection to port 1 failed: password=*** user=u"
    assert _scrubbed("auth failed for s3cr3t!", "postgresql://u:s3cr3t!@h/db") == "auth failed for ***"
