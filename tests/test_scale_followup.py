"""A big suite (thousands of examples, hundreds of labels), followed up: prompt tokens counted without tokenizing the
shared system turn once per prompt (and the count unchanged), `suite stats` a screen long, example ids shown in
their numeric order, and near-duplicate folding without a Python call per character (and its output unchanged).
Work is bounded by counting operations, never by a wall clock."""

from __future__ import annotations

import json
import random
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from conftest import printed
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import build_tiny_tokenizer

import harness.core.text as text_module
from harness.analysis.compare import compare_trials
from harness.analysis.report import trial_detail
from harness.cli import main
from harness.core.errors import ConfigError
from harness.core.records import ExampleRow, StudyRecord, TrialRecord, trial_id
from harness.core.text import fold, id_order, near_fold
from harness.data.contract import OutputContract
from harness.data.prompt_tokens import prompt_lengths, row_lengths, shared_head
from harness.data.prompting import Prompter
from harness.data.suites import Example, load_suite, suite_stats
from harness.store.database import Store
from harness.sweep.plan import plan_sweep
from harness.sweep.prepare import check_eval_lengths, eval_prompter

SMOLLM2 = sorted(Path.home().joinpath(".cache/harness/models").glob("smollm2-135m-*/tokenizer.json"))

INPUTS = (
    "my card was declined", "  leading spaces", "\n\nleading newlines", "trailing spaces  ", "Café naïve 東京 ✓",
    "e\u0301 combining accent", "<|user|> looks like a turn", "<|im_start|>user\nhello", "span the gap",
    "hi there, <eos> in the text", "[INST] not a real turn", "tabs\tand\r\nreturns", "🙂 emoji first", "x",
    "a" * 300, "\u2028line separator", "numbers 1234567 and 3.14",
)


def label_contract(n: int) -> OutputContract:
    labels = tuple(f"intent_{i:03d}_{'ab' * (i % 4)}" for i in range(n))
    return OutputContract(kind="label", key="intent", labels=labels)


def examples() -> list[Example]:
    rows = [Example(f"test:{i + 1}", text, json.dumps({"intent": "intent_000_"})) for i, text in enumerate(INPUTS)]
    return rows + [Example("test:99", "own instruction", json.dumps({"intent": "intent_001_ab"}), "Be brief.")]


