"""Regression through lm-eval on the bundled task YAMLs: offline, on the tiny random Llama, in a few seconds."""

import copy
import random
import socket
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.evaluation import regression as lr

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Offline switches on, and any socket connection fails the test: lm-eval must never download."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


def test_task_yamls_load_through_task_manager(monkeypatch, tmp_path):
    import datasets.config
    from lm_eval.tasks import TaskManager

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)  # keep ~/.cache untouched
    monkeypatch.chdir(lr.LM_EVAL_DIR)  # the YAMLs name their data relative to their folder, as the lm-eval CLI needs
    manager = TaskManager(include_path=str(lr.LM_EVAL_DIR), include_defaults=False)
    assert {s.task for s in lr.REGRESSION_SUITES.values()} <= set(manager.all_tasks)
    tasks = manager.load(["harness_piqa", "harness_gsm8k"])["tasks"]
    assert len(tasks["harness_piqa"].eval_docs) == 1838
    assert len(tasks["harness_gsm8k"].eval_docs) == 250
    assert len(tasks["harness_gsm8k"].fewshot_docs()) == 5


def test_task_config_paths_are_absolute_and_exist():
    for name in lr.REGRESSION_SUITES:
        for path in lr.task_config(name)["dataset_kwargs"]["data_files"].values():
            assert Path(path).is_absolute() and Path(path).is_file()


def test_piqa_one_score_per_doc_deterministic_seeded_subset(tiny):
    model, tokenizer = tiny
    model.train()
    ids, scores = lr.per_item_scores(model, tokenizer, "piqa", limit=6, seed=0)
    assert model.training  # mode restored
    model.eval()
    assert len(ids) == len(scores) == 6 and all(s in (0.0, 1.0) for s in scores)
    assert lr.per_item_scores(model, tokenizer, "piqa", limit=6, seed=0, batch_size=4) == (ids, scores)
    expected = sorted(random.Random(0).sample(range(1838), 6))  # the seeded subset, kept in file order
    assert ids == [f"piqa-valid-{i}" for i in expected]


def test_peft_wrapped_model(tiny):
    """A fresh LoRA adapter is the identity (B = 0), so the wrapped model must score exactly as the base."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer = tiny
    base = lr.per_item_scores(model, tokenizer, "piqa", limit=6, seed=1)
    wrapped = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert lr.per_item_scores(wrapped, tokenizer, "piqa", limit=6, seed=1) == base


def test_gsm8k_runs_with_short_generation(tiny):
    model, tokenizer = tiny
    rows = lr.logged_samples(model, tokenizer, "gsm8k", limit=2, max_gen_toks=4)
    assert [r["arguments"][0][1]["max_gen_toks"] for r in rows] == [4, 4]
    assert rows[0]["arguments"][0][0].count("Question:") == 6  # 5 exemplars + the problem
    ids, scores = lr.per_item_scores(model, tokenizer, "gsm8k", limit=2, max_gen_toks=4)
    assert ids == [str(r["doc"]["id"]) for r in rows] and all(i.startswith("gsm8k-test-") for i in ids)
    assert all(s in (0.0, 1.0) for s in scores)


def test_bad_arguments(tiny):
    model, tokenizer = tiny
    with pytest.raises(HarnessError, match="unknown regression suite"):
        lr.per_item_scores(model, tokenizer, "mmlu", limit=2)
    with pytest.raises(HarnessError, match=">= 0"):
        lr.per_item_scores(model, tokenizer, "piqa", limit=-1)
    assert lr.per_item_scores(model, tokenizer, "piqa", limit=0) == ([], [])
