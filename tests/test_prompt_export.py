"""Where prompting won, its prompt is what goes to production: `harness export` of a prompting trial writes the prompt
exactly as the trial was scored with it, and the README's Python builds, for every test input, the conversation (or
the plain-text prompt) the trial sent. One tiny real sweep of three prompting arms: fixed shots decoded within the
label set, shots chosen per input, and fixed shots on a model without a chat template."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import swept
from tiny import build_tiny_model_dir
from transformers import AutoTokenizer

from harness.cli import main
from harness.core.errors import HarnessError
from harness.data.suites import Example, load_suite
from harness.lifecycle.export import export
from harness.lifecycle.prompt_export import load_prompt
from harness.store.database import Store
from harness.sweep.predict import load_candidate

EXPERIMENT = """
name: {name}
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
data: {{train_limit: 64, dev_limit: 6, test_limit: 12}}
budget: {{trials: {trials}}}
generation: {{batch_size: 12}}
space:
  prompt: {{shots: 2, shot_selection: [random, similar], constrained: [true, false]}}
enqueue: {enqueue}
"""
FIXED, SIMILAR = "pe/0", "pe/1"


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_model_dir, toy_suite) -> Store:
    root = tmp_path_factory.mktemp("pe")
    enqueue = ("[{method: prompt, shot_selection: random, constrained: true}, "
               "{method: prompt, shot_selection: similar, constrained: false}]")
    swept(root / "pe.yaml", EXPERIMENT.format(name="pe", model=tiny_model_dir, suite=toy_suite, trials=2,
                                              results=root / "results", enqueue=enqueue))
    plain = build_tiny_model_dir(root / "plain-model", chat_template=False)  # a base model: plain-text prompts
    return swept(root / "plain.yaml", EXPERIMENT.format(
        name="plain", model=plain, suite=toy_suite, trials=1, results=root / "results",
        enqueue="[{method: prompt, shot_selection: random, constrained: false}]"))


def readme_python(folder: Path) -> str:
    """The README's last Python block, up to the request: what builds `messages` or `prompt` for one input."""
    code = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S)[-1]
    return code.split("client = OpenAI(")[0]


def built_by_readme(folder: Path, text: str, name: str) -> object:
    """Run the README's Python in `folder` with `text` as the input, and return what it set `name` to."""
    code = readme_python(folder).replace('"the input"', json.dumps(text))
    scope: dict = {}
    cwd = Path.cwd()
    try:
        os.chdir(folder)
        exec(compile(code, str(folder / "README.md"), "exec"), scope)  # noqa: S102 - the README's own example
    finally:
        os.chdir(cwd)
    return scope[name]


@pytest.mark.parametrize("trial", [FIXED, SIMILAR, "plain/0"])
def test_the_readme_builds_for_every_test_input_what_the_trial_sent(store, tmp_path, trial):
    out = tmp_path / "prompt"
    done = export(store, trial, out)
    assert done.kind == "prompt"
    candidate, suite, cap = load_candidate(store, trial, device="cpu")
    serving = json.loads((out / "serving.json").read_text())
    assert (serving["trial"], serving["max_new_tokens"]) == (trial, cap)
    assert json.loads((out / "base_model.json").read_text())["sha256"] == store.study(trial.split("/")[0]).model_sha256
    tokenizer = AutoTokenizer.from_pretrained(done.base)  # as a service would load it
    rebuilt = load_prompt(out, tokenizer)
    chat = candidate.prompter.chat
    assert serving["chat_template"] is chat
    tested = suite.splits["test"][:12]
    for ex in tested:
        sent = candidate.prompter.messages(ex) if chat else candidate.prompter.prompt(ex)
        assert built_by_readme(out, ex.input, "messages" if chat else "prompt") == sent
        assert rebuilt.prompt(ex) == candidate.prompter.prompt(ex)  # what the model read, to the token
    if trial == SIMILAR:  # shots chosen per input: the pool travels with the prompt
        assert (out / "shots_pool.jsonl").is_file() and serving["shots"]["k"] == 2
        assert len({tuple(m["content"] for m in candidate.prompter.messages(ex)) for ex in tested}) > 1
    else:
        assert [s["id"] for s in serving["shots"]["examples"]] == list(store.trial(trial).shots)


def test_the_decoding_the_scores_were_measured_with_is_in_the_export(store, tmp_path):
    export(store, FIXED, tmp_path / "constrained")
    export(store, SIMILAR, tmp_path / "free")
    constrained = json.loads((tmp_path / "constrained" / "serving.json").read_text())
    assert constrained["constrained"] and "--structured-outputs-config" in (tmp_path / "constrained" / "README.md"
                                                                            ).read_text()
    labels = load_suite(store.study("pe").suite_path).contract.labels
    assert constrained["constraint"]["answers"] == [json.dumps({"colour": label}) for label in labels]
    free = json.loads((tmp_path / "free" / "serving.json").read_text())
    assert not free["constrained"] and free["vllm_request"] == {"temperature": 0, "max_tokens": free["max_new_tokens"]}
    assert "--structured-outputs-config" not in (tmp_path / "free" / "README.md").read_text()


def test_weights_only_flags_are_refused_and_replace_swaps_an_earlier_prompt(store, tmp_path, capsys):
    with pytest.raises(HarnessError, match=r"--merged: pe/0 is a prompt trial.*`harness export pe/0 --out DIR`"):
        export(store, FIXED, tmp_path / "x", merged=True)
    assert not (tmp_path / "x").exists()
    db = ["--db", str(store.path)]
    assert main(["export", FIXED, "--out", str(tmp_path / "p"), *db]) == 0
    assert "wrote prompt pe/0" in capsys.readouterr().out
    assert main(["export", SIMILAR, "--out", str(tmp_path / "p"), "--replace", *db]) == 0
    assert json.loads((tmp_path / "p" / "serving.json").read_text())["trial"] == SIMILAR


def test_a_damaged_export_is_named_not_a_traceback(store, tmp_path):
    out = tmp_path / "p"
    export(store, FIXED, out)
    serving = json.loads((out / "serving.json").read_text())
    del serving["shots"]
    (out / "serving.json").write_text(json.dumps(serving))
    with pytest.raises(HarnessError, match=r"not a prompt export .*KeyError.*shots"):
        load_prompt(out)


def test_with_the_models_tokenizer_a_long_input_leaves_out_shots_as_the_trial_did(store, tmp_path):
    out = tmp_path / "prompt"
    export(store, FIXED, out)
    candidate, _, _ = load_candidate(store, FIXED, device="cpu")
    prompter, tokenizer = candidate.prompter, candidate.tokenizer
    words, long = 8, None
    while len(tokenizer(prompter.render([{"role": "user", "content": long or ""}])).input_ids) < prompter.room - 20:
        words *= 2
        long = " ".join(["the car is blue"] * words)
    example = Example("test:long", long, "")
    assert len(prompter.fitted_shots(example)) < 2  # the trial left out shots that did not fit its window
    assert load_prompt(out, AutoTokenizer.from_pretrained(str(store.study("pe").model_name))).prompt(example) == \
        prompter.prompt(example)
    assert len(load_prompt(out).messages(example)) == 6  # without the tokenizer nothing is measured: both shots