def metaspace_tokenizer(template: str):
    """A sentencepiece-style tokenizer: Metaspace (a `▁` before the first word only), a BOS added around every text,
    `<</SYS>>` taking the whitespace after it, and an added token (`<|sep|>hi`) that begins with another."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    specials = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "<<SYS>>", "<|sep|>"]
    tok.train_from_iterator([*INPUTS, " ".join(label_contract(40).labels)] * 3, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, show_progress=False))
    tok.add_special_tokens([AddedToken("<</SYS>>", rstrip=True, special=True, normalized=False),
                            AddedToken("<|sep|>hi", special=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    wrapped.chat_template = template
    return wrapped


LLAMA2 = ("[INST] <<SYS>>\n{{ messages[0]['content'] }}\n<</SYS>>\n\n"
          "{% for m in messages[1:] %}{{ m['content'] }} [/INST]{% endfor %}")
SEPARATED = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|sep|>{% endfor %}"


def tokenizers() -> list:
    found = [pytest.param(build_tiny_tokenizer(), id="tiny-chat"),
             pytest.param(build_tiny_tokenizer(chat_template=False), id="tiny-plain"),
             pytest.param(metaspace_tokenizer(LLAMA2), id="metaspace-llama2"),
             pytest.param(metaspace_tokenizer(SEPARATED), id="metaspace-separated")]
    if SMOLLM2:
        from transformers import AutoTokenizer

        found.append(pytest.param(AutoTokenizer.from_pretrained(SMOLLM2[0].parent), id="smollm2"))
    return found


@pytest.mark.parametrize("tokenizer", tokenizers())
def test_prompt_tokens_counted_in_parts_equal_the_whole_prompt_tokenized(tokenizer):
    """The count the context check and the training-length check use is exactly `len(tokenizer(prompt))`, on
    tokenizers that read a text's start differently (Metaspace), add a BOS, have a special token that takes the
    whitespace after it, or an added token that an input could complete."""
    from tokenizers import AddedToken

    if tokenizer.chat_template == build_tiny_tokenizer().chat_template:  # begun in the head, completed by an input
        tokenizer.add_tokens([AddedToken("<eos>\n<|user|>\nspan", special=True, normalized=False)],
                             special_tokens=True)
    prompter = Prompter(tokenizer, "Classify the message.", label_contract(40))
    cases = examples()
    lengths = prompt_lengths(prompter, cases)
    assert list(lengths.tokens) == [len(tokenizer(prompter.prompt(ex)).input_ids) for ex in cases]
    assert row_lengths(prompter, cases) == [len(tokenizer(prompter.prompt(ex) + prompter.completion(ex)).input_ids)
                                            for ex in cases]
    head = shared_head(prompter)
    if not prompter.chat:  # a plain layout has no special token to cut at: each prompt is tokenized whole
        assert head is None and lengths.shared is None
    else:  # the saving applies: most of each prompt is counted once
        assert head is not None and lengths.shared == head.tokens and head.tokens > min(lengths.tokens) / 2


def test_the_shared_system_turn_is_tokenized_once_not_once_per_prompt():
    """300 labels in every prompt of 200 examples: counted in parts, the tokenizer reads the label list once."""
    read = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __call__(self, text, **kwargs):
            read.append(sum(map(len, text)) if isinstance(text, list) else len(text))
            return self.inner(text, **kwargs)

    prompter = Prompter(Counting(build_tiny_tokenizer()), "Classify the message.", label_contract(300))
    cases = [Example(f"test:{i}", f"message number {i} about my card", "{}") for i in range(200)]
    lengths = prompt_lengths(prompter, cases)
    whole = sum(len(prompter.prompt(ex)) for ex in cases)
    assert lengths.shared is not None and sum(read) * 20 < whole
    assert list(lengths.tokens) == [len(prompter.tokenizer.inner(prompter.prompt(ex)).input_ids) for ex in cases]


def big_label_suite(root: Path, labels: int, per_label: tuple[int, int, int] = (3, 1, 1),
                    missing_in_dev: int = 0) -> Path:
    """A label suite written as its files: `labels` labels with long names, the last `missing_in_dev` without a
    dev example."""
    names = [f"department_{i:04d}_{'escalation' if i % 2 else 'request'}" for i in range(labels)]
    counts = {"train": per_label[0], "dev": per_label[1], "test": per_label[2]}
    root.mkdir(parents=True)
    for split, count in counts.items():
        rows = [{"input": f"{split} ticket {i}-{k} for team {name}", "output": {"team": name}}
                for i, name in enumerate(names) for k in range(count + (i if split == "train" and i < 7 else 0))
                if not (split == "dev" and i >= labels - missing_in_dev)]
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": root.name, "version": "1.0.0", "task": "classification", "instruction": "Route the ticket.",
        "output": {"kind": "label", "key": "team", "labels": names},
        "scorers": ["format_compliance", "hallucination_rate", "task_accuracy"]}))
    return root


def test_dry_run_says_what_the_shared_system_turn_takes_and_refuses_one_longer_than_the_window(
        tmp_path, tiny_model_dir, capsys):
    """With 400 labels the label list alone outgrows the tiny model's 2,048 tokens: no input can fit, so the message
    blames the shared turn (suite.yaml, fewer labels), not each example's line. With 20 it fits, and the dry run says
    how many of each prompt's tokens that turn takes."""
    for labels, code in ((400, 2), (20, 0)):
        suite = big_label_suite(tmp_path / f"labels{labels}", labels)
        experiment = tmp_path / f"exp{labels}.yaml"
        experiment.write_text(f"name: big\nmodel: {tiny_model_dir}\nsuite: {suite}\nresults_dir: {tmp_path / 'r'}\n"
                              "regression: {enabled: false}\nspace:\n  prompt: {shots: [0]}\n")
        assert main(["sweep", str(experiment), "--dry-run"]) == code
        out = " ".join(printed(capsys).split())
        assert "the system turn every prompt shares (the instruction and the contract, with its " \
               f"{labels} labels) takes " in out
        if code:
            assert "no dev/test example of suite labels400 can fit" in out and "suite.yaml" in out
            assert "merge rare ones" in out and "line " not in out and not (tmp_path / "r" / "artifacts").exists()
        else:
            assert "dev/test prompts: " in out and f"tokens (n={labels * 2})" in out  # 0 shots: nothing on top
    three = tmp_path / "exp3.yaml"
    three.write_text(experiment.read_text().replace("shots: [0]", "shots: [0, 3]"))
    assert main(["sweep", str(three), "--dry-run"]) == 0
    assert f"tokens, before the shots a prompting arm adds (n={labels * 2})" in " ".join(printed(capsys).split())


