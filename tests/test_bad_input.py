"""Bad input, case by case (issue 11): each is refused with a message that says what is wrong, where (file, line or
key) and how to fix it; nothing is written halfway; the error comes before any model loads; and the CLI exits 2
with the message and no traceback.

The order follows the issue's list: experiment files, suites, models and trials. Everything is tiny: the toy suite
and the tiny model of conftest.py, adapters built on the spot, stores written in memory's worth of rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import printed
from tiny import build_tiny_model, build_tiny_tokenizer

from harness.cli import main
from harness.core.errors import ConfigError, HarnessError, ModelError, SuiteError
from harness.core.paths import bundled
from harness.core.records import AdapterEvent, ExampleRow, MetricRow, RunRecord, StudyRecord, Throughput, TrialRecord
from harness.data.suite_init import init_suite
from harness.data.suites import load_suite
from harness.lifecycle.export import export
from harness.lifecycle.promote import promote
from harness.lifecycle.recheck import recheck
from harness.models import loading, sources
from harness.store.database import Store
from harness.sweep.plan import plan_sweep

REPO = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------------------ helpers


def refused(argv: list[str], capsys) -> str:
    """Run the CLI, expect exit 2 with one `error:` message and no traceback; return the message on one line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())  # the console wraps long lines
    assert "error:" in err and "error:" not in captured.out and "Traceback" not in captured.out + captured.err
    return err[err.index("error:"):]  # after any progress bar the test's own set-up drew on stderr


def experiment(tmp_path: Path, suite: Path, body: str = "", space: str = "prompt: {shots: [0, 2]}",
               model: str = "smollm2-135m") -> Path:
    """An experiment file on `suite` with the regression check off (it is not what these tests are about)."""
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: bad\nmodel: {model}\nsuite: {suite}\nresults_dir: {tmp_path / 'results'}\n"
                    f"regression: {{enabled: false}}\nspace:\n  {space}\n{body}")
    return path


