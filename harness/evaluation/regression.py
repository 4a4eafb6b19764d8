"""General-capability regression through lm-eval (EleutherAI lm-evaluation-harness) on bundled task YAMLs.

Why lm-eval: its prompts, tokenisation and metrics are the reference that published numbers use, and another
suite is one YAML away. The YAMLs live in suites/general/lm_eval/ and read data files shipped in suites/general/,
so nothing is downloaded: the model is passed in memory, the data is local JSONL, the metrics are lm-eval's own
code, and the Hugging Face offline switches are on for the call.

Seeded subsets use lm-eval's `samples` (explicit document indices) rather than `limit` (the first N):
`sorted(random.Random(seed).sample(range(n), limit))`, so a given (limit, seed) always picks the same items and
the data files stay in upstream order.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import yaml

from harness.core.errors import HarnessError
from harness.core.paths import bundled
from harness.core.text import fold

LM_EVAL_DIR = bundled("suites") / "general" / "lm_eval"


@dataclass(frozen=True)
class RegressionSuite:
    task: str
    """lm-eval task name (the `task:` key of the YAML)."""
    yaml: Path
    metric: str
    """Per-document 0/1 score read from lm-eval's logged samples."""
    filter: str
    """lm-eval filter whose score is read: "none" for log-likelihood tasks."""


ITEMS_GAINED, ITEMS_LOST = "_items_gained", "_items_lost"
"""Suffixes of the check's stored shares of items a trial answered right where the base model did not, and the
reverse (`piqa_items_gained`): the counts behind the delta's McNemar interval, for a reader to check it by hand."""

REGRESSION_SUITES = {
    "piqa": RegressionSuite("harness_piqa", LM_EVAL_DIR / "harness_piqa.yaml", "acc", "none"),
    "gsm8k": RegressionSuite("harness_gsm8k", LM_EVAL_DIR / "harness_gsm8k.yaml", "exact_match", "strict-match"),
}


DISAGREEING_SHARE = 0.145
"""Share of forgetting-check items on which an adapter and its base model disagree (one right, the other wrong): the
demo's LoRA adapter gained 13 PIQA items and lost 16 of 200 (2026-12-06). It sets how finely n items can read a
change, before any trial has run."""


def readable_change(items: int) -> float:
    """About the half-width of the 95% interval of a forgetting delta on `items` paired 0/1 items, at
    DISAGREEING_SHARE: 1.96 x sqrt(share / n), as a fraction (0.167 on 20 items, 0.053 on 200)."""
    return 1.96 * (DISAGREEING_SHARE / items) ** 0.5


