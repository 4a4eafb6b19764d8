"""A vLLM server found running must serve the study's base model (a platform engineer pointed a SmolLM2 study at a
gemma3 server: every score, and every adapter loaded into it, was gemma's, recorded as SmolLM2's). What the server
says it loaded (`root` in /v1/models) is compared with the study's model folder by config and tokenizer. The server
here stands for what /v1/models answers; tests/test_vllm.py runs the real one."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import pytest

from harness.models.sources import resolve
from harness.serving.vllm import VllmError
from harness.sweep.engine import check_served_model


@dataclass
class Answered:
    """What a server's /v1/models says of the model it serves as `base`."""

    root: str | None
    base_url: str = "http://127.0.0.1:8001/v1"

    def served_root(self, name: str) -> str | None:
        return self.root if name == "base" else None


def test_a_server_of_another_base_model_is_refused_and_one_of_this_model_passes(tmp_path, tiny_model_dir):
    source = resolve(str(tiny_model_dir))
    said: list[str] = []
    check_served_model(Answered(str(tiny_model_dir)), "base", source, said.append)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")  # the same model in another folder
    check_served_model(Answered(str(copy)), "base", source, said.append)
    assert said == []
    other = shutil.copytree(tiny_model_dir, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(VllmError, match=r"serves 'base' from .*other, which is not .*their config or tokenizer differ"):
        check_served_model(Answered(str(other)), "base", source, said.append)


def test_a_server_whose_folder_is_not_here_is_named_as_unchecked(tiny_model_dir):
    said: list[str] = []
    check_served_model(Answered("/srv/models/elsewhere"), "base", resolve(str(tiny_model_dir)), said.append)
    assert len(said) == 1 and "which is not on this machine, so it cannot be checked" in said[0]