def nothing_written(tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert not results.exists() or not any(results.rglob("*")), sorted(results.rglob("*"))


# ------------------------------------------------------------------------------------------- experiment files


def test_experiment_unknown_key(tmp_path, toy_suite, capsys, no_model_loads):
    path = experiment(tmp_path, toy_suite, "budget: {trails: 3}\n")
    out = refused(["sweep", str(path)], capsys)
    assert str(path) in out and "unknown key `budget.trails`" in out and "Did you mean `budget.trials`?" in out
    nothing_written(tmp_path)


@pytest.mark.parametrize("body, message", [
    ("seed: zero\n", "`seed` must be an integer, got 'zero'"),
    ("training: {padding_free: maybe}\n", "`training.padding_free` must be true or false, got 'maybe'"),
    ("data: {train_limit: [10]}\n", "`data.train_limit` must be an integer, got [10]"),
    ("training: {over_length: cut}\n", "`training.over_length` must be one of refuse, truncate; got 'cut'"),
])
def test_experiment_wrong_type(tmp_path, toy_suite, capsys, no_model_loads, body, message):
    path = experiment(tmp_path, toy_suite, body)
    out = refused(["sweep", str(path)], capsys)
    assert str(path) in out and message in out
    nothing_written(tmp_path)


def test_rank_zero(tmp_path, toy_suite, capsys, no_model_loads):
    path = experiment(tmp_path, toy_suite, space="lora: {r: [0, 8]}")
    out = refused(["sweep", str(path)], capsys)
    assert str(path) in out and "`space.lora.r[0]` must be at least 1; got 0" in out
    nothing_written(tmp_path)


def test_negative_learning_rate(tmp_path, toy_suite, capsys, no_model_loads):
    path = experiment(tmp_path, toy_suite, space="lora: {learning_rate: -1.0e-3}")
    out = refused(["sweep", str(path)], capsys)
    assert str(path) in out and "`space.lora.learning_rate` must be greater than 0; got -0.001" in out
    nothing_written(tmp_path)


@pytest.mark.parametrize("space, most", [("prompt: {shots: [0, 3]}", 3), ("prompt: {shots: {low: 0, high: 5}}", 5),
                                         ("prompt: {shots: 4}", 4)])
def test_shots_above_the_train_size(tmp_path, toy_suite, capsys, no_model_loads, space, most):
    path = experiment(tmp_path, toy_suite, "data: {train_limit: 2}\n", space=space)
    out = refused(["sweep", str(path)], capsys)
    assert str(path) in out and f"`space.prompt.shots` reaches {most}" in out
    assert "train subset holds only 2 examples" in out and "raise data.train_limit" in out
    nothing_written(tmp_path)
    plan_sweep(path, ["data.train_limit=5"])  # the fix works


def test_objective_on_a_metric_that_does_not_exist(tmp_path, toy_suite, capsys, no_model_loads):
    path = experiment(tmp_path, toy_suite, "objective: {metric: f1_macro}\n")
    out = refused(["sweep", str(path)], capsys)
    assert str(path) in out and "`objective.metric: f1_macro` is not a metric suite toy-colours produces" in out
    assert "Did you mean `macro_f1`?" in out and "task_accuracy" in out
    nothing_written(tmp_path)


def test_objective_on_hallucination_for_free_text_is_refused(tmp_path, capsys, no_model_loads):
    """A free-text suite's hallucination_rate has no examples (n=0): choosing trials by it would choose by nothing."""
    path = experiment(tmp_path, bundled("suites") / "math-word-problems", "objective: {metric: hallucination_rate}\n")
    out = refused(["sweep", str(path)], capsys)
    assert "`objective.metric: hallucination_rate` is not a metric suite math-word-problems produces" in out
    assert "Choose one of: format_compliance, task_accuracy, rouge_l." in out
    nothing_written(tmp_path)


ENDPOINT = "endpoints:\n  mini: {{base_url: 'http://127.0.0.1:9/v1', model: m{key}}}\n"


def test_endpoint_without_its_key_variable(tmp_path, toy_suite, capsys, no_model_loads, monkeypatch):
    monkeypatch.delenv("HARNESS_TEST_NO_SUCH_KEY", raising=False)
    path = experiment(tmp_path, toy_suite, ENDPOINT.format(key=", api_key_env: HARNESS_TEST_NO_SUCH_KEY"),
                      space="api: {endpoint: mini}")
    out = refused(["sweep", str(path)], capsys)  # refused before the endpoint is asked (port 9 answers nothing)
    assert str(path) in out and "reads its key from $HARNESS_TEST_NO_SUCH_KEY, which is not set" in out
    assert "`endpoints.mini.api_key_env`" in out and "export HARNESS_TEST_NO_SUCH_KEY=..." in out
    nothing_written(tmp_path)


def test_endpoint_without_the_api_key_env_key(tmp_path, toy_suite, capsys, no_model_loads):
    path = experiment(tmp_path, toy_suite, ENDPOINT.format(key=""), space="api: {endpoint: mini}")
    out = refused(["sweep", str(path)], capsys)
    assert str(path) in out and "missing required key `endpoints.mini.api_key_env`" in out
    assert "add `api_key_env: ...` under `endpoints.mini`" in out
    nothing_written(tmp_path)


# ------------------------------------------------------------------------------------------------------ suites

LABELS = {"name": "sounds", "version": "1.0.0", "task": "classification", "instruction": "Name the sound.",
          "output": {"kind": "label", "key": "sound", "labels": ["bark", "meow", "moo"]}}


def row(text: str, sound: str = "bark") -> str:
    return json.dumps({"input": text, "output": {"sound": sound}})


def make_suite(tmp_path: Path, meta: dict | None = None, **splits: bytes | list[str]) -> Path:
    """A small valid label suite; a split given as lines or bytes replaces the default."""
    folder = tmp_path / "sounds"
    folder.mkdir()
    (folder / "suite.yaml").write_text(yaml.safe_dump(meta or LABELS, sort_keys=False))
    default = {"train": [row("a dog barks"), row("a cat purrs", "meow"), row("a cow grazes", "moo")],
               "dev": [row("the dog")], "test": [row("the kitten", "meow")]}
    for split, lines in {**default, **splits}.items():
        data = lines if isinstance(lines, bytes) else "".join(x + "\n" for x in lines).encode("utf-8")
        (folder / f"{split}.jsonl").write_bytes(data)
    return folder


def suite_error(folder: Path, capsys) -> str:
    with pytest.raises(SuiteError) as error:
        load_suite(str(folder))
    out = refused(["suite", "validate", str(folder)], capsys)  # the CLI says the same, without a traceback
    assert " ".join(str(error.value).split()) in out
    return str(error.value)


def test_suite_malformed_line(tmp_path, capsys):
    message = suite_error(make_suite(tmp_path, train=[row("a dog"), '{"input": "a cat", "output": ']), capsys)
    assert "train.jsonl:2: malformed JSON" in message and "write one JSON object per line" in message


def test_suite_line_that_is_an_array(tmp_path, capsys):
    message = suite_error(make_suite(tmp_path, dev=[row("the dog"), '["the cat", "meow"]']), capsys)
    assert "dev.jsonl:2: expected a JSON object, got an array" in message
    assert '{"input": "...", "output": ...}' in message


@pytest.mark.parametrize("encode, message", [
    (lambda text: text.encode("latin-1"), "test.jsonl:2: not UTF-8 (bytes 0xe9), likely Latin-1; re-save it as "
                                          "UTF-8, e.g. `iconv -f latin1 -t utf-8 test.jsonl > fixed.jsonl`"),
    (lambda text: text.encode("utf-16"), "test.jsonl:1: UTF-16 text (it starts with a UTF-16 byte-order mark), not "
                                         "UTF-8; re-save it as UTF-8, e.g. `iconv -f utf-16 -t utf-8 test.jsonl"),
    (lambda text: text.encode("utf-16-le"), "test.jsonl:1: holds NUL bytes, so it is UTF-16 or binary"),
], ids=["latin-1", "utf-16", "utf-16 without BOM"])
def test_suite_wrong_encoding(tmp_path, capsys, encode, message):
    text = row("the kitten", "meow") + '\n{"input": "a café", "output": {"sound": "meow"}}\n'
    assert message in suite_error(make_suite(tmp_path, test=encode(text)), capsys)


def test_suite_utf8_with_a_bom_is_read(tmp_path):
    suite = load_suite(str(make_suite(tmp_path, test=b"\xef\xbb\xbf" + row("the kitten", "meow").encode() + b"\n")))
    assert suite.splits["test"][0].input == "the kitten"


def test_suite_empty_file(tmp_path, capsys):
    message = suite_error(make_suite(tmp_path, dev=b""), capsys)
    assert "dev.jsonl: empty; add at least one example (one JSON object per line)" in message


def test_suite_unpaired_surrogate_escape(tmp_path, capsys):
    message = suite_error(make_suite(tmp_path, dev=['{"input": "the dog \\ud800", "output": {"sound": "bark"}}']),
                          capsys)
    assert "dev.jsonl:1: a text holds an unpaired surrogate escape" in message and "fix or remove" in message


def test_suite_line_nested_too_deeply(tmp_path, capsys):
    message = suite_error(make_suite(tmp_path, dev=['{"input": "x", "output": ' + "[" * 5000 + "]" * 5000 + "}"]),
                          capsys)
    assert "dev.jsonl:1: malformed JSON (Nested too deeply to read" in message


def over_length_experiment(tmp_path: Path, model: Path, suite: Path, mode: str) -> Path:
    return experiment(tmp_path, suite, f"data: {{train_limit: 40, dev_limit: 8, test_limit: 8}}\n"
                      f"training: {{max_length: 34, over_length: {mode}, padding_free: true}}\n"
                      "budget: {trials: 1, max_steps: 1}\n", space="lora: {r: 4}", model=str(model))


def test_over_long_examples_are_refused_by_default(tmp_path, tiny_model_dir, toy_suite, capsys, monkeypatch):
    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the lengths were checked")

    monkeypatch.setattr(loading, "load_model", loaded)  # the tokenizer may load: lengths are counted in tokens
    path = over_length_experiment(tmp_path, tiny_model_dir, toy_suite, "refuse")
    out = refused(["sweep", str(path)], capsys)
    assert "training.max_length: 40 of 40 train example(s) are longer than 34 tokens" in out and "train:" in out
    assert "--set training.max_length=" in out and str(path) in out and "training.over_length=truncate" in out
    nothing_written(tmp_path)


def test_a_max_length_beyond_the_context_window_is_refused_and_no_fix_points_past_it(tmp_path, tiny_model_dir,
                                                                                      toy_suite, capsys, monkeypatch):
    """The tiny model attends to 2,048 tokens: a longer `training.max_length` is refused before any model loads, and
    an example longer than the window is not told to raise max_length to its length."""
    from harness.data.shots import Example
    from harness.sweep.prepare import check_lengths

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a model loaded before the check"))
    path = over_length_experiment(tmp_path, tiny_model_dir, toy_suite, "refuse")
    out = refused(["sweep", str(path), "--set", "training.max_length=100000000"], capsys)
    assert "training.max_length: 100,000,000 tokens is beyond" in out and "context window of 2,048" in out
    assert "--set training.max_length=2048" in out
    nothing_written(tmp_path)

    long = Example("train:0", "x" * 5000, "y")
    monkeypatch.setattr("harness.sweep.prepare.over_length", lambda prompter, examples, max_length: [(long, 5000)])
    monkeypatch.setattr("harness.sweep.prepare.without_input", lambda prompter, example: 12)
    with pytest.raises(ConfigError) as refusal:
        check_lengths(None, (long,), 1000, window=2048)
    assert "5,000 tokens is beyond the model's context window (2,048)" in str(refusal.value)
    assert "--set training.max_length=5000" not in str(refusal.value)


def test_an_instruction_too_long_for_max_length_is_named_not_the_examples(tmp_path, tiny_model_dir, toy_suite,
                                                                           capsys):
    """A 250k-character instruction was blamed on the examples ("cut their inputs"), and cutting them then said to
    raise max_length, past the model's window."""
    import shutil

    suite = Path(shutil.copytree(toy_suite, tmp_path / "wordy"))
    meta = yaml.safe_load((suite / "suite.yaml").read_text())
    (suite / "suite.yaml").write_text(yaml.safe_dump({**meta, "instruction": "Name the colour. " * 40}))
    for mode in ("refuse", "truncate"):
        out = refused(["sweep", str(over_length_experiment(tmp_path, tiny_model_dir, suite, mode)), "--dry-run"],
                      capsys)
        assert "Shorten the suite's `instruction:`" in out and "training.include_instruction: false" in out, out


def test_over_long_examples_are_truncated_when_configured(tmp_path, tiny_model_dir, toy_suite, monkeypatch):
    """`training.over_length: truncate` cuts each over-long input (never its answer) so the row fits, says so, and
    TRL trains on rows that fit, padding-free too (where TRL itself truncates nothing)."""
    import torch

    from harness.sweep.prepare import prepare
    from harness.training import sft

    plan = plan_sweep(over_length_experiment(tmp_path, tiny_model_dir, toy_suite, "truncate"), [])
    said: list[str] = []
    data = prepare(plan, sources.resolve(str(tiny_model_dir)), said.append)
    original = {ex.id: ex for ex in plan.subsets["train"]}
    assert [ex.id for ex in data.train] == list(original)
    assert all(ex.target == original[ex.id].target for ex in data.train)  # answers whole
    assert all(original[ex.id].input.startswith(ex.input) and ex.input != original[ex.id].input for ex in data.train)
    assert len(said) == 1 and "cut the input of 40 of 40 train example(s)" in said[0] and "train:" in said[0]
    assert sorted(data.provenance["data"]["train_inputs_cut"]) == sorted(original)
    assert "on the median" in said[0] and "Prompting arms show train examples whole as shots" in said[0]
    # a training setting never changes the prompting opponent: its shots come from the inputs as written
    from harness.sweep.trial import trial_context
    from harness.training.methods.base import prompting_prompter

    ctx = trial_context(data)
    assert ctx.shots_from == plan.subsets["train"] and ctx.train_examples == data.train
    shots = prompting_prompter(ctx, loading.load_tokenizer(data.source), 2, "random").shots.pick(data.dev[0])
    assert shots and all(shot in plan.subsets["train"] for shot in shots)

    lengths: list[int] = []
    real = sft.SFTTrainer

    def trainer(*args, **kwargs):
        made = real(*args, **kwargs)
        lengths.extend(len(ids) for ids in made.train_dataset["input_ids"])
        assert made.args.max_length is None and made.args.padding_free  # TRL would not cut these rows
        return made

    monkeypatch.setattr(sft, "SFTTrainer", trainer)
    model, tokenizer = loading.load_model(data.source, "cpu", torch.float32), loading.load_tokenizer(data.source)
    from harness.data.prompting import trained_prompter

    prompter = trained_prompter(tokenizer, data.suite, data.config.training)
    report = sft.train(model, tokenizer, prompter, list(data.train), 1e-3, data.config.budget, data.config.training,
                       "cpu", 0)
    assert report.steps == 1 and len(lengths) == 40 and max(lengths) <= 34


@pytest.mark.parametrize("grounded", [True, False])
def test_over_long_examples_whose_cut_would_drop_a_value_the_answer_copies_are_refused(tmp_path, tiny_model_dir,
                                                                                      grounded):
    """Contracts put the governing law and the amount last: cut to fit, the inputs no longer held them, and the
    adapter was taught to give values it could not see. Refused whether or not the suite is grounded (suite init
    turns grounding off as soon as one value, an ISO date, is normalised), for numbers as for strings."""
    from transformers import AutoTokenizer

    from harness.core.config import TrainingConfig
    from harness.data.prompting import cut_to_length, over_length, trained_prompter

    meta = {"name": "trips", "version": "1.0.0", "instruction": "Extract the trip.",
            "output": {"kind": "json", "fields": ["city", "nights"], "grounded": grounded,
                       "schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                                   "nights": {"type": "integer"}}}}}
    lines = [json.dumps({"input": f"please book a long trip for me to {city}, nights: {nights}",
                         "output": {"city": city, "nights": nights}})
             for city, nights in (("Rome", 12), ("Oslo", 31), ("Bonn", 17), ("Ulm", 45), ("Graz", 63))]
    suite = load_suite(str(make_suite(tmp_path, meta, train=lines[:3], dev=lines[3:4], test=lines[4:])))
    prompter = trained_prompter(AutoTokenizer.from_pretrained(tiny_model_dir), suite, TrainingConfig())
    shortest = min(over_length(prompter, list(suite.splits["train"]), 8), key=lambda pair: pair[1])[1]
    with pytest.raises(ConfigError, match=f"train:.* would lose, cut to {shortest - 1} tokens, \\d+, which its "
                                          "answer copies from the part of the input cut off"):  # the nights go first
        cut_to_length(prompter, suite.splits["train"], shortest - 1)
    said = []
    for length in range(shortest - 2, 0, -1):  # shorter still: the city's name goes too
        with pytest.raises(ConfigError) as refused:
            cut_to_length(prompter, suite.splits["train"], length)
        said.append(str(refused.value))
    assert any(re.search(r"would lose, cut to \d+ tokens, '(Rome|Oslo|Bonn)', \d+, which", text) for text in said)


def test_label_outside_the_contract(tmp_path, capsys):
    message = suite_error(make_suite(tmp_path, dev=[row("the dog"), row("the fox", "howl")]), capsys)
    assert "dev.jsonl:2: the reference label 'howl' is not in `output.labels`" in message
    assert "add it there or fix the answer" in message


def test_contamination_exact(tmp_path, capsys):
    message = suite_error(make_suite(tmp_path, test=[row("the kitten", "meow"), row("  A COW   grazes", "moo")]),
                          capsys)
    assert "test.jsonl:2: input also in train.jsonl:3 (contamination between splits)" in message
    assert "remove it from one of them" in message


def test_contamination_near_duplicate(tmp_path, capsys):
    folder = make_suite(tmp_path, test=[row("the kitten", "meow"), row("A cow -- grazes!", "moo")])
    message = suite_error(folder, capsys)
    assert f"{folder / 'test.jsonl'}:2: input is a near-duplicate of {folder / 'train.jsonl'}:3" in message
    assert "equal after folding case, whitespace and punctuation: 'A cow -- grazes!' and 'a cow grazes'" in message
    assert "remove it from one of them" in message and "`near_duplicates: allow` in suite.yaml" in message
    (folder / "suite.yaml").write_text(yaml.safe_dump({**LABELS, "near_duplicates": "allow"}))
    allowed = load_suite(str(folder))
    assert len(allowed.splits["test"]) == 2  # kept knowingly, as the suite says, and counted where a report can say it
    assert "1 test input(s) equal a train input after folding case, whitespace and punctuation, kept by " \
           "`near_duplicates: allow`" in " ".join(allowed.warnings)


def test_inputs_equal_but_for_their_numbers_are_a_warning(tmp_path, capsys):
    """Test tickets copied into train with their reference number changed passed validation as clean. Numbers can
    also make two tasks (`order 5 items`, `order 6 items`), so it is a warning naming the pairs, not a refusal."""
    train = [row("a dog barks"), row("a cat purrs (ref 68341)", "meow"), row("a cow grazes", "moo")]
    folder = make_suite(tmp_path, train=train, test=[row("A cat purrs [ref 68342]!", "meow")])
    warnings = " ".join(load_suite(str(folder)).warnings)
    assert "1 test input(s) equal a train input but for their numbers (test.jsonl:1 'A cat purrs [ref 68342]!' " \
           "and train.jsonl:2 'a cat purrs (ref 68341)')" in warnings and "scored on memory" in warnings
    assert main(["suite", "validate", str(folder)]) == 0
    assert "[ref 68342]" in capsys.readouterr().err  # shown as written, brackets and all, with the warnings
    (folder / "suite.yaml").write_text(yaml.safe_dump({**LABELS, "near_duplicates": "allow"}))
    assert not load_suite(str(folder)).warnings  # kept knowingly, as the suite says


def test_inputs_that_reword_a_train_input_are_named_by_validate(tmp_path, capsys):
    """A test input copied into train with its words shuffled, or with one word added, passed validation as clean.
    Two honest examples can differ by a word too, so validate names them for a person to judge; nothing refuses
    them."""
    train = [row("a dog barks at the postman"), row("the cat purrs on my lap", "meow"), row("a cow grazes", "moo")]
    test = [row("at the postman a dog barks"), row("the cat purrs on my lap loudly", "meow"),
            row("a cow grazes in the field", "moo"), row("the kitten", "meow"), row("the cat purrs on her lap", "meow")]
    folder = make_suite(tmp_path, train=train, test=test, dev=[row("a dog barks at postman")])
    from harness.data.reworded import reworded_copies

    found = reworded_copies(load_suite(str(folder)))
    assert [(p.example.id, p.train.id, p.how) for pairs in found.values() for p in pairs] == [
        ("dev:1", "train:1", "a word removed"), ("test:1", "train:1", "its words reordered"),
        ("test:2", "train:2", "a word added"), ("test:5", "train:2", "a word changed")]
    # test:3 is three words more than its train input: two examples
    assert main(["suite", "validate", str(folder)]) == 0
    out = " ".join(capsys.readouterr().err.split())
    assert ("warning: 1 dev and 3 test input(s) reword a train input (dev.jsonl:1 'a dog barks at postman' is "
            "train.jsonl:1 'a dog barks at the postman' with a word removed;") in out and "never refused" in out
    (folder / "suite.yaml").write_text(yaml.safe_dump({**LABELS, "near_duplicates": "allow"}))
    assert reworded_copies(load_suite(str(folder))) == {}


def test_a_ticket_copied_with_its_reference_in_front_is_named_as_a_rewording(tmp_path):
    """`TCK-10403: What do you think of the exchange rate?` in test, the same message without it in train: two words
    added, past the one-word reword check, and letters too, past the numbers check."""
    from harness.data.reworded import reworded_copies

    train = [row("what do you think of the exchange rate"), row("the cat purrs on my lap", "meow"),
             row("a cow grazes", "moo")]
    test = [row("TCK-10403: What do you think of the exchange rate?"), row("the cat purrs on her lap #5521", "meow")]
    found = reworded_copies(load_suite(str(make_suite(tmp_path, train=train, test=test))))
    assert [(p.example.id, p.train.id, p.how) for p in found["test"]] == [
        ("test:1", "train:1", "an id or number added or changed"), ("test:2", "train:2", "a word changed")]


def test_a_near_duplicate_is_quoted_where_the_two_differ(tmp_path, capsys):
    """Quoted from their start, two inputs that differ past the cut read the same."""
    long = "I entered the wrong PIN three times and now the app says my account is locked"
    folder = make_suite(tmp_path, test=[row("the kitten", "meow"), row(long + "!!", "moo")],
                        train=[row("a dog barks"), row("a cat purrs", "meow"), row(long + ".", "moo")])
    message = suite_error(folder, capsys)
    assert "'... app says my account is locked!!' and '... app says my account is locked.'" in message


def test_inputs_one_split_holds_twice_are_named_with_their_answers(tmp_path, capsys):
    """`Why?` and `Why!!` in one test file both counted in its n, and the same input with two labels called a plain
    duplicate, so the right line could be the one removed."""
    test = [row("the kitten?", "meow"), row("the kitten!!", "meow"), row("the calf", "moo"), row("The calf", "bark"),
            row("the sound 👍", "moo"), row("the sound 👎", "bark")]  # an emoji that carries the answer: two inputs
    folder = make_suite(tmp_path, test=test)
    assert main(["suite", "validate", str(folder)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "test.jsonl:4: duplicate input (same as line 3 after folding case/whitespace) with another answer " \
           "('{\"sound\": \"bark\"}' here, '{\"sound\": \"moo\"}' there): decide which answer is right" in said
    assert "test.jsonl:3: input also in train.jsonl:3 (contamination between splits)" not in said
    (folder / "test.jsonl").write_text("\n".join(test[:3] + test[4:]) + "\n")
    warnings = " ".join(load_suite(str(folder)).warnings)
    assert "1 input(s) equal another input of the same split but for punctuation (test.jsonl:2 'the kitten!!' and " \
           "test.jsonl:1 'the kitten?')" in warnings and "counted twice" in warnings


def test_an_input_far_longer_than_the_rest_is_named_by_validate(tmp_path, capsys):
    """A 15,771-character e-mail passed init, validate and stats without a word; the dry run refused it, after minutes
    of calibration."""
    thread = "Dear team, please see below. " * 600  # a whole thread pasted into one cell
    folder = make_suite(tmp_path, train=[row("a dog barks"), row(thread, "meow"), row("a cow grazes", "moo")])
    assert main(["suite", "validate", str(folder)]) == 0
    out = " ".join(capsys.readouterr().err.split())
    assert f"1 input(s) are far longer than the suite's median of 11 characters (train.jsonl:2 ({len(thread):,} " \
        "characters))" in out and "training.max_length" in out
    (tmp_path / "short").mkdir()
    short = make_suite(tmp_path / "short")  # nothing long: nothing said
    assert main(["suite", "validate", str(short)]) == 0 and "far longer" not in capsys.readouterr().err


def test_suite_init_drops_near_duplicates_so_no_split_holds_one(tmp_path):
    source = tmp_path / "data.csv"
    rows = [f"message {i} about cards,card" for i in range(12)] + [f"message {i} about loans,loan" for i in range(12)]
    rows += ["Message 3 -- about cards!,card", "message 4 about loans?,loan"]
    source.write_text("text,label\n" + "\n".join(rows) + "\n")
    result = init_suite("mine", source, suites_dir=tmp_path / "suites")
    assert result.dropped == {"duplicates": 2}
    load_suite(str(result.path))  # validates: no contamination, exact or near


# --------------------------------------------------------------------------------------------- models and trials


@pytest.mark.parametrize("make, message", [
    (lambda d: d.mkdir(), "is not a HF model dir: it has no config.json"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text('{"model_type": "llama"}'),
                (d / "pytorch_model.bin").write_bytes(b"x")), "has no *.safetensors weights"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("{"), (d / "model.safetensors").write_bytes(b"x" * 16)),
     "config.json is not valid JSON"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text('{"model_type": "llama"}'),
                (d / "model.safetensors").write_bytes(b"GGUF" + b"\0" * 60)), "is not a safetensors file"),
    (lambda d: d.with_suffix(".txt").write_text("hello"), "is a file, not a model folder"),
    (lambda d: d.with_suffix(".gguf").write_bytes(b"PK\3\4 not a gguf"), "is named .gguf but is not a GGUF file"),
    (lambda d: d.with_suffix(".gguf").write_bytes(b"GGUF\3\0\0\0"), "is a GGUF file; the harness loads Hugging Face "
                                                                      "model folders"),
], ids=["no config.json", "no safetensors", "bad config.json", "bad safetensors", "a file", "a fake GGUF",
        "a GGUF"])
def test_model_path_that_is_not_a_model(tmp_path, toy_suite, capsys, no_model_loads, make, message):
    target = tmp_path / "model"
    make(target)
    given = next(p for p in (target, target.with_suffix(".txt"), target.with_suffix(".gguf")) if p.exists())
    path = experiment(tmp_path, toy_suite, model=str(given))
    out = refused(["sweep", str(path)], capsys)
    assert f"{path}: `model: {given}`" in out and message in out and "Fix:" in out
    nothing_written(tmp_path)


def test_model_path_that_does_not_exist(tmp_path, toy_suite, capsys, no_model_loads):
    path = experiment(tmp_path, toy_suite, model="models/mine.gguf")  # not taken for a hub id
    out = refused(["sweep", str(path)], capsys)
    assert "`model: models/mine.gguf`" in out and "models/mine.gguf does not exist" in out


def study_record(name: str, suite: str, suite_path: Path, model: Path | str = "smollm2-135m",
                 model_sha: str = "0" * 64) -> StudyRecord:
    experiment_ = {"name": name, "space": {"lora": {}}, "data": {"test_limit": 2}, "regression": {"enabled": False}}
    return StudyRecord(name, name, experiment_, suite, "1.0.0", str(suite_path), str(model), model_sha,
                       "task_accuracy", True)


def scored(study: str, number: int, suite: str, ids=range(4), trained: bool = True,
           artifact: Path | None = None) -> TrialRecord:
    examples = [ExampleRow("test", f"test:{i}", f"input {i}", '{"colour": "red"}', '{"colour": "red"}',
                           scores={"task_accuracy": 1.0, "format_compliance": 1.0}) for i in ids]
    return TrialRecord(
        id=f"{study}/{number}", study=study, number=number, run_id="r1", method="lora" if trained else "prompt",
        params={"r": 4} if trained else {"shots": 0}, status="complete", trained=trained, device="cuda",
        train_seconds=10.0 if trained else 0.0, eval_seconds=2.0,
        feasible=True, objective=0.9, artifact_path=None if artifact is None else str(artifact),
        provenance={"data": {"suite": suite, "suite_version": "1.0.0"}},
        metrics=[MetricRow("test", "task_accuracy", 0.9, 0.8, 0.95, len(examples))],
        throughput={"test": Throughput(len(examples), 2.0, 4, 400, 20)}, examples=examples,
    )  # fmt: skip


def lora_adapter(folder: Path, base, base_name: str) -> Path:
    from peft import LoraConfig, get_peft_model

    adapter = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    adapter.save_pretrained(folder, safe_serialization=True)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": base_name}))
    return folder


@pytest.fixture()
def other_base_store(tmp_path, tiny_model_dir, toy_suite) -> Store:
    """Trial s/1 of a study on the tiny model, whose saved adapter was made for a wider model (hidden size 48)."""
    store = Store(tmp_path / "results" / "harness.duckdb")
    tokenizer = build_tiny_tokenizer()
    adapter = lora_adapter(tmp_path / "results" / "artifacts" / "s" / "1",
                           build_tiny_model(tokenizer, hidden_size=48), str(tmp_path / "elsewhere"))
    source = sources.resolve(str(tiny_model_dir))
    store.record_study(study_record("s", "toy-colours", toy_suite, tiny_model_dir, source.sha256))
    store.record_trial_result(scored("s", 0, "toy-colours", trained=False))
    store.record_trial_result(scored("s", 1, "toy-colours", artifact=adapter))
    return store


def test_adapter_made_for_a_different_base_model(other_base_store, tmp_path, capsys, no_model_loads):
    store = other_base_store
    db = ["--db", str(store.path)]
    expected = "trial s/1: the adapter in"
    with pytest.raises(ModelError, match="made for another base model than") as error:
        promote(store, "s/1", "staging", approver="ada")
    assert expected in str(error.value) and "in the base model, and the adapter's lora_" in str(error.value)
    assert "re-train the adapter" in str(error.value) and store.adapter_statuses() == {}
    with pytest.raises(ModelError, match="made for another base model than"):
        export(store, "s/1", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    for argv in (["predict", "s/1", "--input", "a red car"], ["promote", "s/1", "--to", "staging", "--approver", "a"],
                 ["export", "s/1", "--out", str(tmp_path / "out")], ["audit", "s/1", "--out", str(tmp_path / "pack")]):
        out = refused(argv + db, capsys)
        assert expected in out and "made for another base model than" in out
    assert not (tmp_path / "out").exists() and not (tmp_path / "pack").exists()
    store.record_adapter_events([AdapterEvent("s/1", "toy-colours", "production", "candidate", "promote", "ada")])
    with pytest.raises(ModelError, match="made for another base model than"):
        recheck(store, "toy-colours", actor="test")


def test_adapter_whose_recorded_base_differs(tmp_path, tiny_model_dir, toy_suite, no_model_loads):
    """Same shapes, other weights: the folder the adapter names, or the sha256 an export recorded, gives it away."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    twin = tmp_path / "twin"  # the tiny model's architecture with other weights
    build_tiny_model(tokenizer, seed=1).save_pretrained(twin)
    tokenizer.save_pretrained(twin)
    adapter = lora_adapter(tmp_path / "adapter", build_tiny_model(tokenizer, seed=1), str(twin))
    source = sources.resolve(str(tiny_model_dir))
    with pytest.raises(ModelError, match=f"made for the base model {twin}, which is not .* their weights differ"):
        loading.check_adapter_base(adapter, source, "trial s/1")
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": source.path}))
    loading.check_adapter_base(adapter, source, "trial s/1")  # named the right base: fine
    (adapter / "base_model.json").write_text(json.dumps({"sha256": "f" * 64}))
    with pytest.raises(ModelError, match=r"sha256 ffffffffffff \(base_model.json\), but the base model here"):
        loading.check_adapter_base(adapter, source, "export")


@pytest.fixture()
def two_suites_store(tmp_path, toy_suite) -> Store:
    """s/0, s/1 and s/2 on toy-colours (s/2 on a smaller test subset); t/0 on ticket-triage."""
    store = Store(tmp_path / "h.duckdb")
    store.record_run(RunRecord("r1", "s", 1, "host", "cuda", "NVIDIA H100 80GB HBM3", 16, {}))
    store.record_study(study_record("s", "toy-colours", toy_suite))
    store.record_study(study_record("t", "ticket-triage", toy_suite))
    for record in (scored("s", 0, "toy-colours", trained=False), scored("s", 1, "toy-colours"),
                   scored("s", 2, "toy-colours", ids=range(2)), scored("t", 0, "ticket-triage", trained=False)):
        store.record_trial_result(record)
    return store


def test_trial_ids_that_do_not_exist(two_suites_store, tmp_path, capsys):
    db = ["--db", str(two_suites_store.path)]
    commands = [["show", "s/9"], ["compare", "s/9", "s/0"], ["compare", "s/0", "s/9"], ["payback", "s/9", "--volume",
                "10"], ["payback", "s/1", "--baseline", "s/9", "--volume", "10"], ["predict", "s/9", "--input", "x"],
                ["promote", "s/9", "--to", "staging", "--approver", "a"], ["export", "s/9", "--out",
                str(tmp_path / "out")], ["audit", "s/9", "--out", str(tmp_path / "pack")]]
    for argv in commands:
        out = refused(argv + db, capsys)
        assert "no trial 's/9'" in out and "list them with `harness trials`" in out, argv
    assert not (tmp_path / "out").exists() and not (tmp_path / "pack").exists()
    assert "'demo-2' is not a trial id: give STUDY/NUMBER" in refused(["show", "demo-2", *db], capsys)


def test_a_trial_asked_for_where_no_results_database_is_says_so(tmp_path, monkeypatch, capsys):
    """From another folder, without --db: not "no trial" (which reads as if the results were searched)."""
    monkeypatch.chdir(tmp_path)
    for argv in (["show", "demo/1"], ["payback", "demo/1", "--volume", "10"], ["predict", "demo/1", "--input", "x"]):
        out = refused(argv, capsys)
        assert "no results database at results/harness.duckdb, so no trial 'demo/1'" in out and "--db" in out, argv
    out = refused(["trials", "--db", str(tmp_path / "nope")], capsys)  # a mistyped --db is not "no trials yet"
    assert f"--db {tmp_path / 'nope'}: no results database there" in out


def test_compare_across_different_suites(two_suites_store, capsys):
    out = refused(["compare", "s/1", "t/0", "--db", str(two_suites_store.path)], capsys)
    assert "s/1 was scored on suite toy-colours and t/0 on suite ticket-triage" in out
    assert "Pick two trials of the same suite" in out


def test_compare_across_different_test_subsets(two_suites_store, capsys):
    out = refused(["compare", "s/1", "s/2", "--db", str(two_suites_store.path)], capsys)
    assert "s/1 and s/2 were scored on different test subsets of suite toy-colours" in out
    assert "s/1 has 4 test examples and s/2 has 2, 2 shared" in out and "data.test_limit" in out


def test_payback_across_different_suites_or_test_subsets(two_suites_store, tmp_path, capsys):
    db = ["--db", str(two_suites_store.path)]
    out = refused(["payback", "s/1", "--baseline", "t/0", "--volume", "100000", *db], capsys)
    assert "s/1 was scored on suite toy-colours and t/0 on suite ticket-triage" in out and "PAYS BACK" not in out
    out = refused(["payback", "s/2", "--baseline", "s/0", "--volume", "100000", *db], capsys)
    assert "different test subsets of suite toy-colours" in out
    prices = tmp_path / "prices.yaml"  # a price-only hosted baseline is still allowed
    prices.write_text("version: t\ndate: '2026-01-01'\ntoken_ratio: 1.0\napis: {cheap: {input_usd_per_1m: 1.0, "
                      "output_usd_per_1m: 4.0}}\ndevices: {H100: {usd_per_hour: 3.6, per: gpu, match: [H100]}}\n")
    assert main(["payback", "s/1", "--baseline", "api:cheap", "--baseline-accuracy", "0.5", "--volume", "100000",
                 "--prices", str(prices), *db]) == 0
    assert "api:cheap" in capsys.readouterr().out


def test_cli_shows_no_traceback_for_a_missing_suite(tmp_path, capsys):
    out = refused(["suite", "validate", str(tmp_path / "nowhere")], capsys)
    assert "suite" in out and "harness suite init NAME --from FILE" in out


def test_bad_input_never_leaves_half_a_suite(tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_bytes(b'{"text": "a", "label": "x"}\n' + "caf\xe9".encode("latin-1") + b"\n")
    with pytest.raises(HarnessError, match="not UTF-8"):
        init_suite("mine", source, suites_dir=tmp_path / "suites")
    assert not (tmp_path / "suites").exists() or not any((tmp_path / "suites").iterdir())


@pytest.mark.parametrize("content", [b"this is not a database\n", "truncated"])
@pytest.mark.parametrize("command", [["trials"], ["trials", "--format", "json"], ["registry"], ["show", "s/0"],
                                     ["compare", "s/0", "s/1"], ["payback", "s/0", "--volume", "100"],
                                     ["report"]])
def test_a_results_file_that_is_not_a_database_is_named_without_a_traceback(tmp_path, capsys, content, command):
    db = tmp_path / "harness.duckdb"
    if content == "truncated":  # a real results database, cut short as an interrupted copy leaves it
        import gzip

        whole = gzip.decompress((REPO / "tests/assets/results-v1.duckdb.gz").read_bytes())
        db.write_bytes(whole[: len(whole) // 3])
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    assert main([*command, "--db", str(db)]) == 2
    out = printed(capsys)
    assert "cannot be read" in out and str(db) in out and "Traceback" not in out
    assert "(--db for reading commands, `results_dir` for a sweep)" in out  # a sweep has no --db to point
    assert db.read_bytes() == before  # nothing written


@pytest.mark.parametrize("flag", ["--volume", "--margin", "--hosting", "--utilisation"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "lots"])
def test_numeric_flags_refuse_what_is_not_a_finite_number(flag, value, capsys):
    given = f"{flag}={value}"  # `=`: argparse would read a bare -inf as another option
    args = ["payback", "s/0", "--volume", "100", given] if flag != "--volume" else ["payback", "s/0", given]
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and value in err and "Traceback" not in err


def test_a_number_too_large_to_compute_with_is_named_as_such(capsys):
    with pytest.raises(SystemExit):
        main(["payback", "s/0", "--volume", "1e400"])
    assert "'1e400' is too large to compute with" in capsys.readouterr().err


def test_a_serving_throughput_no_stack_runs_at_is_refused(capsys):
    """--serving-throughput=1e-300 priced each query at 300 digits of dollars."""
    with pytest.raises(SystemExit):
        main(["payback", "s/0", "--volume", "100", "--serving-throughput=1e-300"])
    assert "'1e-300' tokens per second is no serving figure" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- flags a new user mixes up


def argparse_refused(argv: list[str], capsys) -> str:
    """A flag value argparse's type refuses: exit 2, one `argument --FLAG: ...` line on stderr, no traceback."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("value", ["5", "1", "-0.5", "nan"])
@pytest.mark.parametrize("command", [["payback", "s/1", "--volume", "100000"], ["compare", "s/1", "s/0"],
                                     ["report", "--volume", "100000"]])
def test_a_margin_outside_0_to_1_is_refused_by_every_command(two_suites_store, capsys, command, value):
    err = argparse_refused([*command, f"--margin={value}", "--db", str(two_suites_store.path)], capsys)
    assert "argument --margin" in err and repr(value) in err
    assert "a margin is a share of accuracy in [0, 1), e.g. 0.02 for 2 points" in err and "100000" not in err
    assert two_suites_store.looks() == []  # a refused compare records no look at test


@pytest.mark.parametrize("value", ["-2", "0", "nan"])
def test_a_token_ratio_that_is_not_above_0_is_refused(two_suites_store, capsys, value):
    err = argparse_refused(["payback", "s/1", "--baseline", "api:x", "--volume", "100", f"--token-ratio={value}",
                            "--db", str(two_suites_store.path)], capsys)
    assert "argument --token-ratio" in err and repr(value) in err and "above 0" in err


def test_payback_refuses_a_candidate_weighed_against_itself(two_suites_store, capsys):
    db = ["--db", str(two_suites_store.path)]
    out = refused(["payback", "s/0", "--volume", "100000", *db], capsys)  # s/0 is the study's only prompting arm
    assert "s/0 is a prompting trial, not a fine-tuned trial" in out and "--baseline s/0" in out
    assert "Give a fine-tuned trial of study s as TRIAL" in out
    out = refused(["payback", "s/1", "--baseline", "s/1", "--volume", "100000", *db], capsys)
    assert "--baseline s/1 is the candidate itself" in out and "e.g. s/0" in out


@pytest.mark.parametrize("given", ["new_tickets.jsonl", "pred.CSV", "notes.txt", "data/tickets"])
def test_predict_names_an_input_file_that_does_not_exist(two_suites_store, tmp_path, monkeypatch, capsys,
                                                         no_model_loads, given):
    monkeypatch.chdir(tmp_path)
    out = refused(["predict", "s/1", "--input", given, "--db", str(two_suites_store.path)], capsys)
    assert f"--input {given}: no such file" in out and "the text to answer itself" in out


def test_predict_reads_the_input_column_of_a_csv(tmp_path):
    from harness.sweep.predict import read_inputs

    labelled = tmp_path / "pred.csv"
    labelled.write_text('text,label\nI lost my card,cards\n"Refund, please",billing\n')
    assert read_inputs(str(labelled)) == ["I lost my card", "Refund, please"]  # header and labels left out
    single = tmp_path / "one.csv"
    single.write_text("message\nwhere is my parcel\n")
    assert read_inputs(str(single)) == ["where is my parcel"]
    fields = tmp_path / "new.jsonl"
    fields.write_text('{"text": "hello", "label": "x"}\n')
    assert read_inputs(str(fields)) == ["hello"]
    assert read_inputs("I lost my card / my wallet") == ["I lost my card / my wallet"]  # text, not a path
    unknown = tmp_path / "two.csv"
    unknown.write_text("a,b\n1,2\n")
    with pytest.raises(HarnessError, match=r"two.csv: which column holds the inputs\? .*\['a', 'b'\]"):
        read_inputs(str(unknown))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\ncaf\u00e9 closed\n".encode("latin-1"))
    with pytest.raises(HarnessError, match=r"latin.csv:2: not UTF-8 \(bytes 0xe9\), likely Latin-1; .*`iconv -f "
                                           r"latin1 -t utf-8 latin.csv > fixed.csv`"):
        read_inputs(str(latin))


def test_predict_answers_a_file_around_its_empty_rows_each_answer_naming_its_line(tmp_path):
    """A batch of new e-mails stopped at one blank line, or one row with an empty body. Every input now carries its
    file and line, so blank lines and empty rows are skipped without shifting an answer, and a row whose text cell is
    empty gets its own line with the error."""
    from harness.sweep.predict import read_input_rows, read_inputs

    (text := tmp_path / "in.txt").write_text("a red car\n\nthe sky\n\n")
    assert [(g.text, g.at) for g in read_input_rows(str(text))] == [("a red car", f"{text}:1"),
                                                                    ("the sky", f"{text}:3")]
    (table := tmp_path / "in.csv").write_text('text,sender\nred,ana\n"",bo\n,,\n\nblue,cy\n')
    rows = read_input_rows(str(table))
    assert [(g.text, g.at, g.problem) for g in rows] == [
        ("red", f"{table}:2", None), ("", f"{table}:3", "`text` is empty on this row: nothing was answered"),
        ("blue", f"{table}:6", None)]  # the row of empty cells and the blank line are no inputs
    (empty := tmp_path / "empty.csv").write_text('text,sender\n"",bo\n')
    with pytest.raises(HarnessError, match=r"empty.csv: the file holds no inputs \(.*empty.csv:2: `text` is empty"):
        read_input_rows(str(empty))
    (ended := tmp_path / "ok.txt").write_text("a\nb\n\n\n")
    assert read_inputs(str(ended)) == ["a", "b"]
    (ended := tmp_path / "ok.csv").write_text("text\na\nb\n\n")
    assert read_inputs(str(ended)) == ["a", "b"]


def test_predict_device_cuda_without_a_gpu_suggests_predicts_own_flag(two_suites_store, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = refused(["predict", "s/1", "--input", "hello", "--device", "cuda", "--db", str(two_suites_store.path)],
                  capsys)
    assert "--device cuda" in out and "--device cpu" in out and "--set" not in out


def test_recheck_names_an_unknown_suite_and_refuses_a_spreadsheet(two_suites_store, tmp_path, no_model_loads):
    with pytest.raises(HarnessError, match="no suite 'nosuch' in .*: its studies are on ticket-triage, toy-colours"):
        recheck(two_suites_store, "nosuch", actor="test")
    two_suites_store.record_adapter_events([AdapterEvent("s/1", "toy-colours", "production", "candidate", "promote",
                                                         "ada")])
    sheet = tmp_path / "new.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    with pytest.raises(HarnessError, match=r"new.xlsx is a .xlsx file: recheck reads labelled examples as `harness "
                                           r"suite init` does, from .jsonl, .csv, .tsv or .parquet"):
        recheck(two_suites_store, "toy-colours", actor="test", data=sheet)

    with pytest.raises(HarnessError, match="missing.jsonl: no such file"):
        recheck(two_suites_store, "toy-colours", actor="test", data=tmp_path / "missing.jsonl")


def test_show_refuses_a_negative_number_of_examples(two_suites_store, capsys):
    err = argparse_refused(["show", "s/1", "--examples", "-1", "--db", str(two_suites_store.path)], capsys)
    assert "argument --examples" in err and "'-1'" in err and "0 or more" in err
    from harness.analysis.report import trial_detail

    wrong = [ExampleRow("test", f"test:{i}", "a red car", "red", "blue", scores={"task_accuracy": 0.0})
             for i in range(3)]
    text = trial_detail(two_suites_store.trial("s/1"), wrong, failures=0)
    assert "first 0 of" not in text and "3 wrong test answers (--examples N lists them)" in text
    assert "first 2 of 3 wrong test answers:" in trial_detail(two_suites_store.trial("s/1"), wrong, failures=2)


@pytest.mark.parametrize("workers, message", [
    ("0", "--workers 0: give 1 or more"),
    ("99", "--workers 99: study bad has 2 trials in total, so at most 2 workers have a trial to run"),
])
def test_sweep_checks_workers_before_calibrating_and_in_the_dry_run(tmp_path, toy_suite, capsys, no_model_loads,
                                                                     monkeypatch, workers, message):
    from harness.sweep import machine

    def calibrated(*args, **kwargs):
        raise AssertionError("the machine was calibrated before --workers was checked")

    monkeypatch.setattr(machine, "plan_for_machine", calibrated)
    path = experiment(tmp_path, toy_suite, "budget: {trials: 2}\n")
    for dry in ([], ["--dry-run"]):
        assert message in refused(["sweep", str(path), "--workers", workers, *dry], capsys)
    nothing_written(tmp_path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_data_file_read_as_a_results_database_is_named_without_a_traceback(tmp_path, suffix):
    """Below the CLI's own check: DuckDB opens `x.csv` read-only as an in-memory database and fails with a catalog
    error, which the store names as a file it cannot read."""
    data = tmp_path / f"tickets{suffix}"
    data.write_bytes(b"text,label\nhello,a\n")
    with pytest.raises(HarnessError, match="cannot be read") as refused:
        Store(data).trials()
    assert str(data) in str(refused.value) and data.read_bytes() == b"text,label\nhello,a\n"


def test_show_and_the_report_name_a_trained_trial_that_learned_from_cut_inputs():
    """`training.over_length: truncate` recorded which train inputs it cut, and nothing read it: 36% of a legal
    team's LoRA inputs were cut, up to 99% of a document, and neither `show` nor the report said so."""
    from views import trial_view

    from harness.analysis.decision_report import _caution_lines
    from harness.analysis.report import trial_detail

    provenance = {"data": {"sizes": {"train": 612}, "train_inputs_cut": ["train:7", "train:9"]},
                  "training": {"max_length": 256}}
    cut = trial_view(1, provenance=provenance)
    shown = trial_detail(cut, [])
    assert "train inputs cut: 2 of 612 (training.over_length: truncate), each to fit training.max_length=256" in shown
    assert "e.g. train:7, train:9" in shown
    cautions = list(_caution_lines([cut]))
    assert any("learned from 2 of its 612 train examples with their inputs cut" in line for line in cautions)
    whole = trial_view(1, provenance={"data": {"sizes": {"train": 612}}, "training": {"max_length": 256}})
    assert "train inputs cut" not in trial_detail(whole, []) and not list(_caution_lines([whole]))


@pytest.mark.parametrize("value, said", [
    ("NaN", "NaN is not a JSON value (JSON has no NaN or Infinity)"),
    ("-Infinity", "-Infinity is not a JSON value"),
    ("1e999", "the number 1e999 is too large for a float"),
])
def test_non_finite_numbers_in_data_are_malformed_json_not_labels(tmp_path, value, said):
    """Python reads NaN, Infinity and 1e999, JSON has none of them: suite init made the labels "nan" and "inf" of
    them, and wrote suite files with `NaN` in them that suite validate called valid."""
    rows = [f'{{"text": "row {i} says", "label": "{"ab"[i % 2]}"}}' for i in range(40)]
    rows[6] = f'{{"text": "row 6 says", "label": {value}}}'
    source = tmp_path / "data.jsonl"
    source.write_text("\n".join(rows) + "\n")
    with pytest.raises(SuiteError) as refused:
        init_suite("s", source, suites_dir=tmp_path / "suites")
    assert "data.jsonl:7: malformed JSON" in str(refused.value) and said in str(refused.value)
    assert not (tmp_path / "suites" / "s").exists()


def test_suite_init_names_a_suites_dir_it_cannot_write_and_leaves_nothing(tmp_path, monkeypatch):
    rows = "".join(f"message {i},{'ab'[i % 2]}\n" for i in range(40))
    (source := tmp_path / "data.csv").write_text("text,label\n" + rows)
    (blocker := tmp_path / "suites").write_text("not a folder")
    for where in (blocker, blocker / "sub"):
        with pytest.raises(SuiteError, match=r"is a file, not a folder, so no suite can be written there"):
            init_suite("s", source, suites_dir=where)

    import harness.data.suite_init as suite_init_module

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "new"))

    monkeypatch.setattr(suite_init_module.tempfile, "mkdtemp", full_disk)
    with pytest.raises(SuiteError, match=r"cannot write the suite to .* \(No space left on device: "):
        init_suite("s", source, suites_dir=tmp_path / "new" / "suites")
    assert not (tmp_path / "new").exists()  # the folders it made for the suite are gone again


def test_suite_init_stops_cleanly_on_sigterm_and_leaves_no_half_built_folder(tmp_path):
    """A CI timeout or `kill` ended suite init on the spot: its hidden staging folder (17 MB) stayed in suites/."""
    import signal
    import subprocess
    import sys
    import time

    rows = "".join(f"message number {i} about {'ab'[i % 2]},{'ab'[i % 2]}\n" for i in range(60_000))
    (source := tmp_path / "big.csv").write_text("text,label\n" + rows)
    suites = tmp_path / "suites"
    suites.mkdir()
    child = subprocess.Popen([sys.executable, "-m", "harness", "suite", "init", "big", "--from", str(source),
                              "--suites-dir", str(suites)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(suites.iterdir()) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # waits on a condition: the staging folder appears
    child.send_signal(signal.SIGTERM)
    err = child.communicate(timeout=120)[1]
    if child.returncode == 0:  # it finished first: the suite is whole, which is fine too
        assert [p.name for p in suites.iterdir()] == ["big"]
        return
    assert child.returncode == 143 and "stopped (SIGTERM)." in err and "Traceback" not in err
    assert list(suites.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device whose writes fail as a full disk")
def test_a_full_disk_under_standard_output_is_one_line_not_a_traceback(two_suites_store):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "harness", "trials", "--format", "json", "--db",
                               str(two_suites_store.path)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "No space left on device. Free some space" in done.stderr


@pytest.mark.parametrize("index, said", [("-1", "'-1' is negative; give 0 or more"),
                                         ("99999999999999999999", "is too large; give 0 to 65535")])
def test_a_worker_index_out_of_range_is_refused_before_anything_loads(index, said, capsys):
    err = argparse_refused(["worker", "experiments/demo.yaml", "--index", index], capsys)
    assert "argument --index" in err and said in err


def test_a_study_name_too_long_for_a_folder_is_refused_at_the_plan(tmp_path, tiny_model_dir, toy_suite):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"name: x\nmodel: {tiny_model_dir}\nsuite: {toy_suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "space:\n  prompt: {shots: 0}\n")
    with pytest.raises(ConfigError, match=r"is 300 characters long; give one of at most 160"):
        plan_sweep(experiment, [], "y" * 300)
    assert plan_sweep(experiment, [], "y" * 160).study == "y" * 160


@pytest.mark.parametrize("text, said", [
    ('{"text": "a b", "label": "x"},\n', "a comma after the object; remove the trailing comma"),
])
def test_a_jsonl_line_ending_in_a_comma_says_to_remove_it(tmp_path, text, said):
    (source := tmp_path / "data.jsonl").write_text(text * 30)
    with pytest.raises(SuiteError, match=said):
        init_suite("s", source, suites_dir=tmp_path / "suites")


@pytest.mark.parametrize("header", ["a message about billing,billing", ","])
def test_a_csv_whose_first_row_is_data_or_blank_is_told_to_add_a_header(tmp_path, header):
    (source := tmp_path / "data.csv").write_text(header + "\n" + "another message about refunds,refund\n" * 30)
    with pytest.raises(SuiteError, match=r"does not name its columns: it looks like a row of data, or its names are "
                                         r"blank. Add a header row"):
        init_suite("s", source, suites_dir=tmp_path / "suites")


@pytest.mark.parametrize("argv, said", [
    (["show", "s/1/2"], "'s/1/2' is not a trial id: give STUDY/NUMBER"),
])
def test_a_mistyped_name_is_named_as_such(two_suites_store, argv, said, capsys):
    assert said in refused([*argv, "--db", str(two_suites_store.path)], capsys)


def test_an_empty_study_name_is_refused_by_argparse(capsys):
    err = argparse_refused(["trials", "--study", ""], capsys)
    assert "argument --study: is empty; give a name" in err


def test_a_split_file_under_another_name_is_named_by_validate(tmp_path, toy_suite, capsys):
    import shutil

    suite = Path(shutil.copytree(toy_suite, tmp_path / "toy"))
    (suite / "validation.jsonl").write_text((suite / "dev.jsonl").read_text())
    assert main(["suite", "validate", str(suite)]) == 0
    said = " ".join(printed(capsys).split())
    assert "validation.jsonl: not read; a suite's splits are train, dev, test (rename it dev.jsonl if it" in said


def test_a_key_given_twice_in_a_jsonl_row_is_refused_not_kept_last(tmp_path):
    rows = [f'{{"text": "row {i} says", "label": "{"ab"[i % 2]}"}}' for i in range(40)]
    rows[3] = '{"text": "row 3 says", "label": "a", "label": "b"}'
    (source := tmp_path / "data.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(SuiteError, match=r"data.jsonl:4: malformed JSON \(key 'label' is given twice in one object"):
        init_suite("s", source, suites_dir=tmp_path / "suites")