def items_to_read(change: float) -> int:
    """Items whose forgetting delta reads to about +-`change` (a fraction above 0)."""
    return -int(-(1.96 / change) ** 2 * DISAGREEING_SHARE // 1)


def too_few_to_decide(items: int, suite: str, max_drop: float) -> str | None:
    """Why a forgetting check of `items` cannot decide feasibility, when it reads a change to no better than twice
    `max_drop` (objective.max_regression_drop): its point estimate would mark a trained trial infeasible (or
    feasible) on noise. None when it can, or when any drop is refused (`max_drop` 0)."""
    spread = readable_change(items)
    if max_drop <= 0 or spread <= 2 * max_drop:
        return None
    return (f"the forgetting check's {items} {suite} items read a change only to about ±{100 * spread:.0f} points "
            f"(95%), against the {100 * max_drop:g}-point drop (objective.max_regression_drop) that marks a trained "
            f"trial infeasible, so that mark would come from noise. Give regression.limit {items_to_read(max_drop)} or "
            f"more to read it to about ±{100 * max_drop:g} points (assuming an adapter and its base disagree on "
            f"{100 * DISAGREEING_SHARE:.1f}% of items, as the demo's did), or set regression.enabled: false for a "
            "smoke run.")


def task_config(suite: str) -> dict:
    """The suite's YAML as a dict, data paths made absolute.

    `datasets` resolves relative `data_files` against the working directory; the YAMLs name them relative to their
    own folder (so the lm-eval CLI works from there), and this anchors them to it.
    """
    spec = _suite(suite)
    cfg = yaml.safe_load(spec.yaml.read_text(encoding="utf-8"))
    files = cfg["dataset_kwargs"]["data_files"]
    for split, path in files.items():
        files[split] = str(path if Path(path).is_absolute() else (spec.yaml.parent / path).resolve())
    return cfg


def per_item_scores(model, tokenizer, suite: str, limit: int | None, seed: int = 0, batch_size: int = 16,
                    max_gen_toks: int | None = None) -> tuple[list[str], list[float]]:
    """(document ids, 0/1 scores) of `model` on a seeded subset of `limit` documents, in file order.

    `model` is any in-memory causal LM, PEFT-wrapped included; its train/eval mode is restored afterwards.
    `limit=None` (or >= the suite size) scores every document. `max_gen_toks` caps generation (GSM8K only).
    """
    metric = _suite(suite).metric
    rows = logged_samples(model, tokenizer, suite, limit, seed, batch_size, max_gen_toks)
    return [str(s["doc"].get("id", s["doc_id"])) for s in rows], [float(s[metric]) for s in rows]


def logged_samples(model, tokenizer, suite: str, limit: int | None, seed: int = 0, batch_size: int = 16,
                   max_gen_toks: int | None = None) -> list[dict]:
    """lm-eval's logged sample per document (prompt, responses, every metric), in file order: `per_item_scores`
    without the summary, for looking into a score."""
    spec = _suite(suite)
    if limit is not None and limit < 0:
        raise HarnessError(f"regression limit must be >= 0 or unset, got {limit}; fix the regression `limit`.")
    if limit == 0:
        return []
    was_training = model.training
    with _offline(), _quiet(), tempfile.TemporaryDirectory(prefix="lm-regression-") as cache:
        from lm_eval.evaluator import evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        cfg = task_config(suite)
        cfg["dataset_kwargs"]["cache_dir"] = cache  # the Arrow copy of the JSONL goes nowhere permanent
        if max_gen_toks is not None and "generation_kwargs" in cfg:
            cfg["generation_kwargs"] = {**cfg["generation_kwargs"], "max_gen_toks": max_gen_toks}
        loaded = TaskManager(include_path=str(LM_EVAL_DIR), include_defaults=False).load([cfg])
        n = len(loaded["tasks"][spec.task].eval_docs)
        picks = None if limit is None or limit >= n else sorted(random.Random(seed).sample(range(n), limit))
        try:
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
            results = evaluate(lm, loaded, samples={spec.task: picks} if picks else None, bootstrap_iters=0,
                               log_samples=True)
        finally:
            model.train(was_training)
    rows = [s for s in results["samples"][spec.task] if s["filter"] == spec.filter]
    return sorted(rows, key=lambda s: s["doc_id"])


def _suite(name: str) -> RegressionSuite:
    if name not in REGRESSION_SUITES:
        raise HarnessError(f"unknown regression suite {name!r}; use one of {', '.join(REGRESSION_SUITES)}.")
    return REGRESSION_SUITES[name]


@contextmanager
def _offline() -> Iterator[None]:
    """Hub offline for the call. The libraries read the switches at import, so their constants are patched too."""
    import datasets.config
    import huggingface_hub.constants

    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}))
        stack.enter_context(mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True))
        stack.enter_context(mock.patch.object(datasets.config, "HF_HUB_OFFLINE", True))
        stack.enter_context(mock.patch.object(datasets.config, "HF_DATASETS_OFFLINE", True))
        yield


@contextmanager
def _quiet() -> Iterator[None]:
    """No lm-eval logs below ERROR and no progress bars in the sweep's output."""
    import datasets
    import lm_eval.api.model
    import lm_eval.api.task
    import lm_eval.models.huggingface
    from tqdm import tqdm

    def silent(*args, **kwargs):
        return tqdm(*args, **{**kwargs, "disable": True})

    log = logging.getLogger("lm_eval")
    level, bars_off = log.level, datasets.utils.are_progress_bars_disabled()
    log.setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    try:
        with ExitStack() as stack:
            for module in (lm_eval.api.model, lm_eval.api.task, lm_eval.models.huggingface):
                stack.enter_context(mock.patch.object(module, "tqdm", silent))
            yield
    finally:
        log.setLevel(level)
        if not bars_off:
            datasets.enable_progress_bars()


def item_texts(suite: str) -> set[str]:
    """Every question of the check's data files (scored items and shots), normalised like suite inputs.

    A task suite whose train split contains these would train on the regression check itself: the sweep refuses.
    """
    texts = set()
    for path in task_config(suite)["dataset_kwargs"]["data_files"].values():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                doc = json.loads(line)
                text = doc.get("question") or doc.get("goal")
                if text:
                    texts.add(fold(text))
    return texts
