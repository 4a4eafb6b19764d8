"""`harness init`: the scaffold it writes, that the experiment in it is valid, and that it never overwrites."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import printed

from harness.cli import main
from harness.core.config import load_experiment
from harness.core.errors import HarnessError
from harness.project import EXPERIMENT, init_project

SCAFFOLD = {Path("README.md"), Path(EXPERIMENT), Path("suites/README.md")}


def test_init_writes_the_scaffold_into_a_new_folder(tmp_path):
    root = tmp_path / "team-project"
    scaffold = init_project(root)
    assert set(scaffold.written) == SCAFFOLD
    assert {p.relative_to(root) for p in root.rglob("*") if p.is_file()} == SCAFFOLD
    assert scaffold.next_command == f"cd {root} && harness sweep {EXPERIMENT} --dry-run"
    readme = (root / "README.md").read_text()
    assert readme.startswith("# team-project\n") and f"harness sweep {EXPERIMENT}" in readme
    assert "harness suite init NAME --from FILE" in (root / "suites/README.md").read_text()


def test_scaffolded_experiment_loads_and_documents_itself(tmp_path):
    init_project(tmp_path)
    text = (tmp_path / EXPERIMENT).read_text()
    config = load_experiment(tmp_path / EXPERIMENT)
    assert config.name == "first-sweep" and config.suite == "ticket-triage"
    assert set(config.space) == {"prompt", "lora"} and config.enqueue
    assert text.startswith("#") and f"harness sweep {EXPERIMENT}" in text.splitlines()[2]
    assert "harness suite init" in text  # how to point it at the team's own suite
    assert "ticket-triage" in (tmp_path / "README.md").read_text()  # bundled suites are listed


@pytest.mark.parametrize("existing", sorted(SCAFFOLD))
def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, existing):
    (tmp_path / existing).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / existing).write_text("mine\n")
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(HarnessError, match=f"{tmp_path / existing} already exists; .* wrote nothing"):
        init_project(tmp_path)
    assert {p for p in tmp_path.rglob("*")} == before
    assert (tmp_path / existing).read_text() == "mine\n"


def test_init_refuses_a_file_as_the_folder(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HarnessError, match="is a file, not a folder"):
        init_project(tmp_path / "file")


def test_cli_init_defaults_to_this_folder_and_prints_the_next_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    out = printed(capsys)
    assert f"wrote {EXPERIMENT}" in out and f"next: harness sweep {EXPERIMENT} --dry-run" in out
    assert main(["init"]) == 2
    assert "already exist; `harness init` never overwrites a file, so it wrote nothing" in printed(capsys)