def test_a_sweep_of_adapters_alone_is_not_refused_for_a_label_list_its_prompts_never_hold(tmp_path, tiny_model_dir):
    """Trained methods leave the contract out of their prompts by default (`training.include_contract: false`), so
    400 labels do not decide whether their dev and test inputs fit; a prompting arm's prompts hold them."""
    from transformers import AutoTokenizer

    suite = big_label_suite(tmp_path / "labels400", 400)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for space, refused in (("lora: {r: [8]}", False), ("prompt: {shots: [0]}", True)):
        experiment = tmp_path / "exp.yaml"
        experiment.write_text(f"name: big\nmodel: {tiny_model_dir}\nsuite: {suite}\nresults_dir: {tmp_path / 'r'}\n"
                              f"regression: {{enabled: false}}\nspace:\n  {space}\n")
        plan = plan_sweep(str(experiment), [], None, None, None)
        evaluated = {split: plan.subsets[split] for split in ("dev", "test")}

        def check(plan=plan, evaluated=evaluated):
            check_eval_lengths(eval_prompter(tokenizer, plan), evaluated, 12, 2048, plan.suite, "tiny")

        if refused:
            with pytest.raises(ConfigError, match="the system turn every prompt shares"):
                check()
        else:
            check()


# -- suite stats -------------------------------------------------------------------------------------------------


