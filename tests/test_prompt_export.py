"""Where prompting won, its prompt is what goes to production: `harness export` of a prompting trial writes the prompt
exactly as the trial was scored with it, and the README's Python builds, for every test input, the conversation (or
the plain-text prompt) the trial sent. One tiny real sweep of three prompting arms: fixed shots decoded within the
label set, shots chosen per input, and fixed shots on a model without a chat template."""

from __future__ import annotations

import json
import os
import re
import shutil
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
    swept(root / "plain.yaml", EXPERIMENT.format(
        name="plain", model=plain, suite=toy_suite, trials=1, results=root / "results",
        enqueue="[{method: prompt, shot_selection: random, constrained: false}]"))
    return swept(root / "own.yaml", EXPERIMENT.format(
        name="own", model=tiny_model_dir, suite=own_instructions(toy_suite, root / "own"), trials=1,
        results=root / "results", enqueue="[{method: prompt, shot_selection: random, constrained: true}]"))


def own_instructions(toy_suite: Path, root: Path) -> Path:
    """The toy suite, each of its examples with an instruction of its own (one of two, by line)."""
    shutil.copytree(toy_suite, root)
    (root / "suite.yaml").write_text((root / "suite.yaml").read_text().replace("name: toy-colours", "name: toy-own"))
    asks = ["Name the colour of the thing.", "Which colour is the thing? Answer in JSON."]
    for split in ("train", "dev", "test"):
        rows = [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()]
        (root / f"{split}.jsonl").write_text("".join(json.dumps({**row, "instruction": asks[i % 2]}) + "\n"
                                                     for i, row in enumerate(rows)))
    return root


def readme_blocks(folder: Path) -> list[str]:
    """The README's Python blocks, each up to its request: what builds `messages` or `prompt` for one input."""
    return [code.split("client = OpenAI(")[0]
            for code in re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S)]


def built_by_readme(folder: Path, example: Example, name: str) -> object:
    """Run each of the README's Python blocks in `folder` with `example`'s input (and instruction) as the input, check
    that all of them build the same `name`, and return it."""
    built = []
    cwd = Path.cwd()
    try:
        os.chdir(folder)
        for code in readme_blocks(folder):
            code = code.replace('"the input"', json.dumps(example.input))
            code = code.replace('"its own instruction"', json.dumps(example.instruction))
            scope: dict = {}
            exec(compile(code, str(folder / "README.md"), "exec"), scope)  # noqa: S102 - the README's own example
            built.append(scope[name])
    finally:
        os.chdir(cwd)
    assert len(built) >= 1 and all(value == built[0] for value in built), built
    return built[0]


@pytest.mark.parametrize("trial", [FIXED, SIMILAR, "plain/0", "own/0"])
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
        assert built_by_readme(out, ex, "messages" if chat else "prompt") == sent
        assert rebuilt.prompt(ex) == candidate.prompter.prompt(ex)  # what the model read, to the token
    assert serving["instruction_per_input"] is (trial == "own/0")
    if trial == "own/0":  # each input's own instruction, in place of the suite's: one conversation would not do
        assert "messages" not in serving and "give each input its instruction too" in (out / "README.md").read_text()
        assert len({candidate.prompter.messages(ex)[0]["content"] for ex in tested}) == 2
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


@pytest.mark.parametrize("edit, named", [
    (lambda serving: serving.pop("shots"), r"KeyError: 'shots'"),
    (lambda serving: serving.update(instruction=5), r"instruction must be text, not 5"),
    (lambda serving: serving.update(room="big"), r"room must be a whole number of tokens or null, not 'big'"),
    (lambda serving: serving["shots"].update(selection="best"), r"shots.selection must be fixed or similar"),
    (lambda serving: serving["shots"]["examples"][0].update(output={"colour": "red"}),
     r"shot 1 must have text `id`, `input` and `output`"),
    (lambda serving: serving["messages"][1].update(content="edited"), r"`messages` is not the conversation its"),
])
def test_a_damaged_export_is_named_not_a_traceback(store, tmp_path, edit, named):
    out = tmp_path / "p"
    export(store, FIXED, out)
    serving = json.loads((out / "serving.json").read_text())
    edit(serving)
    (out / "serving.json").write_text(json.dumps(serving))
    with pytest.raises(HarnessError, match=named):
        load_prompt(out)


def test_a_suite_edited_under_its_version_is_refused_not_exported_as_scored(tmp_path, tiny_model_dir, toy_suite,
                                                                          capsys):
    """The export (and predict) read the suite as it is now: an instruction edited, or a shot's line in train edited,
    without a new version, was exported as the prompt the trial was scored with."""
    suite = shutil.copytree(toy_suite, tmp_path / "toy")
    store = swept(tmp_path / "e.yaml", EXPERIMENT.format(
        name="e", model=tiny_model_dir, suite=suite, trials=1, results=tmp_path / "results",
        enqueue="[{method: prompt, shot_selection: random, constrained: false}]"))
    db = ["--db", str(store.path)]
    yaml_text, train = (suite / "suite.yaml").read_text(), (suite / "train.jsonl").read_text()
    (suite / "suite.yaml").write_text(yaml_text.replace("Name the colour of the thing.", "Name the colour."))
    for command in (["export", "e/0", "--out", str(tmp_path / "p"), *db], ["predict", "e/0", "--input", "x", *db]):
        assert main(command) == 2
        said = " ".join(capsys.readouterr().err.split())
        assert "is not what trial e/0 was scored with: its instruction, `output:` or `scorers:` changed since" in said
    (suite / "suite.yaml").write_text(yaml_text)
    shot = store.trial("e/0").shots[0]  # train:N, its line N
    lines = train.splitlines(keepends=True)
    lines[int(shot.split(":")[1]) - 1] = lines[int(shot.split(":")[1]) - 1].replace("item", "thing")
    (suite / "train.jsonl").write_text("".join(lines))
    assert main(["export", "e/0", "--out", str(tmp_path / "p"), *db]) == 2
    assert "its train.jsonl changed since" in " ".join(capsys.readouterr().err.split())
    (suite / "train.jsonl").write_text(train)
    assert main(["export", "e/0", "--out", str(tmp_path / "p"), *db]) == 0 and not (tmp_path / "p.export-tmp").exists()


def test_rescore_of_a_prompting_trial_is_refused_before_vllm_is_asked_for(store, tmp_path, capsys):
    assert main(["export", FIXED, "--out", str(tmp_path / "p"), "--rescore", "--db", str(store.path)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "--rescore: pe/0 is a prompt trial, with no weights of its own" in said and "vllm" not in said.lower()


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
    fits = json.loads((out / "serving.json").read_text())["input_tokens_with_all_shots"]
    assert f"every shot to inputs of up to about {fits:,} tokens" in (out / "README.md").read_text()
    short = Example("test:fits", " ".join(["blue"] * (fits - 5)), "")  # as many words as tokens, give or take
    assert len(prompter.fitted_shots(short)) == 2