def test_suite_stats_for_hundreds_of_labels_is_a_screen_and_json_keeps_every_count(tmp_path, capsys):
    suite = big_label_suite(tmp_path / "routing", 300, missing_in_dev=12)
    assert main(["suite", "stats", str(suite)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) < 40
    header, train, dev = (line.split() for line in lines[2:5])
    assert header[:2] == ["split", "examples"] and train[:2] == ["train", f"{3 * 300 + sum(range(7)):,}"]
    assert dev[:2] == ["dev", "288"] and "288 of 300 (12 missing)" in lines[4]
    commonest = lines[lines.index(next(x for x in lines if x.startswith("commonest 5 of 300 labels"))) + 2]
    assert commonest.split() == ["department_0006_request", "9", "1", "1", "11"]  # 3 + 6 in train
    assert any(x.startswith("rarest 5 labels (") and "--format json lists them" in x for x in lines)
    missing = next(x for x in lines if x.startswith("labels with no dev example (12): "))
    assert "department_0288_request" in missing and "and 2 more" in missing
    assert main(["suite", "stats", str(suite), "--format", "json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full == json.loads(json.dumps(suite_stats(load_suite(str(suite)))))
    assert len(full["train"]["labels"]) == 300 and len(full["dev"]["labels_missing"]) == 12


@pytest.mark.parametrize("suite,columns", [("slot-extraction", "empty answers {}"),
                                           ("math-word-problems", "distinct answers")])
def test_suite_stats_table_for_json_and_text_suites(suite, columns, capsys):
    assert main(["suite", "stats", suite]) == 0
    out = capsys.readouterr().out
    assert columns in out and len(out.splitlines()) < 30
    assert ("commonest 5 of" in out) == (suite == "slot-extraction")  # JSON keys ranked; a text suite has none


# -- example ids in numeric order --------------------------------------------------------------------------------


def test_show_and_compare_list_example_ids_by_their_number(tmp_path):
    """1,200 test examples: as text `test:1008` sorts before `test:102`. The display reads them as numbers; the
    store's order and every statistic stay as they were."""
    store = Store(tmp_path / "h.duckdb")
    store.record_study(StudyRecord("big", "big", {}, "big", "1", "suites/big", "tiny", "abc", "task_accuracy", True))
    ids = [f"test:{i}" for i in range(1, 1201)]
    wrong = {"test:9", "test:102", "test:1008", "test:1100", "test:57"}

    def rows(right) -> list[ExampleRow]:
        return [ExampleRow("test", i, f"input {i}", '{"intent": "a"}', '{"intent": "a"}' if right(i) else "x",
                           None, None, 0.0, {"task_accuracy": float(right(i))}, None) for i in ids]

    for number, right in ((0, lambda i: i not in wrong), (1, lambda i: True)):
        store.record_trial_result(TrialRecord(
            id=trial_id("big", number), study="big", number=number, run_id="run", method="prompt", status="complete",
            started_at=datetime(2026, 1, 1, tzinfo=timezone.utc), examples=rows(right)))
    in_number_order = ["test:9", "test:57", "test:102", "test:1008", "test:1100"]
    assert [e.example_id for e in store.examples("big/0") if e.example_id in wrong] == sorted(wrong)  # stored: text
    detail = trial_detail(store.require_trial("big/0"), store.examples("big/0"), failures=10)
    shown = [line.split(":")[0].strip() + ":" + line.split(":")[1] for line in detail.splitlines()
             if line.startswith("  test:")]
    assert shown == in_number_order
    comparison = compare_trials(store, "big/0", "big/1", max_disagreements=3)
    assert [d.example_id for d in comparison.disagreements] == in_number_order[:3]
    assert comparison.n_disagreements == 5 and comparison.n_shared == 1200
    assert comparison.decision.a == pytest.approx(1195 / 1200) and comparison.decision.b == 1.0


def test_id_order_reads_digit_runs_as_numbers_and_compares_any_two_ids():
    ids = ["test:1008", "test:102", "dev:3", "test:9", "ex:00012", "ex:11", "plain", "test:", "7"]
    assert sorted(ids, key=id_order) == ["7", "dev:3", "ex:11", "ex:00012", "plain", "test:", "test:9", "test:102",
                                         "test:1008"]


# -- near-duplicate folding --------------------------------------------------------------------------------------


def near_fold_as_first_written(text: str) -> str:
    """One `unicodedata.category` call per character: what the faster fold must reproduce exactly. Punctuation, emoji
    and the like (other and modifier symbols, format characters, variation selectors) read as spacing."""
    def spacing(c: str) -> bool:
        category = unicodedata.category(c)
        return category.startswith("P") or category in ("So", "Sk", "Cf") or c in "\ufe0e\ufe0f"

    spaced = "".join(" " if spacing(c) else c for c in unicodedata.normalize("NFKC", text))
    return fold(spaced) or fold(text)


def varied_unicode(seed: int, count: int) -> list[str]:
    """Texts drawn from every plane: punctuation of many scripts, combining marks, compatibility forms (ligatures,
    full-width, superscripts), lone surrogates, whitespace of every kind."""
    rng = random.Random(seed)
    pools = [range(0x20, 0x7F), range(0xA0, 0x250), range(0x300, 0x370), range(0x2000, 0x2070), range(0x3000, 0x3040),
             range(0xFB00, 0xFB07), range(0xFE10, 0xFE70), range(0xFF00, 0xFF66), range(0xD800, 0xD810),
             range(0x0590, 0x0700), range(0x1F300, 0x1F650), range(0x10000, 0x10100), range(0xE0000, 0xE0080)]
    return ["".join(chr(rng.choice(rng.choice(pools))) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def test_inputs_that_differ_only_by_emoji_are_near_duplicates_and_sums_stay_apart():
    """Half a test split were train messages without their trailing emoji, and the suite validated as clean."""
    assert near_fold("Ich möchte mein Geld zurück, die Bestellung kam nie an 😡") == near_fold(
        "Ich möchte mein Geld zurück, die Bestellung kam nie an")
    assert near_fold("領収書が必要です🧾") == near_fold("領収書が必要です")
    assert near_fold("I ❤️ it 👍🏽") == near_fold("I it")
    assert near_fold("👨\u200d👩\u200d👧 family") == near_fold("family")
    assert near_fold("2+3") != near_fold("2<3") and near_fold("$5 fee") != near_fold("€5 fee")  # maths, currency
    assert near_fold("😡") != near_fold("🙂")  # nothing but emoji: kept, so such inputs stay apart


def test_near_fold_equals_the_per_character_fold_on_varied_unicode():
    texts = varied_unicode(0, 3000) + ["auto top-up?", "Auto top up", "Eddie’s", "Eddie's", ":)", "?!", "", "   ",
                                       "¿Qué?", "«quoted»", "x—y", "ﬁnance", "１２３！"]
    assert [near_fold(t) for t in texts] == [near_fold_as_first_written(t) for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_near_fold_equals_the_per_character_fold_on_any_text(text):
    assert near_fold(text) == near_fold_as_first_written(text)


def test_near_fold_looks_each_code_point_up_once_per_process(monkeypatch):
    calls = []
    category = unicodedata.category
    monkeypatch.setattr(text_module.unicodedata, "category", lambda c: calls.append(c) or category(c))
    monkeypatch.setattr(text_module, "_PUNCTUATION_AS_SPACE", text_module._AsSpace(decoration=True))
    texts = varied_unicode(1, 500) * 4
    for t in texts:
        near_fold(t)
    distinct = {c for t in texts for c in unicodedata.normalize("NFKC", t)}
    assert len(calls) == len(distinct) < sum(len(t) for t in texts) / 5


def test_with_vllm_the_prompts_are_checked_against_the_servers_window(tmp_path, tiny_model_dir, capsys, monkeypatch):
    """vLLM answers no prompt longer than serving.max_model_len, whatever the model's own window: the plan says so
    and refuses prompts that do not fit, naming the key (before, the prompting arm failed mid-sweep with a 400)."""
    from harness.sweep import plan as plan_module

    monkeypatch.setattr(plan_module, "_check_engine", lambda *args: None)  # no vLLM here: only the window is tested
    suite = big_label_suite(tmp_path / "labels20", 20)
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"name: big\nmodel: {tiny_model_dir}\nsuite: {suite}\nresults_dir: {tmp_path / 'r'}\n"
                          "regression: {enabled: false}\nspace:\n  prompt: {shots: [0]}\n"
                          "generation: {engine: vllm}\nserving: {vllm_url: 'http://127.0.0.1:9/v1', "
                          "max_model_len: 1024}\n")
    assert main(["sweep", str(experiment), "--dry-run"]) == 0
    assert "as vLLM serves it (serving.max_model_len)'s context window is 1,024 tokens" in " ".join(
        printed(capsys).split())
    experiment.write_text(experiment.read_text().replace("max_model_len: 1024", "max_model_len: 256"))
    assert main(["sweep", str(experiment), "--dry-run"]) == 2
    assert "as vLLM serves it (serving.max_model_len)" in " ".join(printed(capsys).split())
